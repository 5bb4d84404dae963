/**
 * {@link WebhookEventStore} on SQL: every verified webhook keyed by HighLevel's webhookId — the replay
 * guard and the work queue. Processing is claimed with one conditional UPDATE (atomic on both
 * dialects) and its outcome is written only by the claim's holder, so an instance whose claim lapsed
 * can never overwrite what the next holder recorded.
 */
import { toWebhookRecord } from './schema.js'
import { badInput, clampLimit, isValidDate, type SqlContext } from './sql-helpers.js'
import type { WebhookEventRecord, WebhookEventStore, WebhookStatus } from './types.js'

const WEBHOOK_STATUSES: readonly WebhookStatus[] = ['pending', 'processed', 'failed', 'waiting']
const CLAIMABLE: readonly WebhookStatus[] = ['pending', 'failed', 'waiting']

/** The SQL {@link WebhookEventStore}. */
export class SqlWebhookStore implements WebhookEventStore {
  readonly #ctx: SqlContext

  constructor(ctx: SqlContext) {
    this.#ctx = ctx
  }

  async record(event: Omit<WebhookEventRecord, 'status' | 'attempts' | 'lastError'> & { status?: WebhookStatus }): Promise<'new' | 'duplicate'> {
    const problems: string[] = []
    if (typeof event.webhookId !== 'string' || event.webhookId.length === 0) problems.push('expected webhookId to be a non-empty string')
    if (typeof event.type !== 'string' || event.type.length === 0) problems.push('expected type to be a non-empty string')
    if (event.status !== undefined && !WEBHOOK_STATUSES.includes(event.status)) problems.push(`expected status to be one of ${WEBHOOK_STATUSES.join(', ')}`)
    if (!isValidDate(event.receivedAt)) problems.push('expected receivedAt to be a valid Date')
    if (!isValidDate(event.expiresAt)) problems.push('expected expiresAt to be a valid Date')
    const payload = JSON.stringify(event.payload)
    if (payload === undefined) problems.push('expected payload to be JSON-serialisable')
    if (problems.length > 0) throw badInput(problems)
    const inserted = await this.#ctx.db
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

  async claim(
    webhookId: string,
    owner: string,
    until: Date,
    options: { now?: Date; attempts?: number; statuses?: readonly WebhookStatus[] } = {},
  ): Promise<boolean> {
    const problems: string[] = []
    if (typeof webhookId !== 'string' || webhookId.length === 0) problems.push('expected webhookId to be a non-empty string')
    if (typeof owner !== 'string' || owner.length === 0) problems.push('expected owner to be a non-empty string')
    if (!isValidDate(until)) problems.push('expected until to be a valid Date')
    if (options.now !== undefined && !isValidDate(options.now)) problems.push('expected now to be a valid Date')
    if (options.attempts !== undefined && !Number.isSafeInteger(options.attempts)) problems.push('expected attempts to be an integer')
    const statuses = options.statuses ?? CLAIMABLE
    if (statuses.length === 0 || !statuses.every((s) => CLAIMABLE.includes(s))) problems.push(`expected statuses among ${CLAIMABLE.join(', ')}`)
    if (problems.length > 0) throw badInput(problems)
    const now = options.now?.getTime() ?? this.#ctx.clock.now()
    // One conditional UPDATE: atomic on both dialects, so of concurrent claimants exactly one changes the row.
    let query = this.#ctx.db
      .updateTable('webhook_events')
      .set({ claimed_by: owner, claimed_until: until.getTime() })
      .where('webhook_id', '=', webhookId)
      .where('status', 'in', [...statuses])
      .where((eb) => eb.or([eb('claimed_until', 'is', null), eb('claimed_until', '<', now)]))
    if (options.attempts !== undefined) query = query.where('attempts', '=', options.attempts)
    const result = await query.executeTakeFirst()
    return Number(result.numUpdatedRows) === 1
  }

  async complete(
    webhookId: string,
    owner: string,
    change: { status: WebhookStatus; lastError?: string | null; incrementAttempts?: boolean },
  ): Promise<boolean> {
    if (!WEBHOOK_STATUSES.includes(change.status)) throw badInput([`expected status to be one of ${WEBHOOK_STATUSES.join(', ')}, got ${JSON.stringify(change.status)}`])
    const result = await this.#ctx.db
      .updateTable('webhook_events')
      .set((eb) => ({
        status: change.status,
        ...(change.lastError !== undefined ? { last_error: change.lastError } : {}),
        ...(change.incrementAttempts ? { attempts: eb('attempts', '+', 1) } : {}),
        claimed_by: null,
        claimed_until: null,
      }))
      .where('webhook_id', '=', webhookId)
      .where('claimed_by', '=', owner)
      .executeTakeFirst()
    return Number(result.numUpdatedRows) === 1
  }

  async requeue(webhookId: string): Promise<boolean> {
    const result = await this.#ctx.db
      .updateTable('webhook_events')
      .set({ status: 'pending', attempts: 0, last_error: null, claimed_by: null, claimed_until: null })
      .where('webhook_id', '=', webhookId)
      .executeTakeFirst()
    return Number(result.numUpdatedRows) === 1
  }

  async get(webhookId: string): Promise<WebhookEventRecord | undefined> {
    const row = await this.#ctx.db.selectFrom('webhook_events').selectAll().where('webhook_id', '=', webhookId).executeTakeFirst()
    return row && toWebhookRecord(row)
  }

  async list(filter: {
    status?: WebhookStatus
    type?: string
    locationId?: string
    companyId?: string
    limit?: number
    newestFirst?: boolean
  }): Promise<WebhookEventRecord[]> {
    let query = this.#ctx.db.selectFrom('webhook_events').selectAll()
    if (filter.status !== undefined) query = query.where('status', '=', filter.status)
    if (filter.type !== undefined) query = query.where('type', '=', filter.type)
    if (filter.locationId !== undefined) query = query.where('location_id', '=', filter.locationId)
    if (filter.companyId !== undefined) query = query.where('company_id', '=', filter.companyId)
    const dir = filter.newestFirst ? 'desc' : 'asc'
    const rows = await query.orderBy('received_at', dir).orderBy('webhook_id', dir).limit(clampLimit(filter.limit, 100, 10_000)).execute()
    return rows.map(toWebhookRecord)
  }

  async purgeExpired(now: Date): Promise<number> {
    if (!isValidDate(now)) throw badInput(['expected now to be a valid Date'])
    const result = await this.#ctx.db.deleteFrom('webhook_events').where('expires_at', '<=', now.getTime()).executeTakeFirst()
    return Number(result.numDeletedRows)
  }
}
