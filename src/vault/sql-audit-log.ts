/**
 * {@link AuditLog} and {@link FlagStore} on SQL: the append-only audit log, and the small facts every
 * instance shares with an expiry.
 */
import { toAuditRecord } from './schema.js'
import { badInput, clampLimit, isValidDate, type SqlContext } from './sql-helpers.js'
import type { AuditEntry, AuditLog, AuditRecord, FlagStore } from './types.js'

/** The SQL {@link AuditLog}. */
export class SqlAuditLog implements AuditLog {
  readonly #ctx: SqlContext

  constructor(ctx: SqlContext) {
    this.#ctx = ctx
  }

  async append(entry: AuditEntry): Promise<void> {
    if (typeof entry.action !== 'string' || entry.action.length === 0) throw badInput(['expected action to be a non-empty string'])
    await this.#ctx.db
      .insertInto('audit_log')
      .values({
        installation_id: entry.installationId ?? null,
        action: entry.action,
        detail: JSON.stringify(entry.detail ?? {}),
        at: this.#ctx.clock.now(),
      })
      .execute()
  }

  async list(installationId?: string, options: { limit?: number } = {}): Promise<AuditRecord[]> {
    let query = this.#ctx.db.selectFrom('audit_log').selectAll()
    if (installationId !== undefined) query = query.where('installation_id', '=', installationId)
    if (options.limit !== undefined) {
      const rows = await query.orderBy('id', 'desc').limit(clampLimit(options.limit, 100, 10_000)).execute()
      return rows.reverse().map(toAuditRecord)
    }
    const rows = await query.orderBy('id').execute()
    return rows.map(toAuditRecord)
  }

  async purgeBefore(before: Date, limit: number): Promise<number> {
    if (!isValidDate(before)) throw badInput(['expected before to be a valid Date'])
    const n = clampLimit(limit, 500, 100_000)
    // The oldest first, a bounded batch per statement (an index range on audit_log(at, action)): a
    // large backlog is worked off in short statements, never one that holds the table or the loop.
    const oldest = this.#ctx.db.selectFrom('audit_log').select('id').where('at', '<', before.getTime()).orderBy('at').limit(n)
    const result = await this.#ctx.db.deleteFrom('audit_log').where('id', 'in', oldest).executeTakeFirst()
    return Number(result.numDeletedRows)
  }
}

/** The SQL {@link FlagStore}. */
export class SqlFlagStore implements FlagStore {
  readonly #ctx: SqlContext

  constructor(ctx: SqlContext) {
    this.#ctx = ctx
  }

  async get(name: string): Promise<{ value: string; expiresAt: Date } | undefined> {
    const row = await this.#ctx.db.selectFrom('connector_flags').select(['value', 'expires_at']).where('name', '=', name).executeTakeFirst()
    if (!row || Number(row.expires_at) <= this.#ctx.clock.now()) return undefined
    return { value: row.value, expiresAt: new Date(Number(row.expires_at)) }
  }

  async set(name: string, value: string, expiresAt: Date): Promise<void> {
    if (typeof name !== 'string' || name.length === 0 || typeof value !== 'string' || !isValidDate(expiresAt)) {
      throw badInput(['expected a non-empty name, a string value and a valid expiresAt'])
    }
    const now = this.#ctx.clock.now()
    await this.#ctx.db
      .insertInto('connector_flags')
      .values({ name, value, expires_at: expiresAt.getTime(), updated_at: now })
      .onConflict((oc) => oc.column('name').doUpdateSet({ value, expires_at: expiresAt.getTime(), updated_at: now }))
      .execute()
  }

  async claim(name: string, value: string, expiresAt: Date): Promise<boolean> {
    if (typeof name !== 'string' || name.length === 0 || typeof value !== 'string' || !isValidDate(expiresAt)) {
      throw badInput(['expected a non-empty name, a string value and a valid expiresAt'])
    }
    const now = this.#ctx.clock.now()
    // One statement: insert, or take over a row whose time has passed (`DO UPDATE … WHERE`).
    const row = await this.#ctx.db
      .insertInto('connector_flags')
      .values({ name, value, expires_at: expiresAt.getTime(), updated_at: now })
      .onConflict((oc) =>
        oc
          .column('name')
          .doUpdateSet({ value, expires_at: expiresAt.getTime(), updated_at: now })
          .where('connector_flags.expires_at', '<=', now),
      )
      .returning('name')
      .executeTakeFirst()
    return row !== undefined
  }

  async delete(name: string): Promise<void> {
    await this.#ctx.db.deleteFrom('connector_flags').where('name', '=', name).execute()
  }
}
