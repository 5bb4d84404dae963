/**
 * The vault suite: the same tests against every backend (SQLite file, PostgreSQL database), each test
 * on a fresh database. Cross-process behaviour is shown with real child processes on that database.
 */
import { test, describe, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { ManualClock, systemClock } from '../../src/clock.js'
import { parseKeys } from '../../src/config.js'
import { GhlError } from '../../src/errors.js'
import { createLogger } from '../../src/logger.js'
import { createVault } from '../../src/vault/index.js'
import type { Vault } from '../../src/vault/types.js'
import { DIALECTS, dialectSkipReason, freshDatabase, tempDir, testKey } from '../helpers/services.js'
import { companyInput, locationInput, openRaw, spawnChild } from './helpers.js'
import { vaultMigrations } from '../../src/vault/migrations/index.js'

/** Every migration the vault has, by name (sorted). */
async function migrationNames(dialect: 'sqlite' | 'postgres'): Promise<string[]> {
  return Object.keys(await vaultMigrations(dialect).getMigrations()).sort()
}

const KEY_A = `A:${testKey()}`
const KEY_B = `B:${testKey()}`
const [keyA] = parseKeys(KEY_A)
const [keyB] = parseKeys(KEY_B)

/** Asserts a promise rejects with a GhlError of that code, and returns it. */
async function rejectsWith(promise: Promise<unknown>, code: string): Promise<GhlError> {
  try {
    await promise
  } catch (err) {
    assert.ok(err instanceof GhlError, `expected a GhlError, got ${String(err)}`)
    assert.equal(err.code, code, err.message)
    return err
  }
  assert.fail(`expected a rejection with ${code}`)
}

/** Every textual form a token could leak in: plain, base64, base64url, hex. */
function forms(secret: string): string[] {
  const b = Buffer.from(secret, 'utf8')
  return [secret, b.toString('base64'), b.toString('base64url'), b.toString('hex')]
}

for (const dialect of DIALECTS) {
  describe(dialect, { skip: await dialectSkipReason(dialect) }, () => {
    let database: { url: string; cleanup: () => Promise<void> }
    let clock: ManualClock
    let vault: Vault
    const extra: Vault[] = []
    const open = async (options: { keys?: string; clock?: ManualClock | typeof systemClock; lockLeaseMs?: number; migrate?: boolean } = {}) => {
      const v = await createVault({
        databaseUrl: database.url,
        keys: parseKeys(options.keys ?? KEY_A),
        clock: options.clock ?? clock,
        ...(options.lockLeaseMs ? { lockLeaseMs: options.lockLeaseMs } : {}),
        ...(options.migrate === false ? { migrate: false } : {}),
      })
      extra.push(v)
      return v
    }

    beforeEach(async () => {
      database = await freshDatabase(dialect)
      clock = new ManualClock(Date.UTC(2026, 0, 1))
      vault = await open()
    })
    afterEach(async () => {
      for (const v of extra.splice(0)) await v.close()
      await database.cleanup()
    })

    describe('migrations', () => {
      test('migrating again is a no-op', async () => {
        await vault.migrate()
        await vault.migrate()
        const raw = await openRaw(dialect, database.url)
        try {
          const rows = await raw.query<{ name: string }>('select name from kysely_migration')
          assert.deepEqual(rows.map((r) => r.name).sort(), await migrationNames(dialect))
          for (const table of ['installations', 'oauth_states', 'webhook_events', 'audit_log']) {
            assert.deepEqual(await raw.query(`select count(*) as n from ${table}`).then((r) => Number(r[0]!.n)), 0)
          }
        } finally {
          await raw.close()
        }
      })

      test('5 vaults migrating one fresh database at once: schema created once, none fails', async () => {
        const fresh = await freshDatabase(dialect)
        try {
          const vaults = await Promise.all(
            Array.from({ length: 5 }, () => createVault({ databaseUrl: fresh.url, keys: [keyA!], clock })),
          )
          const raw = await openRaw(dialect, fresh.url)
          try {
            const rows = await raw.query<{ name: string }>('select name from kysely_migration')
            assert.deepEqual(rows.map((r) => r.name).sort(), await migrationNames(dialect))
          } finally {
            await raw.close()
          }
          // All five work on the one schema.
          const stored = await vaults[0]!.installations.upsert(locationInput())
          for (const v of vaults) assert.equal((await v.installations.get(stored.id))?.id, stored.id)
          await Promise.all(vaults.map((v) => v.close()))
        } finally {
          await fresh.cleanup()
        }
      })

      test('3 processes migrating one fresh database at once: schema created once, none fails', async () => {
        const fresh = await freshDatabase(dialect)
        try {
          const children = Array.from({ length: 3 }, () => spawnChild(fresh.url, KEY_A, ['migrate']))
          await Promise.all(children.map((c) => c.waitFor('ready')))
          for (const c of children) c.go()
          assert.deepEqual(await Promise.all(children.map((c) => c.exited)), [0, 0, 0])
          const raw = await openRaw(dialect, fresh.url)
          try {
            const rows = await raw.query<{ name: string }>('select name from kysely_migration')
            assert.deepEqual(rows.map((r) => r.name).sort(), await migrationNames(dialect))
          } finally {
            await raw.close()
          }
        } finally {
          await fresh.cleanup()
        }
      })
    })

    describe('installations', () => {
      test('upsert inserts a row with every field, version 1, active, tokens decrypted', async () => {
        const input = companyInput({ planId: 'p9', userId: 'U9' })
        const stored = await vault.installations.upsert(input)
        assert.match(stored.id, /^[0-9a-f-]{36}$/)
        assert.deepEqual(
          { ...stored, id: undefined },
          {
            id: undefined,
            clientId: 'app123-suffix',
            appId: 'app123',
            companyId: 'COMPANY1',
            locationId: null,
            userType: 'Company',
            userId: 'U9',
            scopes: ['contacts.readonly', 'locations.readonly'],
            planId: 'p9',
            isBulkInstallation: true,
            installToFutureLocations: true,
            approveAllLocations: false,
            approvedLocations: ['LOC1', 'LOC2'],
            source: 'oauth',
            parentId: null,
            status: 'active',
            statusReason: null,
            expiresAt: input.tokens.expiresAt,
            refreshTokenIssuedAt: new Date(clock.now()),
            locationName: null,
            companyName: null,
            installInfo: {},
            refreshFailures: 0,
            lastRefreshAt: new Date(clock.now()),
            lastError: null,
            retryAt: null,
            version: 1,
            createdAt: new Date(clock.now()),
            updatedAt: new Date(clock.now()),
            tokens: input.tokens,
          },
        )
        assert.deepEqual(await vault.installations.get(stored.id), stored)
        assert.deepEqual(await vault.installations.findByCompany('app123-suffix', 'COMPANY1'), stored)
        assert.equal(await vault.installations.getVersion(stored.id), 1)
        assert.equal(await vault.installations.get('nope'), undefined)
        assert.equal(await vault.installations.getVersion('nope'), undefined)
      })

      test('re-install keeps id and createdAt, bumps version, reactivates, never duplicates', async () => {
        const first = await vault.installations.upsert(locationInput())
        await vault.installations.setStatus(first.id, 'needs_reauthorization', { reason: 'refresh token rejected: invalid_grant' })
        clock.advance(60_000)
        const tokens = { accessToken: 'AT-second', refreshToken: 'RT-second', expiresAt: new Date(Date.UTC(2026, 0, 5)) }
        const again = await vault.installations.upsert(locationInput({ tokens, scopes: ['contacts.write'] }))
        assert.equal(again.id, first.id)
        assert.deepEqual(again.createdAt, first.createdAt)
        assert.deepEqual(again.updatedAt, new Date(clock.now()))
        assert.equal(again.version, 3)
        assert.equal(again.status, 'active')
        assert.equal(again.statusReason, null)
        assert.deepEqual(again.scopes, ['contacts.write'])
        assert.deepEqual(again.tokens, tokens)
        assert.equal((await vault.installations.list()).length, 1)
      })

      test('10 concurrent installs of one location leave one row at version 10', async () => {
        const results = await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            vault.installations.upsert(locationInput({ tokens: { accessToken: `AT${i}`, refreshToken: `RT${i}`, expiresAt: new Date(1e12) } })),
          ),
        )
        assert.equal(new Set(results.map((r) => r.id)).size, 1)
        const rows = await vault.installations.list()
        assert.equal(rows.length, 1)
        assert.equal(rows[0]!.version, 10)
      })

      test('agency row and location rows are distinct; filters find each', async () => {
        const agency = await vault.installations.upsert(companyInput())
        const own = await vault.installations.upsert(locationInput())
        const minted = await vault.installations.upsert(
          locationInput({
            locationId: 'LOC2',
            source: 'agency',
            parentId: agency.id,
            tokens: { accessToken: 'minted-AT', refreshToken: null, expiresAt: new Date(1e12) },
          }),
        )
        const otherApp = await vault.installations.upsert(locationInput({ clientId: 'other-app' }))
        assert.equal(new Set([agency.id, own.id, minted.id, otherApp.id]).size, 4)
        assert.equal((await vault.installations.findByCompany('app123-suffix', 'COMPANY1'))?.id, agency.id)
        assert.equal((await vault.installations.findByLocation('app123-suffix', 'LOC1'))?.id, own.id)
        assert.equal((await vault.installations.findByLocation('app123-suffix', 'LOC2'))?.id, minted.id)
        assert.equal((await vault.installations.findByLocation('other-app', 'LOC1'))?.id, otherApp.id)
        assert.equal(await vault.installations.findByLocation('app123-suffix', 'COMPANY1'), undefined)
        assert.equal(await vault.installations.findByCompany('app123-suffix', 'LOC1'), undefined)
        assert.equal(minted.tokens?.refreshToken, null)
        assert.equal(minted.refreshTokenIssuedAt, null)

        assert.deepEqual((await vault.installations.list({ parentId: agency.id })).map((i) => i.id), [minted.id])
        assert.deepEqual((await vault.installations.list({ source: 'agency' })).map((i) => i.id), [minted.id])
        assert.equal((await vault.installations.list({ clientId: 'app123-suffix' })).length, 3)
        assert.equal((await vault.installations.list({ companyId: 'COMPANY1' })).length, 4)
        await vault.installations.setStatus(own.id, 'uninstalled')
        assert.deepEqual((await vault.installations.list({ status: 'uninstalled' })).map((i) => i.id), [own.id])
        const summary = (await vault.installations.list())[0]!
        assert.equal('tokens' in summary, false)
      })

      test('CAS: two updates with the same expected version, exactly one wins', async () => {
        const stored = await vault.installations.upsert(locationInput())
        const a = { accessToken: 'AT-a', refreshToken: 'RT-a', expiresAt: new Date(2e12) }
        const b = { accessToken: 'AT-b', refreshToken: 'RT-b', expiresAt: new Date(2e12) }
        const [ra, rb] = await Promise.all([vault.installations.updateTokens(stored.id, 1, a), vault.installations.updateTokens(stored.id, 1, b)])
        assert.equal([ra, rb].filter(Boolean).length, 1)
        const winner = (ra ?? rb)!
        assert.equal(winner.version, 2)
        const now = await vault.installations.get(stored.id)
        assert.deepEqual(now?.tokens, ra ? a : b)
        assert.equal(now?.version, 2)
      })

      test('updateTokens with a stale version or unknown id changes nothing', async () => {
        const stored = await vault.installations.upsert(locationInput())
        const updated = await vault.installations.updateTokens(stored.id, 1, { accessToken: 'AT2', refreshToken: 'RT2', expiresAt: new Date(2e12) }, {
          scopes: ['x.readonly'],
          status: 'active',
          statusReason: null,
        })
        assert.equal(updated?.version, 2)
        assert.deepEqual(updated?.scopes, ['x.readonly'])
        assert.equal(await vault.installations.updateTokens(stored.id, 1, { accessToken: 'AT3', refreshToken: 'RT3', expiresAt: new Date(3e12) }), undefined)
        assert.equal(await vault.installations.updateTokens('nope', 1, { accessToken: 'AT3', refreshToken: 'RT3', expiresAt: new Date(3e12) }), undefined)
        assert.deepEqual(await vault.installations.get(stored.id), updated)
      })

      test('updateTokens with an audit note: the entry is written with the update, and only when it wins', async () => {
        const stored = await vault.installations.upsert(locationInput())
        const a = { accessToken: 'AT-a', refreshToken: 'RT-a', expiresAt: new Date(2e12) }
        const b = { accessToken: 'AT-b', refreshToken: 'RT-b', expiresAt: new Date(2e12) }
        const note = { action: 'refreshed', detail: { by: 'test' } }
        const [ra, rb] = await Promise.all([
          vault.installations.updateTokens(stored.id, 1, a, { audit: note }),
          vault.installations.updateTokens(stored.id, 1, b, { audit: note }),
        ])
        assert.equal([ra, rb].filter(Boolean).length, 1)
        const entries = (await vault.audit.list(stored.id)).filter((e) => e.action === 'refreshed')
        assert.deepEqual(entries.map((e) => e.detail), [{ by: 'test', version: 2 }])
        assert.equal(entries[0]!.at.getTime() > 0, true)
        // A lost swap (stale version) writes neither the tokens nor an entry.
        assert.equal(await vault.installations.updateTokens(stored.id, 1, a, { audit: note }), undefined)
        assert.equal((await vault.audit.list(stored.id)).filter((e) => e.action === 'refreshed').length, 1)
        const next = await vault.installations.updateTokens(stored.id, 2, a, { audit: { action: 'reconnected' } })
        assert.equal(next?.version, 3)
        assert.deepEqual((await vault.audit.list(stored.id)).filter((e) => e.action === 'reconnected').map((e) => e.detail), [{ version: 3 }])
        await rejectsWith(vault.installations.updateTokens(stored.id, 3, a, { audit: { action: '' } }), 'GHL_BAD_REQUEST')
        assert.equal((await vault.installations.get(stored.id))?.version, 3)
      })

      test('upsert with an audit note: the entry is written with the row and only when the row is, with its version', async () => {
        const note = { action: 'minted', detail: { parentId: 'P1' } }
        const agencyRow = { ...locationInput(), source: 'agency' as const, parentId: 'P1', tokens: { accessToken: 'AT-m', refreshToken: null, expiresAt: new Date(2e12) } }
        const first = await vault.installations.upsert(agencyRow, { onlyReplaceSource: ['agency'], audit: note })
        const again = await vault.installations.upsert(agencyRow, { onlyReplaceSource: ['agency'], audit: note })
        assert.equal(again.version, 2)
        const minted = async () => (await vault.audit.list(first.id)).filter((e) => e.action === 'minted').map((e) => e.detail)
        assert.deepEqual(await minted(), [{ parentId: 'P1', version: 1 }, { parentId: 'P1', version: 2 }])
        // The location's own OAuth install replaces it; a mint after that changes nothing and writes no entry.
        const own = await vault.installations.upsert(locationInput())
        assert.equal(own.id, first.id)
        const kept = await vault.installations.upsert(agencyRow, { onlyReplaceSource: ['agency'], audit: note })
        assert.equal(kept.source, 'oauth')
        assert.equal(kept.version, own.version)
        assert.equal((await minted()).length, 2, 'no entry for a row that was not written')
        // A bad note is refused before anything is stored.
        await rejectsWith(vault.installations.upsert(locationInput({ locationId: 'LOC-NEW' }), { audit: { action: '' } }), 'GHL_BAD_REQUEST')
        assert.equal(await vault.installations.findByLocation(locationInput().clientId, 'LOC-NEW'), undefined)
      })

      test('updateTokens sets what it is given and keeps the rest, whichever shapes of update came before', async () => {
        // Each shape of update is a statement built once and reused with new values: a statement of one
        // shape must never serve another (a reason written when none was given, a status lost).
        const stored = await vault.installations.upsert(locationInput({ scopes: ['a.readonly'] }))
        const t = (n: number) => ({ accessToken: `AT-${n}`, refreshToken: n % 2 ? `RT-${n}` : null, expiresAt: new Date(2e12 + n) })
        const steps: Array<[Parameters<Vault['installations']['updateTokens']>[3], Partial<Record<'status' | 'statusReason', unknown>> & { scopes?: string[] }]> = [
          [{ status: 'suspended', statusReason: 'paused' }, { status: 'suspended', statusReason: 'paused', scopes: ['a.readonly'] }],
          [{}, { status: 'suspended', statusReason: 'paused', scopes: ['a.readonly'] }],
          [{ scopes: ['b.write'] }, { status: 'suspended', statusReason: 'paused', scopes: ['b.write'] }],
          [{ statusReason: null }, { status: 'suspended', statusReason: null, scopes: ['b.write'] }],
          [{ status: 'active', audit: { action: 'refreshed' } }, { status: 'active', statusReason: null, scopes: ['b.write'] }],
          [{ statusReason: 'again', audit: { action: 'reconnected' } }, { status: 'active', statusReason: 'again', scopes: ['b.write'] }],
          [{ status: 'suspended', statusReason: 'paused' }, { status: 'suspended', statusReason: 'paused', scopes: ['b.write'] }],
          [{}, { status: 'suspended', statusReason: 'paused', scopes: ['b.write'] }],
        ]
        let version = 1
        for (const [i, [extra, want]] of steps.entries()) {
          const updated = await vault.installations.updateTokens(stored.id, version, t(i), extra)
          version++
          const read = await vault.installations.get(stored.id)
          assert.deepEqual(updated, read, `step ${i}: the returned row is the stored one`)
          assert.deepEqual(read?.tokens, t(i), `step ${i}`)
          assert.deepEqual({ status: read?.status, statusReason: read?.statusReason, scopes: read?.scopes }, want, `step ${i}`)
          assert.equal(read?.version, version)
        }
        assert.deepEqual(
          (await vault.audit.list(stored.id)).filter((e) => e.action === 'refreshed' || e.action === 'reconnected').map((e) => [e.action, e.detail]),
          [
            ['refreshed', { version: 6 }],
            ['reconnected', { version: 7 }],
          ],
        )
      })

      test('setStatus without wipe keeps tokens and bumps version', async () => {
        const stored = await vault.installations.upsert(locationInput())
        const s = await vault.installations.setStatus(stored.id, 'needs_reauthorization', { reason: 'refresh token rejected: invalid_grant' })
        assert.equal(s?.status, 'needs_reauthorization')
        assert.equal(s?.statusReason, 'refresh token rejected: invalid_grant')
        assert.equal(s?.version, 2)
        assert.deepEqual((await vault.installations.get(stored.id))?.tokens, stored.tokens)
        assert.equal(await vault.installations.setStatus('nope', 'active'), undefined)
      })

      test('setStatus with wipeTokens leaves no ciphertext in the row (nor, on SQLite, in the file)', async () => {
        const stored = await vault.installations.upsert(locationInput())
        const raw = await openRaw(dialect, database.url)
        try {
          const [before] = await raw.query<{ access_token: string; refresh_token: string }>('select access_token, refresh_token from installations')
          const ciphertexts = [before!.access_token, before!.refresh_token]
          assert.ok(ciphertexts.every((c) => c.startsWith('v1.A.')))
          const s = await vault.installations.setStatus(stored.id, 'uninstalled', { reason: 'UNINSTALL webhook', wipeTokens: true })
          assert.equal(s?.status, 'uninstalled')
          assert.equal(s?.expiresAt, null)
          assert.equal(s?.version, 2)
          assert.equal((await vault.installations.get(stored.id))?.tokens, null)
          const [after] = await raw.query('select access_token, refresh_token, key_id, expires_at from installations')
          assert.deepEqual({ ...after, expires_at: after!.expires_at ?? null }, { access_token: null, refresh_token: null, key_id: null, expires_at: null })
          const bytes = await raw.dump()
          for (const c of ciphertexts) {
            // The ciphertext's random parts (IV, body, tag) must be gone from the stored bytes.
            for (const part of c.split('.').slice(2)) assert.equal(bytes.includes(part), false, `found ${part.length}-char ciphertext part`)
          }
        } finally {
          await raw.close()
        }
      })

      test('bad install input: GHL_BAD_REQUEST naming every problem, nothing stored', async () => {
        const cases: [string, Parameters<Vault['installations']['upsert']>[0], RegExp][] = [
          ['Location without locationId', locationInput({ locationId: null }), /locationId for userType "Location"/],
          ['Company with a locationId', companyInput({ locationId: 'LOC9' }), /locationId to be null for userType "Company"/],
          ['oauth without refresh token', locationInput({ tokens: { accessToken: 'x', refreshToken: null, expiresAt: new Date(1e12) } }), /refresh token for source "oauth"/],
          ['agency without parentId', locationInput({ source: 'agency', tokens: { accessToken: 'x', refreshToken: null, expiresAt: new Date(1e12) } }), /parentId/],
          ['empty access token', locationInput({ tokens: { accessToken: '', refreshToken: 'r', expiresAt: new Date(1e12) } }), /tokens\.accessToken/],
          ['invalid expiry', locationInput({ tokens: { accessToken: 'a', refreshToken: 'r', expiresAt: new Date(Number.NaN) } }), /tokens\.expiresAt/],
          ['empty clientId and companyId', locationInput({ clientId: '', companyId: '' }), /clientId.*companyId/],
        ]
        for (const [name, input, message] of cases) {
          const err = await rejectsWith(vault.installations.upsert(input), 'GHL_BAD_REQUEST')
          assert.match(err.message, message, name)
          assert.equal(err.status, 400)
        }
        assert.deepEqual(await vault.installations.list(), [])
      })

      test('bad token update: GHL_BAD_REQUEST, row unchanged', async () => {
        const stored = await vault.installations.upsert(locationInput())
        const err = await rejectsWith(vault.installations.updateTokens(stored.id, 1, { accessToken: '', refreshToken: 'SECRET-RT', expiresAt: new Date(1e12) }), 'GHL_BAD_REQUEST')
        assert.match(err.message, /tokens\.accessToken/)
        assert.doesNotMatch(err.message, /SECRET-RT/)
        await rejectsWith(vault.installations.setStatus(stored.id, 'deleted' as never), 'GHL_BAD_REQUEST')
        assert.deepEqual(await vault.installations.get(stored.id), stored)
      })

      test('onlyReplaceSource: an agency mint never overwrites the location\'s own OAuth row (even uninstalled)', async () => {
        const agency = await vault.installations.upsert(companyInput())
        const own = await vault.installations.upsert(locationInput())
        const minted = (accessToken: string) =>
          locationInput({ source: 'agency', parentId: agency.id, tokens: { accessToken, refreshToken: null, expiresAt: new Date(2e12) } })
        const kept = await vault.installations.upsert(minted('MINTED-1'), { onlyReplaceSource: ['agency'] })
        assert.deepEqual(kept, own, 'the existing OAuth row is returned unchanged')
        assert.deepEqual(await vault.installations.get(own.id), own)
        assert.equal((await vault.installations.get(own.id))?.tokens?.refreshToken, own.tokens!.refreshToken)
        // Strict: an uninstalled OAuth row is not taken over either.
        const gone = await vault.installations.setStatus(own.id, 'uninstalled', { wipeTokens: true })
        const stillGone = await vault.installations.upsert(minted('MINTED-2'), { onlyReplaceSource: ['agency'] })
        assert.equal(stillGone.source, 'oauth')
        assert.equal(stillGone.status, 'uninstalled')
        assert.equal(stillGone.version, gone!.version)
        assert.equal(stillGone.tokens, null)
        // Without the option, the upsert replaces as before.
        const replaced = await vault.installations.upsert(minted('MINTED-3'))
        assert.equal(replaced.source, 'agency')
        assert.equal(replaced.id, own.id)
      })

      test('onlyReplaceSource: an agency row is replaced, a missing one inserted; bad values refused, nothing stored', async () => {
        const agency = await vault.installations.upsert(companyInput())
        const minted = (accessToken: string) =>
          locationInput({ source: 'agency', parentId: agency.id, tokens: { accessToken, refreshToken: null, expiresAt: new Date(2e12) } })
        const first = await vault.installations.upsert(minted('MINTED-1'), { onlyReplaceSource: ['agency'] })
        assert.equal(first.source, 'agency')
        assert.equal(first.version, 1)
        const second = await vault.installations.upsert(minted('MINTED-2'), { onlyReplaceSource: ['agency'] })
        assert.equal(second.id, first.id)
        assert.equal(second.version, 2)
        assert.equal(second.tokens?.accessToken, 'MINTED-2')
        const before = await vault.installations.list()
        for (const bad of [[], ['nope'], 'agency'] as unknown as ('agency' | 'oauth')[][]) {
          const err = await rejectsWith(vault.installations.upsert(minted('MINTED-X'), { onlyReplaceSource: bad }), 'GHL_BAD_REQUEST')
          assert.match(err.message, /onlyReplaceSource/)
        }
        assert.deepEqual(await vault.installations.list(), before)
        assert.equal((await vault.installations.get(first.id))?.tokens?.accessToken, 'MINTED-2')
      })

      test('setStatus with expectedVersion: a compare-and-swap; a stale version changes nothing', async () => {
        const stored = await vault.installations.upsert(locationInput())
        const reinstalled = await vault.installations.upsert(locationInput({ tokens: { accessToken: 'AT-new', refreshToken: 'RT-new', expiresAt: new Date(2e12) } }))
        assert.equal(reinstalled.version, 2)
        assert.equal(await vault.installations.setStatus(stored.id, 'needs_reauthorization', { reason: 'x', expectedVersion: stored.version }), undefined)
        assert.deepEqual(await vault.installations.get(stored.id), reinstalled)
        const marked = await vault.installations.setStatus(stored.id, 'needs_reauthorization', { reason: 'y', expectedVersion: 2 })
        assert.equal(marked?.status, 'needs_reauthorization')
        assert.equal(marked?.version, 3)
        assert.equal(await vault.installations.setStatus('nope', 'active', { expectedVersion: 1 }), undefined)
        const err = await rejectsWith(vault.installations.setStatus(stored.id, 'active', { expectedVersion: 1.5 }), 'GHL_BAD_REQUEST')
        assert.match(err.message, /expectedVersion/)
        assert.equal((await vault.installations.get(stored.id))?.version, 3)
      })

      test('setStatus with expectedVersion: of concurrent writers on one version, exactly one wins', async () => {
        const stored = await vault.installations.upsert(locationInput())
        const other = await open()
        const results = await Promise.all(
          Array.from({ length: 10 }, (_, i) => (i % 2 ? other : vault).installations.setStatus(stored.id, 'needs_reauthorization', { reason: `r${i}`, expectedVersion: 1 })),
        )
        assert.equal(results.filter(Boolean).length, 1)
        assert.equal((await vault.installations.get(stored.id))?.version, 2)
      })
    })

    describe('encryption at rest', () => {
      test('the raw database holds neither the tokens nor their encodings', async () => {
        const input = locationInput()
        await vault.installations.upsert(input)
        const raw = await openRaw(dialect, database.url)
        try {
          const bytes = await raw.dump()
          assert.ok(bytes.includes('LOC1'), 'the dump should hold the row itself')
          for (const secret of [input.tokens.accessToken, input.tokens.refreshToken!]) {
            for (const form of forms(secret)) assert.equal(bytes.includes(form), false, `found a form of a token in the raw database`)
          }
        } finally {
          await raw.close()
        }
      })

      test('one tampered byte of a stored ciphertext → GHL_VAULT_DECRYPT_FAILED, message without secrets', async () => {
        const stored = await vault.installations.upsert(locationInput())
        const raw = await openRaw(dialect, database.url)
        try {
          const [row] = await raw.query<{ access_token: string }>('select access_token from installations')
          const parts = row!.access_token.split('.')
          const body = Buffer.from(parts[3]!, 'base64url')
          body[0] = body[0]! ^ 0x01
          parts[3] = body.toString('base64url')
          await raw.query('update installations set access_token = ?', [parts.join('.')])
          const err = await rejectsWith(vault.installations.get(stored.id), 'GHL_VAULT_DECRYPT_FAILED')
          assert.doesNotMatch(err.message, new RegExp(parts[3]!.slice(0, 12)))
          assert.equal(err.message.includes(stored.tokens!.accessToken), false)
          assert.equal(JSON.stringify(err).includes(parts[3]!), false)
        } finally {
          await raw.close()
        }
      })

      test('a ciphertext copied to another row (or column) does not decrypt', async () => {
        const one = await vault.installations.upsert(locationInput())
        const two = await vault.installations.upsert(locationInput({ locationId: 'LOC2' }))
        const raw = await openRaw(dialect, database.url)
        try {
          const [src] = await raw.query<{ access_token: string; refresh_token: string }>('select access_token, refresh_token from installations where id = ?', [one.id])
          await raw.query('update installations set access_token = ? where id = ?', [src!.access_token, two.id])
          await rejectsWith(vault.installations.get(two.id), 'GHL_VAULT_DECRYPT_FAILED')
          // Within one row: the refresh token's ciphertext moved into the access-token column.
          await raw.query('update installations set access_token = ? where id = ?', [src!.refresh_token, one.id])
          await rejectsWith(vault.installations.findByLocation('app123-suffix', 'LOC1'), 'GHL_VAULT_DECRYPT_FAILED')
        } finally {
          await raw.close()
        }
      })

      test('key rotation: A → [B, A] reads, rotateKeys re-encrypts all, then [B] alone reads', async () => {
        const rows = await Promise.all([
          vault.installations.upsert(locationInput()),
          vault.installations.upsert(locationInput({ locationId: 'LOC2' })),
          vault.installations.upsert(companyInput()),
        ])
        const wiped = await vault.installations.upsert(locationInput({ locationId: 'LOC3' }))
        await vault.installations.setStatus(wiped.id, 'uninstalled', { wipeTokens: true })
        const both = await open({ keys: `${KEY_B},${KEY_A}` })
        for (const r of rows) assert.deepEqual((await both.installations.get(r.id))?.tokens, r.tokens)
        // A row written now uses B already; only the three A rows need rotation.
        const fresh = await both.installations.upsert(locationInput({ locationId: 'LOC4' }))
        assert.equal(await both.keys.rotate(), 3)
        assert.equal(await both.keys.rotate(), 0)
        const raw = await openRaw(dialect, database.url)
        try {
          const keyIds = await raw.query<{ key_id: string | null; access_token: string | null }>('select key_id, access_token from installations')
          assert.deepEqual(keyIds.map((k) => k.key_id).sort(), ['B', 'B', 'B', 'B', null])
          for (const k of keyIds) if (k.access_token) assert.ok(k.access_token.startsWith('v1.B.'))
        } finally {
          await raw.close()
        }
        const onlyB = await open({ keys: KEY_B })
        for (const r of [...rows, fresh]) {
          const read = await onlyB.installations.get(r.id)
          assert.deepEqual(read?.tokens, r.tokens)
          assert.equal(read?.version, r.version, 'rotation changes no token, so no version')
        }
      })

      test('a row encrypted with a key not configured → GHL_VAULT_KEY_MISSING', async () => {
        const stored = await vault.installations.upsert(locationInput())
        const onlyB = await open({ keys: KEY_B })
        const err = await rejectsWith(onlyB.installations.get(stored.id), 'GHL_VAULT_KEY_MISSING')
        assert.match(err.message, /key "A"/)
        await rejectsWith(onlyB.keys.rotate(), 'GHL_VAULT_KEY_MISSING')
        // Summaries need no key.
        assert.equal((await onlyB.installations.list()).length, 1)
      })

      test('no token reaches the log', async () => {
        let logged = ''
        const destination = new Writable({
          write(chunk: Buffer, _enc, done) {
            logged += chunk.toString()
            done()
          },
        })
        const logging = await createVault({
          databaseUrl: database.url,
          keys: [keyA!],
          clock,
          logger: createLogger({ level: 'trace', destination }),
        })
        extra.push(logging)
        const input = locationInput()
        const stored = await logging.installations.upsert(input)
        await logging.installations.updateTokens(stored.id, stored.version, { accessToken: 'AT-next-secret', refreshToken: 'RT-next-secret', expiresAt: new Date(2e12) })
        await logging.locks.withRefreshLock(stored.id, async () => {})
        await logging.installations.setStatus(stored.id, 'uninstalled', { wipeTokens: true })
        assert.ok(logged.length > 0, 'the vault should log something at trace level')
        for (const secret of [input.tokens.accessToken, input.tokens.refreshToken!, 'AT-next-secret', 'RT-next-secret']) {
          assert.equal(logged.includes(secret), false)
        }
        assert.equal(logged.includes('v1.A.'), false, 'no ciphertext in the log either')
      })
    })

    describe('refresh lock', () => {
      test('the row handed to a holder (PostgreSQL reads it with the lock) is what the previous holder stored', async () => {
        const { id } = await vault.installations.upsert(locationInput())
        let firstDone!: () => void
        const firstHolding = new Promise<void>((resolve) => (firstDone = resolve))
        const first = vault.locks.withRefreshLock(id, async (row) => {
          firstDone()
          const current = row ?? (await vault.installations.get(id))
          await sleep(30)
          return vault.installations.updateTokens(id, current!.version, { accessToken: 'AT-first', refreshToken: 'RT-first', expiresAt: new Date(2e12) })
        })
        await firstHolding
        // A second vault (another process's): it waits for the lock, then must see the first one's write.
        const other = await open()
        const seen = await other.locks.withRefreshLock(id, async (row) => row)
        const stored = await first
        assert.equal(stored?.version, 2)
        if (dialect === 'postgres') {
          assert.equal(seen?.version, 2)
          assert.deepEqual(seen?.tokens, { accessToken: 'AT-first', refreshToken: 'RT-first', expiresAt: new Date(2e12) })
          assert.deepEqual(seen, await vault.installations.get(id))
        } else {
          // SQLite's lease lock reads no row: the holder reads it itself.
          assert.equal(seen, undefined)
        }
      })

      test('50 concurrent holders in one process: never two at once, all run', async () => {
        const { id } = await vault.installations.upsert(locationInput())
        let inside = 0
        let most = 0
        let runs = 0
        await Promise.all(
          Array.from({ length: 50 }, () =>
            vault.locks.withRefreshLock(id, async () => {
              inside++
              most = Math.max(most, inside)
              await sleep(0)
              await vault.installations.getVersion(id)
              inside--
              runs++
            }),
          ),
        )
        assert.equal(most, 1)
        assert.equal(runs, 50)
      })

      test('waitMs expiry → GHL_LOCK_TIMEOUT, and fn never runs (same vault)', async () => {
        const { id } = await vault.installations.upsert(locationInput())
        let release!: () => void
        let entered!: () => void
        const isIn = new Promise<void>((r) => (entered = r))
        const held = vault.locks.withRefreshLock(id, () => {
          entered()
          return new Promise<void>((r) => (release = r))
        })
        await isIn
        let ran = false
        await rejectsWith(vault.locks.withRefreshLock(id, async () => void (ran = true), { waitMs: 50 }), 'GHL_LOCK_TIMEOUT')
        assert.equal(ran, false)
        release()
        await held
        assert.equal(await vault.locks.withRefreshLock(id, async () => 'free again', { waitMs: 1000 }), 'free again')
      })

      test('two vaults on one database exclude each other; timeout, then acquired after release', async () => {
        const { id } = await vault.installations.upsert(locationInput())
        const other = await open({ clock: systemClock })
        const mine = await open({ clock: systemClock })
        let release!: () => void
        let entered!: () => void
        const isIn = new Promise<void>((r) => (entered = r))
        const held = mine.locks.withRefreshLock(id, () => {
          entered()
          return new Promise<void>((r) => (release = r))
        })
        await isIn
        const err = await rejectsWith(other.locks.withRefreshLock(id, async () => 'no', { waitMs: 150 }), 'GHL_LOCK_TIMEOUT')
        assert.equal(err.status, 503)
        const later = other.locks.withRefreshLock(id, async () => 'yes', { waitMs: 5000 })
        await sleep(30)
        release()
        await held
        assert.equal(await later, 'yes')
      })

      test('fn throwing releases the lock and passes the error through', async () => {
        const { id } = await vault.installations.upsert(locationInput())
        await assert.rejects(vault.locks.withRefreshLock(id, async () => { throw new Error('boom') }), /boom/)
        const other = await open()
        assert.equal(await other.locks.withRefreshLock(id, async () => 1, { waitMs: 0 }), 1)
      })

      test('unknown installation → GHL_NOT_INSTALLED; bad waitMs → GHL_BAD_REQUEST', async () => {
        await rejectsWith(vault.locks.withRefreshLock('no-such-id', async () => 1), 'GHL_NOT_INSTALLED')
        const { id } = await vault.installations.upsert(locationInput())
        // The id reaches PostgreSQL as a literal (the lock is taken in one message): quoted, never SQL.
        const hostile = `${id}' or true; delete from installations; --`
        await rejectsWith(vault.locks.withRefreshLock(hostile, async () => 1), 'GHL_NOT_INSTALLED')
        await rejectsWith(vault.locks.withRefreshLock(hostile, async () => 1, { waitMs: 0 }), 'GHL_NOT_INSTALLED')
        assert.equal((await vault.installations.get(id))?.id, id)
        await rejectsWith(vault.locks.withRefreshLock(id, async () => 1, { waitMs: -1 }), 'GHL_BAD_REQUEST')
      })

      test('3 processes × 10 refreshes on one installation: no overlap, no lost compare-and-swap', async () => {
        const stored = await vault.installations.upsert(locationInput())
        const dir = tempDir()
        try {
          const marker = join(dir.path, 'holder')
          const outs = [0, 1, 2].map((i) => join(dir.path, `out-${i}.json`))
          const children = outs.map((out) => spawnChild(database.url, KEY_A, ['lock-loop', stored.id, '10', marker, out, '5000']))
          await Promise.all(children.map((c) => c.waitFor('ready')))
          for (const c of children) c.go()
          assert.deepEqual(await Promise.all(children.map((c) => c.exited)), [0, 0, 0])
          const results = outs.map((o) => JSON.parse(readFileSync(o, 'utf8')) as { overlaps: number; casFailures: number; intervals: [number, number][] })
          assert.deepEqual(results.map((r) => [r.overlaps, r.casFailures]), [[0, 0], [0, 0], [0, 0]])
          const intervals = results.flatMap((r) => r.intervals).sort((a, b) => a[0] - b[0])
          assert.equal(intervals.length, 30)
          // Instants come from three processes' clocks (performance.timeOrigin + now()), which can disagree
          // by microseconds; each holder stays inside for 2–6 ms, so a real overlap is far above 1 ms.
          for (let i = 1; i < intervals.length; i++) {
            assert.ok(intervals[i]![0] >= intervals[i - 1]![1] - 1, `holder ${i} entered before holder ${i - 1} left`)
          }
          assert.equal(existsSync(marker), false)
          assert.equal(await vault.installations.getVersion(stored.id), 31)
        } finally {
          dir.remove()
        }
      })

      test('a holder killed with SIGKILL frees the lock (PostgreSQL: at once; SQLite: when the lease ends)', async () => {
        const { id } = await vault.installations.upsert(locationInput())
        const leaseMs = 600
        const real = await open({ clock: systemClock, lockLeaseMs: leaseMs })
        const child = spawnChild(database.url, KEY_A, ['hold', id, String(leaseMs)])
        try {
          await child.waitFor('ready')
          child.go()
          await child.waitFor('held')
          // Alive, it keeps the lock — on SQLite for longer than one lease, since it renews.
          await rejectsWith(real.locks.withRefreshLock(id, async () => 1, { waitMs: dialect === 'sqlite' ? leaseMs * 1.5 : 100 }), 'GHL_LOCK_TIMEOUT')
          child.process.kill('SIGKILL')
          assert.equal(await child.exited, 'SIGKILL')
          assert.equal(await real.locks.withRefreshLock(id, async () => 'taken over', { waitMs: dialect === 'sqlite' ? leaseMs * 3 : 2000 }), 'taken over')
        } finally {
          child.process.kill('SIGKILL')
        }
      })
    })

    describe('OAuth states', () => {
      const STATE = 'state-0123456789abcdef0123456789abcdef'

      test('a state is consumed once; stored only as its hash', async () => {
        await vault.states.save(STATE, { returnTo: '/done' }, new Date(clock.now() + 60_000))
        const raw = await openRaw(dialect, database.url)
        try {
          const rows = await raw.query<{ state_hash: string; data: string }>('select state_hash, data from oauth_states')
          assert.equal(rows.length, 1)
          assert.notEqual(rows[0]!.state_hash, STATE)
          assert.match(rows[0]!.state_hash, /^[0-9a-f]{64}$/)
        } finally {
          await raw.close()
        }
        assert.deepEqual(await vault.states.consume(STATE), { returnTo: '/done' })
        assert.equal(await vault.states.consume(STATE), undefined)
      })

      test('an expired state is rejected (and gone)', async () => {
        await vault.states.save(STATE, {}, new Date(clock.now() + 1000))
        clock.advance(1000)
        assert.equal(await vault.states.consume(STATE), undefined)
        clock.set(Date.UTC(2026, 0, 1))
        assert.equal(await vault.states.consume(STATE), undefined)
      })

      test('an unknown state is rejected', async () => {
        await vault.states.save(STATE, {}, new Date(clock.now() + 60_000))
        assert.equal(await vault.states.consume('state-that-was-never-issued-000000'), undefined)
        assert.equal(await vault.states.consume(''), undefined)
        assert.deepEqual(await vault.states.consume(STATE), {})
      })

      test('20 concurrent consumes of one state: exactly one gets the data', async () => {
        await vault.states.save(STATE, { returnTo: '/x' }, new Date(clock.now() + 60_000))
        const others = await Promise.all([open(), open(), open()])
        const all = [vault, ...others]
        const results = await Promise.all(Array.from({ length: 20 }, (_, i) => all[i % all.length]!.states.consume(STATE)))
        assert.deepEqual(results.filter(Boolean), [{ returnTo: '/x' }])
      })

      test('saving purges expired states; a bad state or date is refused and nothing stored', async () => {
        await vault.states.save(STATE, {}, new Date(clock.now() + 1000))
        clock.advance(5000)
        await vault.states.save(`${STATE}-2`, {}, new Date(clock.now() + 1000))
        await rejectsWith(vault.states.save('short', {}, new Date(clock.now() + 1000)), 'GHL_BAD_REQUEST')
        await rejectsWith(vault.states.save(`${STATE}-3`, {}, new Date(Number.NaN)), 'GHL_BAD_REQUEST')
        const raw = await openRaw(dialect, database.url)
        try {
          assert.equal((await raw.query('select state_hash from oauth_states')).length, 1)
        } finally {
          await raw.close()
        }
      })
    })

    describe('webhooks', () => {
      const event = (webhookId: string, over: Partial<Parameters<Vault['webhooks']['record']>[0]> = {}) => ({
        webhookId,
        type: 'ContactCreate',
        payload: { type: 'ContactCreate', locationId: 'LOC1', id: 'c1', nested: { a: [1, 2] } },
        locationId: 'LOC1',
        companyId: 'COMPANY1',
        receivedAt: new Date(clock.now()),
        expiresAt: new Date(clock.now() + 3600_000),
        ...over,
      })

      test('a webhookId recorded twice is a duplicate; the record round-trips', async () => {
        assert.equal(await vault.webhooks.record(event('wh-1')), 'new')
        assert.equal(await vault.webhooks.record(event('wh-1', { type: 'Other' })), 'duplicate')
        const [rec] = await vault.webhooks.list({ status: 'pending' })
        assert.deepEqual(rec, { ...event('wh-1'), status: 'pending', attempts: 0, lastError: null })
      })

      test('10 concurrent records of one id: exactly one new', async () => {
        const others = await Promise.all([open(), open()])
        const all = [vault, ...others]
        const results = await Promise.all(Array.from({ length: 10 }, (_, i) => all[i % all.length]!.webhooks.record(event('wh-same'))))
        assert.equal(results.filter((r) => r === 'new').length, 1)
        assert.equal(results.filter((r) => r === 'duplicate').length, 9)
      })

      test('update, list by status and resource, purge expired', async () => {
        await vault.webhooks.record(event('wh-a'))
        clock.advance(1)
        await vault.webhooks.record(event('wh-b'))
        await vault.webhooks.record(event('wh-w', { type: 'INSTALL', status: 'waiting', locationId: 'LOC9', expiresAt: new Date(clock.now() + 10) }))
        const until = new Date(clock.now() + 60_000)
        assert.equal(await vault.webhooks.claim('wh-a', 'p1', until), true)
        assert.equal(await vault.webhooks.complete('wh-a', 'p1', { status: 'failed', lastError: 'forward failed: 502', incrementAttempts: true }), true)
        assert.equal(await vault.webhooks.claim('wh-a', 'p1', until), true)
        assert.equal(await vault.webhooks.complete('wh-a', 'p1', { status: 'failed', incrementAttempts: true }), true)
        const [failed] = await vault.webhooks.list({ status: 'failed' })
        assert.equal(failed?.attempts, 2)
        assert.equal(failed?.lastError, 'forward failed: 502')
        assert.deepEqual((await vault.webhooks.list({ status: 'pending' })).map((w) => w.webhookId), ['wh-b'])
        assert.deepEqual((await vault.webhooks.list({ status: 'waiting', locationId: 'LOC9' })).map((w) => w.webhookId), ['wh-w'])
        assert.deepEqual(await vault.webhooks.list({ status: 'waiting', locationId: 'LOC1' }), [])
        assert.deepEqual(await vault.webhooks.list({ status: 'waiting', companyId: 'COMPANY1', limit: 1 }).then((l) => l.length), 1)
        assert.equal(await vault.webhooks.claim('wh-a', 'p1', until), true)
        assert.equal(await vault.webhooks.complete('wh-a', 'p1', { status: 'processed', lastError: null }), true)
        assert.equal((await vault.webhooks.list({ status: 'processed' }))[0]?.lastError, null)
        assert.equal(await vault.webhooks.purgeExpired(new Date(clock.now() + 10)), 1)
        assert.equal(await vault.webhooks.purgeExpired(new Date(clock.now() + 10)), 0)
        // Once purged, the id is forgotten: a replay after expiry is "new" again.
        assert.equal(await vault.webhooks.record(event('wh-w')), 'new')
        assert.equal(await vault.webhooks.purgeExpired(new Date(clock.now() + 7200_000)), 3)
      })

      test('claim: one claimant wins; the claim holds until it passes; only its holder records the outcome, which clears it', async () => {
        await vault.webhooks.record(event('wh-c'))
        const others = await Promise.all([open(), open()])
        const all = [vault, ...others]
        const now = clock.now()
        const until = new Date(now + 120_000)
        const wins = await Promise.all(Array.from({ length: 12 }, (_, i) => all[i % all.length]!.webhooks.claim('wh-c', `owner-${i}`, until)))
        assert.equal(wins.filter(Boolean).length, 1)
        // Held: nobody (the holder included) claims again before it passes.
        assert.equal(await vault.webhooks.claim('wh-c', 'late', until, { now: new Date(now + 119_999) }), false)
        // Passed (a holder that died): it can be taken over.
        assert.equal(await vault.webhooks.claim('wh-c', 'taker', new Date(now + 300_000), { now: new Date(now + 120_001) }), true)
        // The first holder's claim lapsed: it can no longer record an outcome (the taker decides)…
        assert.equal(await vault.webhooks.complete('wh-c', 'owner-lapsed', { status: 'processed' }), false)
        assert.equal((await vault.webhooks.get('wh-c'))?.status, 'pending', 'a lapsed holder wrote nothing')
        // …the holder's outcome clears the claim: a failed event is claimable again at once…
        assert.equal(await vault.webhooks.complete('wh-c', 'taker', { status: 'failed', lastError: 'boom', incrementAttempts: true }), true)
        assert.equal(await vault.webhooks.claim('wh-c', 'retry-1', until, { attempts: 0 }), false, 'an attempt already made is not claimed')
        assert.equal(await vault.webhooks.claim('wh-c', 'retry-1', until, { attempts: 1 }), true)
        // …and a processed (or unknown) one never.
        assert.equal(await vault.webhooks.complete('wh-c', 'retry-1', { status: 'processed', lastError: null }), true)
        assert.equal(await vault.webhooks.claim('wh-c', 'after', until, { now: new Date(now + 10_000_000) }), false)
        assert.equal(await vault.webhooks.claim('wh-unknown', 'x', until), false)
        // Waiting events are claimed too (two instances must not both complete one INSTALL): one of several wins.
        await vault.webhooks.record(event('wh-wait', { status: 'waiting' }))
        const waitWins = await Promise.all(Array.from({ length: 6 }, (_, i) => all[i % all.length]!.webhooks.claim('wh-wait', `w-${i}`, until)))
        assert.equal(waitWins.filter(Boolean).length, 1)
        // A claim restricted to other statuses does not take it.
        assert.equal(await vault.webhooks.claim('wh-wait', 'y', until, { statuses: ['pending'], now: new Date(now + 10_000_000) }), false)
        const raw = await openRaw(dialect, database.url)
        try {
          const rows = await raw.query<{ claimed_by: string | null; claimed_until: unknown }>("select claimed_by, claimed_until from webhook_events where webhook_id = 'wh-c'")
          assert.deepEqual(rows.map((r) => ({ ...r, claimed_until: r.claimed_until ?? null })), [{ claimed_by: null, claimed_until: null }])
        } finally {
          await raw.close()
        }
      })

      test('claim: bad input is refused and changes nothing', async () => {
        await vault.webhooks.record(event('wh-b'))
        const until = new Date(clock.now() + 1000)
        await rejectsWith(vault.webhooks.claim('', 'o', until), 'GHL_BAD_REQUEST')
        await rejectsWith(vault.webhooks.claim('wh-b', '', until), 'GHL_BAD_REQUEST')
        await rejectsWith(vault.webhooks.claim('wh-b', 'o', new Date(Number.NaN)), 'GHL_BAD_REQUEST')
        await rejectsWith(vault.webhooks.claim('wh-b', 'o', until, { attempts: 0.5 }), 'GHL_BAD_REQUEST')
        assert.equal(await vault.webhooks.claim('wh-b', 'o', until), true, 'still unclaimed after the refusals')
      })

      test('a malformed event is refused and nothing stored', async () => {
        await rejectsWith(vault.webhooks.record(event('')), 'GHL_BAD_REQUEST')
        await rejectsWith(vault.webhooks.record(event('wh-x', { expiresAt: new Date(Number.NaN) })), 'GHL_BAD_REQUEST')
        await rejectsWith(vault.webhooks.record(event('wh-y', { payload: undefined })), 'GHL_BAD_REQUEST')
        await rejectsWith(vault.webhooks.complete('wh-x', 'o', { status: 'lost' as never }), 'GHL_BAD_REQUEST')
        for (const status of ['pending', 'processed', 'failed', 'waiting'] as const) assert.deepEqual(await vault.webhooks.list({ status }), [])
      })
    })

    describe('audit', () => {
      test('entries come back in order, filtered by installation', async () => {
        await vault.audit.append({ installationId: 'i1', action: 'installed', detail: { locationId: 'LOC1' } })
        clock.advance(5)
        await vault.audit.append({ installationId: null, action: 'keys.rotated', detail: { rotated: 3 } })
        await vault.audit.append({ installationId: 'i1', action: 'uninstalled' })
        const all = await vault.audit.list()
        assert.deepEqual(
          all.map(({ id, ...rest }) => (assert.equal(typeof id, 'number'), rest)),
          [
            { installationId: 'i1', action: 'installed', detail: { locationId: 'LOC1' }, at: new Date(Date.UTC(2026, 0, 1)) },
            { installationId: null, action: 'keys.rotated', detail: { rotated: 3 }, at: new Date(Date.UTC(2026, 0, 1) + 5) },
            { installationId: 'i1', action: 'uninstalled', detail: {}, at: new Date(Date.UTC(2026, 0, 1) + 5) },
          ],
        )
        assert.ok(all[0]!.id < all[1]!.id && all[1]!.id < all[2]!.id)
        assert.deepEqual((await vault.audit.list('i1')).map((a) => a.action), ['installed', 'uninstalled'])
        await rejectsWith(vault.audit.append({ installationId: 'i1', action: '' }), 'GHL_BAD_REQUEST')
        assert.equal((await vault.audit.list()).length, 3)
      })
    })
  })
}

