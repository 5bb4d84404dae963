/**
 * {@link ChargeStore} on SQL: the record that makes a wallet charge happen once per eventId.
 *
 * A charge is inserted (`pending`, claimed by its sender) before it is sent. Every later step is one
 * conditional statement, atomic on both dialects: the insert (`ON CONFLICT DO NOTHING`) or the claim
 * (`UPDATE … WHERE nobody holds a live claim`) decides who sends; the outcome is written only by the
 * claim's holder. A holder that dies leaves a claim that expires, after which the next caller
 * reconciles the row with HighLevel (by eventId) before it sends anything.
 */
import { createHash } from 'node:crypto'
import type { ExpressionBuilder } from 'kysely'
import type { VaultDatabase } from './schema.js'
import { toChargeRecord } from './marketplace-schema.js'
import { badInput, clampLimit, isValidDate, nonEmpty, type SqlContext } from './sql-helpers.js'
import type { ChargeBegin, ChargeClaim, ChargeKey, ChargeRecord, ChargeStatus, ChargeStore } from './marketplace-types.js'

const STATUSES: readonly ChargeStatus[] = ['pending', 'charged', 'failed', 'refunded']
/** What decides the money of a charge: the same eventId with other values here is another charge. */
const IDENTITY_FIELDS = ['meterId', 'units', 'price', 'userId'] as const

/** SHA-256 of the fields that make a charge what it is (description and eventTime are informative). */
export function chargeIdentity(request: Record<string, unknown>): string {
  const identity = IDENTITY_FIELDS.map((k) => [k, request[k] ?? null])
  return createHash('sha256').update(JSON.stringify(identity), 'utf8').digest('hex')
}

function keyProblems(key: ChargeKey): string[] {
  const problems: string[] = []
  if (!nonEmpty(key?.clientId)) problems.push('expected clientId to be a non-empty string')
  if (!nonEmpty(key?.locationId)) problems.push('expected locationId to be a non-empty string')
  if (!nonEmpty(key?.eventId)) problems.push('expected eventId to be a non-empty string')
  return problems
}

function claimProblems(claim: ChargeClaim): string[] {
  const problems: string[] = []
  if (!nonEmpty(claim?.owner)) problems.push('expected claim.owner to be a non-empty string')
  if (!isValidDate(claim?.until)) problems.push('expected claim.until to be a valid Date')
  if (claim?.now !== undefined && !isValidDate(claim.now)) problems.push('expected claim.now to be a valid Date')
  return problems
}

/** The SQL {@link ChargeStore}. */
export class SqlChargeStore implements ChargeStore {
  readonly #ctx: SqlContext

  constructor(ctx: SqlContext) {
    this.#ctx = ctx
  }

  async begin(input: ChargeKey & { companyId: string; meterId: string; request: Record<string, unknown> }, claim: ChargeClaim): Promise<ChargeBegin> {
    const problems = [...keyProblems(input), ...claimProblems(claim)]
    if (!nonEmpty(input.companyId)) problems.push('expected companyId to be a non-empty string')
    if (!nonEmpty(input.meterId)) problems.push('expected meterId to be a non-empty string')
    const request = JSON.stringify(input.request)
    if (!input.request || typeof input.request !== 'object' || request === undefined) problems.push('expected request to be a JSON object')
    if (problems.length > 0) throw badInput(problems)
    const { db, clock } = this.#ctx
    const now = claim.now?.getTime() ?? clock.now()
    const hash = chargeIdentity(input.request)
    const inserted = await db
      .insertInto('marketplace_charges')
      .values({
        client_id: input.clientId,
        location_id: input.locationId,
        event_id: input.eventId,
        company_id: input.companyId,
        meter_id: input.meterId,
        request,
        request_hash: hash,
        status: 'pending',
        charge_id: null,
        attempts: 0,
        last_error: null,
        claimed_by: claim.owner,
        claimed_until: claim.until.getTime(),
        created_at: now,
        updated_at: now,
      })
      .onConflict((oc) => oc.columns(['client_id', 'location_id', 'event_id']).doNothing())
      .returningAll()
      .executeTakeFirst()
    if (inserted) return { record: toChargeRecord(inserted), claimed: true, conflict: false }
    const existing = await this.#row(input)
    if (!existing) throw badInput([`the charge ${input.eventId} was neither stored nor found`])
    if (existing.request_hash !== hash) return { record: toChargeRecord(existing), claimed: false, conflict: true }
    if (existing.status === 'charged' || existing.status === 'refunded') return { record: toChargeRecord(existing), claimed: false, conflict: false }
    const claimed = await this.claim(input, claim)
    const record = claimed ? await this.get(input) : toChargeRecord(existing)
    return { record: record ?? toChargeRecord(existing), claimed, conflict: false }
  }

