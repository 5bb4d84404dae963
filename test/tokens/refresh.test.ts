/**
 * TokenService against the sandbox on every vault backend: hot-path caching, exactly-once refresh
 * under 200 concurrent callers, rotation-race recovery, dead grants (Reconnect, or reauthorization),
 * transient token-endpoint failures, and the background refresher.
 */
import { after, before, beforeEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { ManualClock } from '../../src/clock.js'
import { GhlError, NotInstalledError, ReauthorizationRequiredError } from '../../src/errors.js'
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js'
import type { AccessGrant, Target } from '../../src/tokens/types.js'
import type { TokenService } from '../../src/tokens/token-service.js'
import type { Installation, Vault } from '../../src/vault/types.js'
import { DIALECTS, dialectSkipReason, freshDatabase, testKey } from '../helpers/services.js'
import { createHarness, wrapVault, collect, type Harness } from './harness.js'

const DAY_MS = 86_399_000

/** getAccessToken, call the API, and on 401 report it and call again: what the API client does. */
async function callThrough(h: Harness, tokens: TokenService, target: Target & { kind: 'location' }): Promise<number> {
  const grant = await tokens.getAccessToken(target)
  const status = await h.callApi(grant.accessToken, target.id)
  if (status !== 401) return status
  const fresh = await tokens.onUnauthorized(target, grant)
  return h.callApi(fresh.accessToken, target.id)
}

for (const dialect of DIALECTS) {
  describe(`TokenService refresh (${dialect})`, { skip: await dialectSkipReason(dialect) }, () => {
    let sandbox: Sandbox
    let h: Harness
    let clock: ManualClock
    let inst: Installation
    let target: { kind: 'location'; id: string }

    // One sandbox and one database per backend; each test re-installs (an upsert of the same row)
    // with a fresh TokenService and clock, so tests do not pay for creating databases.
    let db: { url: string; cleanup: () => Promise<void> }
    const key = testKey()
    before(async () => {
      sandbox = await startSandbox({ port: 0, reconnect: 'allow', rateLimit: { burstMax: 1_000_000, burstWindowMs: 10_000, dailyMax: 10_000_000 } })
      db = await freshDatabase(dialect)
    })
    after(async () => {
      await h?.cleanup()
      await sandbox.close()
      await db.cleanup()
    })

    beforeEach(async (t) => {
      if (h) await h.cleanup()
      await fetch(`${sandbox.url}/_sandbox/reset`, { method: 'POST' })
      clock = new ManualClock(Date.now())
      h = await createHarness(dialect, { sharedSandbox: sandbox, databaseUrl: db.url, key, clock, env: { GHL_TOKEN_TIMEOUT_MS: '1000' } })
      inst = await h.installLocation()
      target = { kind: 'location', id: inst.locationId! }
      void t
    })

    test('hot path: a fresh token is served from memory (no vault call after the first)', async () => {
      let calls = 0
      const count = <T extends object>(role: T): T =>
        Object.fromEntries(
          Object.entries(role).map(([name, fn]) => [name, (...args: unknown[]) => (calls++, (fn as (...a: unknown[]) => unknown)(...args))]),
        ) as T
      const counting = wrapVault(h.vault, {
        installations: count(h.vault.installations),
        locks: { withRefreshLock: (id, fn, o) => (calls++, h.vault.locks.withRefreshLock(id, fn, o)) },
        states: count(h.vault.states),
        audit: count(h.vault.audit),
        flags: count(h.vault.flags),
      })
      const svc = h.newTokenService({ vault: counting })
      const g1 = await svc.getAccessToken(target)
      const after1 = calls
      assert.ok(after1 >= 1)
      for (let i = 0; i < 100; i++) assert.equal((await svc.getAccessToken(target)).accessToken, g1.accessToken)
      assert.equal(calls, after1, 'no vault call on the hot path')
      assert.equal(g1.installationId, inst.id)
      assert.equal(g1.resourceId, inst.locationId)
      assert.equal(g1.version, inst.version)
      assert.equal(await h.callApi(g1.accessToken, target.id), 200)
    })

    test('200 concurrent calls with an expired token (clock) → exactly one refresh, all succeed', async () => {
      await h.tokens.getAccessToken(target)
      clock.advance(DAY_MS) // our cache and the stored row now say "expired"
      const refreshed = collect(h.tokens, 'refreshed')
      const statuses = await Promise.all(Array.from({ length: 200 }, () => callThrough(h, h.tokens, target)))
      assert.deepEqual(new Set(statuses), new Set([200]))
      const stats = await h.stats()
      assert.deepEqual(stats.token.refresh_token, { ok: 1, error: 0 })
      assert.equal(refreshed.length, 1)
      const row = await h.vault.installations.get(inst.id)
      assert.equal(row!.version, inst.version + 1)
      assert.notEqual(row!.tokens!.refreshToken, inst.tokens!.refreshToken)
    })

    test('200 concurrent calls when HighLevel expired the token (401 → onUnauthorized) → exactly one refresh', async () => {
      const g = await h.tokens.getAccessToken(target)
      await h.control('POST', '/_sandbox/tokens/expire', { token: g.accessToken })
      const statuses = await Promise.all(Array.from({ length: 200 }, () => callThrough(h, h.tokens, target)))
      assert.deepEqual(new Set(statuses), new Set([200]))
      assert.deepEqual((await h.stats()).token.refresh_token, { ok: 1, error: 0 })
      // A late report of the old grant uses the stored newer version without refreshing again.
      const late = await h.tokens.onUnauthorized(target, g)
      assert.ok(late.version > g.version)
      assert.deepEqual((await h.stats()).token.refresh_token, { ok: 1, error: 0 })
    })

    test('onUnauthorized on another worker: the newer stored version is used without refreshing', async () => {
      const worker = h.newTokenService()
      const old = await worker.getAccessToken(target)
      await h.tokens.refreshNow(inst.id)
      const fresh = await worker.onUnauthorized(target, old)
      assert.equal(fresh.version, old.version + 1)
      assert.equal(await h.callApi(fresh.accessToken, target.id), 200)
      assert.deepEqual((await h.stats()).token.refresh_token, { ok: 1, error: 0 })
    })

    test('rotation race: a worker that sends the old refresh token recovers by re-reading, installation stays active', async () => {
      // The worker's vault lets it read the row (old refresh token) and then, before it calls
      // HighLevel, the main service rotates the token — as if the worker's lock had lapsed.
      let raced = false
      let inLock = false
      const racing = wrapVault(h.vault, {
        locks: {
          withRefreshLock: (async (_id: string, fn: () => Promise<unknown>) => {
            inLock = true
            try {
              return await fn()
            } finally {
              inLock = false
            }
          }) as Vault['locks']['withRefreshLock'],
        },
        installations: {
          get: async (id: string) => {
            const row = await h.vault.installations.get(id)
            if (inLock && !raced) {
              raced = true
              await h.tokens.refreshNow(id)
            }
            return row
          },
        },
      })
      const worker = h.newTokenService({ vault: racing })
      const reconnected = collect(worker, 'reconnected')
      const before = await h.vault.installations.get(inst.id)
      const g = await worker.refreshNow(inst.id)
      const stats = await h.stats()
      assert.deepEqual(stats.token.refresh_token, { ok: 1, error: 1 }, 'one rotation, one invalid_grant')
      assert.equal(stats.reconnect.ok, 0, 'no Reconnect needed')
      assert.equal(reconnected.length, 0)
      assert.equal(g.status, 'active')
      assert.equal(g.version, before!.version + 1)
      const grant = await worker.getAccessToken(target)
      assert.equal(await h.callApi(grant.accessToken, target.id), 200)
    })

    test('dead grant (refresh token revoked at HighLevel) → recovered through Reconnect', async () => {
      const row = await h.vault.installations.get(inst.id)
      await h.control('POST', '/_sandbox/tokens/revoke', { token: row!.tokens!.refreshToken })
      const reconnected = collect(h.tokens, 'reconnected')
      clock.advance(DAY_MS)
      const grant = await h.tokens.getAccessToken(target)
      assert.equal(await h.callApi(grant.accessToken, target.id), 200)
      const stats = await h.stats()
      assert.equal(stats.reconnect.ok, 1)
      assert.deepEqual(stats.token.refresh_token, { ok: 0, error: 1 })
      assert.deepEqual(reconnected, [{ installationId: inst.id }])
      const after = await h.vault.installations.get(inst.id)
      assert.equal(after!.status, 'active')
      assert.notEqual(after!.tokens!.refreshToken, row!.tokens!.refreshToken)
      // The new refresh token works.
      await h.tokens.refreshNow(inst.id)
      assert.equal((await h.stats()).token.refresh_token.ok, 1)
      assert.ok((await h.vault.audit.list(inst.id)).some((a) => a.action === 'reconnected'))
    })

    test('dead grant and Reconnect refused → needs_reauthorization (row kept), event, ReauthorizationRequiredError', async () => {
      const row = await h.vault.installations.get(inst.id)
      await h.control('POST', '/_sandbox/tokens/revoke', { token: row!.tokens!.refreshToken })
      await h.control('PUT', '/_sandbox/settings', { reconnect: 'refuse' })
      try {
        const events = collect(h.tokens, 'reauthorizationRequired')
        clock.advance(DAY_MS)
        await assert.rejects(h.tokens.getAccessToken(target), (e: unknown) => {
          assert.ok(e instanceof ReauthorizationRequiredError)
          assert.equal(e.installationId, inst.id)
          assert.equal(e.status, 401)
          assert.match(e.message, /must authorize the app again — re-authorization link: http:\/\/\S+\/oauth\/reauthorize\//)
          assert.equal(e.reauthorizationUrl, `${h.config.publicUrl}/oauth/reauthorize/${inst.id}`)
          assert.ok(!e.message.includes(row!.tokens!.refreshToken!))
          return true
        })
        assert.equal(events.length, 1)
        assert.equal(events[0]!.installationId, inst.id)
        assert.match(events[0]!.reason, /invalid_grant/)
        assert.equal(events[0]!.reauthorizationUrl, `${h.config.publicUrl}/oauth/reauthorize/${inst.id}`)
        const after = await h.vault.installations.get(inst.id)
        assert.equal(after!.status, 'needs_reauthorization')
        assert.match(after!.statusReason ?? '', /Reconnect refused/)
        assert.equal((await h.vault.installations.list()).length, 1, 'the row is kept')
        // Later calls fail at once without calling HighLevel.
        const before = await h.stats()
        await assert.rejects(h.tokens.getAccessToken(target), ReauthorizationRequiredError)
        await assert.rejects(h.newTokenService().getAccessToken(target), ReauthorizationRequiredError)
        const now = await h.stats()
        assert.deepEqual(now.token, before.token)
        assert.deepEqual(now.reconnect, before.reconnect)
      } finally {
        await h.control('PUT', '/_sandbox/settings', { reconnect: 'allow' })
      }
    })

    test('token endpoint 500 twice → retried, refresh succeeds', async () => {
      await h.control('POST', '/_sandbox/faults', { endpoint: 'token', kind: 'error500', count: 2 })
      const s = await h.tokens.refreshNow(inst.id)
      assert.equal(s.version, inst.version + 1)
      const stats = await h.stats()
      assert.equal(stats.faults.token, 2)
      assert.equal(stats.token.refresh_token.ok, 1)
    })

    test('token endpoint 500 beyond the retries → error thrown, row unchanged, old refresh token still works', async () => {
      await h.control('POST', '/_sandbox/faults', { endpoint: 'token', kind: 'error500', count: 3 })
      const before = await h.vault.installations.get(inst.id)
      await assert.rejects(h.tokens.refreshNow(inst.id), (e: unknown) => e instanceof GhlError && e.code === 'GHL_UPSTREAM_UNAVAILABLE')
      const row = await h.vault.installations.get(inst.id)
      assert.equal(row!.version, before!.version)
      assert.equal(row!.status, 'active')
      assert.equal(row!.tokens!.refreshToken, before!.tokens!.refreshToken)
      const s = await h.tokens.refreshNow(inst.id)
      assert.equal(s.version, before!.version + 1)
      assert.deepEqual((await h.stats()).token.refresh_token, { ok: 1, error: 3 })
    })

    test('token endpoint hangs → GHL_TIMEOUT after retries, installation not marked dead, refresh works after', async () => {
      await h.control('POST', '/_sandbox/faults', { endpoint: 'token', kind: 'hang', count: 3, hangMs: 3000 })
      await assert.rejects(h.tokens.refreshNow(inst.id), (e: unknown) => e instanceof GhlError && e.code === 'GHL_TIMEOUT')
      assert.equal((await h.vault.installations.get(inst.id))!.status, 'active')
      const s = await h.tokens.refreshNow(inst.id)
      assert.equal(s.version, inst.version + 1)
    })

    test('a caller that aborts stops waiting; the shared refresh still completes and is stored', async () => {
      await h.control('POST', '/_sandbox/faults', { endpoint: 'token', kind: 'hang', count: 1, hangMs: 150 })
      clock.advance(DAY_MS)
      const ac = new AbortController()
      const waiting = h.tokens.getAccessToken(target, { signal: ac.signal })
      const patient = h.tokens.getAccessToken(target)
      setTimeout(() => ac.abort(), 20)
      await assert.rejects(waiting, (e: unknown) => e instanceof GhlError && e.code === 'GHL_ABORTED')
      const g = await patient
      assert.equal(g.version, inst.version + 1)
      assert.equal(await h.vault.installations.getVersion(inst.id), inst.version + 1)
      assert.deepEqual((await h.stats()).token.refresh_token, { ok: 1, error: 1 })
    })

    test('an expiring token whose refresh fails transiently is still served until it expires', async () => {
      await h.tokens.getAccessToken(target)
      clock.advance(DAY_MS - 60_000) // inside the 5-minute margin, not expired
      await h.control('POST', '/_sandbox/faults', { endpoint: 'token', kind: 'error500', count: 3 })
      const g = await h.tokens.getAccessToken(target)
      assert.equal(g.version, inst.version)
      assert.equal(await h.callApi(g.accessToken, target.id), 200)
    })

    test('not installed, uninstalled, company without install → NotInstalledError', async () => {
      await assert.rejects(h.tokens.getAccessToken({ kind: 'location', id: 'no-such-location' }), NotInstalledError)
      await assert.rejects(h.tokens.getAccessToken({ kind: 'company', id: 'no-such-company' }), NotInstalledError)
      await h.tokens.getAccessToken(target)
      await h.vault.installations.setStatus(inst.id, 'uninstalled', { wipeTokens: true })
      h.tokens.invalidate(inst.id)
      await assert.rejects(h.tokens.getAccessToken(target), (e: unknown) => e instanceof NotInstalledError && e.status === 404)
    })

    test('static tokens are returned as is', async () => {
      const g: AccessGrant = await h.tokens.getAccessToken({ kind: 'static', token: 'pit-123', resourceId: 'L' })
      assert.equal(g.accessToken, 'pit-123')
      assert.equal(g.installationId, null)
    })

    test('background refresher on two instances at once refreshes a due installation exactly once', async () => {
      const other = h.newTokenService()
      clock.advance(DAY_MS - 60_000) // within the margin
      const a = h.tokens.startBackgroundRefresher({ intervalMs: 60_000, concurrency: 2 })
      const b = other.startBackgroundRefresher({ intervalMs: 60_000, concurrency: 2 })
      const [na, nb] = await Promise.all([a.runOnce(), b.runOnce()])
      await Promise.all([a.stop(), b.stop()])
      assert.equal(na + nb, 1)
      assert.deepEqual((await h.stats()).token.refresh_token, { ok: 1, error: 0 })
      // Nothing due any more.
      const c = h.tokens.startBackgroundRefresher({ intervalMs: 60_000 })
      assert.equal(await c.runOnce(), 0)
      await c.stop()
    })

    test('background refresher refreshes idle refresh tokens', async () => {
      const r = h.tokens.startBackgroundRefresher({ intervalMs: 60_000, idleRefreshAfterMs: 1000 })
      // The vault stamps issue times with the system clock: move ours past the stamp + the idle time.
      clock.advance(Math.max(0, inst.refreshTokenIssuedAt!.getTime() - clock.now()) + 2000)
      assert.equal(await r.runOnce(), 1)
      await r.stop()
    })

    test('refreshes failing transiently in a row are counted and reported before the grant is lost; a success clears them', async () => {
      const failing = collect(h.tokens, 'refreshFailing')
      for (let i = 1; i <= h.config.refreshFailureWarn; i++) {
        // Every attempt of the refresh (the retries included) meets a 500.
        await h.control('POST', '/_sandbox/faults', { endpoint: 'token', kind: 'error500', count: 3 })
        await assert.rejects(h.tokens.refreshNow(inst.id), (e: unknown) => e instanceof GhlError && e.code === 'GHL_UPSTREAM_UNAVAILABLE')
        const row = (await h.vault.installations.get(inst.id))!
        assert.equal(row.refreshFailures, i)
        assert.match(row.lastError ?? '', /GHL_UPSTREAM_UNAVAILABLE/)
        assert.equal(row.tokens!.refreshToken, inst.tokens!.refreshToken, 'the grant is untouched')
      }
      assert.deepEqual(
        failing.map((f) => [f.installationId, f.failures]),
        [[inst.id, h.config.refreshFailureWarn]],
        'reported once the count reaches GHL_REFRESH_FAILURE_WARN',
      )
      assert.match(failing[0]!.lastError, /GHL_UPSTREAM_UNAVAILABLE: HighLevel answered the token request with 500/)
      // HighLevel answers again: the same refresh token works, and the count is cleared.
      await h.tokens.refreshNow(inst.id)
      const healed = (await h.vault.installations.get(inst.id))!
      assert.equal(healed.refreshFailures, 0)
      assert.equal(healed.lastError, null)
      assert.equal(healed.status, 'active')
    })

    test('no token in logs, errors or events', async () => {
      const lines: string[] = []
      const { createLogger } = await import('../../src/logger.js')
      const logger = createLogger({ level: 'debug', destination: { write: (s: string) => void lines.push(s) } })
      const svc = h.newTokenService({ logger })
      const events: unknown[] = []
      for (const e of ['refreshed', 'reconnected', 'minted', 'reauthorizationRequired', 'refreshFailing', 'suspended'] as const) svc.on(e, (p) => events.push(p))
      const row = await h.vault.installations.get(inst.id)
      await h.control('POST', '/_sandbox/faults', { endpoint: 'token', kind: 'error500', count: 1 })
      await svc.refreshNow(inst.id)
      await h.control('POST', '/_sandbox/tokens/revoke', { token: (await h.vault.installations.get(inst.id))!.tokens!.refreshToken })
      await svc.refreshNow(inst.id)
      const after = await h.vault.installations.get(inst.id)
      const secrets = [row!.tokens!.accessToken, row!.tokens!.refreshToken!, after!.tokens!.accessToken, after!.tokens!.refreshToken!]
      const text = lines.join('\n') + JSON.stringify(events)
      assert.ok(lines.length > 0 && events.length === 2)
      for (const s of secrets) assert.ok(!text.includes(s), 'a token leaked into logs or events')
    })
  })
}
