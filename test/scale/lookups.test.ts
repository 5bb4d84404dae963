/**
 * Lookups at scale, in counts: a call for a location with no installation is one indexed query (the
 * plan says so: `EXPLAIN` on PostgreSQL, `EXPLAIN QUERY PLAN` on SQLite); concurrent calls for one
 * unknown id share it; an unknown id is remembered briefly (then zero queries); a covered or installed
 * location is one indexed query too.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { ManualClock } from '../../src/clock.js'
import { NotInstalledError } from '../../src/errors.js'
import type { ObservedQuery } from '../../src/vault/query-observer.js'
import { DIALECTS, dialectSkipReason, type DialectName } from '../helpers/services.js'
import { openRaw } from '../vault/helpers.js'
import { coveredId, locationId } from './seed.js'
import { createScaleWorld, type ScaleWorld } from './setup.js'

/** The plan of a recorded statement, as text. */
async function plan(world: ScaleWorld, q: ObservedQuery): Promise<string> {
  const raw = await openRaw(world.dialect, world.databaseUrl)
  try {
    if (world.dialect === 'postgres') {
      const rows = await raw.query<Record<string, string>>(`explain ${q.sql}`, [...q.parameters])
      return rows.map((r) => Object.values(r)[0]).join('\n')
    }
    const rows = await raw.query<{ detail: string }>(`explain query plan ${q.sql}`, [...q.parameters])
    return rows.map((r) => r.detail).join('\n')
  } finally {
    await raw.close()
  }
}

/** Fails unless the plan reads `table` through an index, never by scanning the table. */
function assertIndexed(dialect: DialectName, text: string, table = 'installations'): void {
  if (dialect === 'postgres') {
    assert.match(text, /Index (Only )?Scan|Bitmap Index Scan/, text)
    assert.doesNotMatch(text, /Seq Scan/, text)
  } else {
    // SQLite: a SEARCH (an index range), or a SCAN of an index in its order (a newest-first page that
    // stops after a page) — never a SCAN of the table itself.
    assert.match(text, new RegExp(`(SEARCH|SCAN) ${table} USING (COVERING )?INDEX`), text)
    assert.doesNotMatch(text, new RegExp(`SCAN ${table}(?! USING)`), text)
  }
}

async function notInstalled(p: Promise<unknown>): Promise<void> {
  await assert.rejects(p, (err) => err instanceof NotInstalledError)
}

