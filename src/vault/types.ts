/**
 * The token vault's contract: what an installation is, and what every storage backend (SQLite,
 * PostgreSQL) must do. The vault is a set of role interfaces — installations, refresh locks, OAuth
 * states, webhook events, the audit log, connector flags, key rotation — each its own object on
 * {@link Vault} (as kysely splits Driver, DatabaseConnection and DialectAdapter), so a caller depends
 * on the role it uses. Backends live beside this file; callers depend on this file only.
 */

import type { BillingReportStore, ChargeStore, CredentialStore, TriggerSubscriptionStore } from './marketplace-types.js'

export type UserType = 'Location' | 'Company'

/**
 * - `active`: usable.
 * - `suspended`: HighLevel refused a refresh with "Location is not active" (a suspended sub-account);
 *   the refresh token is kept, calls fail fast, the background refresher retries on a slow schedule
 *   and the installation becomes `active` again by itself once a refresh succeeds.
 * - `needs_reauthorization`: the grant is dead and cannot be recovered without a HighLevel user.
 * - `uninstalled`: tokens wiped, row kept for audit.
 */
export type InstallationStatus = 'active' | 'suspended' | 'needs_reauthorization' | 'uninstalled'

/**
 * Where the tokens come from:
 * - `oauth`: an authorization-code exchange (or Reconnect); has a rotating refresh token.
 * - `agency`: a location token minted from the company installation (`POST /oauth/locationToken`); no
 *   refresh token. A row of this source without tokens records that an agency install covers the
 *   location (approved at install, or listed by `/oauth/installedLocations`); the first call mints.
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

/**
 * What HighLevel's INSTALL webhook says about an install beyond ids (AppInstall.md), and the plan
 * history of PLAN_CHANGE (PlanChange.md). Stored as given; never holds a secret.
 */
export interface InstallInfo {
  trial?: { onTrial?: boolean; trialDuration?: number; trialStartDate?: string } | null
  isWhitelabelCompany?: boolean | null
  whitelabelDetails?: Record<string, unknown> | null
  versionId?: string | null
  installType?: string | null
  /** The plan before the last PLAN_CHANGE. */
  previousPlanId?: string | null
  planChangedAt?: string | null
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
  /** Access-token expiry; `null` when no token is held (uninstalled, or a covered location not minted yet). */
  expiresAt: Date | null
  /** When the refresh token was last issued: it dies one year later if unused. */
  refreshTokenIssuedAt: Date | null
  /** Names, when known (token answer, INSTALL webhook, or a lookup), for people. */
  locationName: string | null
  companyName: string | null
  installInfo: InstallInfo
  /** Transient refresh failures in a row (reset by a successful refresh). */
  refreshFailures: number
  /** The last refresh, mint or reconnect that stored tokens. */
  lastRefreshAt: Date | null
  /** The last failure of a refresh (its code and message; never a secret). */
  lastError: string | null
  /** The background refresher leaves the row alone until then (backoff after failures, suspended rows). */
  retryAt: Date | null
  /** Compare-and-swap counter: bumped by every change of tokens or status. */
  version: number
  createdAt: Date
  updatedAt: Date
}

/** An installation with its decrypted tokens (`null` once wiped, or before the first mint). */
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
  locationName?: string | null
  companyName?: string | null
  tokens: TokenSet
}

export interface InstallationFilter {
  status?: InstallationStatus
  companyId?: string
  clientId?: string
  source?: TokenSource
  parentId?: string
  userType?: UserType
  /** At most this many rows (default: all — only for bounded sets such as one agency's children). */
  limit?: number
}

/** A page of installations for people (operator page, API): filters, search, keyset paging. */
export interface InstallationQuery {
  clientId?: string
  status?: InstallationStatus
  /** `agency` (company installs), `location` (own sub-account installs), `minted` (from an agency). */
  kind?: 'agency' | 'location' | 'minted'
  planId?: string
  /** Matches an id (installation, location, company) exactly or a name by prefix, case-insensitive. */
  search?: string
  /** Rows per page (1–500, default 50). */
  limit?: number
  /** The `next` of the previous page. */
  cursor?: string
}

