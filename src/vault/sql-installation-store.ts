/**
 * {@link InstallationStore} on SQL (SQLite and PostgreSQL through Kysely): every query written once.
 * Tokens are sealed with {@link TokenCipher} before they reach SQL, bound to the row's identity and
 * column, and opened after; every lookup the connector makes on a hot or cold path is one index read.
 */
import { randomUUID } from 'node:crypto'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { sql, type ExpressionBuilder, type Insertable, type Kysely, type SelectQueryBuilder } from 'kysely'
import { GhlError } from '../errors.js'
import { fromFlag, resourceKey, toMillis, toSummary, type InstallationRow, type InstallationsTable, type VaultDatabase } from './schema.js'
import { LookupBatcher } from './lookup-batcher.js'
import { PreparedStatement } from './prepared-statement.js'
import { badInput, clampLimit, isStringArray, isValidDate, nonEmpty, tokenSetProblems, type SqlContext } from './sql-helpers.js'
import type { TokenCipher } from './token-cipher.js'
import type {
  AuditNote,
  DueInstallation,
  DueQuery,
  InstallInfo,
  Installation,
  InstallationFilter,
  InstallationInput,
  InstallationPage,
  InstallationQuery,
  InstallationStatus,
  InstallationStore,
  InstallationSummary,
  TokenSet,
  TokenSource,
  UpsertInstallationOptions,
} from './types.js'

export const STATUSES: readonly InstallationStatus[] = ['active', 'suspended', 'needs_reauthorization', 'uninstalled']
const SOURCES: readonly TokenSource[] = ['oauth', 'agency']
const PAGE_MAX = 500
/** Rows per INSERT of {@link SqlInstallationStore.insertMany}: ~36 parameters each, far below SQLite's 32,766 and PostgreSQL's 65,535. */
const INSERT_CHUNK = 500
/** Reads of a due page whose every row a peer claimed first, before `due()` gives up for this call. */
const CLAIM_ATTEMPTS = 5
/** Rows claimed per statement on SQLite (see `due`). */
export const SQLITE_CLAIM_CHUNK = 50
/** Identities of rows remembered for token updates (~150 B each). */
const IDENTITIES_MAX = 10_000

/**
 * What a stored token is bound to: its installation's identity (client id + resource, which never
 * change for a row and are known before the row's id is) and its column.
 */
export function tokenAad(clientId: string, rk: string, column: 'access' | 'refresh'): string {
  return `installation:${clientId}:${rk}:${column}`
}

/** The columns {@link TokenColumns.seal} fills, each a slot of the token update. */
const TOKEN_COLUMN_SLOTS = ['access_token', 'refresh_token', 'key_id', 'expires_at', 'refresh_token_issued_at'] as const
/** The values of a token update (its prepared statement's slots). */
type TokenUpdateSlot = (typeof TOKEN_COLUMN_SLOTS)[number] | 'id' | 'expected_version' | 'now' | 'scopes' | 'status' | 'status_reason' | 'action' | 'detail'

/** Seals and opens the token columns of a row. Shared by the store and key rotation. */
export class TokenColumns {
  readonly #cipher: TokenCipher
  constructor(cipher: TokenCipher) {
    this.#cipher = cipher
  }

  get currentKeyId(): string {
    return this.#cipher.currentKeyId
  }

  hasKey(id: string): boolean {
    return this.#cipher.hasKey(id)
  }

  seal(clientId: string, rk: string, tokens: TokenSet, now: number) {
    return {
      access_token: this.#cipher.encrypt(tokens.accessToken, tokenAad(clientId, rk, 'access')),
      refresh_token: tokens.refreshToken === null ? null : this.#cipher.encrypt(tokens.refreshToken, tokenAad(clientId, rk, 'refresh')),
      key_id: this.#cipher.currentKeyId,
      expires_at: tokens.expiresAt.getTime(),
      refresh_token_issued_at: tokens.refreshToken === null ? null : now,
    }
  }

  open(row: Pick<InstallationRow, 'access_token' | 'refresh_token' | 'expires_at' | 'client_id' | 'resource_key'>): TokenSet | null {
    if (row.access_token === null || row.expires_at === null) return null
    return {
      accessToken: this.#cipher.decrypt(row.access_token, tokenAad(row.client_id, row.resource_key, 'access')),
      refreshToken: row.refresh_token === null ? null : this.#cipher.decrypt(row.refresh_token, tokenAad(row.client_id, row.resource_key, 'refresh')),
      expiresAt: new Date(toMillis(row.expires_at)),
    }
  }
}

