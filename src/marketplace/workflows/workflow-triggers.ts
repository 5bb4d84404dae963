/**
 * The app's custom workflow triggers. When a workflow adds, changes or removes one of the app's
 * triggers, HighLevel POSTs the subscription (`triggerData`, `extras`, `meta`) to the trigger's
 * subscription URL; the connector keeps each in the vault (`vault.triggers`). `fire(key, locationId,
 * payload)` then POSTs the payload to the `targetUrl` of every subscription of that trigger at that
 * location whose filters the payload passes, with the location's token.
 *
 * The token goes to HighLevel's API host only: a subscription whose `targetUrl` is elsewhere is refused
 * when it arrives (`GHL_TRIGGER_TARGET_INVALID`), so a forged subscription cannot collect tokens. Each
 * delivery goes through the API client — the location's rate limit, a refresh on 401, resends of a 429
 * or of a request that never left — and is not resent after a lost answer (a POST: the workflow could
 * run twice); such a delivery is reported `uncertain`.
 *
 * Shapes: `workflow-shapes.ts` (community-sourced, not verified against HighLevel's API reference).
 *
 * @example
 * const result = await ghl.triggers.fire('order_paid', 'LOC', { orderId: 'o1', total: 120, status: 'paid' })
 * // result.delivered: how many workflows were started; result.results: each subscription's outcome
 */
import type { ResourceClient } from '../../client/types.js'
import { NEVER_SENT_CODES, networkErrorCode } from '../../client/steps/retry.js'
import { GhlError, HighLevelApiError, RateLimitedError } from '../../errors.js'
import type { Logger } from '../../logger.js'
import type { TriggerSubscription } from '../../vault/marketplace-types.js'
import type { Vault } from '../../vault/types.js'
import { describeIssues } from '../billing/billing-shapes.js'
import { answerFromError, errorAnswer, type MarketplaceAnswer, type MarketplaceRequest } from '../exchange.js'
import type { StaticHeaders } from '../static-headers.js'
import { matchFilters } from './trigger-filters.js'
import { triggerSubscription } from './workflow-shapes.js'

/** What {@link WorkflowTriggers} needs from the connector. */
export interface WorkflowTriggersDeps {
  clientId: string
  /** HighLevel's API base URL: target URLs must be on it. */
  apiUrl: string
  vault: Pick<Vault, 'triggers'>
  client: (locationId: string) => ResourceClient
  logger: Logger
}

/** Options of {@link WorkflowTriggers}. */
export interface WorkflowTriggersOptions {
  /** The app's trigger keys; when given, a subscription to another key is refused (400). */
  keys?: readonly string[]
}

/** One subscription's outcome of a {@link WorkflowTriggers.fire}. */
export interface TriggerDelivery {
  triggerId: string
  workflowId: string
  /** `delivered`: HighLevel accepted it; `skipped`: its filters did not pass; `failed`: not accepted. */
  status: 'delivered' | 'skipped' | 'failed'
  reason?: string
  /** For `failed`: the answer was lost, HighLevel may have started the workflow. */
  uncertain?: boolean
}

/** What {@link WorkflowTriggers.fire} did. */
export interface FireResult {
  key: string
  locationId: string
  delivered: number
  skipped: number
  failed: number
  results: TriggerDelivery[]
}

/** What a subscription call did. */
export interface SubscriptionOutcome {
  eventType: 'CREATED' | 'UPDATED' | 'DELETED'
  triggerId: string
  /** The stored subscription (absent for DELETED). */
  subscription?: TriggerSubscription
  /** DELETED: whether there was one to remove. */
  removed?: boolean
}

/** See the file comment. */
export class WorkflowTriggers {
  readonly #deps: WorkflowTriggersDeps
  readonly #keys: ReadonlySet<string> | undefined
  readonly #origin: string
  readonly #basePath: string

  constructor(deps: WorkflowTriggersDeps, options: WorkflowTriggersOptions = {}) {
    this.#deps = deps
    this.#keys = options.keys ? new Set(options.keys) : undefined
    const base = new URL(deps.apiUrl)
    this.#origin = base.origin
    this.#basePath = base.pathname.replace(/\/+$/, '')
  }

