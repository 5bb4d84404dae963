/**
 * {@link ConsoleStore} on SQL: the call counters the recorder adds in batches (`call_stats`, migration
 * 0005) and the aggregates the operator's console draws — installations by status, refresh outcomes and
 * webhook events per time bucket. Each is one statement on an indexed column.
 */
import { sql, type ColumnType } from 'kysely'
import { STATUSES } from './sql-installation-store.js'
import { toMillis } from './schema.js'
import { badInput, type SqlContext } from './sql-helpers.js'
import type { BucketCount, CallStats, CallStatsDelta, ConsoleStore, InstallationStatus } from './types.js'

/** `call_stats`: one row per (installation, UTC day). */
export interface CallStatsTable {
  installation_id: string
  day: string
  calls: number
  errors: number
  throttled: number
  last_call_at: ColumnType<number | string, number, number>
}

/** The console's part of the database. */
export interface ConsoleTables {
  call_stats: CallStatsTable
}

const DAY = /^\d{4}-\d{2}-\d{2}$/
/** Rows per IN list (PostgreSQL and SQLite both take far more; this keeps statements small). */
const CHUNK = 500

/** The SQL {@link ConsoleStore}. */
export class SqlConsoleStore implements ConsoleStore {
  readonly #ctx: SqlContext

  constructor(ctx: SqlContext) {
    this.#ctx = ctx
  }

  async addCalls(day: string, deltas: readonly CallStatsDelta[]): Promise<void> {
    if (!DAY.test(day)) throw badInput([`expected day as YYYY-MM-DD, got ${JSON.stringify(day)}`])
    if (deltas.length === 0) return
    const db = this.#ctx.db
    for (let i = 0; i < deltas.length; i += CHUNK) {
      const values = deltas.slice(i, i + CHUNK).map((d) => ({
        installation_id: d.installationId,
        day,
        calls: d.calls,
        errors: d.errors,
        throttled: d.throttled,
        last_call_at: d.lastCallAt,
      }))
      // One statement per chunk: new rows inserted, existing ones added to.
      await db
        .insertInto('call_stats')
        .values(values)
        .onConflict((oc) =>
          oc.columns(['installation_id', 'day']).doUpdateSet({
            calls: sql<number>`call_stats.calls + excluded.calls`,
            errors: sql<number>`call_stats.errors + excluded.errors`,
            throttled: sql<number>`call_stats.throttled + excluded.throttled`,
            last_call_at: sql<number>`case when excluded.last_call_at > call_stats.last_call_at then excluded.last_call_at else call_stats.last_call_at end`,
          }),
        )
        .execute()
    }
  }

  async calls(installationIds: readonly string[], today: string): Promise<Map<string, { today: CallStats | undefined; lastCallAt: Date | null }>> {
    if (!DAY.test(today)) throw badInput([`expected day as YYYY-MM-DD, got ${JSON.stringify(today)}`])
    const out = new Map<string, { today: CallStats | undefined; lastCallAt: Date | null }>()
    // One row per installation, whatever the days kept: today's counters (the primary key makes that
    // day's row unique, so max() is that row's value) and the newest call of any day.
    const ofToday = (column: 'calls' | 'errors' | 'throttled' | 'last_call_at') =>
      sql<number | string | null>`max(case when day = ${today} then ${sql.ref(column)} end)`
    for (let i = 0; i < installationIds.length; i += CHUNK) {
      const ids = installationIds.slice(i, i + CHUNK)
      const rows = await this.#ctx.db
        .selectFrom('call_stats')
        .select([
          'installation_id',
          ofToday('calls').as('calls'),
          ofToday('errors').as('errors'),
          ofToday('throttled').as('throttled'),
          ofToday('last_call_at').as('today_last'),
          (eb) => eb.fn.max('last_call_at').as('last_call_at'),
        ])
        .where('installation_id', 'in', ids)
        .groupBy('installation_id')
        .execute()
      for (const row of rows) {
        const lastCallAt = new Date(toMillis(row.last_call_at))
        const stats: CallStats | undefined =
          row.today_last === null
            ? undefined
            : {
                installationId: row.installation_id,
                day: today,
                calls: Number(row.calls),
                errors: Number(row.errors),
                throttled: Number(row.throttled),
                lastCallAt: new Date(toMillis(row.today_last)),
              }
        out.set(row.installation_id, { today: stats, lastCallAt })
      }
    }
    return out
  }

  async purgeCallsBefore(day: string): Promise<number> {
    if (!DAY.test(day)) throw badInput([`expected day as YYYY-MM-DD, got ${JSON.stringify(day)}`])
    const result = await this.#ctx.db.deleteFrom('call_stats').where('day', '<', day).executeTakeFirst()
    return Number(result.numDeletedRows)
  }

  async countByStatus(clientId: string): Promise<Record<InstallationStatus, number>> {
    const rows = await this.#ctx.db
      .selectFrom('installations')
      .select(['status', (eb) => eb.fn.countAll<number | string>().as('n')])
      .where('client_id', '=', clientId)
      .groupBy('status')
      .execute()
    const out = Object.fromEntries(STATUSES.map((s) => [s, 0])) as Record<InstallationStatus, number>
    for (const row of rows) if (row.status in out) out[row.status as InstallationStatus] = Number(row.n)
    return out
  }

  async auditCounts(since: Date, bucketMs: number, actions: readonly string[]): Promise<BucketCount[]> {
    checkBucket(bucketMs)
    if (actions.length === 0) return []
    const bucket = sql<number | string>`(at / ${sql.lit(bucketMs)}) * ${sql.lit(bucketMs)}`
    const rows = await this.#ctx.db
      .selectFrom('audit_log')
      .select([bucket.as('bucket'), 'action', (eb) => eb.fn.countAll<number | string>().as('n')])
      .where('at', '>=', since.getTime())
      .where('action', 'in', [...actions])
      .groupBy([bucket, 'action'])
      .execute()
    return rows.map((r) => ({ bucket: Number(r.bucket), key: r.action, state: '', n: Number(r.n) }))
  }

  async webhookCounts(since: Date, bucketMs: number): Promise<BucketCount[]> {
    checkBucket(bucketMs)
    const bucket = sql<number | string>`(received_at / ${sql.lit(bucketMs)}) * ${sql.lit(bucketMs)}`
    const rows = await this.#ctx.db
      .selectFrom('webhook_events')
      .select([bucket.as('bucket'), 'type', 'status', (eb) => eb.fn.countAll<number | string>().as('n')])
      .where('received_at', '>=', since.getTime())
      .groupBy([bucket, 'type', 'status'])
      .execute()
    return rows.map((r) => ({ bucket: Number(r.bucket), key: r.type, state: r.status, n: Number(r.n) }))
  }
}

function checkBucket(bucketMs: number): void {
  if (!Number.isSafeInteger(bucketMs) || bucketMs < 1000) throw badInput([`expected bucketMs to be an integer of at least 1000, got ${String(bucketMs)}`])
}
