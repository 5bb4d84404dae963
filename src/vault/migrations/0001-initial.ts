/**
 * 0001: the vault's four tables. One definition for both dialects through Kysely's schema builder;
 * the only dialect-specific part is the audit log's generated id.
 */
import type { Kysely, Migration } from 'kysely'
import type { VaultDialect } from './index.js'

/** Builds migration 0001 for a dialect. */
export function initialMigration(dialect: VaultDialect): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('installations')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('client_id', 'text', (c) => c.notNull())
        .addColumn('app_id', 'text', (c) => c.notNull())
        .addColumn('company_id', 'text', (c) => c.notNull())
        .addColumn('location_id', 'text')
        .addColumn('resource_key', 'text', (c) => c.notNull())
        .addColumn('user_type', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text')
        .addColumn('scopes', 'text', (c) => c.notNull())
        .addColumn('plan_id', 'text')
        .addColumn('is_bulk_installation', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('install_to_future_locations', 'integer')
        .addColumn('approve_all_locations', 'integer')
        .addColumn('approved_locations', 'text', (c) => c.notNull())
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('parent_id', 'text')
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('status_reason', 'text')
        .addColumn('access_token', 'text')
        .addColumn('refresh_token', 'text')
        .addColumn('key_id', 'text')
        .addColumn('expires_at', 'bigint')
        .addColumn('refresh_token_issued_at', 'bigint')
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('lock_owner', 'text')
        .addColumn('lock_until', 'bigint')
        // The target of upsertInstallation's ON CONFLICT: re-installing never duplicates.
        .addUniqueConstraint('installations_client_resource_key', ['client_id', 'resource_key'])
        .execute()
      await db.schema.createIndex('installations_company_id_idx').on('installations').column('company_id').execute()
      await db.schema.createIndex('installations_parent_id_idx').on('installations').column('parent_id').execute()
      await db.schema.createIndex('installations_status_idx').on('installations').column('status').execute()
      await db.schema.createIndex('installations_key_id_idx').on('installations').column('key_id').execute()

      await db.schema
        .createTable('oauth_states')
        .addColumn('state_hash', 'text', (c) => c.primaryKey())
        .addColumn('data', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute()
      await db.schema.createIndex('oauth_states_expires_at_idx').on('oauth_states').column('expires_at').execute()

      await db.schema
        .createTable('webhook_events')
        .addColumn('webhook_id', 'text', (c) => c.primaryKey())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('last_error', 'text')
        .addColumn('location_id', 'text')
        .addColumn('company_id', 'text')
        .addColumn('received_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute()
      await db.schema.createIndex('webhook_events_status_idx').on('webhook_events').columns(['status', 'received_at']).execute()
      await db.schema.createIndex('webhook_events_expires_at_idx').on('webhook_events').column('expires_at').execute()

      await db.schema
        .createTable('audit_log')
        .addColumn('id', dialect === 'postgres' ? 'bigint' : 'integer', (c) =>
          dialect === 'postgres' ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey().autoIncrement(),
        )
        .addColumn('installation_id', 'text')
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('detail', 'text', (c) => c.notNull())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .execute()
      await db.schema.createIndex('audit_log_installation_id_idx').on('audit_log').column('installation_id').execute()
    },

    async down(db: Kysely<unknown>): Promise<void> {
      for (const table of ['audit_log', 'webhook_events', 'oauth_states', 'installations']) {
        await db.schema.dropTable(table).ifExists().execute()
      }
    },
  }
}
