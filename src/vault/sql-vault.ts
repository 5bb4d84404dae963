/**
 * The {@link Vault} on SQL through Kysely: one implementation for SQLite and PostgreSQL. What differs
 * between them (connection set-up, the refresh lock, migration locking) is passed in by
 * {@link createVault}; every query here is written once and runs on both.
 */
import { createHash, randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { Migrator, type Kysely } from 'kysely'
import type { Clock } from '../clock.js'
import { GhlError } from '../errors.js'
import type { Logger } from '../logger.js'
import { KeyedMutex } from './keyed-mutex.js'
import { vaultMigrations } from './migrations/index.js'
import type { RefreshLockBackend } from './refresh-lock.js'
import {
  fromFlag,
  resourceKey,
  toAuditRecord,
  toSummary,
  toWebhookRecord,
  type InstallationRow,
  type VaultDatabase,
} from './schema.js'
import { TokenCipher } from './token-cipher.js'
import type {
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
  Vault,
  WebhookEventRecord,
} from './types.js'

/** Default wait for another holder of the refresh lock. */
export const DEFAULT_LOCK_WAIT_MS = 15_000
const ROTATION_BATCH = 100
const STATUSES: readonly InstallationStatus[] = ['active', 'needs_reauthorization', 'uninstalled']
const WEBHOOK_STATUSES: readonly WebhookEventRecord['status'][] = ['pending', 'processed', 'failed', 'waiting']
const SOURCES: readonly TokenSource[] = ['oauth', 'agency']

/** What {@link createVault} hands the SQL vault. */
export interface SqlVaultOptions {
  dialect: 'sqlite' | 'postgres'
  db: Kysely<VaultDatabase>
  cipher: TokenCipher
  lock: RefreshLockBackend
  clock: Clock
  logger: Logger
  /** Runs the migration (SQLite: serialised per file within the process). */
  migrationGate: <T>(run: () => Promise<T>) => Promise<T>
  /** After tokens are wiped (SQLite: checkpoint the WAL so the old page images leave the disk). */
  afterWipe: () => Promise<void>
  /** Closes the connections. */
  destroy: () => Promise<void>
}

/** The SQL {@link Vault}. Build it with {@link createVault}. */
export class SqlVault implements Vault {
  readonly dialect: 'sqlite' | 'postgres'
  readonly #db: Kysely<VaultDatabase>
  readonly #cipher: TokenCipher
  readonly #lock: RefreshLockBackend
  readonly #clock: Clock
  readonly #logger: Logger
  readonly #options: SqlVaultOptions
  readonly #local = new KeyedMutex()
  #closed = false

  constructor(options: SqlVaultOptions) {
    this.dialect = options.dialect
    this.#db = options.db
    this.#cipher = options.cipher
    this.#lock = options.lock
    this.#clock = options.clock
    this.#logger = options.logger
    this.#options = options
  }

  async migrate(): Promise<void> {
    const migrator = new Migrator({ db: this.#db, provider: vaultMigrations(this.dialect) })
    const { error, results } = await this.#options.migrationGate(() => migrator.migrateToLatest())
    if (error) {
      throw new GhlError('GHL_INTERNAL', `Vault migration failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error })
    }
    for (const r of results ?? []) this.#logger.info({ migration: r.migrationName, status: r.status }, 'vault: migration')
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#options.destroy()
  }

  async upsertInstallation(input: InstallationInput, options: UpsertInstallationOptions = {}): Promise<Installation> {
    validateInstallationInput(input)
    const only = options.onlyReplaceSource
    if (only !== undefined && (!Array.isArray(only) || only.length === 0 || !only.every((x) => SOURCES.includes(x)))) {
      throw badInput([`expected onlyReplaceSource to be a non-empty array of ${SOURCES.join(', ')}`])
    }
    const now = this.#clock.now()
    const rk = resourceKey(input.locationId, input.companyId)
    const sealed = this.#seal(input.clientId, rk, input.tokens, now)
    const row = await this.#db
      .insertInto('installations')
      .values({
        id: randomUUID(),
        client_id: input.clientId,
        app_id: input.clientId.split('-')[0] ?? input.clientId,
        company_id: input.companyId,
        location_id: input.locationId,
        resource_key: rk,
        user_type: input.userType,
        user_id: input.userId ?? null,
        scopes: JSON.stringify(input.scopes),
        plan_id: input.planId ?? null,
        is_bulk_installation: fromFlag(input.isBulkInstallation ?? false) ?? 0,
        install_to_future_locations: fromFlag(input.installToFutureLocations),
        approve_all_locations: fromFlag(input.approveAllLocations),
        approved_locations: JSON.stringify(input.approvedLocations ?? []),
        source: input.source,
        parent_id: input.parentId ?? null,
        status: 'active',
        status_reason: null,
        ...sealed,
        version: 1,
        created_at: now,
        updated_at: now,
        lock_owner: null,
        lock_until: null,
      })
      // One statement, atomic on both dialects (SQLite ≥ 3.24 upsert; PostgreSQL ≥ 9.5): a re-install
      // keeps the row's id and created_at and takes everything else from the new grant. With
      // onlyReplaceSource, `DO UPDATE … WHERE` leaves a row of another source untouched (no row returned).
      .onConflict((oc) => {
        const update = oc.columns(['client_id', 'resource_key']).doUpdateSet((eb) => ({
          app_id: eb.ref('excluded.app_id'),
          company_id: eb.ref('excluded.company_id'),
          location_id: eb.ref('excluded.location_id'),
          user_type: eb.ref('excluded.user_type'),
          user_id: eb.ref('excluded.user_id'),
          scopes: eb.ref('excluded.scopes'),
          plan_id: eb.ref('excluded.plan_id'),
          is_bulk_installation: eb.ref('excluded.is_bulk_installation'),
          install_to_future_locations: eb.ref('excluded.install_to_future_locations'),
          approve_all_locations: eb.ref('excluded.approve_all_locations'),
          approved_locations: eb.ref('excluded.approved_locations'),
          source: eb.ref('excluded.source'),
          parent_id: eb.ref('excluded.parent_id'),
          status: eb.ref('excluded.status'),
          status_reason: eb.ref('excluded.status_reason'),
          access_token: eb.ref('excluded.access_token'),
          refresh_token: eb.ref('excluded.refresh_token'),
          key_id: eb.ref('excluded.key_id'),
          expires_at: eb.ref('excluded.expires_at'),
          refresh_token_issued_at: eb.ref('excluded.refresh_token_issued_at'),
          version: eb('installations.version', '+', 1),
          updated_at: eb.ref('excluded.updated_at'),
        }))
        return only === undefined ? update : update.where('installations.source', 'in', [...only])
      })
      .returningAll()
      .executeTakeFirst()
    if (!row) {
      // The conflicting row is of a source we may not replace: it stays exactly as it was.
      const existing = await this.#findByResource(input.clientId, rk)
      if (!existing) throw new GhlError('GHL_INTERNAL', `The installation for ${rk} was neither stored nor found`)
      this.#logger.info({ installationId: existing.id, source: existing.source, resource: rk }, 'vault: kept an installation of another source')
      return existing
    }
    this.#logger.debug({ installationId: row.id, version: row.version, resource: rk }, 'vault: installation stored')
    return this.#open(row)
  }

  async getInstallation(id: string): Promise<Installation | undefined> {
    const row = await this.#db.selectFrom('installations').selectAll().where('id', '=', id).executeTakeFirst()
    return row && this.#open(row)
  }

  async findByLocation(clientId: string, locationId: string): Promise<Installation | undefined> {
    return this.#findByResource(clientId, resourceKey(locationId, ''))
  }

  async findByCompany(clientId: string, companyId: string): Promise<Installation | undefined> {
    return this.#findByResource(clientId, resourceKey(null, companyId))
  }

  async listInstallations(filter: InstallationFilter = {}): Promise<InstallationSummary[]> {
    let query = this.#db.selectFrom('installations').selectAll()
    if (filter.status !== undefined) query = query.where('status', '=', filter.status)
    if (filter.companyId !== undefined) query = query.where('company_id', '=', filter.companyId)
    if (filter.clientId !== undefined) query = query.where('client_id', '=', filter.clientId)
    if (filter.source !== undefined) query = query.where('source', '=', filter.source)
    if (filter.parentId !== undefined) query = query.where('parent_id', '=', filter.parentId)
    const rows = await query.orderBy('created_at').orderBy('id').execute()
    return rows.map(toSummary)
  }

  async getVersion(id: string): Promise<number | undefined> {
    const row = await this.#db.selectFrom('installations').select('version').where('id', '=', id).executeTakeFirst()
    return row && Number(row.version)
  }

  async updateTokens(
    id: string,
    expectedVersion: number,
    tokens: TokenSet,
    extra: { scopes?: string[]; status?: InstallationStatus; statusReason?: string | null } = {},
  ): Promise<Installation | undefined> {
    const problems = tokenSetProblems(tokens, 'tokens')
    if (!Number.isSafeInteger(expectedVersion)) problems.push(`expected expectedVersion to be an integer, got ${String(expectedVersion)}`)
    if (extra.status !== undefined && !STATUSES.includes(extra.status)) problems.push(`expected extra.status to be one of ${STATUSES.join(', ')}, got ${JSON.stringify(extra.status)}`)
    if (extra.scopes !== undefined && !isStringArray(extra.scopes)) problems.push('expected extra.scopes to be an array of strings')
    if (problems.length > 0) throw badInput(problems)

    // client_id and resource_key never change for a row, so reading them outside the CAS is safe.
    const identity = await this.#db.selectFrom('installations').select(['client_id', 'resource_key']).where('id', '=', id).executeTakeFirst()
    if (!identity) return undefined
    const now = this.#clock.now()
    const row = await this.#db
      .updateTable('installations')
      .set((eb) => ({
        ...this.#seal(identity.client_id, identity.resource_key, tokens, now),
        ...(extra.scopes !== undefined ? { scopes: JSON.stringify(extra.scopes) } : {}),
        ...(extra.status !== undefined ? { status: extra.status } : {}),
        ...(extra.statusReason !== undefined ? { status_reason: extra.statusReason } : {}),
        version: eb('version', '+', 1),
        updated_at: now,
      }))
      .where('id', '=', id)
      .where('version', '=', expectedVersion)
      .returningAll()
      .executeTakeFirst()
    if (!row) {
      this.#logger.debug({ installationId: id, expectedVersion }, 'vault: token update lost the compare-and-swap')
      return undefined
    }
    this.#logger.debug({ installationId: id, version: row.version }, 'vault: tokens updated')
    return this.#open(row)
  }

  async setStatus(
    id: string,
    status: InstallationStatus,
    options: { reason?: string; wipeTokens?: boolean; expectedVersion?: number } = {},
  ): Promise<InstallationSummary | undefined> {
    const problems: string[] = []
    if (!STATUSES.includes(status)) problems.push(`expected status to be one of ${STATUSES.join(', ')}, got ${JSON.stringify(status)}`)
    const expected = options.expectedVersion
    if (expected !== undefined && !Number.isSafeInteger(expected)) problems.push(`expected expectedVersion to be an integer, got ${String(expected)}`)
    if (problems.length > 0) throw badInput(problems)
    const wipe = options.wipeTokens === true
    let query = this.#db
      .updateTable('installations')
      .set((eb) => ({
        status,
        status_reason: options.reason ?? null,
        version: eb('version', '+', 1),
        updated_at: this.#clock.now(),
        ...(wipe ? { access_token: null, refresh_token: null, key_id: null, expires_at: null, refresh_token_issued_at: null } : {}),
      }))
      .where('id', '=', id)
    if (expected !== undefined) query = query.where('version', '=', expected)
    const row = await query.returningAll().executeTakeFirst()
    if (!row) {
      if (expected !== undefined) this.#logger.debug({ installationId: id, expectedVersion: expected }, 'vault: status change lost the compare-and-swap')
      return undefined
    }
    if (wipe) await this.#options.afterWipe()
    this.#logger.info({ installationId: id, status, wiped: wipe }, 'vault: installation status set')
    return toSummary(row)
  }

  async withRefreshLock<T>(id: string, fn: () => Promise<T>, options: RefreshLockOptions = {}): Promise<T> {
    const waitMs = options.waitMs ?? DEFAULT_LOCK_WAIT_MS
    if (!Number.isFinite(waitMs) || waitMs < 0) throw badInput([`expected waitMs to be a non-negative number, got ${String(waitMs)}`])
    const deadline = performance.now() + waitMs
    const release = await this.#local.acquire(id, waitMs)
    try {
      return await this.#lock.run(id, deadline, fn)
    } finally {
      release()
    }
  }

  async saveState(state: string, data: OAuthStateData, expiresAt: Date): Promise<void> {
    const problems: string[] = []
    if (typeof state !== 'string' || state.length < 16) problems.push('expected state to be a string of at least 16 characters')
    if (!isValidDate(expiresAt)) problems.push('expected expiresAt to be a valid Date')
    if (problems.length > 0) throw badInput(problems)
    const now = this.#clock.now()
    // Opportunistic clean-up: states are short-lived and most are consumed; the abandoned ones go here.
    await this.#db.deleteFrom('oauth_states').where('expires_at', '<=', now).execute()
    await this.#db
      .insertInto('oauth_states')
      .values({ state_hash: hashState(state), data: JSON.stringify(data), expires_at: expiresAt.getTime(), created_at: now })
      .execute()
  }

  async consumeState(state: string): Promise<OAuthStateData | undefined> {
    if (typeof state !== 'string' || state.length === 0) return undefined
    // DELETE … RETURNING is one atomic statement on both dialects: of concurrent consumers exactly one
    // gets the row. An expired state is deleted as well, and rejected.
    const row = await this.#db
      .deleteFrom('oauth_states')
      .where('state_hash', '=', hashState(state))
      .returning(['data', 'expires_at'])
      .executeTakeFirst()
    if (!row || Number(row.expires_at) <= this.#clock.now()) return undefined
    return JSON.parse(row.data) as OAuthStateData
  }

  async recordWebhook(
    event: Omit<WebhookEventRecord, 'status' | 'attempts' | 'lastError'> & { status?: WebhookEventRecord['status'] },
  ): Promise<'new' | 'duplicate'> {
    const problems: string[] = []
    if (typeof event.webhookId !== 'string' || event.webhookId.length === 0) problems.push('expected webhookId to be a non-empty string')
    if (typeof event.type !== 'string' || event.type.length === 0) problems.push('expected type to be a non-empty string')
    if (event.status !== undefined && !WEBHOOK_STATUSES.includes(event.status)) problems.push(`expected status to be one of ${WEBHOOK_STATUSES.join(', ')}`)
    if (!isValidDate(event.receivedAt)) problems.push('expected receivedAt to be a valid Date')
    if (!isValidDate(event.expiresAt)) problems.push('expected expiresAt to be a valid Date')
    const payload = JSON.stringify(event.payload)
    if (payload === undefined) problems.push('expected payload to be JSON-serialisable')
    if (problems.length > 0) throw badInput(problems)
    const inserted = await this.#db
      .insertInto('webhook_events')
      .values({
        webhook_id: event.webhookId,
        type: event.type,
        payload: payload!,
        status: event.status ?? 'pending',
        attempts: 0,
        last_error: null,
        location_id: event.locationId ?? null,
        company_id: event.companyId ?? null,
        received_at: event.receivedAt.getTime(),
        expires_at: event.expiresAt.getTime(),
      })
      .onConflict((oc) => oc.column('webhook_id').doNothing())
      .returning('webhook_id')
      .executeTakeFirst()
    return inserted ? 'new' : 'duplicate'
  }

  async updateWebhook(
    webhookId: string,
    change: { status: WebhookEventRecord['status']; lastError?: string | null; incrementAttempts?: boolean },
  ): Promise<void> {
    if (!WEBHOOK_STATUSES.includes(change.status)) throw badInput([`expected status to be one of ${WEBHOOK_STATUSES.join(', ')}, got ${JSON.stringify(change.status)}`])
    await this.#db
      .updateTable('webhook_events')
      .set((eb) => ({
        status: change.status,
        ...(change.lastError !== undefined ? { last_error: change.lastError } : {}),
        ...(change.incrementAttempts ? { attempts: eb('attempts', '+', 1) } : {}),
        claimed_by: null,
        claimed_until: null,
      }))
      .where('webhook_id', '=', webhookId)
      .execute()
  }

  async claimWebhook(webhookId: string, owner: string, until: Date, options: { now?: Date; attempts?: number } = {}): Promise<boolean> {
    const problems: string[] = []
    if (typeof webhookId !== 'string' || webhookId.length === 0) problems.push('expected webhookId to be a non-empty string')
    if (typeof owner !== 'string' || owner.length === 0) problems.push('expected owner to be a non-empty string')
    if (!isValidDate(until)) problems.push('expected until to be a valid Date')
    if (options.now !== undefined && !isValidDate(options.now)) problems.push('expected now to be a valid Date')
    if (options.attempts !== undefined && !Number.isSafeInteger(options.attempts)) problems.push('expected attempts to be an integer')
    if (problems.length > 0) throw badInput(problems)
    const now = options.now?.getTime() ?? this.#clock.now()
    // One conditional UPDATE: atomic on both dialects, so of concurrent claimants exactly one changes the row.
    let query = this.#db
      .updateTable('webhook_events')
      .set({ claimed_by: owner, claimed_until: until.getTime() })
      .where('webhook_id', '=', webhookId)
      .where('status', 'in', ['pending', 'failed'])
      .where((eb) => eb.or([eb('claimed_until', 'is', null), eb('claimed_until', '<', now)]))
    if (options.attempts !== undefined) query = query.where('attempts', '=', options.attempts)
    const result = await query.executeTakeFirst()
    return Number(result.numUpdatedRows) === 1
  }

  async listWebhooks(filter: {
    status: WebhookEventRecord['status']
    locationId?: string
    companyId?: string
    limit?: number
  }): Promise<WebhookEventRecord[]> {
    let query = this.#db.selectFrom('webhook_events').selectAll().where('status', '=', filter.status)
    if (filter.locationId !== undefined) query = query.where('location_id', '=', filter.locationId)
    if (filter.companyId !== undefined) query = query.where('company_id', '=', filter.companyId)
    const limit = filter.limit !== undefined && Number.isInteger(filter.limit) && filter.limit > 0 ? filter.limit : 100
    const rows = await query.orderBy('received_at').orderBy('webhook_id').limit(limit).execute()
    return rows.map(toWebhookRecord)
  }

  async listRecentWebhooks(filter: { status?: WebhookEventRecord['status']; webhookId?: string; limit?: number } = {}): Promise<WebhookEventRecord[]> {
    let query = this.#db.selectFrom('webhook_events').selectAll()
    if (filter.status !== undefined) query = query.where('status', '=', filter.status)
    if (filter.webhookId !== undefined) query = query.where('webhook_id', '=', filter.webhookId)
    const limit = filter.limit !== undefined && Number.isInteger(filter.limit) && filter.limit > 0 ? filter.limit : 100
    const rows = await query.orderBy('received_at', 'desc').orderBy('webhook_id', 'desc').limit(limit).execute()
    return rows.map(toWebhookRecord)
  }

  async purgeExpiredWebhooks(now: Date): Promise<number> {
    if (!isValidDate(now)) throw badInput(['expected now to be a valid Date'])
    const result = await this.#db.deleteFrom('webhook_events').where('expires_at', '<=', now.getTime()).executeTakeFirst()
    return Number(result.numDeletedRows)
  }

  async audit(entry: AuditEntry): Promise<void> {
    if (typeof entry.action !== 'string' || entry.action.length === 0) throw badInput(['expected action to be a non-empty string'])
    await this.#db
      .insertInto('audit_log')
      .values({
        installation_id: entry.installationId ?? null,
        action: entry.action,
        detail: JSON.stringify(entry.detail ?? {}),
        at: this.#clock.now(),
      })
      .execute()
  }

  async listAudit(installationId?: string): Promise<AuditRecord[]> {
    let query = this.#db.selectFrom('audit_log').selectAll()
    if (installationId !== undefined) query = query.where('installation_id', '=', installationId)
    const rows = await query.orderBy('id').execute()
    return rows.map(toAuditRecord)
  }

  /**
   * Re-encrypts every row not on the first key, in batches of 100, each row under its own
   * compare-and-swap. A row whose key is not configured stops the run with `GHL_VAULT_KEY_MISSING`
   * (rows already rotated stay rotated; run it again once the key is configured).
   */
  async rotateKeys(): Promise<number> {
    const current = this.#cipher.currentKeyId
    let rotated = 0
    let after = ''
    for (;;) {
      // Walk the rows by id so a row whose compare-and-swap fails is not picked up again forever.
      const batch = await this.#db
        .selectFrom('installations')
        .selectAll()
        .where('key_id', 'is not', null)
        .where('key_id', '!=', current)
        .where('id', '>', after)
        .orderBy('id')
        .limit(ROTATION_BATCH)
        .execute()
      if (batch.length === 0) break
      for (const row of batch) {
        after = row.id
        const tokens = this.#openTokens(row)
        if (!tokens) continue
        // Each row under its own compare-and-swap on version: a refresh that lands meanwhile wins (it
        // wrote under the current key anyway). Rotation changes no token, so the version stays.
        const result = await this.#db
          .updateTable('installations')
          .set({
            access_token: this.#cipher.encrypt(tokens.accessToken, aad(row.client_id, row.resource_key, 'access')),
            refresh_token:
              tokens.refreshToken === null ? null : this.#cipher.encrypt(tokens.refreshToken, aad(row.client_id, row.resource_key, 'refresh')),
            key_id: current,
          })
          .where('id', '=', row.id)
          .where('version', '=', row.version)
          .where('key_id', '=', row.key_id)
          .executeTakeFirst()
        rotated += Number(result.numUpdatedRows)
      }
    }
    this.#logger.info({ rotated, keyId: current }, 'vault: encryption keys rotated')
    return rotated
  }

  async #findByResource(clientId: string, rk: string): Promise<Installation | undefined> {
    const row = await this.#db
      .selectFrom('installations')
      .selectAll()
      .where('client_id', '=', clientId)
      .where('resource_key', '=', rk)
      .executeTakeFirst()
    return row && this.#open(row)
  }

  #seal(clientId: string, rk: string, tokens: TokenSet, now: number) {
    return {
      access_token: this.#cipher.encrypt(tokens.accessToken, aad(clientId, rk, 'access')),
      refresh_token: tokens.refreshToken === null ? null : this.#cipher.encrypt(tokens.refreshToken, aad(clientId, rk, 'refresh')),
      key_id: this.#cipher.currentKeyId,
      expires_at: tokens.expiresAt.getTime(),
      refresh_token_issued_at: tokens.refreshToken === null ? null : now,
    }
  }

  #open(row: InstallationRow): Installation {
    return { ...toSummary(row), tokens: this.#openTokens(row) }
  }

  #openTokens(row: InstallationRow): TokenSet | null {
    if (row.access_token === null || row.expires_at === null) return null
    return {
      accessToken: this.#cipher.decrypt(row.access_token, aad(row.client_id, row.resource_key, 'access')),
      refreshToken: row.refresh_token === null ? null : this.#cipher.decrypt(row.refresh_token, aad(row.client_id, row.resource_key, 'refresh')),
      expiresAt: new Date(Number(row.expires_at)),
    }
  }
}

/**
 * What a stored token is bound to: its installation's identity (client id + resource, which never
 * change for a row and are known before the row's id is) and its column.
 */
function aad(clientId: string, rk: string, column: 'access' | 'refresh'): string {
  return `installation:${clientId}:${rk}:${column}`
}

/** States are stored by SHA-256 only: a database reader cannot replay one. */
function hashState(state: string): string {
  return createHash('sha256').update(state, 'utf8').digest('hex')
}

function badInput(problems: string[]): GhlError {
  return new GhlError('GHL_BAD_REQUEST', `Invalid vault input: ${problems.join('; ')}`)
}

function isValidDate(d: unknown): d is Date {
  return d instanceof Date && Number.isFinite(d.getTime())
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string')
}

function nonEmpty(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0
}

/** Problems with a token set; never quotes a token. */
function tokenSetProblems(tokens: TokenSet | undefined, at: string): string[] {
  if (!tokens || typeof tokens !== 'object') return [`expected ${at} to be an object`]
  const problems: string[] = []
  if (!nonEmpty(tokens.accessToken)) problems.push(`expected ${at}.accessToken to be a non-empty string`)
  if (tokens.refreshToken !== null && !nonEmpty(tokens.refreshToken)) problems.push(`expected ${at}.refreshToken to be a non-empty string or null`)
  if (!isValidDate(tokens.expiresAt)) problems.push(`expected ${at}.expiresAt to be a valid Date`)
  return problems
}

/** Every problem with an install input at once (STYLE.md: all bad settings reported together). */
function validateInstallationInput(input: InstallationInput): void {
  const problems: string[] = []
  if (!nonEmpty(input.clientId)) problems.push('expected clientId to be a non-empty string')
  if (!nonEmpty(input.companyId)) problems.push('expected companyId to be a non-empty string')
  if (input.locationId !== null && !nonEmpty(input.locationId)) problems.push('expected locationId to be a non-empty string or null')
  if (input.userType === 'Location') {
    if (input.locationId === null) problems.push('expected a locationId for userType "Location", got null')
  } else if (input.userType === 'Company') {
    if (input.locationId !== null) problems.push('expected locationId to be null for userType "Company"')
  } else {
    problems.push(`expected userType to be "Location" or "Company", got ${JSON.stringify(input.userType)}`)
  }
  if (!isStringArray(input.scopes)) problems.push('expected scopes to be an array of strings')
  if (input.approvedLocations !== undefined && !isStringArray(input.approvedLocations)) problems.push('expected approvedLocations to be an array of strings')
  if (input.source === 'agency') {
    if (!nonEmpty(input.parentId)) problems.push('expected parentId (the company installation) for source "agency"')
  } else if (input.source === 'oauth') {
    if (input.tokens && input.tokens.refreshToken === null) problems.push('expected a refresh token for source "oauth"')
  } else {
    problems.push(`expected source to be "oauth" or "agency", got ${JSON.stringify(input.source)}`)
  }
  problems.push(...tokenSetProblems(input.tokens, 'tokens'))
  if (problems.length > 0) throw badInput(problems)
}