/** The SQL {@link InstallationStore}. */
export class SqlInstallationStore implements InstallationStore {
  readonly #ctx: SqlContext
  readonly #tokens: TokenColumns
  readonly #afterWipe: () => Promise<void>
  /** id → (client id, resource key) of rows read lately: immutable per row, so never stale (ids are UUIDs). */
  readonly #identities = new Map<string, { client_id: string; resource_key: string }>()
  /** {@link SqlInstallationStore.updateTokens}' statements by shape (at most 16). */
  readonly #tokenUpdates = new Map<string, PreparedStatement<TokenUpdateSlot, InstallationRow>>()
  #auditInsertStatement: PreparedStatement<TokenUpdateSlot> | undefined

  constructor(ctx: SqlContext, tokens: TokenColumns, afterWipe: () => Promise<void>) {
    this.#ctx = ctx
    this.#tokens = tokens
    this.#afterWipe = afterWipe
  }

  async upsert(input: InstallationInput, options: UpsertInstallationOptions = {}): Promise<Installation> {
    validateInstallationInput(input)
    const only = options.onlyReplaceSource
    if (only !== undefined && (!Array.isArray(only) || only.length === 0 || !only.every((x) => SOURCES.includes(x)))) {
      throw badInput([`expected onlyReplaceSource to be a non-empty array of ${SOURCES.join(', ')}`])
    }
    const audit = options.audit
    if (audit !== undefined && !nonEmpty(audit.action)) throw badInput(['expected options.audit.action to be a non-empty string'])
    const { db, clock, logger } = this.#ctx
    const now = clock.now()
    const rk = resourceKey(input.locationId, input.companyId)
    const upsert = (trx: Kysely<VaultDatabase>) => trx
      .insertInto('installations')
      .values(this.#newRow(input, now))
      // One statement, atomic on both dialects (SQLite ≥ 3.24 upsert; PostgreSQL ≥ 9.5): a re-install
      // keeps the row's id and created_at and takes everything else from the new grant. With
      // onlyReplaceSource, `DO UPDATE … WHERE` leaves a row of another source untouched (no row returned).
      // Names survive a re-install that does not know them (coalesce).
      .onConflict((oc) => {
        const update = oc.columns(['client_id', 'resource_key']).doUpdateSet((eb) => ({
          app_id: eb.ref('excluded.app_id'),
          company_id: eb.ref('excluded.company_id'),
          location_id: eb.ref('excluded.location_id'),
          user_type: eb.ref('excluded.user_type'),
          user_id: eb.ref('excluded.user_id'),
          scopes: eb.ref('excluded.scopes'),
          plan_id: eb.fn.coalesce('excluded.plan_id', 'installations.plan_id'),
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
          location_name: eb.fn.coalesce('excluded.location_name', 'installations.location_name'),
          company_name: eb.fn.coalesce('excluded.company_name', 'installations.company_name'),
          refresh_failures: 0,
          last_refresh_at: eb.ref('excluded.last_refresh_at'),
          last_error: null,
          retry_at: null,
          sweep_owner: null,
          sweep_until: null,
          version: eb('installations.version', '+', 1),
          updated_at: eb.ref('excluded.updated_at'),
        }))
        return only === undefined ? update : update.where('installations.source', 'in', [...only])
      })
      .returningAll()
    let row: InstallationRow | undefined
    if (!audit) {
      row = await upsert(db).executeTakeFirst()
    } else if (this.#ctx.dialect === 'postgres') {
      // The row and its audit entry in one statement (written exactly when the row was), the entry's
      // detail carrying the version the row got (1 for a new row, one more for a replaced one).
      const detail = JSON.stringify(audit.detail ?? {})
      row = await db
        .with('u', () => upsert(db))
        .with('a', (qc) =>
          qc
            .insertInto('audit_log')
            .columns(['installation_id', 'action', 'detail', 'at'])
            .expression((eb) =>
              eb
                .selectFrom('u')
                .select([
                  'u.id',
                  sql<string>`${audit.action}::text`.as('action'),
                  sql<string>`(${detail}::jsonb || jsonb_build_object('version', ${sql.ref('u.version')}))::text`.as('detail'),
                  sql<number>`${now}::bigint`.as('at'),
                ]),
            ),
        )
        .selectFrom('u')
        .selectAll()
        .executeTakeFirst()
    } else {
      row = await db.transaction().execute(async (trx) => {
        const stored = await upsert(trx).executeTakeFirst()
        if (stored) {
          await trx
            .insertInto('audit_log')
            .values({ installation_id: stored.id, action: audit.action, detail: JSON.stringify({ ...audit.detail, version: Number(stored.version) }), at: now })
            .execute()
        }
        return stored
      })
    }
    if (!row) {
      // The conflicting row is of a source we may not replace: it stays exactly as it was.
      const existing = await this.#findByResource(input.clientId, rk)
      if (!existing) throw new GhlError('GHL_INTERNAL', `The installation for ${rk} was neither stored nor found`)
      logger.info({ installationId: existing.id, source: existing.source, resource: rk }, 'vault: kept an installation of another source')
      return existing
    }
    logger.debug({ installationId: row.id, version: row.version, resource: rk }, 'vault: installation stored')
    return this.#open(row)
  }

  /**
   * Imports installations in batches — a move from another store, a benchmark's seed: one multi-row
   * INSERT per chunk of 500 (within both dialects' limits on bound parameters), a row that exists for
   * the same (clientId, resource) left as it is. Every input is checked before anything is stored.
   * Returns how many rows were added. Seeding a million takes minutes, not hours.
   */
  async insertMany(inputs: readonly InstallationInput[]): Promise<number> {
    if (!Array.isArray(inputs)) throw badInput(['expected inputs to be an array of installations'])
    inputs.forEach((input, i) => {
      try {
        validateInstallationInput(input)
      } catch (err) {
        throw err instanceof GhlError ? new GhlError(err.code, `installation ${i}: ${err.message}`, { cause: err }) : err
      }
    })
    const now = this.#ctx.clock.now()
    let added = 0
    for (let i = 0; i < inputs.length; i += INSERT_CHUNK) {
      const result = await this.#ctx.db
        .insertInto('installations')
        .values(inputs.slice(i, i + INSERT_CHUNK).map((input) => this.#newRow(input, now)))
        .onConflict((oc) => oc.columns(['client_id', 'resource_key']).doNothing())
        .executeTakeFirst()
      added += Number(result.numInsertedOrUpdatedRows ?? 0)
    }
    this.#ctx.logger.info({ added, given: inputs.length }, 'vault: installations imported')
    return added
  }

  /** A new row for a validated input, its tokens sealed. */
  #newRow(input: InstallationInput, now: number): Insertable<InstallationsTable> {
    const rk = resourceKey(input.locationId, input.companyId)
    return {
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
      ...this.#tokens.seal(input.clientId, rk, input.tokens, now),
      version: 1,
      created_at: now,
      updated_at: now,
      lock_owner: null,
      lock_until: null,
      location_name: input.locationName ?? null,
      company_name: input.companyName ?? null,
      refresh_failures: 0,
      last_refresh_at: now,
      last_error: null,
      retry_at: null,
    }
  }

  async get(id: string): Promise<Installation | undefined> {
    const row = await this.#ctx.db.selectFrom('installations').selectAll().where('id', '=', id).executeTakeFirst()
    return row && this.#open(row)
  }

  findByLocation(clientId: string, locationId: string): Promise<Installation | undefined> {
    return this.#findByResource(clientId, resourceKey(locationId, ''))
  }

  findByCompany(clientId: string, companyId: string): Promise<Installation | undefined> {
    return this.#findByResource(clientId, resourceKey(null, companyId))
  }

  async list(filter: InstallationFilter = {}): Promise<InstallationSummary[]> {
    let query = this.#ctx.db.selectFrom('installations').selectAll()
    if (filter.status !== undefined) query = query.where('status', '=', filter.status)
    if (filter.companyId !== undefined) query = query.where('company_id', '=', filter.companyId)
    if (filter.clientId !== undefined) query = query.where('client_id', '=', filter.clientId)
    if (filter.source !== undefined) query = query.where('source', '=', filter.source)
    if (filter.parentId !== undefined) query = query.where('parent_id', '=', filter.parentId)
    if (filter.userType !== undefined) query = query.where('user_type', '=', filter.userType)
    query = query.orderBy('created_at').orderBy('id')
    if (filter.limit !== undefined) query = query.limit(clampLimit(filter.limit, 100, 1_000_000))
    const rows = await query.execute()
    return rows.map(toSummary)
  }

  async page(q: InstallationQuery): Promise<InstallationPage> {
    const limit = clampLimit(q.limit, 50, PAGE_MAX)
    let query = this.#filtered(this.#ctx.db.selectFrom('installations').selectAll(), q)
    const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor)
    if (after) {
      // Newest first: the next page holds rows strictly "older" than the cursor's (created_at, id).
      query = query.where((eb) =>
        eb.or([eb('created_at', '<', after.createdAt), eb.and([eb('created_at', '=', after.createdAt), eb('id', '<', after.id)])]),
      )
    }
    const rows = await query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit + 1).execute()
    const items = rows.slice(0, limit).map(toSummary)
    const last = rows.length > limit ? rows[limit - 1] : undefined
    return last ? { items, next: encodeCursor(toMillis(last.created_at), last.id) } : { items }
  }