  async claim(key: ChargeKey, claim: ChargeClaim): Promise<boolean> {
    const problems = [...keyProblems(key), ...claimProblems(claim)]
    if (problems.length > 0) throw badInput(problems)
    const now = claim.now?.getTime() ?? this.#ctx.clock.now()
    const result = await this.#ctx.db.updateTable('marketplace_charges').where(byKey(key))
      .set({ claimed_by: claim.owner, claimed_until: claim.until.getTime(), updated_at: now })
      .where('status', 'in', ['pending', 'failed'])
      .where((eb) => eb.or([eb('claimed_until', 'is', null), eb('claimed_until', '<', now)]))
      .executeTakeFirst()
    return Number(result.numUpdatedRows) === 1
  }

  async markAttempt(key: ChargeKey, owner: string): Promise<boolean> {
    const problems = keyProblems(key)
    if (!nonEmpty(owner)) problems.push('expected owner to be a non-empty string')
    if (problems.length > 0) throw badInput(problems)
    const result = await this.#ctx.db.updateTable('marketplace_charges').where(byKey(key))
      .set((eb) => ({ attempts: eb('attempts', '+', 1), updated_at: this.#ctx.clock.now() }))
      .where('claimed_by', '=', owner)
      .executeTakeFirst()
    return Number(result.numUpdatedRows) === 1
  }

  async complete(key: ChargeKey, owner: string, outcome: { status: ChargeStatus; chargeId?: string | null; lastError?: string | null }): Promise<boolean> {
    const problems = keyProblems(key)
    if (!nonEmpty(owner)) problems.push('expected owner to be a non-empty string')
    if (!STATUSES.includes(outcome?.status)) problems.push(`expected status to be one of ${STATUSES.join(', ')}`)
    if (problems.length > 0) throw badInput(problems)
    const result = await this.#ctx.db.updateTable('marketplace_charges').where(byKey(key))
      .set({
        status: outcome.status,
        ...(outcome.chargeId !== undefined ? { charge_id: outcome.chargeId } : {}),
        ...(outcome.lastError !== undefined ? { last_error: outcome.lastError } : {}),
        claimed_by: null,
        claimed_until: null,
        updated_at: this.#ctx.clock.now(),
      })
      .where('claimed_by', '=', owner)
      .executeTakeFirst()
    return Number(result.numUpdatedRows) === 1
  }

  async get(key: ChargeKey): Promise<ChargeRecord | undefined> {
    const problems = keyProblems(key)
    if (problems.length > 0) throw badInput(problems)
    const row = await this.#row(key)
    return row && toChargeRecord(row)
  }

  async findByChargeId(clientId: string, locationId: string, chargeId: string): Promise<ChargeRecord | undefined> {
    if (!nonEmpty(clientId) || !nonEmpty(locationId) || !nonEmpty(chargeId)) throw badInput(['expected clientId, locationId and chargeId to be non-empty strings'])
    const row = await this.#ctx.db
      .selectFrom('marketplace_charges')
      .selectAll()
      .where('client_id', '=', clientId)
      .where('location_id', '=', locationId)
      .where('charge_id', '=', chargeId)
      .executeTakeFirst()
    return row && toChargeRecord(row)
  }

  async markRefunded(clientId: string, locationId: string, chargeId: string): Promise<boolean> {
    if (!nonEmpty(clientId) || !nonEmpty(locationId) || !nonEmpty(chargeId)) throw badInput(['expected clientId, locationId and chargeId to be non-empty strings'])
    const result = await this.#ctx.db
      .updateTable('marketplace_charges')
      .set({ status: 'refunded', updated_at: this.#ctx.clock.now() })
      .where('client_id', '=', clientId)
      .where('location_id', '=', locationId)
      .where('charge_id', '=', chargeId)
      .where('status', '=', 'charged')
      .executeTakeFirst()
    return Number(result.numUpdatedRows) === 1
  }

  async unsettled(clientId: string, options: { now?: Date; locationId?: string; limit?: number } = {}): Promise<ChargeRecord[]> {
    if (!nonEmpty(clientId)) throw badInput(['expected clientId to be a non-empty string'])
    if (options.now !== undefined && !isValidDate(options.now)) throw badInput(['expected now to be a valid Date'])
    const now = options.now?.getTime() ?? this.#ctx.clock.now()
    let query = this.#ctx.db
      .selectFrom('marketplace_charges')
      .selectAll()
      .where('client_id', '=', clientId)
      .where('status', '=', 'pending')
      .where((eb) => eb.or([eb('claimed_until', 'is', null), eb('claimed_until', '<', now)]))
    if (options.locationId !== undefined) query = query.where('location_id', '=', options.locationId)
    const rows = await query.orderBy('created_at').limit(clampLimit(options.limit, 100, 1000)).execute()
    return rows.map(toChargeRecord)
  }

  #row(key: ChargeKey) {
    return this.#ctx.db.selectFrom('marketplace_charges').selectAll().where(byKey(key)).executeTakeFirst()
  }
}

/** `WHERE` the primary key. */
function byKey(key: ChargeKey) {
  return (eb: ExpressionBuilder<VaultDatabase, 'marketplace_charges'>) =>
    eb.and([eb('client_id', '=', key.clientId), eb('location_id', '=', key.locationId), eb('event_id', '=', key.eventId)])
}
