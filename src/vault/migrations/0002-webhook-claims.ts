/**
 * 0002: an atomic processing claim on `webhook_events` (`claimed_by`, `claimed_until` in ms), so that of
 * several instances retrying or resuming the same event only one processes it (see `Vault.claimWebhook`).
 * SQLite adds one column per ALTER TABLE, so each column is its own statement on both dialects.
 */
import type { Kysely, Migration } from 'kysely'

/** Builds migration 0002 (the same on both dialects). */
export function webhookClaimsMigration(): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('webhook_events').addColumn('claimed_by', 'text').execute()
      await db.schema.alterTable('webhook_events').addColumn('claimed_until', 'bigint').execute()
    },

    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('webhook_events').dropColumn('claimed_until').execute()
      await db.schema.alterTable('webhook_events').dropColumn('claimed_by').execute()
    },
  }
}
