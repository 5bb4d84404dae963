/**
 * 0005: what the operator's console reads.
 *
 * call_stats: calls to HighLevel per installation and UTC day (calls, error answers, 429s, the last
 * call), added to in batches by the connector's call recorder — never a row per call.
 * audit_log(at): the console's charts count refreshes by outcome over the last hour or day by time.
 * installations: the console's pages by status or plan, newest first, are index range reads; its
 * search is index reads — by location id, and by the start of a name,
 * any case (an index on `lower(name)`; on PostgreSQL with `text_pattern_ops`, so that `LIKE 'p%'` uses
 * it whatever the database's collation; SQLite's search is a range on the same expression).
 */
import { sql, type Kysely, type Migration } from 'kysely'
import type { VaultDialect } from './index.js'

const NAME_INDEXES = [
  ['installations_location_name_lower_idx', 'location_name'],
  ['installations_company_name_lower_idx', 'company_name'],
] as const

/** Builds migration 0005. */
export function consoleMigration(dialect: VaultDialect): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('call_stats')
        .addColumn('installation_id', 'text', (c) => c.notNull())
        .addColumn('day', 'text', (c) => c.notNull())
        .addColumn('calls', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('errors', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('throttled', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('last_call_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('call_stats_pk', ['installation_id', 'day'])
        .execute()
      await db.schema.createIndex('call_stats_day_idx').on('call_stats').column('day').execute()
      await db.schema.createIndex('audit_log_time_idx').on('audit_log').columns(['at', 'action']).execute()
      await db.schema.createIndex('installations_location_id_idx').on('installations').column('location_id').execute()
      // A filtered page newest first is one index range read, stopping after a page.
      await db.schema.createIndex('installations_status_created_idx').on('installations').columns(['status', 'created_at', 'id']).execute()
      await db.schema.createIndex('installations_plan_created_idx').on('installations').columns(['plan_id', 'created_at', 'id']).execute()
      for (const [name, column] of NAME_INDEXES) {
        const expression = dialect === 'postgres' ? sql`lower(${sql.ref(column)}) text_pattern_ops` : sql`lower(${sql.ref(column)})`
        await db.schema.createIndex(name).on('installations').expression(expression).execute()
      }
    },

    async down(db: Kysely<unknown>): Promise<void> {
      for (const [name] of NAME_INDEXES) await db.schema.dropIndex(name).ifExists().execute()
      await db.schema.dropIndex('installations_plan_created_idx').ifExists().execute()
      await db.schema.dropIndex('installations_status_created_idx').ifExists().execute()
      await db.schema.dropIndex('installations_location_id_idx').ifExists().execute()
      await db.schema.dropIndex('audit_log_time_idx').ifExists().execute()
      await db.schema.dropTable('call_stats').ifExists().execute()
    },
  }
}
