/**
 * The vault's migrations, provided from code (not read from a folder) so they run the same from
 * `src/` under tsx and from the compiled `dist/`. Names sort in order of application; never rename or
 * edit one that has shipped — add the next.
 */
import type { Migration, MigrationProvider } from 'kysely'
import { initialMigration } from './0001-initial.js'
import { webhookClaimsMigration } from './0002-webhook-claims.js'
import { lifecycleAndScaleMigration } from './0003-lifecycle-and-scale.js'
import { marketplaceMigration } from './0004-marketplace.js'
import { consoleMigration } from './0005-console.js'
import { fewerIndexesMigration } from './0006-fewer-indexes.js'

/** The dialects the vault runs on. */
export type VaultDialect = 'sqlite' | 'postgres'

/** A Kysely {@link MigrationProvider} with every vault migration for `dialect`. */
export function vaultMigrations(dialect: VaultDialect): MigrationProvider {
  return {
    async getMigrations(): Promise<Record<string, Migration>> {
      return {
        '0001-initial': initialMigration(dialect),
        '0002-webhook-claims': webhookClaimsMigration(),
        '0003-lifecycle-and-scale': lifecycleAndScaleMigration(),
        '0004-marketplace': marketplaceMigration(),
        '0005-console': consoleMigration(dialect),
        '0006-fewer-indexes': fewerIndexesMigration(),
      }
    },
  }
}
