/**
 * What the operator's console shows and does, shared by its page and its JSON API: installations with
 * names, kind, status, token expiry, last refresh, last call and calls today against the daily budget;
 * one installation's detail (token timeline from the audit log, minted locations, scopes, rate-limit
 * budget now, last calls, webhooks); the actions (refresh now, mark uninstalled and wipe tokens, test
 * call, replay a webhook), each recorded in the audit log with who asked; and the charts' series.
 * Never a token: every value here comes from summaries, the audit log and the call recorder.
 */
import type { CallRecord } from '../client/steps/record.js'
import type { Connector } from '../connector.js'
import { GhlError, HighLevelApiError, NotInstalledError } from '../errors.js'
import type { AuditRecord, InstallationQuery, InstallationSummary, WebhookEventRecord, WebhookStatus } from '../vault/types.js'
import { STATUS_CLASSES, utcDay, type StatusClass } from './call-recorder.js'
import { NameResolver } from './name-resolver.js'

export type InstallationKind = 'agency' | 'location' | 'minted'

/** An installation as the console lists it. */
export interface InstallationView extends InstallationSummary {
  kind: InstallationKind
  /** The location's name for a sub-account, the company's for an agency; `null` when unknown yet. */
  name: string | null
  callsToday: number
  errorsToday: number
  throttledToday: number
  lastCallAt: Date | null
  /** Our daily budget per resource (`GHL_RATE_LIMIT_DAILY`). */
  dailyBudget: number
}

export interface InstallationListResult {
  items: InstallationView[]
  next?: string
  /** Rows matching the filters (all pages), counted up to {@link COUNT_MAX}: `COUNT_MAX` means "at least". */
  total: number
}

/** Counting the matches of a list stops here (the page says "10,000+"): a count must not read 100,000 rows. */
export const COUNT_MAX = 10_000

/** The rate-limit budget of one resource now. */
export interface BudgetNow {
  burst: { max: number; windowMs: number; usedByThisProcess: number; highLevelRemaining: number | null }
  daily: { max: number; usedToday: number; highLevelRemaining: number | null }
}

export interface InstallationDetail {
  installation: InstallationView
  /** Oldest first. */
  timeline: AuditRecord[]
  /** Location tokens minted from this agency installation. */
  minted: InstallationView[]
  budget: BudgetNow
  /** Newest first (this process's memory). */
  calls: CallRecord[]
  /** Newest first. */
  webhooks: WebhookEventRecord[]
  /** The connector's re-authorization link of this installation. */
  reauthorizationUrl: string
}

/** One chart's data: counts per bucket and series. */
export interface ChartSeries {
  start: number
  bucketMs: number
  series: string[]
  /** `values[bucket][series]`. */
  values: number[][]
}

export type ChartWindow = 'hour' | 'day'

/** Who did an action (recorded in the audit log): `page`, `api`, `cli`. */
export type Actor = 'page' | 'api'

/** Audit actions that make the token timeline (and the refresh chart). */
export const TOKEN_ACTIONS = [
  'installed',
  'reauthorized',
  'refreshed',
  'minted',
  'reconnected',
  'refresh_failing',
  'reauthorization_required',
  'suspended',
  'reactivated',
] as const

/** The console's kind of an installation: an agency install, a location token minted from one, or a location's own install. */
export function kindOf(i: InstallationSummary): InstallationKind {
  if (i.userType === 'Company') return 'agency'
  return i.source === 'agency' ? 'minted' : 'location'
}

/** See the file comment. */
export class OperatorService {
  readonly #c: Connector
  readonly names: NameResolver

  constructor(connector: Connector) {
    this.#c = connector
    this.names = new NameResolver({
      client: (target) => connector.client.forTarget(target),
      store: connector.vault.installations,
      clock: { now: () => Date.now() },
      logger: connector.logger,
    })
  }

