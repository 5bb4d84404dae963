/**
 * Marketplace wallet billing for every location of the app: charges that happen once per eventId,
 * funds checks, the charge list, refunds, and the rebilling configuration (meters and plans).
 *
 * How a charge happens once. HighLevel documents `eventId` as the app's reference for a charge but not
 * that it refuses a second charge with the same one (FACTS.md, "Marketplace billing"; the sandbox
 * accepts duplicates too), so the connector makes it idempotent itself:
 *
 * 1. The charge is written to the vault (`pending`, claimed by this caller) before it is sent. Of
 *    concurrent callers with one eventId — in this process (single flight) or in others (the row's
 *    claim, one conditional statement) — exactly one sends; the others wait for its outcome.
 * 2. Before each POST the row's attempt count goes up; once a POST may have reached HighLevel
 *    (`attempts > 0`), nothing is sent again before HighLevel's own list is asked for that eventId
 *    (`GET /marketplace/billing/charges?eventId=`). A lost answer (timeout, connection reset, 5xx) is
 *    settled that way after `reconcileDelayMs`: found → charged; not found → sent again.
 * 3. HighLevel's refusal (a 4xx) is final for that attempt: `failed`, nothing charged; a later call with
 *    the same eventId tries again.
 * 4. A holder that dies leaves a claim that expires (`chargeTimeoutMs` + 5 s); whoever comes next
 *    reconciles before sending. {@link Billing.reconcile} settles such rows without charging.
 *
 * What remains: a POST delayed inside HighLevel for longer than `reconcileDelayMs` after its answer
 * was lost could land after the lookup found nothing, and the resend would charge twice. When a
 * lookup ever finds two charges for one eventId, `onDuplicate` reports it (the connector's
 * `chargeDuplicated` event) with both charge ids, so the app can refund one.
 *
 * @see /work/shared/reference/highlevel/api-docs/apps/marketplace.json
 */
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { ResourceClient } from '../../client/types.js'
import { NEVER_SENT_CODES, networkErrorCode } from '../../client/steps/retry.js'
import type { Clock } from '../../clock.js'
import { GhlError, HighLevelApiError, NotInstalledError, RateLimitedError } from '../../errors.js'
import type { Logger } from '../../logger.js'
import { SingleFlight } from '../../tokens/single-flight.js'
import type { ChargeKey, ChargeRecord } from '../../vault/marketplace-types.js'
import type { Vault } from '../../vault/types.js'
import { chargeIdentity } from '../../vault/sql-charge-store.js'
import {
  chargeCreated,
  chargeList,
  describeIssues,
  hasFundsAnswer,
  rebillingConfig,
  walletCharge,
  type ChargeList,
  type ChargeQuery,
  type RebillingConfig,
  type WalletCharge,
} from './billing-shapes.js'
import { ChargeError } from './charge-error.js'
import { parseChargeInput, type ChargeInput, type ChargeRequest } from './charge-input.js'

/** Settings of {@link Billing}; each has a default. */
export interface BillingOptions {
  /** How long a `hasFunds()` answer is reused (default 30 000 ms). */
  hasFundsTtlMs?: number
  /** How long the rebilling configuration is reused (default 1 h; a PLAN_CHANGE drops it at once). */
  rebillingTtlMs?: number
  /** The longest one `charge()` may take, waits and reconciliation included (default 60 000 ms). */
  chargeTimeoutMs?: number
  /** After a lost answer, wait this long before asking HighLevel whether the charge exists (default 1000 ms). */
  reconcileDelayMs?: number
  /** POSTs of one charge within one call at most (default 3). */
  maxAttempts?: number
}

