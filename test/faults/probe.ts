/**
 * Keeps every route of a connector busy while a dependency fails, and measures what the issue asks:
 * each request's answer (status, error code, Retry-After) and time, the longest request during the
 * outage, and the time from the dependency answering again to every route working again.
 */
import type { Timed } from '../helpers/serve-process.js'

/** One route under probe. */
export interface ProbeRoute {
  name: string
  /** The bound a request must settle within (its timeout, plus the margin of a loaded machine). */
  boundMs: number
  /** Sends one request; `limitMs` is the test's own limit (beyond the bound: a hang shows as status 0). */
  send(limitMs: number): Promise<Timed>
  /** Whether an answer is the route working (e.g. 200). */
  ok(t: Timed): boolean
  /** Whether an answer is acceptable while the dependency fails (e.g. 503 with Retry-After, or 200). */
  acceptableDuringOutage(t: Timed): boolean
}

export interface ProbeResult {
  route: string
  /** performance.now() at the start and at the answer. */
  start: number
  end: number
  t: Timed
}

/** Every route in its own loop (a request, then `gapMs`), until stopped. */
export class Probe {
  readonly results: ProbeResult[] = []
  readonly #routes: ProbeRoute[]
  readonly #gapMs: number
  #running = false
  #loops: Promise<void>[] = []

  constructor(routes: ProbeRoute[], gapMs = 150) {
    this.#routes = routes
    this.#gapMs = gapMs
  }

  start(): void {
    this.#running = true
    this.#loops = this.#routes.map(async (route) => {
      while (this.#running) {
        const start = performance.now()
        const t = await route.send(route.boundMs * 3 + 5000)
        this.results.push({ route: route.name, start, end: performance.now(), t })
        await new Promise((r) => setTimeout(r, this.#gapMs))
      }
    })
  }

  async stop(): Promise<void> {
    this.#running = false
    await Promise.all(this.#loops)
  }

  /**
   * What the requests of an outage did. `from`/`to`: the outage (performance.now()); `observeUntil`:
   * the end of the observation after it.
   */
  outage(from: number, to: number): OutageReport {
    const report: OutageReport = { requests: 0, longestMs: {}, outOfBound: [], unacceptable: [], outcomes: {} }
    for (const r of this.results) {
      // Every request that was waiting at some point of the outage.
      if (r.end < from || r.start >= to) continue
      report.requests++
      const route = this.#routes.find((x) => x.name === r.route)!
      report.longestMs[r.route] = Math.max(report.longestMs[r.route] ?? 0, Math.round(r.t.ms))
      const outcome = r.t.status === 0 ? 'no answer' : route.ok(r.t) ? 'ok' : `${r.t.status} ${r.t.code ?? ''}`.trim()
      report.outcomes[`${r.route}: ${outcome}`] = (report.outcomes[`${r.route}: ${outcome}`] ?? 0) + 1
      if (r.t.status === 0 || r.t.ms > route.boundMs) report.outOfBound.push(`${r.route} ${outcome} in ${Math.round(r.t.ms)} ms (bound ${route.boundMs} ms)`)
      else if (!route.ok(r.t) && !route.acceptableDuringOutage(r.t)) report.unacceptable.push(`${r.route} answered ${outcome} (retry-after ${r.t.retryAfter ?? 'none'})`)
    }
    return report
  }

  /**
   * Seconds from `passAt` until every route works and keeps working: for each route, the start of the
   * first request after its last failure (started after `passAt`). `undefined` when some route still
   * failed at the end of the observation (or was never seen working after `passAt`).
   */
  recovery(passAt: number): { ms: number | undefined; stillFailing: string[] } {
    let worst = 0
    const stillFailing: string[] = []
    for (const route of this.#routes) {
      const after = this.results.filter((r) => r.route === route.name && r.start >= passAt).sort((a, b) => a.start - b.start)
      let lastFail = -1
      after.forEach((r, i) => {
        if (!route.ok(r.t)) lastFail = i
      })
      const firstGood = after[lastFail + 1]
      if (!firstGood) {
        const last = after[after.length - 1]
        stillFailing.push(`${route.name}: ${last ? `${last.t.status} ${last.t.code ?? ''}`.trim() : 'no request'}`)
        continue
      }
      worst = Math.max(worst, firstGood.start - passAt)
    }
    return { ms: stillFailing.length > 0 ? undefined : worst, stillFailing }
  }
}

export interface OutageReport {
  requests: number
  longestMs: Record<string, number>
  /** Requests that took longer than their bound, or got no answer at all. */
  outOfBound: string[]
  /** Answers that are neither the route working nor an acceptable failure (e.g. a 500, a 503 without Retry-After). */
  unacceptable: string[]
  outcomes: Record<string, number>
}

/** A 503 with the error body's code and a Retry-After header. */
export function isRetryable503(t: Timed, ...codes: string[]): boolean {
  return t.status === 503 && t.retryAfter !== undefined && (codes.length === 0 || (t.code !== undefined && codes.includes(t.code)))
}
