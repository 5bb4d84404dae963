/**
 * The background refresher at scale, in counts: it never reads more than one page per query (every
 * statement of a sweep returns at most `pageSize` rows), works the whole backlog, and several instances
 * (two vaults on one PostgreSQL) sharing the sweep never refresh one installation twice.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { DIALECTS, dialectSkipReason, postgresSkipReason } from '../helpers/services.js'
import { QueryLog, createScaleWorld, type ScaleWorld } from './setup.js'
import { SQLITE_CLAIM_CHUNK } from '../../src/vault/sql-installation-store.js'

const PAGE = 50
const DUE = 500

for (const dialect of DIALECTS) {
  describe(`the refresher's pages (${dialect})`, { skip: await dialectSkipReason(dialect) }, () => {
    let world: ScaleWorld
    before(async () => {
      world = await createScaleWorld(dialect, { installations: 1500, due: DUE })
    })
    after(() => world?.cleanup())

    test(`a sweep of ${DUE} due with pages of ${PAGE}: no statement returns more than a page, each due row refreshed once`, async () => {
      const tokens = world.tokens()
      const refresher = tokens.startBackgroundRefresher({ intervalMs: 60_000, pageSize: PAGE })
      let result = { refreshed: 0, examined: 0, failed: 0, pages: 0 }
      const queries = await world.log.during(async () => {
        result = await refresher.sweep()
      })
      await refresher.stop()
      assert.equal(result.refreshed, DUE)
      assert.equal(result.failed, 0)
      assert.equal(world.endpoint.refreshed, DUE)
      assert.equal(world.endpoint.reused, 0)
      assert.ok([...world.endpoint.perLocation.values()].every((n) => n === 1))
      // Ten full pages and the empty one that ends the sweep.
      assert.equal(result.pages, DUE / PAGE + 1)
      const largest = Math.max(...queries.map((q) => q.rows))
      assert.ok(largest <= PAGE, `a statement returned ${largest} rows`)
      // Positive control: the page reads are seen, and they are full.
      const pageReads = queries.filter((q) => q.rows === PAGE && /^select/i.test(q.sql))
      assert.equal(pageReads.length >= DUE / PAGE, true)
      // A page is four narrow columns, not whole rows (tokens, JSON): it is parsed in one turn of the loop.
      for (const q of pageReads) assert.match(q.sql, /^select "id", "version", "status", "expires_at" from "installations"/, q.sql)
      // Nothing is due any more: the next sweep reads one empty page per range.
      const again = await world.log.during(() => refresher.sweep())
      assert.ok(again.every((q) => q.rows === 0))
    })

    test(`a page is claimed in one statement on PostgreSQL, in statements of ${SQLITE_CLAIM_CHUNK} rows on SQLite`, async () => {
      const world = await createScaleWorld(dialect, { installations: 400, due: 300 })
      after(() => world.cleanup())
      const page = (owner: string) =>
        world.vault.installations.due({
          clientId: world.config.clientId,
          expiresBefore: new Date(Date.now() + 3_600_000),
          issuedBefore: new Date(0),
          now: new Date(),
          limit: 200,
          claim: { owner, claimMs: 60_000 },
        })
      let first: Awaited<ReturnType<typeof page>> = []
      const queries = await world.log.during(async () => {
        first = await page('a')
      })
      const claims = queries.filter((q) => /^update "installations" set "sweep_owner"/.test(q.sql))
      if (dialect === 'postgres') assert.deepEqual(claims.map((q) => q.rows), [200])
      else assert.deepEqual(claims.map((q) => q.rows), [50, 50, 50, 50])
      assert.equal(new Set(first.map((r) => r.id)).size, 200)
      // The claimed rows are another owner's now: the next page is the 100 left.
      const second = await page('b')
      assert.equal(second.length, 100)
      assert.ok(second.every((r) => !first.some((f) => f.id === r.id)))
    })

    test('the next page is read while the current one is still being refreshed (workers never wait for a page)', async () => {
      const world = await createScaleWorld(dialect, { installations: DUE + 100, due: DUE, latencyMs: 20 })
      after(() => world.cleanup())
      const tokens = world.tokens()
      let stored = 0
      tokens.on('refreshed', () => stored++)
      const refresher = tokens.startBackgroundRefresher({ intervalMs: 60_000, pageSize: PAGE })
      // For each read of the expiry range: how many refreshes had been stored at that moment.
      const atRead: number[] = []
      world.log.tap = (q) => {
        if (/order by "expires_at"/.test(q.sql)) atRead.push(stored)
      }
      let result = { refreshed: 0, examined: 0, failed: 0, pages: 0 }
      try {
        await world.log.during(async () => {
          result = await refresher.sweep()
        })
      } finally {
        world.log.tap = undefined
        await refresher.stop()
      }
      assert.equal(result.refreshed, DUE)
      assert.equal(atRead.length, DUE / PAGE + 1)
      // Read k (from 0) comes after k full pages were handed out. Reading a page only once the last one
      // is done would find all k × PAGE stored each time; here some of them are still under way.
      const early = atRead.filter((n, k) => k > 0 && n < k * PAGE).length
      assert.ok(early >= atRead.length - 2, `stored at each page read: ${atRead.join(', ')}`)
    })
  })
}

describe('two instances on one PostgreSQL share a sweep', { skip: await postgresSkipReason() }, () => {
  let world: ScaleWorld
  before(async () => {
    world = await createScaleWorld('postgres', { installations: 1500, due: DUE, latencyMs: 5 })
  })
  after(() => world?.cleanup())

  test('never the same installation twice, and both do part of the work', async () => {
    const second = await world.openVault(new QueryLog())
    const a = world.tokens().startBackgroundRefresher({ intervalMs: 60_000, pageSize: PAGE })
    const b = world.tokens({ vault: second }).startBackgroundRefresher({ intervalMs: 60_000, pageSize: PAGE })
    const [ra, rb] = await Promise.all([a.sweep(), b.sweep()])
    await Promise.all([a.stop(), b.stop()])
    assert.equal(world.endpoint.reused, 0)
    assert.equal(world.endpoint.refreshed, DUE)
    assert.equal(world.endpoint.perLocation.size, DUE)
    assert.ok([...world.endpoint.perLocation.values()].every((n) => n === 1))
    assert.equal(ra.refreshed + rb.refreshed, DUE)
    assert.ok(ra.refreshed > 0 && rb.refreshed > 0, `split ${ra.refreshed} / ${rb.refreshed}`)
  })
})