/** What {@link Billing} needs from the connector. */
export interface BillingDeps {
  clientId: string
  appId: string
  /** The default per-call deadline of the API client. */
  requestTimeoutMs: number
  vault: Pick<Vault, 'charges' | 'installations'>
  /** The API client of a location (its token, the rate limiter, retries). */
  client: (locationId: string) => ResourceClient
  clock: Clock
  logger: Logger
  /** A lookup found more than one charge for one eventId. */
  onDuplicate?: (duplicate: { locationId: string; eventId: string; chargeIds: string[] }) => void
}

/** A charge that HighLevel has: this call's, or an earlier one with the same eventId. */
export interface ChargeResult {
  eventId: string
  chargeId: string
  /** `true` when this call sent nothing: the eventId was charged before (or by a concurrent call). */
  duplicate: boolean
}

/** The billing calls of one location (`ghl.location(id).billing`, `ghl.billing(id)`). */
export interface LocationBilling {
  /** Charges the location's wallet once per eventId. See {@link Billing}. */
  charge(input: ChargeInput): Promise<ChargeResult>
  /** Whether the wallet can be charged (cached for `hasFundsTtlMs`). */
  hasFunds(options?: { fresh?: boolean }): Promise<boolean>
  /** The app's charges on this location (`GET /marketplace/billing/charges`). */
  listCharges(query?: ChargeQuery): Promise<ChargeList>
  getCharge(chargeId: string): Promise<WalletCharge>
  /** Deletes (refunds) a charge; the vault's row of it becomes `refunded`. */
  deleteCharge(chargeId: string): Promise<void>
  /** The app's meters and plans for this location (cached; refreshed after PLAN_CHANGE). */
  rebillingConfig(options?: { fresh?: boolean }): Promise<RebillingConfig>
}

const LEASE_MARGIN_MS = 5_000
const CHARGES = '/marketplace/billing/charges'

interface Cached<T> {
  value: T
  until: number
}

/** See the file comment. One per connector; cheap {@link LocationBilling} views per location. */
export class Billing {
  readonly #deps: BillingDeps
  readonly #hasFundsTtlMs: number
  readonly #rebillingTtlMs: number
  readonly #chargeTimeoutMs: number
  readonly #reconcileDelayMs: number
  readonly #maxAttempts: number
  /** This instance's name on the claims it takes. */
  readonly #owner = `charge:${randomUUID()}`
  readonly #charges: SingleFlight
  readonly #reads = new SingleFlight(60_000)
  readonly #hasFunds = new Map<string, Cached<boolean>>()
  readonly #rebilling = new Map<string, Cached<RebillingConfig>>()
  readonly #companies = new Map<string, string>()
  /** eventId identities of the charges in flight here (a second caller with another charge is a conflict). */
  readonly #identities = new Map<string, string>()

  constructor(deps: BillingDeps, options: BillingOptions = {}) {
    const settings = billingSettings(options)
    this.#hasFundsTtlMs = settings.hasFundsTtlMs
    this.#rebillingTtlMs = settings.rebillingTtlMs
    this.#chargeTimeoutMs = settings.chargeTimeoutMs
    this.#reconcileDelayMs = settings.reconcileDelayMs
    this.#maxAttempts = settings.maxAttempts
    this.#deps = deps
    this.#charges = new SingleFlight(this.#chargeTimeoutMs + LEASE_MARGIN_MS)
  }

  /** The billing calls of one location. */
  forLocation(locationId: string): LocationBilling {
    if (typeof locationId !== 'string' || locationId === '') throw new GhlError('GHL_BAD_REQUEST', 'expected a location id, got nothing')
    return {
      charge: (input) => this.charge(locationId, input),
      hasFunds: (options) => this.hasFunds(locationId, options),
      listCharges: (query) => this.listCharges(locationId, query),
      getCharge: (chargeId) => this.getCharge(locationId, chargeId),
      deleteCharge: (chargeId) => this.deleteCharge(locationId, chargeId),
      rebillingConfig: (options) => this.rebillingConfig(locationId, options),
    }
  }

  /** Drops cached rebilling configurations (PLAN_CHANGE: the plans may differ now). */
  planChanged(): void {
    this.#rebilling.clear()
  }