  /**
   * Applies HighLevel's subscription call (CREATED / UPDATED: stored; DELETED: removed).
   * @throws GhlError `GHL_BAD_REQUEST` for a malformed call or an unknown key; `GHL_TRIGGER_TARGET_INVALID`
   *   for a target URL that is not on HighLevel's API host.
   */
  async subscription(call: unknown): Promise<SubscriptionOutcome> {
    const parsed = triggerSubscription.safeParse(call)
    if (!parsed.success) throw new GhlError('GHL_BAD_REQUEST', `Invalid trigger subscription: ${describeIssues(parsed.error)}`)
    const { triggerData, extras, meta } = parsed.data
    if (this.#keys && !this.#keys.has(triggerData.key)) throw new GhlError('GHL_BAD_REQUEST', `Invalid trigger subscription: the app has no trigger ${triggerData.key}`)
    const { clientId, vault, logger } = this.#deps
    if (triggerData.eventType === 'DELETED') {
      const removed = await vault.triggers.remove(clientId, triggerData.id)
      logger.info({ triggerId: triggerData.id, key: triggerData.key, locationId: extras.locationId, workflowId: extras.workflowId, removed }, 'trigger unsubscribed')
      return { eventType: 'DELETED', triggerId: triggerData.id, removed }
    }
    this.#pathOf(triggerData.targetUrl!)
    const subscription = await vault.triggers.upsert({
      clientId,
      triggerId: triggerData.id,
      key: triggerData.key,
      locationId: extras.locationId,
      companyId: extras.companyId ?? null,
      workflowId: extras.workflowId,
      targetUrl: triggerData.targetUrl!,
      filters: triggerData.filters,
      version: meta?.version ?? null,
    })
    logger.info({ triggerId: triggerData.id, key: triggerData.key, locationId: extras.locationId, workflowId: extras.workflowId, eventType: triggerData.eventType }, 'trigger subscribed')
    return { eventType: triggerData.eventType, triggerId: triggerData.id, subscription }
  }

  /** The subscriptions of a location (of one key, when given). */
  subscriptions(locationId: string, key?: string): Promise<TriggerSubscription[]> {
    return this.#deps.vault.triggers.list({ clientId: this.#deps.clientId, locationId, ...(key !== undefined ? { key } : {}) })
  }

  /**
   * Fires trigger `key` at `locationId`: every subscription whose filters `payload` passes gets it.
   * @throws GhlError `GHL_BAD_REQUEST` for a missing key or location, or a payload that is not a JSON object.
   */
  async fire(key: string, locationId: string, payload: Record<string, unknown>): Promise<FireResult> {
    const problems: string[] = []
    if (typeof key !== 'string' || key === '') problems.push('expected key to be a non-empty string')
    if (typeof locationId !== 'string' || locationId === '') problems.push('expected locationId to be a non-empty string')
    if (!payload || typeof payload !== 'object' || Array.isArray(payload)) problems.push('expected payload to be a JSON object')
    else {
      try {
        JSON.stringify(payload)
      } catch {
        problems.push('expected payload to be JSON-serialisable')
      }
    }
    if (problems.length > 0) throw new GhlError('GHL_BAD_REQUEST', `Invalid trigger: ${problems.join('; ')}`)
    const subscriptions = await this.subscriptions(locationId, key)
    const results = await Promise.all(subscriptions.map((s) => this.#deliver(s, payload)))
    const count = (status: TriggerDelivery['status']) => results.filter((r) => r.status === status).length
    const result: FireResult = { key, locationId, delivered: count('delivered'), skipped: count('skipped'), failed: count('failed'), results }
    this.#deps.logger.info({ key, locationId, delivered: result.delivered, skipped: result.skipped, failed: result.failed }, 'trigger fired')
    return result
  }

  async #deliver(s: TriggerSubscription, payload: Record<string, unknown>): Promise<TriggerDelivery> {
    const base = { triggerId: s.triggerId, workflowId: s.workflowId }
    const verdict = matchFilters(s.filters, payload)
    if (!verdict.pass) return { ...base, status: 'skipped', reason: verdict.reason }
    try {
      await this.#deps.client(s.locationId).post(this.#pathOf(s.targetUrl), { body: payload })
      return { ...base, status: 'delivered' }
    } catch (err) {
      const reason = err instanceof GhlError ? `${err.code}: ${err.message}` : 'unexpected error'
      this.#deps.logger.warn({ ...base, key: s.key, locationId: s.locationId, code: err instanceof GhlError ? err.code : undefined }, 'trigger delivery failed')
      return { ...base, status: 'failed', reason, uncertain: maybeDelivered(err) }
    }
  }

  /** The API path of a target URL on HighLevel's API host; anything else is refused. */
  #pathOf(targetUrl: string): string {
    let url: URL
    try {
      url = new URL(targetUrl)
    } catch {
      throw new GhlError('GHL_TRIGGER_TARGET_INVALID', 'The trigger target URL is not a URL')
    }
    if (url.origin !== this.#origin || !url.pathname.startsWith(`${this.#basePath}/`) || url.username || url.password) {
      throw new GhlError('GHL_TRIGGER_TARGET_INVALID', `The trigger target URL is not on HighLevel's API host (${this.#origin}): no token is sent there`)
    }
    return url.pathname.slice(this.#basePath.length) + url.search
  }
}

/** Whether a failed POST may still have reached HighLevel. */
function maybeDelivered(err: unknown): boolean {
  if (err instanceof HighLevelApiError) return err.upstreamStatus >= 500 || err.upstreamStatus === 408
  if (err instanceof RateLimitedError) return false
  if (err instanceof GhlError) {
    if (err.code === 'GHL_NETWORK') {
      const code = networkErrorCode(err.cause)
      return !(code !== undefined && NEVER_SENT_CODES.has(code))
    }
    return err.code === 'GHL_TIMEOUT' || err.code === 'GHL_ABORTED'
  }
  return true
}

/**
 * Handles HighLevel's call of the trigger subscription URL: authenticates it with the static headers
 * configured for it (401 otherwise), applies it, answers `{success: true}` (200).
 */
export async function handleTriggerSubscription(triggers: WorkflowTriggers, headers: StaticHeaders, request: MarketplaceRequest): Promise<MarketplaceAnswer> {
  if (!headers.matches(request.headers)) {
    return errorAnswer('GHL_MARKETPLACE_UNAUTHORIZED', 'The trigger subscription call does not carry the headers configured for the app’s triggers')
  }
  try {
    await triggers.subscription(request.body)
    return { status: 200, body: { success: true } }
  } catch (err) {
    if (err instanceof GhlError) return answerFromError(err)
    throw err
  }
}