  /** A page of installations with their counters; missing names are looked up in the background. */
  async list(query: InstallationQuery): Promise<InstallationListResult> {
    const { cursor: _cursor, limit: _limit, ...filters } = query
    const [page, total] = await Promise.all([
      this.#c.installationsPage(query),
      this.#c.vault.installations.count({ clientId: this.#c.config.clientId, ...filters }, { max: COUNT_MAX }),
    ])
    const items = await this.names.resolve(page.items)
    return { items: await this.#views(items), ...(page.next ? { next: page.next } : {}), total }
  }

  /** One installation's detail. @throws NotInstalledError when unknown. */
  async detail(id: string): Promise<InstallationDetail> {
    const row = await this.#get(id)
    const [withName] = await this.names.resolve([row], 2000)
    const [view] = await this.#views([withName!])
    const v = view!
    const [timeline, minted, webhooks] = await Promise.all([
      this.#c.vault.audit.list(id, { limit: 200 }),
      v.kind === 'agency' ? this.#c.vault.installations.list({ clientId: this.#c.config.clientId, parentId: id, limit: 200 }) : Promise.resolve([]),
      this.#c.vault.webhooks.list(v.locationId ? { locationId: v.locationId, newestFirst: true, limit: 50 } : { companyId: v.companyId, newestFirst: true, limit: 50 }),
    ])
    const calls = this.#c.calls?.recent(id) ?? []
    const rl = this.#c.config.rateLimit
    const now = Date.now()
    const lastAnswered = calls.find((c) => c.status > 0)
    return {
      installation: v,
      timeline,
      minted: await this.#views(minted),
      budget: {
        burst: {
          max: rl.burstMax,
          windowMs: rl.burstWindowMs,
          usedByThisProcess: calls.filter((c) => c.at > now - rl.burstWindowMs).length,
          highLevelRemaining: lastAnswered?.burstRemaining ?? null,
        },
        daily: { max: rl.dailyMax, usedToday: v.callsToday, highLevelRemaining: lastAnswered?.dailyRemaining ?? null },
      },
      calls,
      webhooks,
      reauthorizationUrl: `${this.#c.config.publicUrl}/oauth/reauthorize/${encodeURIComponent(id)}`,
    }
  }

  /** Refreshes (or re-mints) the installation's token now. The outcome, good or bad, is audited. */
  async refresh(id: string, actor: Actor): Promise<InstallationSummary> {
    await this.#get(id)
    try {
      const fresh = await this.#c.tokens.refreshNow(id)
      await this.#audit(id, 'operator.refresh', actor, { ok: true, expiresAt: fresh.expiresAt?.toISOString() ?? null })
      return fresh
    } catch (err) {
      await this.#audit(id, 'operator.refresh', actor, { ok: false, ...errorDetail(err) })
      throw err
    }
  }

  /** Marks the installation uninstalled and wipes its tokens (the row stays, for the audit trail). */
  async uninstall(id: string, actor: Actor): Promise<InstallationSummary> {
    await this.#get(id)
    const row = await this.#c.vault.installations.setStatus(id, 'uninstalled', { reason: 'marked uninstalled by an operator', wipeTokens: true })
    if (!row) throw new NotInstalledError({}, `No installation with id ${id}`)
    this.#c.tokens.invalidate(id)
    await this.#audit(id, 'operator.uninstall', actor, { tokensWiped: true })
    return row
  }

  /** `GET /locations/{locationId}` (or `/companies/{companyId}` for an agency) with the installation's token. */
  async testCall(id: string, actor: Actor): Promise<{ ok: boolean; status: number; path: string; traceId: string | null; ms: number; error?: string }> {
    const row = await this.#get(id)
    const target = row.locationId === null ? { kind: 'company' as const, id: row.companyId } : { kind: 'location' as const, id: row.locationId }
    const path = row.locationId === null ? `/companies/${encodeURIComponent(row.companyId)}` : `/locations/${encodeURIComponent(row.locationId)}`
    const start = performance.now()
    let result: { ok: boolean; status: number; path: string; traceId: string | null; ms: number; error?: string }
    try {
      const res = await this.#c.client.forTarget(target).get(path)
      result = { ok: true, status: res.status, path, traceId: res.traceId ?? null, ms: Math.round(performance.now() - start) }
    } catch (err) {
      const d = errorDetail(err)
      result = { ok: false, status: err instanceof HighLevelApiError ? err.upstreamStatus : 0, path, traceId: d.traceId ?? null, ms: Math.round(performance.now() - start), error: `${d.code}: ${d.message}` }
    }
    await this.#audit(id, 'operator.test_call', actor, { ...result })
    return result
  }

  /** Redelivers a stored webhook event to the app's handlers (a fresh attempt). */
  async replayWebhook(webhookId: string, actor: Actor): Promise<{ outcome: string; event: WebhookEventRecord | undefined }> {
    const before = await this.#c.vault.webhooks.get(webhookId)
    if (!before) throw new GhlError('GHL_NOT_FOUND', `No stored webhook event ${webhookId} (never received, or expired)`)
    const outcome = await this.#c.webhooks.replay(webhookId)
    const event = await this.#c.vault.webhooks.get(webhookId)
    const owner = await this.#ownerOf(before)
    await this.#c.vault.audit
      .append({ installationId: owner, action: 'operator.webhook_replay', detail: { actor, webhookId, type: before.type, outcome, lastError: event?.lastError ?? null } })
      .catch((err: unknown) => this.#c.logger.warn({ err }, 'audit write failed'))
    return { outcome, event }
  }

  /** Stored webhook events, newest first. */
  webhooks(filter: { type?: string; status?: WebhookStatus; limit?: number }): Promise<WebhookEventRecord[]> {
    return this.#c.vault.webhooks.list({ ...filter, newestFirst: true, limit: filter.limit ?? 100 })
  }

  /** The charts of a window: calls per bucket by status class, token outcomes, webhook events by type. */
  async charts(window: ChartWindow): Promise<{ calls: ChartSeries; limits: ChartSeries; tokens: ChartSeries; webhooks: ChartSeries }> {
    const minutes = window === 'hour' ? 60 : 1440
    const bucketMinutes = window === 'hour' ? 1 : 30
    const bucketMs = bucketMinutes * 60_000
    const empty = { start: Date.now(), bucketMs, buckets: [] as Array<Record<StatusClass, number>>, queued: [] as number[] }
    const calls = this.#c.calls?.series(minutes, bucketMinutes) ?? empty
    const start = calls.buckets.length ? calls.start : Math.floor((Date.now() - minutes * 60_000) / bucketMs) * bucketMs + bucketMs
    const count = Math.ceil(minutes / bucketMinutes)
    const [tokens, hooks] = await Promise.all([
      this.#c.vault.console.auditCounts(new Date(start), bucketMs, TOKEN_ACTIONS),
      this.#c.vault.console.webhookCounts(new Date(start), bucketMs),
    ])
    return {
      calls: { start, bucketMs, series: [...STATUS_CLASSES], values: calls.buckets.map((b) => STATUS_CLASSES.map((c) => b[c])) },
      limits: { start, bucketMs, series: ['queued (429 avoided)', '429 received'], values: calls.buckets.map((b, i) => [calls.queued[i] ?? 0, b['429']]) },
      tokens: bucketed(start, bucketMs, count, tokens),
      webhooks: bucketed(start, bucketMs, count, hooks),
    }
  }

  async #get(id: string): Promise<InstallationSummary> {
    const row = await this.#c.vault.installations.get(id)
    if (!row || row.clientId !== this.#c.config.clientId) throw new NotInstalledError({}, `No installation with id ${id}`)
    const { tokens: _tokens, ...summary } = row
    return summary
  }

  async #views(rows: readonly InstallationSummary[]): Promise<InstallationView[]> {
    if (rows.length === 0) return []
    const today = utcDay(Date.now())
    const stats = await this.#c.vault.console.calls(
      rows.map((r) => r.id),
      today,
    )
    return rows.map((r) => {
      const s = stats.get(r.id)
      const p = this.#c.calls?.pending(r.id)
      const lastStored = s?.lastCallAt?.getTime() ?? 0
      const last = Math.max(lastStored, p?.lastCallAt ?? 0)
      const kind = kindOf(r)
      return {
        ...r,
        kind,
        name: kind === 'agency' ? r.companyName : r.locationName,
        callsToday: (s?.today?.calls ?? 0) + (p?.calls ?? 0),
        errorsToday: (s?.today?.errors ?? 0) + (p?.errors ?? 0),
        throttledToday: (s?.today?.throttled ?? 0) + (p?.throttled ?? 0),
        lastCallAt: last > 0 ? new Date(last) : null,
        dailyBudget: this.#c.config.rateLimit.dailyMax,
      }
    })
  }

