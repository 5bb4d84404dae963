/**
 * A rotated pair the database would not take. HighLevel rotates refresh tokens: once it has answered
 * a refresh, the token it was given is dead and the pair it answered is the grant. When the database
 * stops answering for longer than the store's own retries, the pair is kept in memory and stored as
 * soon as the database answers — never thrown away, never refreshed over with the dead token. These
 * tests make the vault's token store fail on demand (a real database behind it) and count, at the
 * sandbox, the refreshes HighLevel answered and refused; Reconnect is removed (the sandbox's default),
 * so a lost grant would show as a row needing re-consent.
 */
import { after, afterEach, before, beforeEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { GhlError, ReauthorizationRequiredError } from '../../src/errors.js'
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js'
import { RECONNECT_FLAG } from '../../src/tokens/index.js'
import type { TokenService } from '../../src/tokens/token-service.js'
import type { Installation, Vault } from '../../src/vault/types.js'
import { DIALECTS, dialectSkipReason } from '../helpers/services.js'
import { collect, createHarness, wrapVault, type Harness } from './harness.js'

/** Polls `check` until it holds (every 50 ms, at most `ms`); the last value either way. */
async function until<T>(check: () => Promise<T>, holds: (v: T) => boolean, ms = 15_000): Promise<T> {
  const end = Date.now() + ms
  let v = await check()
  while (!holds(v) && Date.now() < end) {
    await sleep(50)
    v = await check()
  }
  return v
}

for (const dialect of DIALECTS) {
  describe(`a rotated pair the database would not take (${dialect})`, { skip: await dialectSkipReason(dialect) }, () => {
    let sandbox: Sandbox
    let h: Harness
    /** While true, the wrapped vault's token store fails as a silent database does. */
    let down = false
    let failedStores = 0
    /** Refresh-lock runs of the service under test that ended (the background store of a kept pair is one). */
    let lockRunsDone = 0
    let svc: TokenService
    let inst: Installation
    let locationIndex = 0

    before(async () => {
      sandbox = await startSandbox({
        port: 0,
        rateLimit: { burstMax: 1_000_000, burstWindowMs: 10_000, dailyMax: 10_000_000 },
        seed: { companies: [{ name: 'Agency', locations: Array.from({ length: 8 }, (_, i) => ({ name: `Location ${i + 1}` })) }], contactsPerLocation: 0 },
      })
      // A short store bound: three statement timeouts of 200 ms, or the refresh budget (3 × 300 ms + 2 × 100 ms).
      h = await createHarness(dialect, { sharedSandbox: sandbox, env: { GHL_DB_STATEMENT_TIMEOUT_MS: '200', GHL_TOKEN_TIMEOUT_MS: '300' } })
    })
    after(async () => {
      await h.cleanup()
      await sandbox.close()
    })
    beforeEach(async () => {
      down = false
      failedStores = 0
      const failing: Vault = wrapVault(h.vault, {
        locks: {
          withRefreshLock: <T>(id: string, fn: (row?: Installation) => Promise<T>, options?: Parameters<Vault['locks']['withRefreshLock']>[2]) =>
            h.vault.locks.withRefreshLock(id, fn, options).finally(() => {
              lockRunsDone++
            }),
        },
        installations: {
          updateTokens: async (...args: Parameters<Vault['installations']['updateTokens']>) => {
            if (down) {
              failedStores++
              throw new GhlError('GHL_DATABASE_UNAVAILABLE', 'The database did not answer within 200 ms')
            }
            return h.vault.installations.updateTokens(...args)
          },
        },
      })
      svc = h.newTokenService({ vault: failing })
      inst = await h.installLocation(sandbox.companies[0]!.locations[locationIndex++]!.locationId)
    })
    afterEach(async () => {
      await svc.close()
    })

    const refreshes = async () => (await h.stats()).token.refresh_token

    test('kept, then stored in the background once the database answers; the stored refresh token works', async () => {
      const before = await refreshes()
      const refreshed = collect(svc, 'refreshed')
      down = true
      await assert.rejects(svc.refreshNow(inst.id), (err) => err instanceof GhlError && err.code === 'GHL_DATABASE_UNAVAILABLE')
      assert.ok(failedStores >= 2, `the store was retried before the pair was kept (${failedStores} attempts)`)
      assert.equal((await refreshes()).ok - before.ok, 1, 'HighLevel answered one refresh')
      const unchanged = (await h.vault.installations.get(inst.id))!
      assert.equal(unchanged.version, inst.version, 'nothing stored while the database is down')
      assert.deepEqual(refreshed, [])

      // The database answers again: the kept pair is stored without a call to HighLevel.
      down = false
      const row = await until(() => h.vault.installations.get(inst.id), (r) => r!.version > inst.version)
      assert.equal(row!.version, inst.version + 1, 'the kept pair was stored')
      assert.equal(row!.status, 'active')
      assert.notEqual(row!.tokens!.refreshToken, inst.tokens!.refreshToken)
      assert.deepEqual(refreshed, [{ installationId: inst.id, version: row!.version }])
      assert.equal((await refreshes()).ok - before.ok, 1, 'storing it asked HighLevel nothing')
      const audit = (await h.vault.audit.list(inst.id)).filter((e) => e.action === 'refreshed')
      assert.deepEqual(audit.map((e) => e.detail), [{ kept: true, version: row!.version }])

      // The stored refresh token is HighLevel's live one: the next refresh succeeds (with the pair lost,
      // it would be refused — invalid_grant — and the row would need a user: Reconnect is removed).
      const next = await svc.refreshNow(inst.id)
      assert.equal(next.status, 'active')
      assert.equal(next.version, row!.version + 1)
      const after = await refreshes()
      assert.equal(after.ok - before.ok, 2)
      assert.equal(after.error - before.error, 0, 'HighLevel refused nothing')
    })

    test("this process's next refresh stores the kept pair instead of refreshing with the used-up token", async () => {
      const before = await refreshes()
      down = true
      await assert.rejects(svc.refreshNow(inst.id), (err) => err instanceof GhlError && err.code === 'GHL_DATABASE_UNAVAILABLE')
      down = false
      // At once, before the background store's first attempt (1 s later): a caller with the token the
      // row holds (stale) asks for a fresh one.
      const stale = { accessToken: inst.tokens!.accessToken, installationId: inst.id, version: inst.version, expiresAt: inst.tokens!.expiresAt.getTime(), resourceId: inst.locationId!, scopes: inst.scopes, userType: inst.userType }
      const grant = await svc.onUnauthorized({ kind: 'location', id: inst.locationId! }, stale)
      const row = (await h.vault.installations.get(inst.id))!
      assert.equal(row.version, inst.version + 1)
      assert.equal(grant.version, row.version)
      assert.equal(grant.accessToken, row.tokens!.accessToken, 'the caller got the kept access token')
      const after = await refreshes()
      assert.equal(after.ok - before.ok, 1, 'one refresh at HighLevel: the kept pair was stored, not refreshed over')
      assert.equal(after.error - before.error, 0)
      assert.equal(await h.callApi(grant.accessToken, inst.locationId!), 200)
    })

    test('another process refreshing with the used-up token marks the row for re-consent; the kept pair still wins', async () => {
      const before = await refreshes()
      down = true
      await assert.rejects(svc.refreshNow(inst.id), (err) => err instanceof GhlError && err.code === 'GHL_DATABASE_UNAVAILABLE')
      // Another process (its own vault connection answers): the row still holds the used-up refresh token.
      const other = h.newTokenService()
      await assert.rejects(other.refreshNow(inst.id), (err) => err instanceof ReauthorizationRequiredError)
      const marked = (await h.vault.installations.get(inst.id))!
      assert.equal(marked.status, 'needs_reauthorization', 'positive control: without the kept pair, this grant would be lost')
      assert.equal((await refreshes()).error - before.error, 1, 'HighLevel refused the used-up token')

      const reactivated = collect(svc, 'reactivated')
      down = false
      const row = await until(() => h.vault.installations.get(inst.id), (r) => r!.status === 'active')
      assert.equal(row!.status, 'active', 'the kept pair made the row active again')
      assert.equal(row!.statusReason, null)
      assert.equal(row!.version, marked.version + 1)
      assert.deepEqual(reactivated, [{ installationId: inst.id }])
      assert.ok((await h.vault.audit.list(inst.id)).some((e) => e.action === 'reactivated'))
      // Every process sees it: the other one's call works now, with the kept pair's token.
      const grant = await other.getAccessToken({ kind: 'location', id: inst.locationId! })
      assert.equal(grant.accessToken, row!.tokens!.accessToken)
      assert.equal(await h.callApi(grant.accessToken, inst.locationId!), 200)
      const next = await other.refreshNow(inst.id)
      assert.equal(next.status, 'active')
      const after = await refreshes()
      assert.equal(after.ok - before.ok, 2)
      assert.equal(after.error - before.error, 1)
    })

    test('a newer grant stored meanwhile (a re-install) wins: the kept pair is dropped', async () => {
      down = true
      await assert.rejects(svc.refreshNow(inst.id), (err) => err instanceof GhlError && err.code === 'GHL_DATABASE_UNAVAILABLE')
      const reinstalled = await h.installLocation(inst.locationId!)
      assert.equal(reinstalled.id, inst.id)
      const runs = lockRunsDone
      down = false
      const refreshed = collect(svc, 'refreshed')
      // The kept pair's background store runs 1 s after it was kept and must drop it: a store that took
      // kept pairs whatever the row holds would overwrite the re-install's grant (checked below).
      // Positive control: that store did run (a refresh-lock run of this service ended).
      assert.ok((await until(async () => lockRunsDone, (n) => n > runs)) > runs, 'the background store ran')
      const row = (await h.vault.installations.get(inst.id))!
      assert.equal(row.version, reinstalled.version)
      assert.deepEqual(row.tokens, reinstalled.tokens)
      assert.deepEqual(refreshed, [])
      assert.equal(await svc.drain(1000), 0, 'nothing kept any more')
    })

    test('an uninstall meanwhile wins: the kept pair is dropped, the row stays uninstalled', async () => {
      // The pair kept here comes from Reconnect for a row with no refresh token (so the row, once wiped
      // by the uninstall, "holds" the same no-token the pair replaced: it must still not be revived).
      const row0 = (await h.vault.installations.get(inst.id))!
      assert.ok(await h.vault.installations.updateTokens(inst.id, row0.version, { accessToken: row0.tokens!.accessToken, refreshToken: null, expiresAt: new Date(Date.now() - 1000) }))
      await h.control('PUT', '/_sandbox/settings', { reconnect: 'allow' })
      // An earlier test may have had HighLevel say Reconnect is removed, which every instance remembers.
      await h.vault.flags.delete(RECONNECT_FLAG)
      down = true
      try {
        await assert.rejects(svc.refreshNow(inst.id), (err) => err instanceof GhlError && err.code === 'GHL_DATABASE_UNAVAILABLE')
      } finally {
        await h.control('PUT', '/_sandbox/settings', { reconnect: 'removed' })
      }
      assert.equal((await h.stats()).reconnect.ok >= 1, true, 'the kept pair came from Reconnect')
      const uninstalled = await h.vault.installations.setStatus(inst.id, 'uninstalled', { wipeTokens: true })
      assert.equal(uninstalled?.status, 'uninstalled')
      const runs = lockRunsDone
      down = false
      const refreshed = collect(svc, 'refreshed')
      // The background store runs 1 s after the pair was kept and must drop it (positive control: it ran).
      assert.ok((await until(async () => lockRunsDone, (n) => n > runs)) > runs, 'the background store ran')
      const row = (await h.vault.installations.get(inst.id))!
      assert.equal(row.status, 'uninstalled')
      assert.equal(row.tokens, null)
      assert.deepEqual(refreshed, [])
      assert.equal(await svc.drain(1000), 0, 'nothing kept any more')
    })

    test('at shutdown, a pair still not stored is tried once more, then reported lost', async () => {
      down = true
      await assert.rejects(svc.refreshNow(inst.id), (err) => err instanceof GhlError && err.code === 'GHL_DATABASE_UNAVAILABLE')
      const attempts = failedStores
      assert.equal(await svc.drain(2000), 1, 'one grant could not be stored')
      assert.ok(failedStores > attempts, 'the shutdown tried to store it once more')
      down = false
      assert.equal((await h.vault.installations.get(inst.id))!.version, inst.version)
    })
  })
}