  async count(q: Omit<InstallationQuery, 'cursor' | 'limit'>, options: { max?: number } = {}): Promise<number> {
    if (options.max !== undefined) {
      // Counting stops at `max`: a page of 100,000 rows need not read them all to say "10,000+".
      const max = clampLimit(options.max, 10_000, 10_000_000)
      const inner = this.#filtered(this.#ctx.db.selectFrom('installations').select('id'), q).limit(max).as('capped')
      const row = await this.#ctx.db.selectFrom(inner).select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirst()
      return Number(row?.n ?? 0)
    }
    const row = await this.#filtered(this.#ctx.db.selectFrom('installations').select((eb) => eb.fn.countAll<number | string>().as('n')), q).executeTakeFirst()
    return Number(row?.n ?? 0)
  }

  async getVersion(id: string): Promise<number | undefined> {
    const row = await this.#ctx.db.selectFrom('installations').select('version').where('id', '=', id).executeTakeFirst()
    return row && Number(row.version)
  }

  async updateTokens(
    id: string,
    expectedVersion: number,
    tokens: TokenSet,
    extra: { scopes?: string[]; status?: InstallationStatus; statusReason?: string | null; audit?: AuditNote } = {},
  ): Promise<Installation | undefined> {
    const problems = tokenSetProblems(tokens, 'tokens')
    if (!Number.isSafeInteger(expectedVersion)) problems.push(`expected expectedVersion to be an integer, got ${String(expectedVersion)}`)
    if (extra.status !== undefined && !STATUSES.includes(extra.status)) problems.push(`expected extra.status to be one of ${STATUSES.join(', ')}, got ${JSON.stringify(extra.status)}`)
    if (extra.scopes !== undefined && !isStringArray(extra.scopes)) problems.push('expected extra.scopes to be an array of strings')
    if (extra.audit !== undefined && !nonEmpty(extra.audit.action)) problems.push('expected extra.audit.action to be a non-empty string')
    if (problems.length > 0) throw badInput(problems)

    const { db, clock, logger } = this.#ctx
    // client_id and resource_key never change for a row, so reading them outside the CAS is safe — and
    // remembering them: a refresh has just read the row (under its lock), so this costs no statement.
    const identity =
      this.#identities.get(id) ?? (await db.selectFrom('installations').select(['client_id', 'resource_key']).where('id', '=', id).executeTakeFirst())
    if (!identity) return undefined
    const now = clock.now()
    const audit = extra.audit
    const values: Record<TokenUpdateSlot, unknown> = {
      ...this.#tokens.seal(identity.client_id, identity.resource_key, tokens, now),
      id,
      expected_version: expectedVersion,
      now,
      scopes: extra.scopes === undefined ? undefined : JSON.stringify(extra.scopes),
      status: extra.status,
      status_reason: extra.statusReason,
      action: audit?.action,
      detail: audit && JSON.stringify({ ...audit.detail, version: expectedVersion + 1 }),
    }
    const shape = { scopes: extra.scopes !== undefined, status: extra.status !== undefined, statusReason: extra.statusReason !== undefined }
    let row: InstallationRow | undefined
    if (!audit) {
      row = (await db.executeQuery(this.#tokenUpdate(shape, false).compile(values))).rows[0]
    } else if (this.#ctx.dialect === 'postgres') {
      // The rotated pair and its audit entry in one statement (one round trip, one commit): the entry
      // exists exactly when the update happened. The refresher makes thousands of these in a backlog.
      row = (await db.executeQuery(this.#tokenUpdate(shape, true).compile(values))).rows[0]
    } else {
      // SQLite: one transaction, one commit to the WAL.
      const update = this.#tokenUpdate(shape, false)
      row = await db.transaction().execute(async (trx) => {
        const updated = (await trx.executeQuery(update.compile(values))).rows[0]
        if (updated) await trx.executeQuery(this.#auditInsert.compile(values))
        return updated
      })
    }
    if (!row) {
      logger.debug({ installationId: id, expectedVersion }, 'vault: token update lost the compare-and-swap')
      return undefined
    }
    logger.debug({ installationId: id, version: row.version }, 'vault: tokens updated')
    // The tokens just sealed into the row, not opened from it again: two decryptions saved per refresh.
    return this.#open(row, { accessToken: tokens.accessToken, refreshToken: tokens.refreshToken, expiresAt: new Date(toMillis(row.expires_at!)) })
  }

  /**
   * The compare-and-swap update of a row's tokens, built once per shape (which of scopes, status and
   * status reason it sets; with its audit entry in the same statement or not), then only given values.
   */
  #tokenUpdate(shape: { scopes: boolean; status: boolean; statusReason: boolean }, withAudit: boolean): PreparedStatement<TokenUpdateSlot, InstallationRow> {
    const key = `${Number(shape.scopes)}${Number(shape.status)}${Number(shape.statusReason)}${Number(withAudit)}`
    let statement = this.#tokenUpdates.get(key)
    if (statement) return statement
    const { db } = this.#ctx
    statement = new PreparedStatement<TokenUpdateSlot, InstallationRow>(
      [
        ...TOKEN_COLUMN_SLOTS,
        'id',
        'expected_version',
        'now',
        ...(shape.scopes ? (['scopes'] as const) : []),
        ...(shape.status ? (['status'] as const) : []),
        ...(shape.statusReason ? (['status_reason'] as const) : []),
        ...(withAudit ? (['action', 'detail'] as const) : []),
      ],
      (slot) => {
        const update = db
          .updateTable('installations')
          .set((eb) => ({
            access_token: slot('access_token'),
            refresh_token: slot('refresh_token'),
            key_id: slot('key_id'),
            expires_at: slot('expires_at'),
            refresh_token_issued_at: slot('refresh_token_issued_at'),
            ...(shape.scopes ? { scopes: slot<string>('scopes') } : {}),
            ...(shape.status ? { status: slot<InstallationStatus>('status') } : {}),
            ...(shape.statusReason ? { status_reason: slot<string | null>('status_reason') } : {}),
            refresh_failures: 0,
            last_refresh_at: slot('now'),
            last_error: null,
            retry_at: null,
            sweep_owner: null,
            sweep_until: null,
            version: eb('version', '+', 1),
            updated_at: slot('now'),
          }))
          .where('id', '=', slot<string>('id'))
          .where('version', '=', slot<number>('expected_version'))
          .returningAll()
        if (!withAudit) return update
        return db
          .with('u', () => update)
          .with('a', (qc) =>
            qc
              .insertInto('audit_log')
              .columns(['installation_id', 'action', 'detail', 'at'])
              .expression((eb) =>
                eb
                  .selectFrom('u')
                  .select(['u.id', sql<string>`${slot('action')}::text`.as('action'), sql<string>`${slot('detail')}::text`.as('detail'), sql<number>`${slot('now')}::bigint`.as('at')]),
              ),
          )
          .selectFrom('u')
          .selectAll()
      },
    )
    this.#tokenUpdates.set(key, statement)
    return statement
  }

  /** The audit entry of a token update on SQLite (a statement of its own in the update's transaction). */
  get #auditInsert(): PreparedStatement<TokenUpdateSlot> {
    this.#auditInsertStatement ??= new PreparedStatement<TokenUpdateSlot>(['id', 'action', 'detail', 'now'], (slot) =>
      this.#ctx.db.insertInto('audit_log').values({ installation_id: slot<string>('id'), action: slot<string>('action'), detail: slot<string>('detail'), at: slot<number>('now') }),
    )
    return this.#auditInsertStatement
  }

  async setStatus(
    id: string,
    status: InstallationStatus,
    options: { reason?: string; wipeTokens?: boolean; expectedVersion?: number; retryAt?: Date | null } = {},
  ): Promise<InstallationSummary | undefined> {
    const problems: string[] = []
    if (!STATUSES.includes(status)) problems.push(`expected status to be one of ${STATUSES.join(', ')}, got ${JSON.stringify(status)}`)
    const expected = options.expectedVersion
    if (expected !== undefined && !Number.isSafeInteger(expected)) problems.push(`expected expectedVersion to be an integer, got ${String(expected)}`)
    if (options.retryAt !== undefined && options.retryAt !== null && !isValidDate(options.retryAt)) problems.push('expected retryAt to be a valid Date or null')
    if (problems.length > 0) throw badInput(problems)
    const wipe = options.wipeTokens === true
    let query = this.#ctx.db
      .updateTable('installations')
      .set((eb) => ({
        status,
        status_reason: options.reason ?? null,
        sweep_owner: null,
        sweep_until: null,
        version: eb('version', '+', 1),
        updated_at: this.#ctx.clock.now(),
        ...(options.retryAt !== undefined ? { retry_at: options.retryAt === null ? null : options.retryAt.getTime() } : {}),
        ...(wipe ? { access_token: null, refresh_token: null, key_id: null, expires_at: null, refresh_token_issued_at: null } : {}),
      }))
      .where('id', '=', id)
    if (expected !== undefined) query = query.where('version', '=', expected)
    const row = await query.returningAll().executeTakeFirst()
    if (!row) {
      if (expected !== undefined) this.#ctx.logger.debug({ installationId: id, expectedVersion: expected }, 'vault: status change lost the compare-and-swap')
      return undefined
    }
    if (wipe) await this.#afterWipe()
    this.#ctx.logger.info({ installationId: id, status, wiped: wipe }, 'vault: installation status set')
    return toSummary(row)
  }

  async recordFailure(id: string, failure: { error: string; retryAt: Date | null }): Promise<number> {
    if (typeof failure.error !== 'string') throw badInput(['expected error to be a string'])
    if (failure.retryAt !== null && !isValidDate(failure.retryAt)) throw badInput(['expected retryAt to be a valid Date or null'])
    const row = await this.#ctx.db
      .updateTable('installations')
      .set((eb) => ({
        refresh_failures: eb('refresh_failures', '+', 1),
        last_error: failure.error.slice(0, 500),
        retry_at: failure.retryAt === null ? null : failure.retryAt.getTime(),
        sweep_owner: null,
        sweep_until: null,
      }))
      .where('id', '=', id)
      .returning('refresh_failures')
      .executeTakeFirst()
    return Number(row?.refresh_failures ?? 0)
  }

  async setDetails(
    id: string,
    details: { locationName?: string | null; companyName?: string | null; planId?: string | null; installInfo?: InstallInfo; userId?: string | null },
  ): Promise<void> {
    const set: Record<string, string | null> = {}
    if (details.locationName !== undefined) set.location_name = details.locationName
    if (details.companyName !== undefined) set.company_name = details.companyName
    if (details.planId !== undefined) set.plan_id = details.planId
    if (details.userId !== undefined) set.user_id = details.userId
    if (details.installInfo !== undefined) {
      const current = await this.#ctx.db.selectFrom('installations').select('install_info').where('id', '=', id).executeTakeFirst()
      if (!current) return
      const merged = { ...(current.install_info ? (JSON.parse(current.install_info) as object) : {}), ...details.installInfo }
      set.install_info = JSON.stringify(merged)
    }
    if (Object.keys(set).length === 0) return
    await this.#ctx.db.updateTable('installations').set(set).where('id', '=', id).execute()
  }

  async coverLocations(agency: InstallationSummary, locationIds: readonly string[]): Promise<number> {
    if (!isStringArray(locationIds as unknown)) throw badInput(['expected locationIds to be an array of strings'])
    const ids = [...new Set(locationIds.filter(nonEmpty))]
    if (ids.length === 0) return 0
    const now = this.#ctx.clock.now()
    let added = 0
    for (let i = 0; i < ids.length; i += 200) {
      const chunk = ids.slice(i, i + 200)
      const result = await this.#ctx.db
        .insertInto('installations')
        .values(
          chunk.map((locationId) => ({
            id: randomUUID(),
            client_id: agency.clientId,
            app_id: agency.appId,
            company_id: agency.companyId,
            location_id: locationId,
            resource_key: resourceKey(locationId, agency.companyId),
            user_type: 'Location' as const,
            user_id: agency.userId,
            scopes: JSON.stringify(agency.scopes),
            plan_id: agency.planId,
            is_bulk_installation: 0,
            install_to_future_locations: null,
            approve_all_locations: null,
            approved_locations: '[]',
            source: 'agency' as const,
            parent_id: agency.id,
            status: 'active' as const,
            status_reason: null,
            access_token: null,
            refresh_token: null,
            key_id: null,
            expires_at: null,
            refresh_token_issued_at: null,
            version: 1,
            created_at: now,
            updated_at: now,
            lock_owner: null,
            lock_until: null,
            company_name: agency.companyName,
          })),
        )
        .onConflict((oc) => oc.columns(['client_id', 'resource_key']).doNothing())
        .executeTakeFirst()
      added += Number(result.numInsertedOrUpdatedRows ?? 0)
    }
    return added
  }

  async agencies(clientId: string, limit: number): Promise<InstallationSummary[]> {
    const rows = await this.#ctx.db
      .selectFrom('installations')
      .selectAll()
      .where('client_id', '=', clientId)
      .where('user_type', '=', 'Company')
      .where('status', '=', 'active')
      .where('source', '=', 'oauth')
      .orderBy('created_at')
      .limit(clampLimit(limit, 10, 10_000))
      .execute()
    return rows.map(toSummary)
  }

  async due(q: DueQuery): Promise<DueInstallation[]> {
    const problems: string[] = []
    for (const k of ['expiresBefore', 'issuedBefore', 'now'] as const) if (!isValidDate(q[k])) problems.push(`expected ${k} to be a valid Date`)
    if (!nonEmpty(q.clientId)) problems.push('expected clientId to be a non-empty string')
    if (problems.length > 0) throw badInput(problems)
    const limit = clampLimit(q.limit, 100, 10_000)
    const now = q.now.getTime()
    const { db } = this.#ctx
    const open = (eb: ExpressionBuilder<VaultDatabase, 'installations'>) =>
      eb.and([
        eb.or([eb('retry_at', 'is', null), eb('retry_at', '<=', now)]),
        eb.or([eb('sweep_until', 'is', null), eb('sweep_until', '<', now)]),
      ])
    // Four narrow columns: a page is read in one turn of the event loop (on SQLite synchronously), and
    // the whole row (tokens, JSON columns) would be parsed for nothing — the refresh reads it under its lock.
    const base = () =>
      db.selectFrom('installations').select(['id', 'version', 'status', 'expires_at']).where('client_id', '=', q.clientId).where('source', '=', 'oauth')
    // Three index ranges, each at most one page: access tokens about to expire, refresh tokens getting
    // old, suspended rows whose retry time has come. Never the whole table.
    const read = async () => {
      const [byExpiry, byAge, suspended] = await Promise.all([
        base().where('status', '=', 'active').where('expires_at', '<=', q.expiresBefore.getTime()).where(open).orderBy('expires_at').limit(limit).execute(),
        base()
          .where('status', '=', 'active')
          .where('refresh_token_issued_at', '<=', q.issuedBefore.getTime())
          .where(open)
          .orderBy('refresh_token_issued_at')
          .limit(limit)
          .execute(),
        base().where('status', '=', 'suspended').where(open).orderBy('retry_at').limit(limit).execute(),
      ])
      const seen = new Set<string>()
      return [...byExpiry, ...byAge, ...suspended].filter((r) => !seen.has(r.id) && seen.add(r.id)).slice(0, limit)
    }
    // Instances sharing the sweep read the same first rows; the claim (a compare-and-set on sweep_until)
    // gives each row to one of them. One that lost every row of its page reads again — the rows its peers
    // claimed are no longer open — rather than report "nothing due" while the rest of the backlog waits.
    for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
      const rows = await read()
      if (!q.claim || rows.length === 0) return rows.map(toDue)
      const claim = q.claim
      const claimOf = (ids: string[]) =>
        db
          .updateTable('installations')
          .set({ sweep_owner: claim.owner, sweep_until: now + claim.claimMs })
          .where('id', 'in', ids)
          .where((eb) => eb.or([eb('sweep_until', 'is', null), eb('sweep_until', '<', now)]))
          .returning('id')
          .execute()
      const ids = rows.map((r) => r.id)
      const mine = new Set<string>()
      if (this.#ctx.dialect === 'postgres') for (const c of await claimOf(ids)) mine.add(c.id)
      else {
        // SQLite runs each statement on the event loop: 500 rows scattered over a large table are 500
        // pages written at the commit (45 ms at a million). A chunk per turn of the loop instead; each
        // row's claim is its own compare-and-set, so splitting the statement changes nothing else.
        for (let i = 0; i < ids.length; i += SQLITE_CLAIM_CHUNK) {
          if (i > 0) await nextTurn()
          for (const c of await claimOf(ids.slice(i, i + SQLITE_CLAIM_CHUNK))) mine.add(c.id)
        }
      }
      if (mine.size > 0) return rows.filter((r) => mine.has(r.id)).map(toDue)
    }
    return []
  }

  #filtered<O>(query: SelectQueryBuilder<VaultDatabase, 'installations', O>, q: Omit<InstallationQuery, 'cursor' | 'limit'>) {
    if (q.clientId !== undefined) {
      // SQLite without statistics takes `client_id = ?` (the leading column of a unique index) for a
      // selective read, scans every row of the app and sorts them; but one app is usually every row.
      // `+client_id` keeps that term out of index choice, so the ordering, status, plan and search
      // indexes are used instead (100,000 rows: 1 ms instead of 80–200 ms, `npm run bench:console`).
      query = this.#ctx.dialect === 'sqlite' ? query.where(sql<string>`+client_id`, '=', q.clientId) : query.where('client_id', '=', q.clientId)
    }
    if (q.status !== undefined) query = query.where('status', '=', q.status)
    if (q.planId !== undefined) query = query.where('plan_id', '=', q.planId)
    if (q.kind === 'agency') query = query.where('user_type', '=', 'Company')
    else if (q.kind === 'location') query = query.where('user_type', '=', 'Location').where('source', '=', 'oauth')
    else if (q.kind === 'minted') query = query.where('source', '=', 'agency')
    const search = q.search?.trim()
    if (search) {
      // SQLite's lower() folds ASCII letters only; PostgreSQL's folds every letter, as toLowerCase does.
      const prefix = this.#ctx.dialect === 'sqlite' ? search.replace(/[A-Z]+/g, (c) => c.toLowerCase()) : search.toLowerCase()
      const lower = (column: 'location_name' | 'company_name') => sql<string>`lower(${sql.ref(column)})`
      // The start of a name, any case, as an index read on lower(name) (migration 0005): PostgreSQL's
      // `LIKE 'p%'` uses its text_pattern_ops index; SQLite uses an expression index only for a range,
      // [p, p + U+10FFFF) — every string that starts with p sorts in it (SQLite compares bytes).
      const like = `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`
      const starts = (eb: ExpressionBuilder<VaultDatabase, 'installations'>, column: 'location_name' | 'company_name') =>
        this.#ctx.dialect === 'postgres'
          ? eb(lower(column), 'like', sql<string>`${like} escape '\\'`)
          : eb.and([eb(lower(column), '>=', prefix), eb(lower(column), '<', `${prefix}\u{10FFFF}`)])
      query = query.where((eb) =>
        eb.or([eb('id', '=', search), eb('location_id', '=', search), eb('company_id', '=', search), starts(eb, 'location_name'), starts(eb, 'company_name')]),
      )
    }
    return query
  }

  /**
   * The row of one resource (location or company) of an app: one indexed read, shared with every other
   * lookup asked for at the same moment (see {@link LookupBatcher}).
   */
  async #findByResource(clientId: string, rk: string): Promise<Installation | undefined> {
    const row = await this.#lookups.get(clientId, rk)
    return row && this.#open(row)
  }

