/**
 * {@link BillingReportStore} on SQL: external-billing reports to HighLevel, one row per (app,
 * location or agency, payment). Stored before they are sent and claimed like charges, so two
 * instances (or a retried request) never report the same payment twice, and a report whose sending
 * failed is sent again by the next caller.
 */
import { toBillingReport } from './marketplace-schema.js'
import { badInput, clampLimit, isValidDate, nonEmpty, type SqlContext } from './sql-helpers.js'
import type { BillingReportRecord, BillingReportStore } from './marketplace-types.js'

type Key = { clientId: string; resourceKey: string; reference: string }

function keyProblems(key: Key): string[] {
  const problems: string[] = []
  for (const name of ['clientId', 'resourceKey', 'reference'] as const) if (!nonEmpty(key?.[name])) problems.push(`expected ${name} to be a non-empty string`)
  return problems
}

/** The SQL {@link BillingReportStore}. */
export class SqlBillingReportStore implements BillingReportStore {
  readonly #ctx: SqlContext

  constructor(ctx: SqlContext) {
    this.#ctx = ctx
  }

  async begin(
    input: Key & { body: Record<string, unknown> },
    claim: { owner: string; until: Date },
  ): Promise<{ record: BillingReportRecord; claimed: boolean }> {
    const problems = keyProblems(input)
    if (!nonEmpty(claim?.owner)) problems.push('expected claim.owner to be a non-empty string')
    if (!isValidDate(claim?.until)) problems.push('expected claim.until to be a valid Date')
    const body = JSON.stringify(input.body)
    if (!input.body || typeof input.body !== 'object' || body === undefined) problems.push('expected body to be a JSON object')
    if (problems.length > 0) throw badInput(problems)
    const { db, clock } = this.#ctx
    const now = clock.now()
    const inserted = await db
      .insertInto('billing_reports')
      .values({
        client_id: input.clientId,
        resource_key: input.resourceKey,
        reference: input.reference,
        status: 'pending',
        body,
        attempts: 0,
        last_error: null,
        claimed_by: claim.owner,
        claimed_until: claim.until.getTime(),
        created_at: now,
        updated_at: now,
      })
      .onConflict((oc) => oc.columns(['client_id', 'resource_key', 'reference']).doNothing())
      .returningAll()
      .executeTakeFirst()
    if (inserted) return { record: toBillingReport(inserted), claimed: true }
    // Not sent yet and nobody holds it: take it over (a failed or abandoned send is sent again).
    const result = await db
      .updateTable('billing_reports')
      .set({ claimed_by: claim.owner, claimed_until: claim.until.getTime(), body, updated_at: now })
      .where('client_id', '=', input.clientId)
      .where('resource_key', '=', input.resourceKey)
      .where('reference', '=', input.reference)
      .where('status', 'in', ['pending', 'failed'])
      .where((eb) => eb.or([eb('claimed_until', 'is', null), eb('claimed_until', '<', now)]))
      .executeTakeFirst()
    const row = await db
      .selectFrom('billing_reports')
      .selectAll()
      .where('client_id', '=', input.clientId)
      .where('resource_key', '=', input.resourceKey)
      .where('reference', '=', input.reference)
      .executeTakeFirstOrThrow()
    return { record: toBillingReport(row), claimed: Number(result.numUpdatedRows) === 1 }
  }

  async complete(
    key: Key,
    owner: string,
    outcome: { status: 'pending' | 'sent' | 'failed'; lastError?: string | null; incrementAttempts?: boolean },
  ): Promise<boolean> {
    const problems = keyProblems(key)
    if (!nonEmpty(owner)) problems.push('expected owner to be a non-empty string')
    if (!['pending', 'sent', 'failed'].includes(outcome?.status)) problems.push('expected status to be pending, sent or failed')
    if (problems.length > 0) throw badInput(problems)
    const result = await this.#ctx.db
      .updateTable('billing_reports')
      .set((eb) => ({
        status: outcome.status,
        ...(outcome.lastError !== undefined ? { last_error: outcome.lastError } : {}),
        ...(outcome.incrementAttempts ? { attempts: eb('attempts', '+', 1) } : {}),
        claimed_by: null,
        claimed_until: null,
        updated_at: this.#ctx.clock.now(),
      }))
      .where('client_id', '=', key.clientId)
      .where('resource_key', '=', key.resourceKey)
      .where('reference', '=', key.reference)
      .where('claimed_by', '=', owner)
      .executeTakeFirst()
    return Number(result.numUpdatedRows) === 1
  }

  async list(filter: { clientId: string; status?: BillingReportRecord['status']; limit?: number }): Promise<BillingReportRecord[]> {
    if (!nonEmpty(filter?.clientId)) throw badInput(['expected clientId to be a non-empty string'])
    let query = this.#ctx.db.selectFrom('billing_reports').selectAll().where('client_id', '=', filter.clientId)
    if (filter.status !== undefined) query = query.where('status', '=', filter.status)
    const rows = await query.orderBy('created_at').limit(clampLimit(filter.limit, 100, 10_000)).execute()
    return rows.map(toBillingReport)
  }
}
