/**
 * The token vault's contract: what an installation is, and what every storage backend
 * (SQLite, PostgreSQL) must do. Backends live beside this file; callers depend on this file only.
 */

export type UserType = 'Location' | 'Company'

/** `needs_reauthorization`: the grant is dead and Reconnect failed. `uninstalled`: tokens wiped, row kept for audit. */
export type InstallationStatus = 'active' | 'needs_reauthorization' | 'uninstalled'

/**
 * Where the tokens come from:
 * - `oauth`: an authorization-code exchange (or Reconnect); has a rotating refresh token.
 * - `agency`: a location token minted from the company installation (`POST /oauth/locationToken`); no refresh token.
 */
export type TokenSource = 'oauth' | 'agency'

/** Decrypted tokens. Only ever held in memory. */
export interface TokenSet {
  accessToken: string
  /** `null` for location tokens minted from an agency token. */
  refreshToken: string | null
  /** When the access token expires. */
  expiresAt: Date
}

/** An installation as listed: everything but the tokens. Safe to render or return from an API. */
export interface InstallationSummary {
  /** Our id (UUID). */
  id: string
  clientId: string
  appId: string
  companyId: string
  /** `null` for an agency (company) installation. */
  locationId: string | null
  userType: UserType
  userId: string | null
  scopes: string[]
  planId: string | null
  isBulkInstallation: boolean
  installToFutureLocations: boolean | null
  approveAllLocations: boolean | null
  approvedLocations: string[]
  source: TokenSource
  /** For `source: 'agency'`: the id of the company installation the token was minted from. */
  parentId: string | null
  status: InstallationStatus
  /** Why the status is what it is (e.g. "refresh token rejected: invalid_grant"). Never contains a secret. */
  statusReason: string | null
  /** Access-token expiry; `null` when no token is held (uninstalled). */
  expiresAt: Date | null
  /** When the refresh token was last issued: it dies one year later if unused. */
  refreshTokenIssuedAt: Date | null
  /** Compare-and-swap counter: bumped by every change of tokens or status. */
  version: number
  createdAt: Date
  updatedAt: Date
}

/** An installation with its decrypted tokens (`null` once wiped). */
export interface Installation extends InstallationSummary {
  tokens: TokenSet | null
}

/** What an install (code exchange), a Reconnect or an agency mint stores. */
export interface InstallationInput {
  clientId: string
  companyId: string
  locationId: string | null
  userType: UserType
  userId?: string | null
  scopes: string[]
  planId?: string | null
  isBulkInstallation?: boolean
  installToFutureLocations?: boolean | null
  approveAllLocations?: boolean | null
  approvedLocations?: string[]
  source: TokenSource
  parentId?: string | null
  tokens: TokenSet
}

export interface InstallationFilter {
  status?: InstallationStatus
  companyId?: string
  clientId?: string
  source?: TokenSource
  parentId?: string
}

/** A one-time OAuth `state` and what it carries (set at `/oauth/install`, consumed at the callback). */
export interface OAuthStateData {
  /** Where to send the user after a successful install, if the app asked for it. */
  returnTo?: string
}

/** A webhook as persisted before it is acknowledged. */
export interface WebhookEventRecord {
  webhookId: string
  type: string
  /** The verified JSON body as received (webhooks carry no tokens). */
  payload: unknown
  status: 'pending' | 'processed' | 'failed' | 'waiting'
  attempts: number
  lastError: string | null
  /** For `waiting` INSTALL events: the resource whose code exchange has not landed yet. */
  locationId: string | null
  companyId: string | null
  receivedAt: Date
  /** After this the webhookId may be forgotten (replays are stale by then anyway). */
  expiresAt: Date
}

export interface AuditEntry {
  installationId: string | null
  action: string
  detail?: Record<string, unknown>
}

export interface AuditRecord extends Required<AuditEntry> {
  id: number
  at: Date
}

/** Options of {@link Vault.upsertInstallation}. */
export interface UpsertInstallationOptions {
  /**
   * Replace an existing row for the same resource only when its `source` is one of these. When the
   * existing row has another source, nothing changes and the existing row is returned as it is (check
   * its `source`). An agency mint passes `['agency']` so it can never overwrite a location's own OAuth
   * installation (and its refresh token) — not even an `uninstalled` one. Default: replace any row.
   */
  onlyReplaceSource?: readonly TokenSource[]
}

export interface RefreshLockOptions {
  /** Give up waiting for another holder after this long (GHL_LOCK_TIMEOUT). */
  waitMs?: number
}

/**
 * The store. Every method is safe to call from many processes sharing one database.
 * Tokens are encrypted (AES-256-GCM) before they reach SQL and decrypted after; no method logs a token.
 */
export interface Vault {
  readonly dialect: 'sqlite' | 'postgres'