export interface InstallationPage {
  items: InstallationSummary[]
  /** Pass as `cursor` for the next page; absent on the last page. */
  next?: string
}

/** A row of a {@link InstallationStore.due} page. */
export interface DueInstallation {
  id: string
  /** The version read: a refresh made meanwhile by another process is seen (and not repeated) under the lock. */
  version: number
  status: InstallationStatus
  expiresAt: Date | null
}

/** Rows the background refresher should look at, oldest expiry first. */
export interface DueQuery {
  clientId: string
  /** Access tokens expiring at or before this instant are due. */
  expiresBefore: Date
  /** Refresh tokens issued at or before this instant are due (they die a year after issue if unused). */
  issuedBefore: Date
  /** Rows with `retryAt` after this are skipped (and suspended rows are due once it passes). */
  now: Date
  limit: number
  /** Claim the returned rows for `claimMs` as `owner`, so other instances skip them. */
  claim?: { owner: string; claimMs: number }
}

/** A one-time OAuth `state` and what it carries (set at `/oauth/install`, consumed at the callback). */
export interface OAuthStateData {
  /** Where to send the user after a successful install, if the app asked for it. */
  returnTo?: string
  /** A re-authorization link: the installation it restores (informational; the upsert keys on the resource). */
  installationId?: string
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

export type WebhookStatus = WebhookEventRecord['status']

export interface AuditEntry {
  installationId: string | null
  action: string
  detail?: Record<string, unknown>
}

/** An audit entry written together with a change of an installation (its id is the installation's). */
export interface AuditNote {
  action: string
  detail?: Record<string, unknown>
}

export interface AuditRecord extends Required<AuditEntry> {
  id: number
  at: Date
}

/** Options of {@link InstallationStore.upsert}. */
export interface UpsertInstallationOptions {
  /**
   * Replace an existing row for the same resource only when its `source` is one of these. When the
   * existing row has another source, nothing changes and the existing row is returned as it is (check
   * its `source`). An agency mint passes `['agency']` so it can never overwrite a location's own OAuth
   * installation (and its refresh token) — not even an `uninstalled` one. Default: replace any row.
   */
  onlyReplaceSource?: readonly TokenSource[]
  /**
   * An audit entry written with the row, in the same statement (PostgreSQL) or transaction (SQLite),
   * only when the row was written; its detail gets the row's new `version`.
   */
  audit?: AuditNote
}

export interface RefreshLockOptions {
  /** Give up waiting for another holder after this long (GHL_LOCK_TIMEOUT). */
  waitMs?: number
  /** Stop waiting when this aborts (GHL_ABORTED); a lock already held is kept until `fn` ends. */
  signal?: AbortSignal
}

/** Installations: one row per (client id, location) or (client id, company). */
export interface InstallationStore {
  /**
   * Inserts, or updates the row of the same (clientId, locationId) — or (clientId, companyId) for an
   * agency install: re-installing never duplicates. Sets status `active`, bumps `version`, resets the
   * failure count.
   */
  upsert(input: InstallationInput, options?: UpsertInstallationOptions): Promise<Installation>
  get(id: string): Promise<Installation | undefined>
  /** The installation for a location (its own OAuth install or an agency one), any status. One indexed read. */
  findByLocation(clientId: string, locationId: string): Promise<Installation | undefined>
  /** The agency (company-level) installation, any status. One indexed read. */
  findByCompany(clientId: string, companyId: string): Promise<Installation | undefined>
  /** Rows matching every given field, oldest first. Meant for bounded sets; pass `limit` otherwise. */
  list(filter?: InstallationFilter): Promise<InstallationSummary[]>
  /** A page for people: search, filters, keyset paging on indexed columns. */
  page(query: InstallationQuery): Promise<InstallationPage>
  /** How many rows match (for the page's counters); with `max`, counting stops there (the answer is at most `max`). */
  count(query: Omit<InstallationQuery, 'cursor' | 'limit'>, options?: { max?: number }): Promise<number>
  /** The version only: a cheap "has someone else changed it" check. */
  getVersion(id: string): Promise<number | undefined>

