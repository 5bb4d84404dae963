/**
 * The app's custom workflow actions: a handler per action key, run when a HighLevel workflow reaches
 * the action. HighLevel POSTs `{data, extras, meta}` to the URL configured for the action (here
 * `POST /actions/:key`) with the static headers the developer configured; the answer's JSON becomes the
 * action's outputs (custom variables), and its `branchId` picks the branch of a multi-branch action.
 * An action configured with "Pause Execution" holds the contact until the app calls HighLevel's resume
 * endpoint with the call's `extras` ({@link resumeWorkflowAction}).
 *
 * Shapes: `workflow-shapes.ts` (community-sourced, not verified against HighLevel's API reference).
 *
 * @example
 * const actions = new WorkflowActions({ headers: { 'x-app-secret': process.env.ACTION_SECRET! } })
 *   .define({
 *     key: 'send_postcard',
 *     fields: z.object({ address: z.string(), message: z.string() }),
 *     handler: async ({ data, extras, ghl }) => {
 *       const { chargeId } = await ghl.billing.charge({ meterId: 'POSTCARD', units: 1, description: 'Postcard', eventId: `${extras.workflowId}:${extras.contactId}` })
 *       return { outputs: { chargeId }, branchId: 'sent' }
 *     },
 *   })
 * await registerMarketplaceRoutes(app, ghl, { actions })
 */
import { randomBytes } from 'node:crypto'
import { z } from 'zod'
import { GhlError } from '../../errors.js'
import type { Logger } from '../../logger.js'
import { describeIssues } from '../billing/billing-shapes.js'
import { answerFromError, errorAnswer, type MarketplaceAnswer, type MarketplaceRequest } from '../exchange.js'
import type { MarketplaceHost, LocationClient } from '../location-client.js'
import { StaticHeaders, type IncomingHeaders } from '../static-headers.js'
import { actionBranch, actionCall, RESUME_PATH, resumeBody, type ActionBranch, type ActionExtras } from './workflow-shapes.js'

/** What an action handler gets. */
export interface ActionContext<F> {
  /** The action's key. */
  key: string
  /** The action's fields (`data`), checked against the definition's `fields` schema. */
  data: F
  /** The branches of a multi-branch action (`data.branches`). */
  branches: ActionBranch[]
  /** Where the workflow runs: `locationId`, `companyId`, `workflowId`, `contactId`, and whatever else HighLevel sent. */
  extras: ActionExtras
  meta: { key?: string | undefined; version?: string | undefined }
  /** The location's client (its token, rate limits, billing), ready to use. */
  ghl: LocationClient
  /**
   * Holds the contact at this action (configure "Pause Execution" on it in HighLevel): return the
   * value; keep it (it is plain JSON) and pass it to {@link resumeWorkflowAction} when done.
   */
  pause(): PausedAction
}

/** What a handler returns: outputs (the action's custom variables) and the branch to take. */
export interface ActionOutcome {
  outputs?: Record<string, unknown>
  branchId?: string
}

/** A paused action: everything needed to resume it later (plain JSON; store it as you like). */
export interface PausedAction {
  readonly paused: true
  readonly key: string
  readonly locationId: string
  /** The call's `extras`, which HighLevel's resume endpoint takes back. */
  readonly extras: Record<string, unknown>
}

/** One action. */
export interface ActionDefinition<F = Record<string, unknown>> {
  /** The action's key, as set in the Marketplace (immutable there). */
  key: string
  /** Schema of the action's fields; default: any object. A call that does not fit answers 422. */
  fields?: z.ZodType<F>
  handler(context: ActionContext<F>): Promise<ActionOutcome | PausedAction | void> | ActionOutcome | PausedAction | void
}

/** Options of {@link WorkflowActions}. */
export interface WorkflowActionsOptions {
  /** The static headers configured for the actions in HighLevel (checked in constant time). */
  headers?: Record<string, string>
  /**
   * Another check instead of static headers, e.g. an OAuth 2 external-authentication token HighLevel
   * passes in `Authorization`. Resolve `true` to accept the call.
   */
  authenticate?: (headers: IncomingHeaders) => boolean | Promise<boolean>
  logger?: Logger
}

const KEY = /^[A-Za-z0-9_.-]{1,100}$/

/** The registry of the app's actions, and the handling of HighLevel's calls to them. */
export class WorkflowActions {
  readonly #definitions = new Map<string, ActionDefinition<any>>()
  readonly #headers: StaticHeaders | undefined
  readonly #authenticate: ((headers: IncomingHeaders) => boolean | Promise<boolean>) | undefined
  readonly #logger: Logger | undefined

  /** @throws GhlError `GHL_CONFIG_INVALID` without headers or an `authenticate` function. */
  constructor(options: WorkflowActionsOptions) {
    if (!options?.authenticate && !options?.headers) {
      throw new GhlError('GHL_CONFIG_INVALID', 'Invalid actions: expected headers (the static headers configured for the actions in HighLevel) or an authenticate function — an action route without either would run for anyone')
    }
    this.#headers = options.headers ? new StaticHeaders(options.headers, 'actions.headers') : undefined
    this.#authenticate = options.authenticate
    this.#logger = options.logger
  }

