/**
 * `ghl-connect migrate`: applies the vault's migrations. Needs the database settings only.
 */
import { randomBytes } from 'node:crypto'
import { loadDatabaseConfig } from '../../config.js'
import { defineCommand, expectPositionals } from '../command.js'
import { describeDatabase } from '../database-url.js'
import { print } from '../output.js'

export const migrateCommand = defineCommand({
  name: 'migrate',
  summary: 'Apply the vault\'s database migrations',
  help: `Usage: ghl-connect migrate

Applies pending migrations of the token vault (idempotent; safe while other instances start). Creates
the SQLite file when it does not exist. The server also migrates at start; run this first when
deploying several instances.

Needs only DATABASE_URL (default ./data/ghl-connect.db; a file path or postgres://…) and GHL_DATA_DIR.

Example:
  DATABASE_URL=postgres://app@db.internal/ghl ghl-connect migrate`,
  options: {},
  async run({ positionals }) {
    expectPositionals('migrate', positionals, 0, 0, '')
    const config = loadDatabaseConfig({ allowMissingKey: true })
    const { humanLogger } = await import('../cli-logger.js')
    const { createVault } = await import('../../vault/create-vault.js')
    const logger = await humanLogger(process.env.LOG_LEVEL ?? 'warn', 2)
    // Migrations never read or write a token: without a configured key, an ephemeral one satisfies the vault.
    const keys = config.encryptionKeys.length > 0 ? config.encryptionKeys : [{ id: 'migrate-only', key: randomBytes(32) }]
    const vault = await createVault({ databaseUrl: config.databaseUrl, keys, logger, migrate: false })
    try {
      await vault.migrate()
    } finally {
      await vault.close()
    }
    print(`Migrations applied: ${describeDatabase(config.databaseUrl)}`)
    return 0
  },
})
