/**
 * 0003: what HighLevel's 2026 lifecycle and a million installations need.
 *
 * installations: names and install details (INSTALL/PLAN_CHANGE payloads), the refresh failure count,
 * last refresh and error, `retry_at` (backoff, suspended rows), a background-sweep claim; indexes so that
 * every lookup the connector makes is an index read — the refresher's due scan by expiry and by refresh
 * token age, agency installations of an app, keyset paging by creation — and never a table scan.
 * used_codes: authorization codes already exchanged (a replayed code is refused before it reaches HighLevel).
 * connector_flags: facts the instances share with an expiry ("Reconnect is unavailable until …").
 * SQLite adds one column per ALTER TABLE, so each column is its own statement on both dialects.
 */
import type { Kysely, Migration } from 'kysely'

/** Builds migration 0003 (the same on both dialects). */
export function lifecycleAndScaleMigration(): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      const columns: Array<[string, 'text' | 'bigint' | 'integer']> = [
        ['location_name', 'text'],
        ['company_name', 'text'],
        ['install_info', 'text'],
        ['last_refresh_at', 'bigint'],
        ['last_error', 'text'],
        ['retry_at', 'bigint'],
        ['sweep_owner', 'text'],
        ['sweep_until', 'bigint'],
      ]
      for (const [name, type] of columns) await db.schema.alterTable('installations').addColumn(name, type).execute()
      await db.schema
        .alterTable('installations')
        .addColumn('refresh_failures', 'integer', (c) => c.notNull().defaultTo(0))
        .execute()

      // The refresher's scans: due by access-token expiry, and by refresh-token age (idle grants).
      await db.schema.createIndex('installations_due_expiry_idx').on('installations').columns(['client_id', 'source', 'status', 'expires_at']).execute()
      await db.schema
        .createIndex('installations_due_issued_idx')
        .on('installations')
        .columns(['client_id', 'source', 'status', 'refresh_token_issued_at'])
        .execute()
      // Agency installations of an app; keyset paging of the operator page.
      await db.schema.createIndex('installations_kind_idx').on('installations').columns(['client_id', 'user_type', 'status']).execute()
      await db.schema.createIndex('installations_created_idx').on('installations').columns(['created_at', 'id']).execute()
      await db.schema.createIndex('installations_location_name_idx').on('installations').column('location_name').execute()
      await db.schema.createIndex('installations_company_name_idx').on('installations').column('company_name').execute()
      await db.schema.createIndex('installations_plan_idx').on('installations').column('plan_id').execute()

      await db.schema
        .createTable('used_codes')
        .addColumn('code_hash', 'text', (c) => c.primaryKey())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute()
      await db.schema.createIndex('used_codes_expires_at_idx').on('used_codes').column('expires_at').execute()

      await db.schema
        .createTable('connector_flags')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute()

      // Listing webhook events for people (newest first, by type).
      await db.schema.createIndex('webhook_events_received_idx').on('webhook_events').columns(['received_at', 'webhook_id']).execute()
      await db.schema.createIndex('webhook_events_type_idx').on('webhook_events').columns(['type', 'received_at']).execute()
      await db.schema.createIndex('audit_log_at_idx').on('audit_log').columns(['installation_id', 'id']).execute()
    },

    async down(db: Kysely<unknown>): Promise<void> {
      for (const index of [
        'audit_log_at_idx',
        'webhook_events_type_idx',
        'webhook_events_received_idx',
        'installations_plan_idx',
        'installations_company_name_idx',
        'installations_location_name_idx',
        'installations_created_idx',
        'installations_kind_idx',
        'installations_due_issued_idx',
        'installations_due_expiry_idx',
      ]) {
        await db.schema.dropIndex(index).ifExists().execute()
      }
      await db.schema.dropTable('connector_flags').ifExists().execute()
      await db.schema.dropTable('used_codes').ifExists().execute()
      for (const name of ['refresh_failures', 'sweep_until', 'sweep_owner', 'retry_at', 'last_error', 'last_refresh_at', 'install_info', 'company_name', 'location_name']) {
        await db.schema.alterTable('installations').dropColumn(name).execute()
      }
    },
  }
}
