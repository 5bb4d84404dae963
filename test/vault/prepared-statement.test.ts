/**
 * PreparedStatement: built once, each run carries its own values in the slots' places (a slot used
 * twice filled twice, constants of the query kept), on both dialects; a slot Kysely would inline, or
 * one never used, is refused when the statement is built.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import Database from 'better-sqlite3'
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely'
import pg from 'pg'
import { PreparedStatement } from '../../src/vault/prepared-statement.js'
import { createPostgresDatabase, DIALECTS, dialectSkipReason } from '../helpers/services.js'

interface Db {
  items: { id: string; owner: string; n: number; note: string | null }
}

for (const dialect of DIALECTS) {
  describe(`PreparedStatement (${dialect})`, { skip: await dialectSkipReason(dialect) }, () => {
    let db: Kysely<Db>
    let drop = async () => {}
    before(async () => {
      if (dialect === 'sqlite') {
        db = new Kysely<Db>({ dialect: new SqliteDialect({ database: new Database(':memory:') }) })
      } else {
        const created = await createPostgresDatabase()
        drop = created.drop
        db = new Kysely<Db>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: created.url, max: 2 }) }) })
      }
      await db.schema.createTable('items').addColumn('id', 'text', (c) => c.primaryKey()).addColumn('owner', 'text').addColumn('n', 'integer').addColumn('note', 'text').execute()
      await db.insertInto('items').values([
        { id: 'a', owner: 'x', n: 1, note: null },
        { id: 'b', owner: 'x', n: 2, note: null },
        { id: 'c', owner: 'y', n: 3, note: null },
      ]).execute()
    })
    after(async () => {
      await db.destroy()
      await drop()
    })

    test('each run updates with its own values; a slot used twice gets the value twice; constants stay', async () => {
      const bump = new PreparedStatement(['id', 'note'], (slot) =>
        db
          .updateTable('items')
          .set((eb) => ({ n: eb('n', '+', 10), note: sql<string>`${slot<string>('note')} || '/' || ${slot<string>('id')}` }))
          .where('id', '=', slot<string>('id'))
          .returning(['id', 'n', 'note']),
      )
      const sqlText = bump.sql
      assert.deepEqual((await db.executeQuery(bump.compile({ id: 'a', note: 'first' }))).rows, [{ id: 'a', n: 11, note: 'first/a' }])
      assert.deepEqual((await db.executeQuery(bump.compile({ id: 'c', note: 'second' }))).rows, [{ id: 'c', n: 13, note: 'second/c' }])
      assert.deepEqual((await db.executeQuery(bump.compile({ id: 'nope', note: 'x' }))).rows, [])
      assert.equal(bump.sql, sqlText)
      const all = await db.selectFrom('items').selectAll().orderBy('id').execute()
      assert.deepEqual(all.map((r) => [r.id, r.n, r.note]), [['a', 11, 'first/a'], ['b', 2, null], ['c', 13, 'second/c']])
    })

    test('runs in a transaction and on the database alike; a compiled run is not changed by the next', async () => {
      const byOwner = new PreparedStatement(['owner'], (slot) => db.selectFrom('items').select('id').where('owner', '=', slot<string>('owner')).orderBy('id'))
      const x = byOwner.compile({ owner: 'x' })
      const y = byOwner.compile({ owner: 'y' })
      assert.deepEqual(x.parameters, ['x'])
      assert.deepEqual((await db.executeQuery(x)).rows, [{ id: 'a' }, { id: 'b' }])
      assert.deepEqual(await db.transaction().execute(async (trx) => (await trx.executeQuery(y)).rows), [{ id: 'c' }])
    })

    test('a slot never used, an unknown one, or one Kysely inlines into the text is refused when built', () => {
      assert.throws(() => new PreparedStatement(['id', 'owner'], (slot) => db.selectFrom('items').select('id').where('id', '=', slot<string>('id'))), /never used.*owner/)
      assert.throws(
        () => new PreparedStatement(['id'], (slot) => db.selectFrom('items').select('id').where('id', '=', slot<string>('id')).where('owner', '=', slot<string>('other' as 'id'))),
        /unknown slot "other"/,
      )
      assert.throws(() => new PreparedStatement(['note'], (slot) => db.selectFrom('items').select(sql.lit(slot<string>('note')).as('n'))), /inlined/)
    })
  })
}