  // --- charges --------------------------------------------------------------------------------

  /**
   * Charges `locationId`'s wallet once per eventId (see the file comment).
   *
   * @example
   * const { eventId, chargeId } = await ghl.location('LOC').billing.charge({ meterId: 'METER', units: 10, description: '10 SMS', eventId: `sms-batch-${batchId}` })
   * @throws ChargeError `GHL_BILLING_INVALID` (before anything is stored), `GHL_BILLING_REJECTED`,
   *   `GHL_BILLING_CONFLICT`, `GHL_BILLING_UNCONFIRMED`; NotInstalledError, RateLimitedError and the
   *   client's errors when nothing could be sent.
   */
  async charge(locationId: string, input: ChargeInput): Promise<ChargeResult> {
    const request = parseChargeInput(input)
    if (request.price !== undefined) await this.#checkPrice(locationId, request)
    const eventId = request.eventId ?? randomUUID()
    const body: Record<string, unknown> = { ...request }
    delete body.eventId
    const identity = chargeIdentity(body)
    const flight = `${locationId}\u0000${eventId}`
    const running = this.#identities.get(flight)
    if (running !== undefined && running !== identity) throw conflict(eventId)
    // Concurrent callers in this process share one charge; only the one that ran it may have sent it.
    let ran = false
    const result = await this.#charges.run(flight, async () => {
      ran = true
      this.#identities.set(flight, identity)
      try {
        return await this.#chargeOnce(locationId, eventId, body, request.meterId)
      } finally {
        this.#identities.delete(flight)
      }
    })
    return ran ? result : { ...result, duplicate: true }
  }

  async #chargeOnce(locationId: string, eventId: string, request: Record<string, unknown>, meterId: string): Promise<ChargeResult> {
    const { vault, clock, clientId } = this.#deps
    const deadline = clock.now() + this.#chargeTimeoutMs
    const lease = () => ({ owner: this.#owner, until: new Date(deadline + LEASE_MARGIN_MS), now: new Date(clock.now()) })
    const companyId = await this.#companyOf(locationId)
    const key: ChargeKey = { clientId, locationId, eventId }
    let begin = await vault.charges.begin({ ...key, companyId, meterId, request }, lease())
    const waitingSince = clock.now()
    for (let poll = 0; !begin.claimed; poll++) {
      if (begin.conflict) throw conflict(eventId)
      const row = begin.record
      if (row.status === 'charged' || row.status === 'refunded') return { eventId, chargeId: row.chargeId!, duplicate: true }
      // Another caller's attempt was refused while this one waited: the same refusal, not a second try.
      if (row.status === 'failed' && row.updatedAt.getTime() >= waitingSince && poll > 0) {
        throw new ChargeError('GHL_BILLING_REJECTED', `HighLevel refused the charge ${eventId}: ${row.lastError ?? 'no reason given'}`, { eventId })
      }
      if (clock.now() >= deadline) {
        throw new ChargeError('GHL_BILLING_UNCONFIRMED', `The charge ${eventId} is being sent by another instance and did not settle in time; call again with the same eventId`, { eventId })
      }
      await sleep(Math.min(500, 25 * 2 ** Math.min(poll, 5)))
      const current = await vault.charges.get(key)
      if (!current) throw new GhlError('GHL_INTERNAL', `The charge ${eventId} disappeared from the vault`)
      const claimable = current.status === 'failed' || current.status === 'pending'
      const claimed = claimable && (current.claimedUntil === null || current.claimedUntil.getTime() < clock.now()) ? await vault.charges.claim(key, lease()) : false
      begin = { record: claimed ? ((await vault.charges.get(key)) ?? current) : current, claimed, conflict: false }
    }
    return this.#send(key, begin.record, companyId, deadline)
  }

  /** Sends (and if need be reconciles) a charge whose claim this instance holds; always leaves the claim. */
  async #send(key: ChargeKey, row: ChargeRecord, companyId: string, deadline: number): Promise<ChargeResult> {
    const { vault, clock, logger, appId } = this.#deps
    const { eventId, locationId } = key
    let attempts = row.attempts
    let sent = 0
    let settled = false
    // Whether a POST of this charge may have reached HighLevel (then no failure here is "not charged").
    let maybeSent = row.attempts > 0
    let lastProblem = ''
    const settle = async (outcome: Parameters<Vault['charges']['complete']>[2]): Promise<void> => {
      settled = true
      await vault.charges.complete(key, this.#owner, outcome)
    }
    try {
      for (;;) {
        if (attempts > 0) {
          // A POST may have reached HighLevel: ask before sending again.
          const found = await this.#lookup(locationId, eventId, row.meterId)
          if (found) {
            await settle({ status: 'charged', chargeId: found.chargeId, lastError: null })
            logger.info({ locationId, eventId, chargeId: found.chargeId }, 'billing: charge found by its eventId')
            return { eventId, chargeId: found.chargeId, duplicate: sent === 0 }
          }
        }
        if (sent >= this.#maxAttempts || clock.now() >= deadline) {
          throw new ChargeError(
            'GHL_BILLING_UNCONFIRMED',
            `The charge ${eventId} could not be confirmed (${lastProblem || 'out of time'}); call again with the same eventId`,
            { eventId },
          )
        }
        if (!(await vault.charges.markAttempt(key, this.#owner))) {
          throw new ChargeError('GHL_BILLING_UNCONFIRMED', `The charge ${eventId} was taken over by another instance; call again with the same eventId`, { eventId })
        }
        attempts++
        sent++
        const body = { appId, locationId, companyId, eventId, ...row.request }
        try {
          const res = await this.#deps.client(locationId).post(CHARGES, {
            body,
            timeoutMs: Math.max(1, Math.min(this.#deps.requestTimeoutMs, deadline - clock.now())),
          })
          const created = chargeCreated.safeParse(res.data)
          if (created.success) {
            await settle({ status: 'charged', chargeId: created.data.chargeId, lastError: null })
            this.#hasFunds.delete(locationId)
            return { eventId, chargeId: created.data.chargeId, duplicate: false }
          }
          // A 2xx without a charge id: it was probably charged; the lookup says.
          maybeSent = true
          lastProblem = `HighLevel answered ${res.status} without a chargeId`
        } catch (err) {
          const kind = classify(err)
          if (kind === 'rejected') {
            const api = err as HighLevelApiError
            // An earlier POST of this charge may have landed (a lost answer the lookup missed): ask once
            // more before calling it refused — e.g. that charge emptied the wallet this one was refused on.
            const landed = maybeSent ? await this.#lookup(locationId, eventId, row.meterId) : undefined
            if (landed) {
              await settle({ status: 'charged', chargeId: landed.chargeId, lastError: null })
              return { eventId, chargeId: landed.chargeId, duplicate: false }
            }
            const reason = upstreamMessage(api.body) ?? `status ${api.upstreamStatus}`
            await settle({ status: 'failed', lastError: `HighLevel answered ${api.upstreamStatus}: ${reason}`.slice(0, 500) })
            if (/fund/i.test(reason)) this.#hasFunds.set(locationId, { value: false, until: clock.now() + this.#hasFundsTtlMs })
            throw new ChargeError('GHL_BILLING_REJECTED', `HighLevel refused the charge ${eventId} (${api.upstreamStatus}): ${reason}`, {
              eventId,
              upstreamStatus: api.upstreamStatus,
              body: api.body,
              traceId: api.traceId,
              cause: err,
            })
          }
          if (kind === 'unsent') throw err
          maybeSent = true
          lastProblem = err instanceof GhlError ? `${err.code}: ${err.message}` : String(err)
          logger.warn({ locationId, eventId, attempt: sent, code: err instanceof GhlError ? err.code : undefined }, 'billing: the answer to a charge was lost; reconciling by eventId')
          const wait = Math.min(this.#reconcileDelayMs, Math.max(0, deadline - clock.now()))
          if (wait > 0) await sleep(wait)
        }
      }
    } catch (err) {
      if (!settled) {
        const reason = err instanceof GhlError ? `${err.code}: ${err.message}` : String(err)
        await vault.charges.complete(key, this.#owner, { status: 'pending', lastError: reason.slice(0, 500) }).catch((e: unknown) => {
          logger.warn({ err: e, locationId, eventId }, 'billing: releasing the claim of a charge failed (it expires by itself)')
        })
      }
      if (!(err instanceof ChargeError) && (maybeSent || classify(err) !== 'unsent')) {
        const code = err instanceof GhlError ? err.code : 'an unexpected error'
        throw new ChargeError('GHL_BILLING_UNCONFIRMED', `The charge ${eventId} could not be confirmed (${code}); call again with the same eventId`, { eventId, cause: err })
      }
      throw err
    }
  }

  /** The charge HighLevel has for an eventId (the oldest if several), or undefined. */
  async #lookup(locationId: string, eventId: string, meterId: string): Promise<WalletCharge | undefined> {
    const list = await this.listCharges(locationId, { eventId, limit: 100 })
    const mine = list.charges
      .filter((c) => c.meta?.eventId === eventId && (c.meterId === undefined || c.meterId === meterId))
      .sort((a, b) => (a.createdAt ?? '').localeCompare(b.createdAt ?? ''))
    if (mine.length > 1) {
      const chargeIds = mine.map((c) => c.chargeId)
      this.#deps.logger.error({ locationId, eventId, chargeIds }, 'billing: HighLevel holds more than one charge for one eventId')
      this.#deps.onDuplicate?.({ locationId, eventId, chargeIds })
    }
    return mine[0]
  }

  /**
   * Settles charges whose outcome is unknown and that nobody is working on (a crash, or a call that
   * gave up with `GHL_BILLING_UNCONFIRMED`): each is looked up by its eventId — found → `charged`,
   * not found → `failed` (a later `charge()` with that eventId sends it). Never charges.
   */
  async reconcile(options: { locationId?: string; limit?: number } = {}): Promise<{ charged: number; notCharged: number; skipped: number }> {
    const { vault, clock, clientId, logger } = this.#deps
    const rows = await vault.charges.unsettled(clientId, { ...options, now: new Date(clock.now()) })
    const out = { charged: 0, notCharged: 0, skipped: 0 }
    for (const row of rows) {
      const key: ChargeKey = { clientId, locationId: row.locationId, eventId: row.eventId }
      const now = clock.now()
      if (!(await vault.charges.claim(key, { owner: this.#owner, until: new Date(now + this.#chargeTimeoutMs + LEASE_MARGIN_MS), now: new Date(now) }))) {
        out.skipped++
        continue
      }
      try {
        const found = row.attempts > 0 ? await this.#lookup(row.locationId, row.eventId, row.meterId) : undefined
        if (found) {
          await vault.charges.complete(key, this.#owner, { status: 'charged', chargeId: found.chargeId, lastError: null })
          out.charged++
        } else {
          await vault.charges.complete(key, this.#owner, { status: 'failed', lastError: 'not found at HighLevel by its eventId (reconciled)' })
          out.notCharged++
        }
      } catch (err) {
        await vault.charges.complete(key, this.#owner, { status: 'pending' }).catch(() => {})
        logger.warn({ err, locationId: row.locationId, eventId: row.eventId }, 'billing: reconciling a charge failed; it stays pending')
        out.skipped++
      }
    }
    return out
  }

  // --- reads ----------------------------------------------------------------------------------

  async hasFunds(locationId: string, options: { fresh?: boolean } = {}): Promise<boolean> {
    const { clock } = this.#deps
    const cached = this.#hasFunds.get(locationId)
    if (!options.fresh && cached && cached.until > clock.now()) return cached.value
    return this.#reads.run(`funds\u0000${locationId}`, async () => {
      const res = await this.#deps.client(locationId).get(`${CHARGES}/has-funds`)
      const value = parse(hasFundsAnswer, res.data, 'has-funds').hasFunds
      this.#hasFunds.set(locationId, { value, until: clock.now() + this.#hasFundsTtlMs })
      return value
    })
  }

  async listCharges(locationId: string, query: ChargeQuery = {}): Promise<ChargeList> {
    const res = await this.#deps.client(locationId).get(CHARGES, { query: { ...query } })
    return parse(chargeList, res.data, 'charges')
  }

  async getCharge(locationId: string, chargeId: string): Promise<WalletCharge> {
    const res = await this.#deps.client(locationId).get(`${CHARGES}/${encodeURIComponent(requireId(chargeId))}`)
    return parse(walletCharge, res.data, 'charge')
  }

  async deleteCharge(locationId: string, chargeId: string): Promise<void> {
    await this.#deps.client(locationId).delete(`${CHARGES}/${encodeURIComponent(requireId(chargeId))}`)
    this.#hasFunds.delete(locationId)
    await this.#deps.vault.charges.markRefunded(this.#deps.clientId, locationId, chargeId)
  }

  async rebillingConfig(locationId: string, options: { fresh?: boolean } = {}): Promise<RebillingConfig> {
    const { clock, appId } = this.#deps
    const cached = this.#rebilling.get(locationId)
    if (!options.fresh && cached && cached.until > clock.now()) return cached.value
    return this.#reads.run(`rebilling\u0000${locationId}`, async () => {
      const res = await this.#deps.client(locationId).get(`/marketplace/app/${encodeURIComponent(appId)}/rebilling-config/location/${encodeURIComponent(locationId)}`)
      const value = parse(rebillingConfig, res.data, 'rebilling-config')
      this.#rebilling.set(locationId, { value, until: clock.now() + this.#rebillingTtlMs })
      return value
    })
  }

  /**
   * A custom price is checked against the meter before anything is sent: HighLevel refuses one on a
   * fixed-price meter, and a dynamic meter's documented range (min/max price per unit) bounds it. When
   * the configuration cannot be read (e.g. no `oauth.readonly` scope), HighLevel's answer decides.
   */
  async #checkPrice(locationId: string, request: ChargeRequest): Promise<void> {
    let config: RebillingConfig
    try {
      config = await this.rebillingConfig(locationId)
    } catch (err) {
      this.#deps.logger.warn({ locationId, code: err instanceof GhlError ? err.code : undefined }, 'billing: the rebilling configuration could not be read; the price is left to HighLevel to check')
      return
    }
    const meter = config.plans.usage.find((m) => m.meterId === request.meterId)
    if (!meter) return
    const price = request.price!
    if (meter.priceType === 'fixed') {
      throw new ChargeError(
        'GHL_BILLING_INVALID',
        `Invalid charge, not sent: price: meter ${request.meterId} has a fixed price per unit, and HighLevel refuses a custom price on it ("Custom price is not allowed for fixed price meters"): leave price out`,
        request.eventId !== undefined ? { eventId: request.eventId } : {},
      )
    }
    const min = meter.minPricePerUnit ?? undefined
    const max = meter.maxPricePerUnit ?? undefined
    if ((min !== undefined && price < min) || (max !== undefined && price > max)) {
      throw new ChargeError(
        'GHL_BILLING_INVALID',
        `Invalid charge, not sent: price: meter ${request.meterId} takes a price per unit between ${min ?? '0'} and ${max ?? 'any'}, got ${price}`,
        request.eventId !== undefined ? { eventId: request.eventId } : {},
      )
    }
  }

  /** The agency of a location (HighLevel's charge body needs it), from its installation. */
  async #companyOf(locationId: string): Promise<string> {
    const known = this.#companies.get(locationId)
    if (known) return known
    const row = await this.#deps.vault.installations.findByLocation(this.#deps.clientId, locationId)
    if (!row || row.status === 'uninstalled') throw new NotInstalledError({ locationId })
    this.#companies.set(locationId, row.companyId)
    return row.companyId
  }
}

/**
 * The billing settings with their defaults.
 * @throws GhlError `GHL_CONFIG_INVALID` naming every bad setting.
 */
export function billingSettings(options: BillingOptions = {}): Required<BillingOptions> {
  const problems: string[] = []
  const setting = (name: keyof BillingOptions, fallback: number, integer = false): number => {
    const v = options[name]
    if (v === undefined) return fallback
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (integer && (!Number.isInteger(v) || v < 1))) {
      problems.push(`expected billing.${name} to be a ${integer ? 'positive integer' : 'non-negative finite number'}, got ${String(v)}`)
    }
    return v
  }
  const settings = {
    hasFundsTtlMs: setting('hasFundsTtlMs', 30_000),
    rebillingTtlMs: setting('rebillingTtlMs', 3_600_000),
    chargeTimeoutMs: setting('chargeTimeoutMs', 60_000),
    reconcileDelayMs: setting('reconcileDelayMs', 1_000),
    maxAttempts: setting('maxAttempts', 3, true),
  }
  if (problems.length > 0) throw new GhlError('GHL_CONFIG_INVALID', `Invalid billing options: ${problems.join('; ')}`)
  return settings
}