  readonly #lookups = new LookupBatcher<InstallationRow>(async (clientId, keys) => {
    const query = this.#ctx.db.selectFrom('installations').selectAll().where('client_id', '=', clientId)
    const rows = await (keys.length === 1 ? query.where('resource_key', '=', keys[0]!) : query.where('resource_key', 'in', keys)).execute()
    return new Map(rows.map((r) => [r.resource_key, r]))
  })

  /** An installation from its row as read by other code of the vault (the refresh lock), tokens opened. */
  fromRow(row: InstallationRow): Installation {
    return this.#open(row)
  }

  #open(row: InstallationRow, tokens: TokenSet | null = this.#tokens.open(row)): Installation {
    if (!this.#identities.has(row.id)) {
      if (this.#identities.size >= IDENTITIES_MAX) this.#identities.delete(this.#identities.keys().next().value!)
      this.#identities.set(row.id, { client_id: row.client_id, resource_key: row.resource_key })
    }
    return { ...toSummary(row), tokens }
  }
}

function toDue(row: { id: string; version: number | string; status: string; expires_at: number | string | null }): DueInstallation {
  return { id: row.id, version: Number(row.version), status: row.status as InstallationStatus, expiresAt: row.expires_at === null ? null : new Date(toMillis(row.expires_at)) }
}

function encodeCursor(createdAt: number, id: string): string {
  return Buffer.from(`${createdAt}:${id}`, 'utf8').toString('base64url')
}

function decodeCursor(cursor: string): { createdAt: number; id: string } {
  const text = Buffer.from(cursor, 'base64url').toString('utf8')
  const at = text.indexOf(':')
  const createdAt = Number(text.slice(0, at))
  if (at <= 0 || !Number.isSafeInteger(createdAt)) throw badInput(['expected cursor to be the `next` of a previous page'])
  return { createdAt, id: text.slice(at + 1) }
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