  /** Runs pending migrations (idempotent; safe when several processes start at once). */
  migrate(): Promise<void>
  close(): Promise<void>

  /**
   * Inserts, or updates the row of the same (clientId, locationId) — or (clientId, companyId) for an
   * agency install: re-installing never duplicates. Sets status `active`, bumps `version`.
   */
  upsertInstallation(input: InstallationInput, options?: UpsertInstallationOptions): Promise<Installation>
  getInstallation(id: string): Promise<Installation | undefined>
  /** The installation for a location (its own OAuth install or an agency-minted one), any status. */
  findByLocation(clientId: string, locationId: string): Promise<Installation | undefined>
  /** The agency (company-level) installation, any status. */
  findByCompany(clientId: string, companyId: string): Promise<Installation | undefined>
  listInstallations(filter?: InstallationFilter): Promise<InstallationSummary[]>
  /** The version only: a cheap "has someone else changed it" check. */
  getVersion(id: string): Promise<number | undefined>

  /**
   * Compare-and-swap: stores new tokens only if the row's version is still `expectedVersion`.
   * Returns the updated installation, or `undefined` when the version moved (someone else won).
   */
  updateTokens(
    id: string,
    expectedVersion: number,
    tokens: TokenSet,
    extra?: { scopes?: string[]; status?: InstallationStatus; statusReason?: string | null },
  ): Promise<Installation | undefined>

  /**
   * Sets the status (bumps version). With `wipeTokens`, the encrypted tokens are deleted from the row.
   * With `expectedVersion`, a compare-and-swap: the status is set only if the row's version is still
   * that one; `undefined` otherwise (someone else changed the row, e.g. a re-install).
   */
  setStatus(
    id: string,
    status: InstallationStatus,
    options?: { reason?: string; wipeTokens?: boolean; expectedVersion?: number },
  ): Promise<InstallationSummary | undefined>

  /**
   * Runs `fn` while holding this installation's refresh lock, exclusive across every process sharing
   * the database (PostgreSQL: advisory lock held by a transaction; SQLite: a lease row). A holder that
   * dies (SIGKILL) releases it: PostgreSQL ends its session; the SQLite lease expires.
   */
  withRefreshLock<T>(id: string, fn: () => Promise<T>, options?: RefreshLockOptions): Promise<T>

  /** Stores a one-time OAuth state. */
  saveState(state: string, data: OAuthStateData, expiresAt: Date): Promise<void>
  /** Atomically consumes a state: returns its data once, if it exists and has not expired; else `undefined`. */
  consumeState(state: string): Promise<OAuthStateData | undefined>

  /** Persists a webhook. `duplicate` when this webhookId was already recorded (replay). */
  recordWebhook(event: Omit<WebhookEventRecord, 'status' | 'attempts' | 'lastError'> & { status?: WebhookEventRecord['status'] }): Promise<'new' | 'duplicate'>
  /** Changes an event's status; also clears its processing claim ({@link Vault.claimWebhook}). */
  updateWebhook(webhookId: string, change: { status: WebhookEventRecord['status']; lastError?: string | null; incrementAttempts?: boolean }): Promise<void>
  /**
   * Atomically claims a `pending` or `failed` event for processing by `owner` until `until`, across every
   * process sharing the database: `true` for exactly one of concurrent claimants, `false` when the event
   * is processed, waiting, unknown, or claimed by anyone (this owner included) with a claim not yet past.
   * The claim is cleared by {@link Vault.updateWebhook}. Options: `now` — the claimant's clock (default:
   * the vault's); `attempts` — claim only if the event's attempt count is still this (a stale listing
   * cannot retry an attempt someone else already made).
   */
  claimWebhook(webhookId: string, owner: string, until: Date, options?: { now?: Date; attempts?: number }): Promise<boolean>
  /** Events to (re)process: `pending` and `failed` ones (oldest first), or `waiting` ones for a resource. */
  listWebhooks(filter: { status: WebhookEventRecord['status']; locationId?: string; companyId?: string; limit?: number }): Promise<WebhookEventRecord[]>
  /** Stored events of any status (or of `status`), newest first, for operators: `ghl-connect webhooks`. Default limit 100. */
  listRecentWebhooks(filter?: { status?: WebhookEventRecord['status']; webhookId?: string; limit?: number }): Promise<WebhookEventRecord[]>
  /** Deletes webhook records past `expiresAt`; returns how many. */
  purgeExpiredWebhooks(now: Date): Promise<number>

  audit(entry: AuditEntry): Promise<void>
  listAudit(installationId?: string): Promise<AuditRecord[]>

  /** Re-encrypts every stored secret with the first configured key; returns the number of rows changed. */
  rotateKeys(): Promise<number>
}