function conflict(eventId: string): ChargeError {
  return new ChargeError(
    'GHL_BILLING_CONFLICT',
    `The eventId ${eventId} was already used for a different charge (another meter, number of units, price or user): use a new eventId`,
    { eventId },
  )
}

function requireId(id: string): string {
  if (typeof id !== 'string' || id === '') throw new GhlError('GHL_BAD_REQUEST', 'expected a charge id, got nothing')
  return id
}

/**
 * What an error says about a charge that may have been sent:
 * - `rejected`: HighLevel answered a 4xx (other than 408/429) — it refused; nothing was charged.
 * - `unsent`: the request provably never reached HighLevel or was refused unprocessed (429, a
 *   connection never made, no token) — nothing was charged.
 * - `ambiguous`: it may have been charged (timeout, a broken connection, a 5xx).
 */
function classify(err: unknown): 'rejected' | 'unsent' | 'ambiguous' {
  if (err instanceof HighLevelApiError) {
    const s = err.upstreamStatus
    return s >= 400 && s < 500 && s !== 408 ? 'rejected' : 'ambiguous'
  }
  if (err instanceof RateLimitedError) return 'unsent'
  if (err instanceof GhlError) {
    if (err.code === 'GHL_NETWORK') {
      const code = networkErrorCode(err.cause)
      return code !== undefined && NEVER_SENT_CODES.has(code) ? 'unsent' : 'ambiguous'
    }
    if (err.code === 'GHL_TIMEOUT' || err.code === 'GHL_ABORTED') return 'ambiguous'
    return 'unsent'
  }
  return 'ambiguous'
}

function upstreamMessage(body: unknown): string | undefined {
  if (!body || typeof body !== 'object') return undefined
  const m = (body as { message?: unknown }).message
  if (Array.isArray(m)) return m.map(String).join('; ').slice(0, 300)
  return typeof m === 'string' ? m.slice(0, 300) : undefined
}

function parse<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: import('zod').ZodError } }, data: unknown, what: string): T {
  const parsed = schema.safeParse(data)
  if (!parsed.success) {
    throw new GhlError('GHL_API_ERROR', `HighLevel's ${what} answer does not have the documented shape: ${describeIssues(parsed.error)}`)
  }
  return parsed.data
}
