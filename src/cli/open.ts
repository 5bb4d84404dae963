/**
 * Opening the vault or a whole connector for the operator commands (`installations`, `call`, `refresh`,
 * `webhooks`), which work on the database a running server uses.
 */
import { randomBytes } from 'node:crypto'
import { loadConfig, loadDatabaseConfig } from '../config.js'
import { createConnector, type Connector } from '../connector.js'
import type { Logger } from '../logger.js'
import { createVault } from '../vault/create-vault.js'
import type { Vault } from '../vault/types.js'
import { requireExistingDatabase } from './database-url.js'

/**
 * Opens the vault with the database settings only. Listing never decrypts a token, so without
 * GHL_ENCRYPTION_KEY an ephemeral key satisfies the vault.
 */
export async function openVaultForListing(logger: Logger): Promise<Vault> {
  const db = loadDatabaseConfig({ allowMissingKey: true })
  requireExistingDatabase(db.databaseUrl)
  const keys = db.encryptionKeys.length > 0 ? db.encryptionKeys : [{ id: 'listing-only', key: randomBytes(32) }]
  return createVault({ databaseUrl: db.databaseUrl, keys, logger })
}

/** A connector on the configured database, without the background refresher and webhook loop. */
export async function openConnector(logger: Logger): Promise<Connector> {
  const config = loadConfig()
  requireExistingDatabase(config.databaseUrl)
  return createConnector({ config, logger, background: false })
}
