/**
 * The token cache at scale, in counts: invalidating an installation touches its one entry (never a
 * walk of the cache), and the bound holds while the cold path stays correct.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { TokenCache, type CacheEntry } from '../../src/tokens/token-cache.js'
import type { AccessGrant } from '../../src/tokens/types.js'
import { locationId } from './seed.js'
import { createScaleWorld, type ScaleWorld } from './setup.js'

/** Entries that record which of them were read (`grant` is read by anything that looks at an entry). */
function countingEntries(): { touched: Set<number>; entry: (i: number, version?: number) => CacheEntry } {
  const touched = new Set<number>()
  const entry = (i: number, version = 1): CacheEntry => {
    const grant: AccessGrant = {
      accessToken: `at.${i}`,
      installationId: `inst-${i}`,
      version,
      expiresAt: Date.now() + 3600_000,
      resourceId: `loc-${i}`,
      scopes: [],
      userType: 'Location',
    }
    return {
      get grant() {
        touched.add(i)
        return grant
      },
      refreshAt: Date.now() + 3000_000,
      used: false,
    }
  }
  return { touched, entry }
}

describe('token cache', () => {
  test('invalidating an installation touches its one entry among 10,000', () => {
    const cache = new TokenCache(20_000)
    const { touched, entry } = countingEntries()
    for (let i = 0; i < 10_000; i++) cache.set(`location:loc-${i}`, entry(i, 3))
    touched.clear()
    cache.dropBelow('inst-4321', 4) // a newer version exists elsewhere
    assert.deepEqual([...touched], [4321])
    assert.equal(cache.size, 9_999)
    assert.equal(cache.get('location:loc-4321'), undefined)
    touched.clear()
    cache.dropBelow('inst-17', Number.POSITIVE_INFINITY) // uninstalled
    assert.deepEqual([...touched], [17])
    // An entry already at that version stays (and still only it is looked at).
    touched.clear()
    cache.dropBelow('inst-18', 3)
    assert.deepEqual([...touched], [18])
    assert.equal(cache.size, 9_998)
    assert.notEqual(cache.get('location:loc-18'), undefined)
    // An installation it does not hold: nothing is touched.
    touched.clear()
    cache.dropBelow('inst-none', 9)
    assert.equal(touched.size, 0)
  })

  test('the bound holds; entries used since the hand last passed survive eviction', () => {
    const cache = new TokenCache(1000)
    const { entry } = countingEntries()
    for (let i = 0; i < 1000; i++) cache.set(`location:loc-${i}`, entry(i))
    for (let i = 0; i < 1000; i += 10) cache.get(`location:loc-${i}`) // one in ten is hot
    for (let i = 1000; i < 1500; i++) {
      cache.set(`location:loc-${i}`, entry(i))
      assert.ok(cache.size <= 1000)
    }
    for (let i = 0; i < 1000; i += 10) assert.notEqual(cache.get(`location:loc-${i}`), undefined, `hot entry ${i} was evicted`)
    assert.equal(cache.size, 1000)
  })
})

describe('the bound on a token service, cold path correct', () => {
  let world: ScaleWorld
  before(async () => {
    world = await createScaleWorld('sqlite', { installations: 600, due: 0 })
  })
  after(() => world?.cleanup())

  test('GHL_TOKEN_CACHE_MAX=50 over 400 installations: never more than 50 cached, every token right, a hot one never re-read', async () => {
    const tokens = world.tokens({ env: { GHL_TOKEN_CACHE_MAX: '50' } })
    const hot = locationId(999 % world.layout.locations)
    let hotQueries = 0
    const queries = await world.log.during(async () => {
      for (let i = 0; i < 400; i++) {
        const id = locationId(i)
        assert.equal((await tokens.getAccessToken({ kind: 'location', id })).accessToken, `at.${id}.seed`)
        assert.ok(tokens.cacheSize <= 50, `cache holds ${tokens.cacheSize}`)
        const before = world.log.queries.length
        assert.equal((await tokens.getAccessToken({ kind: 'location', id: hot })).accessToken, `at.${hot}.seed`)
        hotQueries += world.log.queries.length - before
      }
    })
    assert.equal(hotQueries, 1) // its first call only
    assert.equal(queries.length, 401)
    // The evicted ones come back from the vault, right, one query each.
    const again = await world.log.during(async () => {
      for (let i = 0; i < 100; i++) assert.equal((await tokens.getAccessToken({ kind: 'location', id: locationId(i) })).accessToken, `at.${locationId(i)}.seed`)
    })
    assert.equal(again.length, 100)
    assert.ok(tokens.cacheSize <= 50)
  })
})
