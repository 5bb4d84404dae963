/**
 * External billing (Billing.md): for a paid app that bills outside HighLevel, HighLevel sends the
 * installer to the app's billing URL with `clientId`, `installType`, `locationId` (comma-separated when
 * several) and `companyId`; the app takes its payment, then reports the result to HighLevel with
 * `POST /oauth/billing/webhook` — once per location and once per agency (HighLevel's FAQ: one call
 * cannot cover several).
 *
 * Each report is stored before it is sent (`vault.billingReports`, keyed by app, location or agency,
 * and the payment's reference), so a retried request or a second instance never reports one payment
 * twice. Sending is retried on network errors, 429 and 5xx: the report states a fact ("this payment
 * completed"), so a resend cannot change what HighLevel records. A 4xx is final (`failed`).
 *
 * The client secret travels in the `x-ghl-client-secret` header only: never in the stored body, a log
 * line or an error.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { randomUUID } from 'node:crypto'
import type { Dispatcher } from 'undici'
import type { Clock } from '../../clock.js'
import { GhlError, HighLevelApiError } from '../../errors.js'
import type { Logger } from '../../logger.js'
import type { Vault } from '../../vault/types.js'
import { parseBody } from '../../client/steps/send.js'
import { billingRedirectQuery, billingWebhookBody, describeIssues, type BillingRedirect, type BillingWebhookBody } from './billing-shapes.js'

/** HighLevel's billing webhook, relative to the API base URL (Billing.md §3). */
export const BILLING_WEBHOOK_PATH = '/oauth/billing/webhook'

/** What the app reports after its own payment step. */
export interface BillingReport {
  /** The sub-accounts paid for: one report each. */
  locationIds?: string[]
  /** The agency paid for: one report. */
  companyId?: string
  /** Billed amount. */
  amount: number
  status: 'COMPLETED' | 'FAILED'
  paymentType: 'one_time' | 'recurring'
  /** A one-time payment's id. */
  paymentId?: string
  /** A subscription's id. */
  subscriptionId?: string
  /**
   * What makes this report once-only per location/agency. Default: `paymentId`, else `subscriptionId`
   * (then one of the three is required). A FAILED attempt followed by a COMPLETED one needs two references.
   */
  reference?: string
}

/** The outcome for one location or agency. */
export interface BillingReportOutcome {
  target: { locationId: string } | { companyId: string }
  /** `sent` now; `already-sent` earlier; `in-progress` elsewhere; `failed` (HighLevel refused, or unreachable). */
  status: 'sent' | 'already-sent' | 'in-progress' | 'failed'
  error?: string
}

/** What {@link ExternalBilling} needs. */
export interface ExternalBillingDeps {
  clientId: string
  clientSecret: string
  apiUrl: string
  dispatcher: Dispatcher
  vault: Pick<Vault, 'billingReports'>
  clock: Clock
  logger: Logger
  timeoutMs: number
}

const MAX_ATTEMPTS = 4

/** See the file comment. */
export class ExternalBilling {
  readonly #deps: ExternalBillingDeps
  readonly #owner = `billing-report:${randomUUID()}`

  constructor(deps: ExternalBillingDeps) {
    this.#deps = deps
  }