  /**
   * Compare-and-swap: stores new tokens only if the row's version is still `expectedVersion`.
   * Returns the updated installation, or `undefined` when the version moved (someone else won).
   * Also resets the failure count and `retryAt`, and records `lastRefreshAt`. With `audit`, an audit
   * entry is written with the update, atomically (its detail gains the new `version`); none when the
   * swap is lost.
   */
  updateTokens(
    id: string,
    expectedVersion: number,
    tokens: TokenSet,
    extra?: { scopes?: string[]; status?: InstallationStatus; statusReason?: string | null; audit?: AuditNote },
  ): Promise<Installation | undefined>

  /**
   * Sets the status (bumps version). With `wipeTokens`, the encrypted tokens are deleted from the row.
   * With `expectedVersion`, a compare-and-swap: the status is set only if the row's version is still
   * that one; `undefined` otherwise (someone else changed the row, e.g. a re-install). `retryAt`: when
   * the background refresher may try again (suspended rows).
   */
  setStatus(
    id: string,
    status: InstallationStatus,
    options?: { reason?: string; wipeTokens?: boolean; expectedVersion?: number; retryAt?: Date | null },
  ): Promise<InstallationSummary | undefined>

  /**
   * Records a transient refresh failure (no version bump: the tokens are unchanged): the failure count
   * goes up by one, `lastError` and `retryAt` are set. Returns the new failure count.
   */
  recordFailure(id: string, failure: { error: string; retryAt: Date | null }): Promise<number>

  /** Names and install details learned from HighLevel (INSTALL, PLAN_CHANGE, lookups); no version bump. */
  setDetails(
    id: string,
    details: { locationName?: string | null; companyName?: string | null; planId?: string | null; installInfo?: InstallInfo; userId?: string | null },
  ): Promise<void>

  /**
   * Records that an agency installation covers these locations: a token-less `agency` row per location
   * that has no row yet (an existing row of any source is left as it is). Returns how many were added.
   */
  coverLocations(agency: InstallationSummary, locationIds: readonly string[]): Promise<number>

  /**
   * Imports installations in batches (a move from another store, a benchmark's seed): one multi-row
   * INSERT per chunk; a row that exists for the same (clientId, resource) is left as it is. Every input
   * is checked before anything is stored. Returns how many rows were added.
   */
  insertMany(inputs: readonly InstallationInput[]): Promise<number>

  /** Active agency (Company, OAuth) installations of the app, at most `limit` (indexed). */
  agencies(clientId: string, limit: number): Promise<InstallationSummary[]>