describe('createVault options', () => {
  test('no keys, a short key or a bad lease → GHL_CONFIG_INVALID, nothing created', async () => {
    const dir = tempDir()
    try {
      const url = join(dir.path, 'sub', 'v.db')
      await rejectsWith(createVault({ databaseUrl: url, keys: [] }), 'GHL_CONFIG_INVALID')
      await rejectsWith(createVault({ databaseUrl: url, keys: [{ id: 'k', key: Buffer.alloc(16) }] }), 'GHL_CONFIG_INVALID')
      await rejectsWith(createVault({ databaseUrl: url, keys: [keyA!], lockLeaseMs: 0 }), 'GHL_CONFIG_INVALID')
      await rejectsWith(createVault({ databaseUrl: '', keys: [keyA!] }), 'GHL_CONFIG_INVALID')
      assert.equal(existsSync(url), false)
    } finally {
      dir.remove()
    }
  })

  test('SQLite: the parent folder is created and the file is in WAL mode', async () => {
    const dir = tempDir()
    try {
      const url = join(dir.path, 'a', 'b', 'v.db')
      const vault = await createVault({ databaseUrl: url, keys: [keyA!, keyB!] })
      await vault.close()
      assert.equal(existsSync(url), true)
      const raw = await openRaw('sqlite', url)
      try {
        assert.deepEqual(await raw.query('pragma journal_mode'), [{ journal_mode: 'wal' }])
      } finally {
        await raw.close()
      }
    } finally {
      dir.remove()
    }
  })
})
