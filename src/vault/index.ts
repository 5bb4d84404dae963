/**
 * The token vault: an encrypted store of HighLevel installations on SQLite or PostgreSQL.
 *
 * @example
 * import { createVault } from './vault/index.js'
 * const vault = await createVault({ databaseUrl: config.databaseUrl, keys: config.encryptionKeys })
 */
export { createVault, DEFAULT_LOCK_LEASE_MS, type CreateVaultOptions } from './create-vault.js'
export { DEFAULT_LOCK_WAIT_MS } from './sql-vault.js'
export { TokenCipher } from './token-cipher.js'
export type {
  AuditEntry,
  AuditRecord,
  Installation,
  InstallationFilter,
  InstallationInput,
  InstallationStatus,
  InstallationSummary,
  OAuthStateData,
  RefreshLockOptions,
  TokenSet,
  TokenSource,
  UpsertInstallationOptions,
  UserType,
  Vault,
  WebhookEventRecord,
} from './types.js'
