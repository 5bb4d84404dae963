/**
 * 0005: what the operator's console reads.
 *
 * call_stats: calls to HighLevel per installation and UTC day (calls, error answers, 429s, the last
 * call), added to in batches by the connector's call recorder — never a row per call.
 * audit_log(at): the console's charts count refreshes by outcome over the last hour or day by time.
 */
import type { Kysely, Migration } from 'kysely'

/** Builds migration 0005 (the same on both dialects). */
export function consoleMigration(): Migration {
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
    },

    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropIndex('audit_log_time_idx').ifExists().execute()
      await db.schema.dropTable('call_stats').ifExists().execute()
    },
  }
}
