/**
 * TokenService under the races and outages found in review: Redis unreachable at start (no crash, tokens
 * still served), a location's own OAuth install landing while an agency mint is in flight (the OAuth row
 * and its refresh token survive), and a re-install landing while Reconnect is being refused (the new
 * grant is not marked dead).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { setImmediate as tick } from 'node:timers/promises'
import type { AccessGrant } from '../../src/tokens/types.js'
import { Redis } from 'ioredis'
import { GhlError } from '../../src/errors.js'
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js'
import type { Installation, Vault } from '../../src/vault/types.js'
import { DIALECTS, dialectSkipReason } from '../helpers/services.js'
import { createHarness, wrapVault, collect, type Harness } from './harness.js'

describe('Redis unreachable at start (sqlite)', () => {
  let h: Harness
  let redis: Redis
  const unhandled: unknown[] = []
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason)
  }

  before(async () => {
    process.on('unhandledRejection', onUnhandled)
    // Port 1: nothing listens there. No retries, so the subscription fails quickly.
    redis = new Redis('redis://127.0.0.1:1', { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null })
    redis.on('error', () => {})
    h = await createHarness('sqlite', { redis })
  })
  after(async () => {
    process.off('unhandledRejection', onUnhandled)
    await h.cleanup()
    redis.disconnect()
  })

  test('no unhandled rejection; ready() rejects with GHL_REDIS_UNAVAILABLE (no secret); tokens are still served and refreshed', async () => {
    const inst = await h.installLocation()
    const svc = h.newTokenService()
    await assert.rejects(svc.ready(), (e: unknown) => {
      assert.ok(e instanceof GhlError)
      assert.equal(e.code, 'GHL_REDIS_UNAVAILABLE')
      assert.match(e.message, /Redis invalidation subscription failed/)
      assert.ok(!e.message.includes(h.config.clientSecret))
      return true
    })
    // The harness's own service was never awaited: its failure must be handled too.
    for (let i = 0; i < 5; i++) await tick()
    const target = { kind: 'location' as const, id: inst.locationId! }
    const g = await h.tokens.getAccessToken(target)
    assert.equal(g.accessToken, inst.tokens!.accessToken)
    assert.equal(await h.callApi(g.accessToken, target.id), 200)
    // A refresh publishes an invalidation (which fails) and still succeeds.
    const refreshed = await svc.refreshNow(inst.id)
    assert.ok(refreshed.version > inst.version)
    const fresh = await svc.getAccessToken(target)
    assert.equal(fresh.version, refreshed.version)
    assert.equal(await h.callApi(fresh.accessToken, target.id), 200)
    // The version check on 401 still works without invalidation messages.
    const late = await h.tokens.onUnauthorized(target, g)
    assert.equal(late.version, refreshed.version)
    for (let i = 0; i < 5; i++) await tick()
    assert.deepEqual(unhandled, [])
  })
})

for (const dialect of DIALECTS) {
  describe(`token races (${dialect})`, { skip: await dialectSkipReason(dialect) }, () => {
    let sandbox: Sandbox
    let h: Harness

    before(async () => {
      sandbox = await startSandbox({ port: 0, reconnect: 'allow', rateLimit: { burstMax: 1_000_000, burstWindowMs: 10_000, dailyMax: 10_000_000 } })
      h = await createHarness(dialect, { sharedSandbox: sandbox })
      const company = sandbox.companies[0]!
      await h.installAgency(company.companyId, [company.locations[0]!.locationId, company.locations[2]!.locationId])
    })
    after(async () => {
      await h.cleanup()
      await sandbox.close()
    })

    test("a location's own OAuth install stored while an agency mint is in flight survives the mint (refresh token kept)", async () => {
      const company = sandbox.companies[0]!
      const locationId = company.locations[0]!.locationId
      let own: Installation | undefined
      // Just before the mint stores its token, the location's own install (another request, another
      // process: no agency lock) lands.
      const racing = wrapVault(h.vault, {
        installations: {
          upsert: async (...args: Parameters<Vault['installations']['upsert']>) => {
            if (args[0].source === 'agency' && !own) own = await h.installLocation(locationId)
            return h.vault.installations.upsert(...args)
          },
        },
      })
      const svc = h.newTokenService({ vault: racing })
      const minted = collect(svc, 'minted')
      const g = await svc.getAccessToken({ kind: 'location', id: locationId })
      assert.ok(own, 'the OAuth install happened during the mint')
      assert.equal((await h.stats()).locationToken.ok, 1, 'HighLevel minted a token')
      const row = await h.vault.installations.findByLocation(h.config.clientId, locationId)
      assert.equal(row!.source, 'oauth')
      assert.equal(row!.id, own.id)
      assert.equal(row!.version, own.version)
      assert.equal(row!.tokens!.refreshToken, own.tokens!.refreshToken, 'the refresh token is not lost')
      assert.deepEqual(row!.tokens, own.tokens)
      // The caller gets the location's own token, and no "minted" event for a discarded mint.
      assert.equal(g.installationId, own.id)
      assert.equal(g.accessToken, own.tokens!.accessToken)
      assert.deepEqual(minted, [])
      // The minted token was discarded: an explicit mint now returns the OAuth installation unchanged.
      const again = await h.tokens.mintLocationToken(company.companyId, locationId)
      assert.equal(again.source, 'oauth')
      assert.equal(again.version, own.version)
    })

    test('a re-install stored while Reconnect is refused is not marked needs_reauthorization; its token is used', async () => {
      const locationId = sandbox.companies[0]!.locations[1]!.locationId
      const inst = await h.installLocation(locationId)
      await h.control('POST', '/_sandbox/tokens/revoke', { token: inst.tokens!.refreshToken })
      await h.control('PUT', '/_sandbox/settings', { reconnect: 'refuse' })
      let reinstalled: Installation | undefined
      const racing = wrapVault(h.vault, {
        installations: {
          setStatus: async (...args: Parameters<Vault['installations']['setStatus']>) => {
            // The user re-installs the app between Reconnect's refusal and the status write.
            if (args[1] === 'needs_reauthorization' && !reinstalled) reinstalled = await h.installLocation(locationId)
            return h.vault.installations.setStatus(...args)
          },
        },
      })
      try {
        const svc = h.newTokenService({ vault: racing })
        const dead = collect(svc, 'reauthorizationRequired')
        const summary = await svc.refreshNow(inst.id)
        assert.ok(reinstalled, 'the re-install happened while Reconnect was refused')
        assert.equal(summary.status, 'active')
        assert.equal(summary.version, reinstalled.version)
        const row = await h.vault.installations.get(inst.id)
        assert.equal(row!.status, 'active')
        assert.equal(row!.version, reinstalled.version)
        assert.deepEqual(row!.tokens, reinstalled.tokens)
        assert.deepEqual(dead, [])
        assert.equal((await h.vault.audit.list(inst.id)).filter((a) => a.action === 'reauthorization_required').length, 0)
        const g = await svc.getAccessToken({ kind: 'location', id: locationId })
        assert.equal(g.accessToken, reinstalled.tokens!.accessToken)
        assert.equal(await h.callApi(g.accessToken, locationId), 200)
      } finally {
        await h.control('PUT', '/_sandbox/settings', { reconnect: 'allow' })
      }
    })

    test('a forced re-mint after a 401 that joins a plain mint returning the rejected token mints once more', async () => {
      const company = sandbox.companies[0]!
      const locationId = company.locations[2]!.locationId
      const rejected: AccessGrant = await h.tokens.getAccessToken({ kind: 'location', id: locationId })
      await h.control('POST', '/_sandbox/tokens/expire', { token: rejected.accessToken })
      const okBefore = (await h.stats()).locationToken.ok
      // A worker that (at its first read) did not see the location's row: it starts a plain mint, which
      // finds the stored (rejected, but not yet expired) token fresh and returns it. It is held at the
      // gate until the forced re-mint after the 401 has joined its flight.
      let hidden = false
      let mintStarted!: () => void
      const started = new Promise<void>((resolve) => (mintStarted = resolve))
      let release!: () => void
      const gate = new Promise<void>((resolve) => (release = resolve))
      let reads = 0
      let reread!: () => void
      const reported = new Promise<void>((resolve) => (reread = resolve))
      const racing = wrapVault(h.vault, {
        installations: {
        findByLocation: async (...args: Parameters<Vault['installations']['findByLocation']>) => {
          if (!hidden && args[1] === locationId) {
            hidden = true
            return undefined
          }
          return h.vault.installations.findByLocation(...args)
        },
        findByCompany: async (...args: Parameters<Vault['installations']['findByCompany']>) => {
          mintStarted()
          await gate
          return h.vault.installations.findByCompany(...args)
        },
        get: async (...args: Parameters<Vault['installations']['get']>) => {
          const row = await h.vault.installations.get(...args)
          if (++reads === 1) setImmediate(reread)
          return row
        },
        },
      })
      const svc = h.newTokenService({ vault: racing })
      const target = { kind: 'location' as const, id: locationId }
      const plain = svc.getAccessToken(target)
      await started
      const forced = svc.onUnauthorized(target, rejected)
      await reported
      for (let i = 0; i < 5; i++) await tick()
      release()
      const [p, f] = await Promise.all([plain, forced])
      assert.equal(p.accessToken, rejected.accessToken, 'the plain mint returned the stored token')
      assert.notEqual(f.accessToken, rejected.accessToken, 'the forced re-mint returned the rejected token')
      assert.ok(f.version > rejected.version)
      assert.equal((await h.stats()).locationToken.ok, okBefore + 1)
      assert.equal(await h.callApi(f.accessToken, locationId), 200)
    })
  })
}
