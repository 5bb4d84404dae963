/**
 * The connector's numbers in Prometheus' text format (`GET /metrics`), with prom-client on a registry of
 * its own (nothing global). Labels are bounded: operations are HighLevel's (a fixed list, `untyped`
 * for the rest), status classes six, token outcomes and webhook types/statuses small sets — never an
 * installation, location or path.
 *
 * Counted as they happen: calls to HighLevel (operation × status class) and their latency, 429s
 * received, rate-limit waits, token events (refreshes, mints, reconnects by outcome), connector errors by
 * code (`GHL_DATABASE_UNAVAILABLE` = vault, `GHL_REDIS_UNAVAILABLE` = Redis), webhook requests by outcome.
 * Read at scrape time: installations by status, stored webhook events by type and status (last 24 h),
 * whether the database and Redis answer.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { CallRecord } from '../client/steps/record.js'
import type { AcquireOptions, RateLimiter, RatePermit } from '../ratelimit/rate-limiter.js'
import { STATUS_CLASSES, statusClass, type StatusClass } from './call-recorder.js'

const CLASS_INDEX = Object.fromEntries(STATUS_CLASSES.map((c, i) => [c, i])) as Record<StatusClass, number>
/** A wait for a rate-limit slot this long or longer counts as queued (a 429 avoided), not as the limiter's own cost. */
export const QUEUED_MS = 5
const LATENCY_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

/** What the scrape-time gauges read. */
export interface MetricsSources {
  installationsByStatus(): Promise<Record<string, number>>
  webhookEvents(): Promise<Array<{ type: string; status: string; n: number }>>
  readiness(): Promise<{ checks: Record<string, { ok: boolean }> }>
}

/** Token events as counted (`ghl_token_events_total{event,outcome}`). */
export type TokenOutcome =
  | ['refresh', 'ok' | 'failing' | 'reauthorization_required' | 'suspended' | 'reactivated']
  | ['mint', 'ok']
  | ['reconnect', 'ok']

/** See the file comment. */
export class ConnectorMetrics {
  readonly registry = new Registry()
  readonly #requests: Counter<'operation' | 'status_class'>
  readonly #perOperation = new Map<string, Float64Array>()
  readonly #latencyCounts = new Float64Array(STATUS_CLASSES.length * (LATENCY_BUCKETS.length + 1))
  readonly #latencySums = new Float64Array(STATUS_CLASSES.length)
  readonly #throttled: Counter
  readonly #tokens: Counter<'event' | 'outcome'>
  readonly #queue: Gauge
  readonly #wait: Histogram
  readonly #errors: Counter<'code'>
  readonly #webhookRequests: Counter<'outcome'>
  #queued = 0
  #defaults = false