  /**
   * The query of HighLevel's redirect to the billing URL, checked: the client id must be this app's.
   * @throws GhlError `GHL_BAD_REQUEST` naming each problem.
   */
  parseRedirect(query: Record<string, unknown>): BillingRedirect {
    const parsed = billingRedirectQuery.safeParse(pickStrings(query, ['clientId', 'installType', 'locationId', 'companyId']))
    if (!parsed.success) throw new GhlError('GHL_BAD_REQUEST', `Invalid billing redirect: ${describeIssues(parsed.error)}`)
    if (parsed.data.clientId !== this.#deps.clientId) throw new GhlError('GHL_BAD_REQUEST', 'Invalid billing redirect: clientId is not this app’s client id')
    return parsed.data
  }

  /**
   * Reports a payment to HighLevel, once per location and once for the agency.
   *
   * @example
   * await ghl.externalBilling.report({ locationIds: ['LOC'], amount: 12, status: 'COMPLETED', paymentType: 'recurring', subscriptionId: 'sub_123' })
   * @throws GhlError `GHL_BAD_REQUEST` for a report HighLevel would refuse (nothing sent).
   */
  async report(report: BillingReport): Promise<BillingReportOutcome[]> {
    const reference = report?.reference ?? report?.paymentId ?? report?.subscriptionId
    const targets: Array<{ locationId: string } | { companyId: string }> = [
      ...(report?.locationIds ?? []).map((locationId) => ({ locationId })),
      ...(report?.companyId ? [{ companyId: report.companyId }] : []),
    ]
    const problems: string[] = []
    if (typeof reference !== 'string' || reference === '') problems.push('reference (or paymentId, or subscriptionId) is required: it makes the report once-only')
    if (targets.length === 0) problems.push('locationIds or companyId is required')
    const bodies = targets.map((target) => {
      const parsed = billingWebhookBody.safeParse({
        clientId: this.#deps.clientId,
        authType: 'locationId' in target ? 'location' : 'company',
        ...target,
        ...(report.subscriptionId !== undefined ? { subscriptionId: report.subscriptionId } : {}),
        ...(report.paymentId !== undefined ? { paymentId: report.paymentId } : {}),
        amount: report.amount,
        status: report.status,
        paymentType: report.paymentType,
      })
      if (!parsed.success) problems.push(describeIssues(parsed.error))
      return parsed.success ? parsed.data : undefined
    })
    if (problems.length > 0) throw new GhlError('GHL_BAD_REQUEST', `Invalid billing report, nothing sent: ${[...new Set(problems)].join('; ')}`)
    const out: BillingReportOutcome[] = []
    for (const [i, target] of targets.entries()) out.push(await this.#reportOne(target, bodies[i]!, reference!))
    return out
  }

  async #reportOne(target: { locationId: string } | { companyId: string }, body: BillingWebhookBody, reference: string): Promise<BillingReportOutcome> {
    const { vault, clock, logger, clientId } = this.#deps
    const resourceKey = 'locationId' in target ? `location:${target.locationId}` : `company:${target.companyId}`
    const key = { clientId, resourceKey, reference }
    const { record, claimed } = await vault.billingReports.begin(
      { ...key, body: body as unknown as Record<string, unknown> },
      { owner: this.#owner, until: new Date(clock.now() + MAX_ATTEMPTS * (this.#deps.timeoutMs + 2_000)) },
    )
    if (record.status === 'sent') return { target, status: 'already-sent' }
    if (!claimed) return { target, status: 'in-progress' }
    try {
      await this.#send(body)
      await vault.billingReports.complete(key, this.#owner, { status: 'sent', lastError: null, incrementAttempts: true })
      logger.info({ ...target, reference, status: body.status }, 'billing: payment reported to HighLevel')
      return { target, status: 'sent' }
    } catch (err) {
      const final = err instanceof HighLevelApiError && err.upstreamStatus >= 400 && err.upstreamStatus < 500 && err.upstreamStatus !== 429
      const error = err instanceof GhlError ? err.message : 'unexpected error'
      await vault.billingReports.complete(key, this.#owner, { status: final ? 'failed' : 'pending', lastError: error.slice(0, 500), incrementAttempts: true })
      logger.warn({ ...target, reference, code: err instanceof GhlError ? err.code : undefined }, 'billing: reporting a payment to HighLevel failed')
      return { target, status: 'failed', error }
    }
  }

  /** One POST to the billing webhook, retried while a resend can help (network, 429, 5xx). */
  async #send(body: BillingWebhookBody): Promise<void> {
    const { dispatcher, apiUrl, clientId, clientSecret, timeoutMs } = this.#deps
    const base = new URL(apiUrl)
    const path = `${base.pathname.replace(/\/+$/, '')}${BILLING_WEBHOOK_PATH}`
    for (let attempt = 1; ; attempt++) {
      let error: GhlError
      try {
        const res = await dispatcher.request({
          origin: base.origin,
          path,
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'application/json',
            'x-ghl-client-key': clientId,
            'x-ghl-client-secret': clientSecret,
          },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(timeoutMs),
        })
        const text = await res.body.text()
        if (res.statusCode >= 200 && res.statusCode < 300) return
        const trace = res.headers['x-trace-id']
        error = new HighLevelApiError(res.statusCode, parseBody(text, res.headers['content-type']), typeof trace === 'string' ? trace : undefined)
        if (res.statusCode < 500 && res.statusCode !== 429) throw error
      } catch (err) {
        if (err instanceof HighLevelApiError && err.upstreamStatus < 500 && err.upstreamStatus !== 429) throw err
        error = err instanceof GhlError ? err : new GhlError('GHL_NETWORK', `HighLevel's billing webhook could not be reached (${(err as { code?: string }).code ?? (err as Error).name})`, { cause: err })
      }
      if (attempt >= MAX_ATTEMPTS) throw error
      await sleep(Math.random() * Math.min(5_000, 200 * 2 ** attempt))
    }
  }
}

/** Only the string values of the named keys (a repeated query key takes its first value). */
function pickStrings(query: Record<string, unknown>, keys: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const k of keys) {
    const v = query?.[k]
    const s = Array.isArray(v) ? v[0] : v
    if (typeof s === 'string') out[k] = s
  }
  return out
}

/**
 * What the app's own payment step decided for an installer HighLevel sent to the billing URL:
 * - `redirect`: send the installer to the app's checkout (then call `report()` when it completes);
 * - `report`: the payment is settled already (a free plan, a stored card charged on the spot) — it is
 *   reported now for every location and the agency of the redirect, and the installer sees a page
 *   saying so (or is sent to `returnUrl`).
 */
export type BillingDecision =
  | { redirect: string }
  | { report: Omit<BillingReport, 'locationIds' | 'companyId'>; returnUrl?: string }

/** The app's payment step, given HighLevel's checked redirect. */
export type BillingStep = (redirect: BillingRedirect) => BillingDecision | Promise<BillingDecision>

/**
 * Handles the installer's arrival at the billing URL: checks HighLevel's query (400 page otherwise),
 * runs the app's payment step, and answers with a redirect or a page. Pages hold no secret and no
 * request value but ids.
 */
export async function handleBillingRedirect(billing: ExternalBilling, step: BillingStep, query: Record<string, unknown>): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  let redirect: BillingRedirect
  try {
    redirect = billing.parseRedirect(query)
  } catch (err) {
    return page(400, 'Billing link not valid', err instanceof GhlError ? err.message : 'The billing link is not valid.')
  }
  let decision: BillingDecision
  try {
    decision = await step(redirect)
  } catch (err) {
    return page(err instanceof GhlError && err.status < 500 ? err.status : 500, 'Billing failed', err instanceof GhlError && err.status < 500 ? err.message : 'The payment step failed. Please try again.')
  }
  if ('redirect' in decision) {
    const to = safeUrl(decision.redirect)
    if (!to) return page(500, 'Billing failed', 'The app gave no valid checkout address.')
    return { status: 302, headers: { location: to, 'cache-control': 'no-store' }, body: '' }
  }
  let outcomes: BillingReportOutcome[]
  try {
    outcomes = await billing.report({
      ...decision.report,
      ...(redirect.installType.location ? { locationIds: redirect.locationId } : {}),
      ...(redirect.installType.agency && redirect.companyId ? { companyId: redirect.companyId } : {}),
    })
  } catch (err) {
    return page(err instanceof GhlError ? err.status : 500, 'Billing failed', err instanceof GhlError ? err.message : 'The payment could not be reported.')
  }
  const failed = outcomes.filter((o) => o.status === 'failed' || o.status === 'in-progress')
  if (failed.length > 0) return page(502, 'Payment not recorded yet', 'HighLevel could not be told about the payment. Please try again in a moment.')
  const back = decision.returnUrl !== undefined ? safeUrl(decision.returnUrl) : undefined
  if (back) return { status: 302, headers: { location: back, 'cache-control': 'no-store' }, body: '' }
  return page(200, decision.report.status === 'COMPLETED' ? 'Payment recorded' : 'Payment not completed', decision.report.status === 'COMPLETED' ? 'You can return to HighLevel to finish the installation.' : 'The payment did not complete; the installation cannot go on.')
}

function safeUrl(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined
  try {
    const url = new URL(value)
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.toString() : undefined
  } catch {
    return undefined
  }
}

function page(status: number, title: string, message: string): { status: number; headers: Record<string, string>; body: string } {
  const esc = (t: string) => t.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!)
  return {
    status,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
    },
    body: `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title></head><body><main><h1>${esc(title)}</h1><p id="message">${esc(message)}</p></main></body></html>\n`,
  }
}