  /** Adds an action. @throws GhlError `GHL_CONFIG_INVALID` for a bad or repeated key. */
  define<F>(definition: ActionDefinition<F>): this {
    const key = definition?.key
    if (typeof key !== 'string' || !KEY.test(key)) throw new GhlError('GHL_CONFIG_INVALID', `Invalid action: expected key to be 1–100 of A-Z a-z 0-9 _ . -, got ${JSON.stringify(String(key).slice(0, 40))}`)
    if (this.#definitions.has(key)) throw new GhlError('GHL_CONFIG_INVALID', `Invalid action: the key ${key} is defined twice`)
    if (typeof definition.handler !== 'function') throw new GhlError('GHL_CONFIG_INVALID', `Invalid action ${key}: expected a handler function`)
    this.#definitions.set(key, definition)
    return this
  }

  /** The defined keys. */
  keys(): string[] {
    return [...this.#definitions.keys()]
  }

  /**
   * Handles HighLevel's call of action `key`: authenticates it (401 otherwise, before anything else),
   * parses the payload (400/422), runs the handler with the location's client, and answers with its
   * outputs and `branchId` (200) — `{}` for a paused action. A handler's GhlError answers with its status;
   * anything else 500 with a reference (the cause is logged, never the payload).
   */
  async handle(host: MarketplaceHost, key: string, request: MarketplaceRequest): Promise<MarketplaceAnswer> {
    if (!(await this.#authorized(request.headers))) {
      return errorAnswer('GHL_MARKETPLACE_UNAUTHORIZED', 'The action call does not carry the headers configured for the app’s actions')
    }
    const definition = this.#definitions.get(key)
    if (!definition) return errorAnswer('GHL_NOT_FOUND', `No workflow action with the key ${key}`)
    const call = actionCall.safeParse(request.body)
    if (!call.success) return errorAnswer('GHL_BAD_REQUEST', `Invalid action call: ${describeIssues(call.error)}`)
    const { data, extras, meta } = call.data
    const fields = definition.fields ? definition.fields.safeParse(data) : { success: true as const, data }
    if (!fields.success) return errorAnswer('GHL_BAD_REQUEST', `Invalid fields of action ${key}: ${describeIssues(fields.error)}`, 422)
    const branches = z.array(actionBranch).safeParse(data.branches ?? [])
    let paused: PausedAction | undefined
    const context: ActionContext<unknown> = {
      key,
      data: fields.data,
      branches: branches.success ? branches.data : [],
      extras,
      meta: { key: meta?.key, version: meta?.version },
      ghl: host.location(extras.locationId),
      pause: () => (paused = { paused: true, key, locationId: extras.locationId, extras: { ...extras } }),
    }
    let outcome: ActionOutcome | PausedAction | void
    try {
      outcome = await definition.handler(context)
    } catch (err) {
      if (err instanceof GhlError) return answerFromError(err)
      const reference = randomBytes(6).toString('hex')
      // The error's name and message may quote the payload: only its class and where it was thrown are logged.
      const logger = this.#logger ?? host.logger
      logger?.error({ error: err instanceof Error ? err.name : typeof err, key, reference, locationId: extras.locationId, workflowId: extras.workflowId }, 'workflow action failed')
      return errorAnswer('GHL_INTERNAL', `The action ${key} failed (reference ${reference})`)
    }
    if (paused !== undefined || (outcome && 'paused' in outcome && outcome.paused === true)) return { status: 200, body: {} }
    return buildActionAnswer(key, (outcome ?? {}) as ActionOutcome)
  }

  async #authorized(headers: IncomingHeaders): Promise<boolean> {
    if (this.#headers && !this.#headers.matches(headers)) return false
    if (this.#authenticate) {
      try {
        return (await this.#authenticate(headers)) === true
      } catch {
        return false
      }
    }
    return true
  }
}

/** The answer HighLevel reads: the outputs as the body, plus `branchId` when a branch was picked. */
export function buildActionAnswer(key: string, outcome: ActionOutcome): MarketplaceAnswer {
  const outputs = outcome.outputs ?? {}
  if (typeof outputs !== 'object' || outputs === null || Array.isArray(outputs)) {
    return errorAnswer('GHL_INTERNAL', `The action ${key} returned outputs that are not an object`)
  }
  if (outcome.branchId !== undefined && (typeof outcome.branchId !== 'string' || outcome.branchId === '')) {
    return errorAnswer('GHL_INTERNAL', `The action ${key} returned a branchId that is not a non-empty string`)
  }
  return { status: 200, body: outcome.branchId === undefined ? { ...outputs } : { ...outputs, branchId: outcome.branchId } }
}

/** How a paused action ended. */
export interface ResumeResult {
  success: boolean
  /** The action's outputs (HighLevel's `executionResponse`). */
  outputs?: Record<string, unknown>
  /** The branch the contact continues on. */
  branchId?: string
  /** Shown in the workflow's history (`successMessage` / `errorMessage`). */
  message?: string
}

/**
 * Resumes a paused action: POSTs the call's `extras` and the result to HighLevel's resume endpoint
 * with the location's token (under its rate limit). Not retried when the answer is lost (a POST):
 * HighLevel documents no idempotency for it.
 */
export async function resumeWorkflowAction(host: MarketplaceHost, paused: PausedAction, result: ResumeResult): Promise<void> {
  if (!paused || paused.paused !== true || typeof paused.locationId !== 'string' || !paused.extras) {
    throw new GhlError('GHL_BAD_REQUEST', 'expected the PausedAction a handler returned from pause()')
  }
  const parsed = resumeBody.safeParse({
    success: result?.success,
    ...(result?.message !== undefined ? (result.success ? { successMessage: result.message } : { errorMessage: result.message }) : {}),
    ...(result?.outputs !== undefined ? { executionResponse: result.outputs } : {}),
    ...(result?.branchId !== undefined ? { branchId: result.branchId } : {}),
    extras: paused.extras,
  })
  if (!parsed.success) throw new GhlError('GHL_BAD_REQUEST', `Invalid resume of action ${paused.key}: ${describeIssues(parsed.error)}`)
  await host.location(paused.locationId).post(RESUME_PATH, { body: parsed.data })
}