  constructor(sources: MetricsSources) {
    const registers = [this.registry]
    const self = this
    this.#requests = new Counter({
      name: 'ghl_highlevel_requests_total',
      help: 'Calls to HighLevel by operation and status class',
      labelNames: ['operation', 'status_class'],
      registers,
      collect() {
        this.reset()
        for (const [operation, counts] of self.#perOperation) {
          counts.forEach((n, c) => n > 0 && this.inc({ operation, status_class: STATUS_CLASSES[c]! }, n))
        }
      },
    })
    this.#throttled = new Counter({
      name: 'ghl_highlevel_429_total',
      help: '429 answers received from HighLevel',
      registers,
      collect() {
        this.reset()
        let n = 0
        for (const counts of self.#perOperation.values()) n += counts[CLASS_INDEX['429']]!
        if (n > 0) this.inc(n)
      },
    })
    this.#tokens = new Counter({ name: 'ghl_token_events_total', help: 'Token refreshes, mints and reconnects by outcome', labelNames: ['event', 'outcome'], registers })
    this.#queue = new Gauge({
      name: 'ghl_ratelimit_queue_length',
      help: 'Calls waiting for a rate-limit slot now',
      registers,
      collect() {
        this.set(self.#queued)
      },
    })
    this.#wait = new Histogram({
      name: 'ghl_ratelimit_wait_seconds',
      help: 'Time calls waited for a rate-limit slot',
      buckets: [0.001, 0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    })
    this.#errors = new Counter({ name: 'ghl_errors_total', help: 'Connector errors by code (GHL_DATABASE_UNAVAILABLE: vault, GHL_REDIS_UNAVAILABLE: Redis)', labelNames: ['code'], registers })
    this.#webhookRequests = new Counter({ name: 'ghl_webhook_requests_total', help: 'Webhook requests by outcome (accepted, duplicate, refused)', labelNames: ['outcome'], registers })
    new Gauge({
      name: 'ghl_installations',
      help: 'Installations by status',
      labelNames: ['status'],
      registers,
      async collect() {
        const counts = await sources.installationsByStatus()
        this.reset()
        for (const [status, n] of Object.entries(counts)) this.set({ status }, n)
      },
    })
    new Gauge({
      name: 'ghl_webhook_events',
      help: 'Webhook events received in the last 24 hours by type and processing status',
      labelNames: ['type', 'status'],
      registers,
      async collect() {
        const rows = await sources.webhookEvents()
        this.reset()
        for (const r of rows) this.inc({ type: r.type, status: r.status }, r.n)
      },
    })
    new Gauge({
      name: 'ghl_dependency_up',
      help: 'Whether a dependency answers (database, redis): 1 or 0',
      labelNames: ['dependency'],
      registers,
      async collect() {
        const { checks } = await sources.readiness()
        this.reset()
        for (const name of ['database', 'redis']) if (checks[name]) this.set({ dependency: name }, checks[name].ok ? 1 : 0)
      },
    })
  }

  /**
   * A finished call (the recorder's listener, on the hot path): counted in plain numbers here and
   * handed to prom-client at scrape time (`collect`), so a call costs a few adds, not a label lookup.
   */
  observeCall(call: CallRecord): void {
    const cls = CLASS_INDEX[statusClass(call.status)]
    const op = call.operation ?? 'untyped'
    let counts = this.#perOperation.get(op)
    if (counts === undefined) this.#perOperation.set(op, (counts = new Float64Array(STATUS_CLASSES.length)))
    counts[cls]! += 1
    const seconds = call.durationMs / 1000
    let b = 0
    while (b < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[b]!) b++
    this.#latencyCounts[cls * (LATENCY_BUCKETS.length + 1) + b]! += 1
    this.#latencySums[cls]! += seconds
    if (call.errorCode !== undefined) this.#errors.inc({ code: call.errorCode })
  }

  token(...[event, outcome]: TokenOutcome): void {
    this.#tokens.inc({ event, outcome })
  }

  /** An error the server answered with (its code: a fixed table). */
  error(code: string): void {
    this.#errors.inc({ code })
  }

  webhookRequest(outcome: 'accepted' | 'duplicate' | 'refused'): void {
    this.#webhookRequests.inc({ outcome })
  }

  /**
   * Wraps a limiter so that its queue length and wait times are measured; `onQueued` hears of every
   * call that had to wait (at least {@link QUEUED_MS}) — a 429 avoided.
   */
  instrument(limiter: RateLimiter, onQueued?: (at: number) => void): RateLimiter {
    const wait = this.#wait
    const acquire = async (resource: string, options?: AcquireOptions): Promise<RatePermit> => {
      const start = performance.now()
      this.#queued++
      try {
        return await limiter.acquire(resource, options)
      } finally {
        this.#queued--
        const ms = performance.now() - start
        wait.observe(ms / 1000)
        if (ms >= QUEUED_MS) onQueued?.(Date.now())
      }
    }
    return {
      acquire,
      penalize: (resource, ms) => limiter.penalize(resource, ms),
      close: () => limiter.close(),
    }
  }

  /** The text exposition. The process's default metrics are collected from the first scrape on. */
  async text(): Promise<{ contentType: string; body: string }> {
    if (!this.#defaults) {
      this.#defaults = true
      collectDefaultMetrics({ register: this.registry, prefix: 'ghl_process_' })
    }
    return { contentType: this.registry.contentType, body: (await this.registry.metrics()) + this.#latencyText() }
  }

  /**
   * `ghl_highlevel_request_duration_seconds`, a histogram by status class, written from the counts
   * {@link observeCall} keeps (prom-client's Histogram has no way to be filled at scrape time).
   */
  #latencyText(): string {
    const name = 'ghl_highlevel_request_duration_seconds'
    const lines = [`# HELP ${name} Duration of calls to HighLevel (token, queue and retries included) by status class`, `# TYPE ${name} histogram`]
    const width = LATENCY_BUCKETS.length + 1
    STATUS_CLASSES.forEach((cls, c) => {
      let cumulative = 0
      for (let b = 0; b < width; b++) {
        cumulative += this.#latencyCounts[c * width + b]!
        const le = b < LATENCY_BUCKETS.length ? String(LATENCY_BUCKETS[b]) : '+Inf'
        lines.push(`${name}_bucket{le="${le}",status_class="${cls}"} ${cumulative}`)
      }
      lines.push(`${name}_sum{status_class="${cls}"} ${this.#latencySums[c]}`, `${name}_count{status_class="${cls}"} ${cumulative}`)
    })
    return `${lines.join('\n')}\n`
  }
}