  async #ownerOf(event: WebhookEventRecord): Promise<string | null> {
    const clientId = this.#c.config.clientId
    const row = event.locationId
      ? await this.#c.vault.installations.findByLocation(clientId, event.locationId)
      : event.companyId
        ? await this.#c.vault.installations.findByCompany(clientId, event.companyId)
        : undefined
    return row?.id ?? null
  }

  async #audit(installationId: string, action: string, actor: Actor, detail: Record<string, unknown>): Promise<void> {
    await this.#c.vault.audit.append({ installationId, action, detail: { actor, ...detail } }).catch((err: unknown) => this.#c.logger.warn({ err, installationId }, 'audit write failed'))
  }
}

/** An error's code, message and HighLevel trace id for the audit log (never a secret: GhlError messages hold none). */
function errorDetail(err: unknown): { code: string; message: string; traceId?: string } {
  if (err instanceof GhlError) {
    const traceId = (err as { traceId?: unknown }).traceId
    return { code: err.code, message: err.message.slice(0, 300), ...(typeof traceId === 'string' ? { traceId } : {}) }
  }
  return { code: 'GHL_INTERNAL', message: 'unexpected error' }
}

function bucketed(start: number, bucketMs: number, count: number, rows: Array<{ bucket: number; key: string; n: number }>): ChartSeries {
  const series = [...new Set(rows.map((r) => r.key))].sort()
  const values = Array.from({ length: count }, () => series.map(() => 0))
  for (const r of rows) {
    const i = Math.floor((r.bucket - start) / bucketMs)
    const j = series.indexOf(r.key)
    if (i >= 0 && i < count) values[i]![j]! += r.n
  }
  return { start, bucketMs, series, values }
}