  /**
   * OAuth rows the background refresher should refresh: active ones whose access token expires before
   * `expiresBefore` or whose refresh token was issued before `issuedBefore`, and suspended ones whose
   * `retryAt` has passed — never rows claimed by someone else or waiting for `retryAt`. One indexed page,
   * of the columns the refresher needs only (the refresh reads the whole row under its lock anyway).
   */
  due(query: DueQuery): Promise<DueInstallation[]>
}

/** The per-installation refresh lock, exclusive across every process sharing the database. */
export interface RefreshLocks {
  /**
   * Runs `fn` while holding this installation's refresh lock (PostgreSQL: advisory lock held by a
   * transaction; SQLite: a lease row). A holder that dies (SIGKILL) releases it: PostgreSQL ends its
   * session; the SQLite lease expires. `fn` may be given the installation as read right after the lock
   * was granted (PostgreSQL reads it in the same message as the lock: one round trip less per refresh);
   * when it is not, `fn` reads it itself.
   */
  withRefreshLock<T>(id: string, fn: (row?: Installation) => Promise<T>, options?: RefreshLockOptions): Promise<T>
}

/** One-time OAuth states, and the authorization codes already exchanged. */
export interface OAuthStateStore {
  /** Stores a one-time OAuth state. */
  save(state: string, data: OAuthStateData, expiresAt: Date): Promise<void>
  /** Atomically consumes a state: returns its data once, if it exists and has not expired; else `undefined`. */
  consume(state: string): Promise<OAuthStateData | undefined>
  /**
   * Remembers (a hash of) an authorization code until `expiresAt`: `true` the first time, `false` when it
   * was already remembered — a replayed code must never be exchanged again (RFC 6749 §4.1.2: HighLevel
   * may revoke the tokens issued from a code used twice).
   */
  rememberCode(code: string, expiresAt: Date): Promise<boolean>
  /** Forgets a code remembered by {@link rememberCode} (its exchange failed before HighLevel used it). */
  forgetCode(code: string): Promise<void>
}

/** Webhook events: the replay guard and the work queue. */
export interface WebhookEventStore {
  /** Persists a webhook. `duplicate` when this webhookId was already recorded (replay). */
  record(event: Omit<WebhookEventRecord, 'status' | 'attempts' | 'lastError'> & { status?: WebhookStatus }): Promise<'new' | 'duplicate'>
  /**
   * Atomically claims an event that is not `processed` for processing by `owner` until `until`, across
   * every process sharing the database: `true` for exactly one of concurrent claimants, `false` when the
   * event is processed, unknown, or claimed by anyone (this owner included) with a claim not yet past.
   * Options: `now` — the claimant's clock (default: the vault's); `attempts` — claim only if the event's
   * attempt count is still this (a stale listing cannot retry an attempt someone else already made);
   * `statuses` — claim only in one of these statuses (default `pending`, `failed`, `waiting`).
   */
  claim(webhookId: string, owner: string, until: Date, options?: { now?: Date; attempts?: number; statuses?: readonly WebhookStatus[] }): Promise<boolean>
  /**
   * Records the outcome of a claimed attempt and clears the claim — only while `owner` still holds it:
   * `false` (nothing written) when the claim passed to someone else meanwhile.
   */
  complete(webhookId: string, owner: string, change: { status: WebhookStatus; lastError?: string | null; incrementAttempts?: boolean }): Promise<boolean>
  /** An operator's replay: back to `pending` with attempts reset, unclaimed. `false` when unknown. */
  requeue(webhookId: string): Promise<boolean>
  get(webhookId: string): Promise<WebhookEventRecord | undefined>
  /** Events of one status (oldest first), optionally for a resource; or of any status, newest first, for people. */
  list(filter: { status?: WebhookStatus; type?: string; locationId?: string; companyId?: string; limit?: number; newestFirst?: boolean }): Promise<WebhookEventRecord[]>
  /** Deletes webhook records past `expiresAt`; returns how many. */
  purgeExpired(now: Date): Promise<number>
}

/** The append-only audit log. */
export interface AuditLog {
  append(entry: AuditEntry): Promise<void>
  /** Entries oldest first; `limit` keeps the newest `limit`. */
  list(installationId?: string, options?: { limit?: number }): Promise<AuditRecord[]>
  /** Deletes at most `limit` of the oldest entries written before `before` (one statement); returns how many. */
  purgeBefore(before: Date, limit: number): Promise<number>
}

/**
 * Small facts the connector's instances share through the database, each with an expiry — e.g.
 * "HighLevel's Reconnect endpoint is unavailable for this app until …".
 */
export interface FlagStore {
  get(name: string): Promise<{ value: string; expiresAt: Date } | undefined>
  set(name: string, value: string, expiresAt: Date): Promise<void>
  /**
   * Sets the flag only if it is absent or expired — atomically across instances: `true` for exactly one
   * of concurrent claimants (a lease: "I am probing this; wait for my answer").
   */
  claim(name: string, value: string, expiresAt: Date): Promise<boolean>
  delete(name: string): Promise<void>
}

/** Encryption keys. */
export interface KeyRotation {
  /** Re-encrypts every stored secret with the first configured key; returns the number of rows changed. */
  rotate(): Promise<number>
  /** Key ids found on stored rows that are not configured (those rows cannot be read). */
  missing(): Promise<string[]>
}

/** Calls to HighLevel of one installation on one UTC day (`YYYY-MM-DD`), for the operator's console. */
export interface CallStats {
  installationId: string
  day: string
  calls: number
  /** Answers with a status of 400 or more, and calls that got no answer. */
  errors: number
  /** 429 answers from HighLevel. */
  throttled: number
  lastCallAt: Date
}

/** What the call recorder adds in one batch for one installation. */
export interface CallStatsDelta {
  installationId: string
  calls: number
  errors: number
  throttled: number
  /** Epoch ms of the newest call in the batch. */
  lastCallAt: number
}

/** How many of something happened per time bucket (`bucket` = epoch ms of the bucket's start). */
export interface BucketCount {
  bucket: number
  /** An audit action, or a webhook type. */
  key: string
  /** A webhook's status (empty for audit actions). */
  state: string
  n: number
}

/** What the operator's console reads beyond the role stores: counters and aggregates, each one indexed query. */
export interface ConsoleStore {
  /** Adds a batch of call counters (one upsert per installation and day). */
  addCalls(day: string, deltas: readonly CallStatsDelta[]): Promise<void>
  /** The counters of these installations: `today` is that day's row; `lastCallAt` the newest call of any kept day. */
  calls(installationIds: readonly string[], today: string): Promise<Map<string, { today: CallStats | undefined; lastCallAt: Date | null }>>
  /** Deletes counters of days before `day`; returns how many rows. */
  purgeCallsBefore(day: string): Promise<number>
  /** Installations of an app by status (every status present, zeros included). */
  countByStatus(clientId: string): Promise<Record<InstallationStatus, number>>
  /** Audit entries of these actions since `since`, counted per `bucketMs`. */
  auditCounts(since: Date, bucketMs: number, actions: readonly string[]): Promise<BucketCount[]>
  /** Webhook events received since `since`, counted per `bucketMs`, type and status. */
  webhookCounts(since: Date, bucketMs: number): Promise<BucketCount[]>
}

/**
 * The store. Every method is safe to call from many processes sharing one database. Tokens are
 * encrypted (AES-256-GCM) before they reach SQL and decrypted after; no method logs a token.
 */
export interface Vault {
  readonly dialect: 'sqlite' | 'postgres'
  readonly installations: InstallationStore
  readonly locks: RefreshLocks
  readonly states: OAuthStateStore
  readonly webhooks: WebhookEventStore
  readonly audit: AuditLog
  readonly flags: FlagStore
  readonly keys: KeyRotation
  /** Marketplace: wallet charges by eventId (`marketplace-types.ts`). */
  readonly charges: ChargeStore
  /** Marketplace: workflow trigger subscriptions. */
  readonly triggers: TriggerSubscriptionStore
  /** Marketplace: third-party credentials from external authentication (encrypted). */
  readonly credentials: CredentialStore
  /** Marketplace: external-billing reports sent to HighLevel. */
  readonly billingReports: BillingReportStore
  /** The operator's console: call counters and aggregates. */
  readonly console: ConsoleStore

  /** Runs pending migrations (idempotent; safe when several processes start at once). */
  migrate(): Promise<void>
  /** Whether the database answers within `timeoutMs` and every migration is applied. Never throws. */
  check(timeoutMs: number): Promise<{ ok: true } | { ok: false; reason: string }>
  close(): Promise<void>
}
