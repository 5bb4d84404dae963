/**
 * The token vault: an encrypted store of HighLevel installations on SQLite or PostgreSQL.
 *
 * @example
 * import { createVault } from './vault/index.js'
 * const vault = await createVault({ databaseUrl: config.databaseUrl, keys: config.encryptionKeys })
 * const row = await vault.installations.findByLocation(config.clientId, 'LOC')
 */
export { createVault, DEFAULT_LOCK_LEASE_MS, type CreateVaultOptions, type DatabaseTimeouts } from './create-vault.js'
export { DEFAULT_LOCK_WAIT_MS, databaseError } from './sql-vault.js'
export { TokenCipher } from './token-cipher.js'
export type {
  AuditEntry,
  AuditNote,
  AuditLog,
  AuditRecord,
  DueInstallation,
  DueQuery,
  FlagStore,
  InstallInfo,
  Installation,
  InstallationFilter,
  InstallationInput,
  InstallationPage,
  InstallationQuery,
  InstallationStatus,
  InstallationStore,
  InstallationSummary,
  KeyRotation,
  OAuthStateData,
  OAuthStateStore,
  RefreshLockOptions,
  RefreshLocks,
  TokenSet,
  TokenSource,
  UpsertInstallationOptions,
  UserType,
  Vault,
  WebhookEventRecord,
  WebhookEventStore,
  WebhookStatus,
} from './types.js'