for (const dialect of DIALECTS) {
  describe(`lookups at scale (${dialect})`, { skip: await dialectSkipReason(dialect) }, () => {
    let world: ScaleWorld
    before(async () => {
      world = await createScaleWorld(dialect, { installations: 3000 })
      if (dialect === 'postgres') {
        // Statistics, as autovacuum keeps them on a live database.
        const raw = await openRaw(dialect, world.databaseUrl)
        await raw.query('analyze installations')
        await raw.close()
      }
    })
    after(() => world?.cleanup())

    test('a call for an unknown location is one indexed query; a stream of them, one each', async () => {
      const tokens = world.tokens()
      // The first unknown id also reads the app's agency installations (indexed, reused for seconds).
      const first = await world.log.during(() => notInstalled(tokens.getAccessToken({ kind: 'location', id: 'nowhere-0' })))
      assert.equal(first.length, 2, first.map((q) => q.sql).join('\n'))
      for (const q of first) assertIndexed(dialect, await plan(world, q))

      const one = await world.log.during(() => notInstalled(tokens.getAccessToken({ kind: 'location', id: 'nowhere-1' })))
      assert.equal(one.length, 1, one.map((q) => q.sql).join('\n'))
      assert.match(one[0]!.sql, /resource_key/)
      assert.ok(one[0]!.parameters.includes('location:nowhere-1'))
      assert.equal(one[0]!.rows, 0)
      assertIndexed(dialect, await plan(world, one[0]!))

      const stream = await world.log.during(async () => {
        for (let i = 2; i < 52; i++) await notInstalled(tokens.getAccessToken({ kind: 'location', id: `nowhere-${i}` }))
      })
      assert.equal(stream.length, 50)
    })

    test('concurrent calls for one unknown id share one query', async () => {
      const tokens = world.tokens()
      await notInstalled(tokens.getAccessToken({ kind: 'location', id: 'warm-agencies' }))
      const queries = await world.log.during(() =>
        Promise.all(Array.from({ length: 25 }, () => notInstalled(tokens.getAccessToken({ kind: 'location', id: 'shared-unknown' })))),
      )
      assert.equal(queries.length, 1)
    })

    test('calls for twenty different cold locations at once are answered by one indexed query', async () => {
      const tokens = world.tokens()
      await notInstalled(tokens.getAccessToken({ kind: 'location', id: 'warm-agencies-2' }))
      const installed = Array.from({ length: 10 }, (_, i) => locationId(world.layout.due + 100 + i))
      const unknown = Array.from({ length: 10 }, (_, i) => `burst-unknown-${i}`)
      const got = new Map<string, string>()
      const queries = await world.log.during(() =>
        Promise.all([
          ...installed.map(async (id) => got.set(id, (await tokens.getAccessToken({ kind: 'location', id })).accessToken)),
          ...unknown.map((id) => notInstalled(tokens.getAccessToken({ kind: 'location', id }))),
        ]),
      )
      // Each caller got its own row's token (and the unknown ones "not installed").
      for (const id of installed) assert.equal(got.get(id), `at.${id}.seed`)
      assert.equal(queries.length, 1, queries.map((q) => q.sql).join('\n'))
      assert.equal(queries[0]!.rows, 10)
      assert.equal(queries[0]!.parameters.filter((p) => typeof p === 'string' && p.startsWith('location:')).length, 20)
      assertIndexed(dialect, await plan(world, queries[0]!))
    })

    test("the console's pages, search and an installation's timeline read through indexes (none of those 0006 dropped was needed)", async () => {
      const clientId = world.config.clientId
      const some = (await world.vault.installations.page({ clientId, limit: 1 })).items[0]!
      const reads: Array<[string, () => Promise<unknown>, string]> = [
        ['newest first', () => world.vault.installations.page({ clientId }), 'installations'],
        ['by status', () => world.vault.installations.page({ clientId, status: 'suspended' }), 'installations'],
        ['by plan', () => world.vault.installations.page({ clientId, planId: 'plan-gold' }), 'installations'],
        ['search', () => world.vault.installations.page({ clientId, search: 'Acme' }), 'installations'],
        ['timeline', () => world.vault.audit.list(some.id, { limit: 50 }), 'audit_log'],
      ]
      for (const [name, read, table] of reads) {
        const queries = await world.log.during(read)
        assert.equal(queries.length, 1, name)
        await assert.doesNotReject(async () => assertIndexed(dialect, await plan(world, queries[0]!), table), name)
      }
    })

    test('an unknown id is remembered briefly: the second call sends no query, and after a while one again', async () => {
      const clock = new ManualClock(Date.now())
      const tokens = world.tokens({ clock })
      const first = await world.log.during(() => notInstalled(tokens.getAccessToken({ kind: 'location', id: 'remembered' })))
      assert.ok(first.length >= 1)
      clock.advance(5_000)
      const second = await world.log.during(() => notInstalled(tokens.getAccessToken({ kind: 'location', id: 'remembered' })))
      assert.equal(second.length, 0)
      // Positive control: once the memory lapses, the vault is asked again (an install may have come).
      clock.advance(60_000)
      const later = await world.log.during(() => notInstalled(tokens.getAccessToken({ kind: 'location', id: 'remembered' })))
      assert.ok(later.some((q) => q.parameters.includes('location:remembered')))
    })

    test('a location covered by an agency install, and an installed one, are one indexed query each', async () => {
      const tokens = world.tokens()
      for (const id of [coveredId(7), locationId(world.layout.due + 11)]) {
        let token = ''
        const queries = await world.log.during(async () => {
          token = (await tokens.getAccessToken({ kind: 'location', id })).accessToken
        })
        assert.equal(token, `at.${id}.seed`)
        assert.equal(queries.length, 1, queries.map((q) => q.sql).join('\n'))
        assert.equal(queries[0]!.rows, 1)
        assertIndexed(dialect, await plan(world, queries[0]!))
        // Cached now: no query at all.
        assert.equal((await world.log.during(() => tokens.getAccessToken({ kind: 'location', id }))).length, 0)
      }
    })
  })
}
