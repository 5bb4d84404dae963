/**
 * Cache coherence between instances through Redis pub/sub: when one instance refreshes, the others
 * drop their cached token at once instead of serving the old one until it expires.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import type { TokenService } from '../../src/tokens/token-service.js'
import type { AccessGrant } from '../../src/tokens/types.js'
import type { Installation } from '../../src/vault/types.js'
import { DIALECTS, dialectSkipReason, redisSkipReason, REDIS_URL } from '../helpers/services.js'
import { createHarness, type Harness } from './harness.js'

const redisSkip = await redisSkipReason()

/** Polls until `check` holds (the message travels through Redis), for at most 3 s. */
async function eventually(check: () => Promise<boolean>): Promise<boolean> {
  for (let i = 0; i < 150; i++) {
    if (await check()) return true
    await sleep(20)
  }
  return false
}

for (const dialect of DIALECTS) {
  describe(`Redis invalidation (${dialect})`, { skip: redisSkip || (await dialectSkipReason(dialect)) }, () => {
    let h: Harness
    let redis: Redis
    let inst: Installation
    let a: TokenService
    let b: TokenService
    let plain: TokenService
    const target = (): { kind: 'location'; id: string } => ({ kind: 'location', id: inst.locationId! })

    before(async () => {
      redis = new Redis(REDIS_URL)
      h = await createHarness(dialect, { redis })
      inst = await h.installLocation()
      a = h.newTokenService()
      b = h.newTokenService()
      plain = h.newTokenService({ redis: undefined })
      await Promise.all([a.ready(), b.ready()])
    })
    after(async () => {
      await h.cleanup()
      await redis.quit()
    })

    test('a refresh on one instance makes the others drop their cached token', async () => {
      const [ga, gb, gp] = await Promise.all([a.getAccessToken(target()), b.getAccessToken(target()), plain.getAccessToken(target())])
      assert.equal(ga.version, gb.version)
      await a.refreshNow(inst.id)
      let seen: AccessGrant | undefined
      assert.ok(
        await eventually(async () => {
          seen = await b.getAccessToken(target())
          return seen.version > gb.version
        }),
        'instance b still serves the old token',
      )
      assert.equal(seen!.accessToken, (await a.getAccessToken(target())).accessToken)
      assert.equal(await h.callApi(seen!.accessToken, inst.locationId!), 200)
      // Without Redis an instance keeps serving its (still valid) cached token: the messages made the difference.
      assert.equal((await plain.getAccessToken(target())).version, gp.version)
    })

    test('a message for another installation or an older version changes nothing', async () => {
      // A second installation, cached on b, is the positive control: its message goes last on the same
      // channel, and one subscriber connection delivers in order — once b has acted on it, the two
      // messages before it have been delivered (and must have changed nothing).
      const other = await h.installLocation(h.sandbox.companies[0]!.locations[1]!.locationId)
      const otherTarget = { kind: 'location' as const, id: other.locationId! }
      const g = await b.getAccessToken(target())
      const go = await b.getAccessToken(otherTarget)
      // Both rows change in the vault without anyone being told, so that a dropped cache entry shows: b
      // would re-read the newer version.
      for (const id of [inst.id, other.id]) {
        const row = await h.vault.installations.get(id)
        await h.vault.installations.updateTokens(id, row!.version, { ...row!.tokens!, expiresAt: new Date(row!.tokens!.expiresAt.getTime() - 1000) })
      }
      assert.equal((await b.getAccessToken(target())).version, g.version, 'cached until told')
      assert.equal((await b.getAccessToken(otherTarget)).version, go.version, 'cached until told')

      await redis.publish('ghl-connect:invalidate', `some-other-id:${g.version + 5}`)
      await redis.publish('ghl-connect:invalidate', `${inst.id}:${g.version}`)
      await redis.publish('ghl-connect:invalidate', `${other.id}:${go.version + 1}`)
      assert.ok(await eventually(async () => (await b.getAccessToken(otherTarget)).version === go.version + 1), 'the control message never took effect')
      const still = await b.getAccessToken(target())
      assert.equal(still.version, g.version, 'a message for another installation or an older version dropped the entry')
      assert.equal(still.accessToken, g.accessToken)

      // Leave both instances on the stored row for the next test.
      b.invalidate(inst.id)
      const stored = (await h.vault.installations.get(inst.id))!.version
      assert.equal((await b.getAccessToken(target())).version, stored)
      assert.ok(await eventually(async () => (await a.getAccessToken(target())).version === stored), 'instance a was not told')
    })

    test('invalidate() drops the entry here and, through Redis, on the other instances', async () => {
      const [gb, ga] = [await b.getAccessToken(target()), await a.getAccessToken(target())]
      assert.equal(ga.version, gb.version)
      const row = await h.vault.installations.get(inst.id)
      // A change the instances are not told about (as a re-install by another process would be)…
      await h.vault.installations.updateTokens(inst.id, row!.version, { ...row!.tokens!, expiresAt: new Date(row!.tokens!.expiresAt.getTime() - 1000) })
      assert.equal((await b.getAccessToken(target())).version, gb.version, 'cached until invalidated')
      // …until one of them invalidates it.
      b.invalidate(inst.id)
      assert.equal((await b.getAccessToken(target())).version, gb.version + 1)
      assert.ok(await eventually(async () => (await a.getAccessToken(target())).version === gb.version + 1), 'instance a was not told')
    })
  })
}
