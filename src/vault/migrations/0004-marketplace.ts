/**
 * 0004: what the Marketplace features keep.
 *
 * marketplace_charges: one row per (app, location, eventId) — written before a wallet charge is sent,
 * so a retry, a second instance or a crash never charges twice; its claim (owner, until) is the lease
 * of whoever is sending it. trigger_subscriptions: the workflows subscribed to the app's triggers.
 * external_credentials: third-party credentials from external authentication, encrypted like tokens.
 * billing_reports: external-billing reports to HighLevel, one per (resource, payment).
 * The same on both dialects; every lookup is a primary-key or index read.
 */
import type { Kysely, Migration } from 'kysely'

/** Builds migration 0004 (the same on both dialects). */
export function marketplaceMigration(): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('marketplace_charges')
        .addColumn('client_id', 'text', (c) => c.notNull())
        .addColumn('location_id', 'text', (c) => c.notNull())
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addColumn('company_id', 'text', (c) => c.notNull())
        .addColumn('meter_id', 'text', (c) => c.notNull())
        .addColumn('request', 'text', (c) => c.notNull())
        .addColumn('request_hash', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('charge_id', 'text')
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('last_error', 'text')
        .addColumn('claimed_by', 'text')
        .addColumn('claimed_until', 'bigint')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('marketplace_charges_pk', ['client_id', 'location_id', 'event_id'])
        .execute()
      // Reconciliation sweeps (pending rows nobody holds) and lookups by HighLevel's charge id.
      await db.schema.createIndex('marketplace_charges_status_idx').on('marketplace_charges').columns(['client_id', 'status', 'created_at']).execute()
      await db.schema.createIndex('marketplace_charges_charge_id_idx').on('marketplace_charges').columns(['client_id', 'location_id', 'charge_id']).execute()

      await db.schema
        .createTable('trigger_subscriptions')
        .addColumn('client_id', 'text', (c) => c.notNull())
        .addColumn('trigger_id', 'text', (c) => c.notNull())
        .addColumn('trigger_key', 'text', (c) => c.notNull())
        .addColumn('location_id', 'text', (c) => c.notNull())
        .addColumn('company_id', 'text')
        .addColumn('workflow_id', 'text', (c) => c.notNull())
        .addColumn('target_url', 'text', (c) => c.notNull())
        .addColumn('filters', 'text', (c) => c.notNull())
        .addColumn('version', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('trigger_subscriptions_pk', ['client_id', 'trigger_id'])
        .execute()
      // fire(key, locationId): every subscription of one trigger at one location.
      await db.schema
        .createIndex('trigger_subscriptions_location_idx')
        .on('trigger_subscriptions')
        .columns(['client_id', 'location_id', 'trigger_key'])
        .execute()

      await db.schema
        .createTable('external_credentials')
        .addColumn('client_id', 'text', (c) => c.notNull())
        .addColumn('resource_key', 'text', (c) => c.notNull())
        .addColumn('location_id', 'text')
        .addColumn('company_id', 'text')
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('secret', 'text', (c) => c.notNull())
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('details', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('external_credentials_pk', ['client_id', 'resource_key'])
        .execute()
      await db.schema.createIndex('external_credentials_key_id_idx').on('external_credentials').column('key_id').execute()

      await db.schema
        .createTable('billing_reports')
        .addColumn('client_id', 'text', (c) => c.notNull())
        .addColumn('resource_key', 'text', (c) => c.notNull())
        .addColumn('reference', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('last_error', 'text')
        .addColumn('claimed_by', 'text')
        .addColumn('claimed_until', 'bigint')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('billing_reports_pk', ['client_id', 'resource_key', 'reference'])
        .execute()
      await db.schema.createIndex('billing_reports_status_idx').on('billing_reports').columns(['client_id', 'status', 'created_at']).execute()
    },

    async down(db: Kysely<unknown>): Promise<void> {
      for (const index of [
        'billing_reports_status_idx',
        'external_credentials_key_id_idx',
        'trigger_subscriptions_location_idx',
        'marketplace_charges_charge_id_idx',
        'marketplace_charges_status_idx',
      ]) {
        await db.schema.dropIndex(index).ifExists().execute()
      }
      for (const table of ['billing_reports', 'external_credentials', 'trigger_subscriptions', 'marketplace_charges']) {
        await db.schema.dropTable(table).ifExists().execute()
      }
    },
  }
}
