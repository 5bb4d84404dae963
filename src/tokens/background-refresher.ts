/**
 * The background refresher: refreshes OAuth installations before their access token enters the refresh
 * margin, refresh tokens before they die unused (a year after issue), and retries suspended ones on a
 * slow schedule — so calls almost never wait for a refresh.
 *
 * - Reads due rows a page at a time from indexes on expiry, refresh-token age and retry time (never the
 *   whole table), claiming each page for a while so that several instances share the sweep without
 *   doing the same work twice (a refresh also re-checks under the installation's lock, so a lapsed
 *   claim costs a read, never a second refresh).
 * - Its concurrency adapts to the token endpoint: it grows while answers come back fast and without
 *   errors, and halves on a failure or a slow answer, between 1 and `maxConcurrency` (HighLevel's token
 *   endpoint is HighLevel's: the ceiling is a setting, conservative by default).
 * - A sweep keeps going until a page comes back empty, so a backlog (10 % of 100,000 due at once) is
 *   worked off continuously rather than one page per interval; the next page is read while the current
 *   one is still being worked, so workers never stand idle between pages.
 * - It shares the event loop with calls: each refresh stores its answer in a turn of the loop of its
 *   own ({@link TurnPacer}), so answers that arrive together are not all stored in one turn (on SQLite
 *   every statement holds the loop).
 */
import { randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { GhlError } from '../errors.js'
import type { DueInstallation } from '../vault/types.js'
import type { RefreshCoordinator } from './refresh-coordinator.js'
import { isTransient, type TokenContext } from './token-context.js'
import { TurnPacer } from './turn-pacer.js'

/** Settings of {@link BackgroundRefresher}. */
export interface BackgroundRefresherOptions {
  /** Time between sweeps (ms). */
  intervalMs: number
  /** Refreshes running at once, at most (default `config.refresher.maxConcurrency`). */
  concurrency?: number
  /** Due rows read per query (default `config.refresher.pageSize`). */
  pageSize?: number
  /** Also refresh installations whose refresh token was issued this long ago (default 300 days). */
  idleRefreshAfterMs?: number
  /** A token-endpoint answer slower than this shrinks the concurrency (default 2000 ms). */
  slowMs?: number
}

/** What one sweep did. */
export interface SweepResult {
  /** Refreshes this instance made (HighLevel was asked). */
  refreshed: number
  /** Rows looked at (incl. those a peer had refreshed already). */
  examined: number
  failed: number
  /** Queries that read due rows. */
  pages: number
}

/** See the file comment. */
export class BackgroundRefresher {
  readonly #t: TokenContext
  readonly #coordinator: RefreshCoordinator
  readonly #options: Required<BackgroundRefresherOptions>
  readonly #owner = `sweep:${process.pid}:${randomUUID()}`
  #timer: NodeJS.Timeout | undefined
  #running: Promise<SweepResult> | undefined
  #stopped = false
  #concurrency: number
  readonly #pacer = new TurnPacer()
  readonly #pace = (): Promise<void> => this.#pacer.next()

  constructor(context: TokenContext, coordinator: RefreshCoordinator, options: BackgroundRefresherOptions) {
    this.#t = context
    this.#coordinator = coordinator
    this.#options = {
      intervalMs: options.intervalMs,
      concurrency: Math.max(1, options.concurrency ?? context.config.refresher.maxConcurrency),
      pageSize: Math.max(1, options.pageSize ?? context.config.refresher.pageSize),
      idleRefreshAfterMs: options.idleRefreshAfterMs ?? 300 * 24 * 3600_000,
      slowMs: options.slowMs ?? 2000,
    }
    this.#concurrency = Math.min(4, this.#options.concurrency)
  }

  /** The concurrency the last sweep ended with. */
  get concurrency(): number {
    return this.#concurrency
  }

  /** Starts sweeping every `intervalMs`. */
  start(): void {
    this.#schedule()
  }

  /** Stops sweeping; resolves when the sweep in progress (if any) has finished its refreshes. */
  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    await this.#running?.catch(() => {})
  }

  /** Runs one sweep now (joining one in progress); resolves with the number of installations refreshed. */
  async runOnce(): Promise<number> {
    return (await this.sweep()).refreshed
  }

  /** One sweep, with its figures. */
  sweep(): Promise<SweepResult> {
    this.#running ??= this.#sweep().finally(() => {
      this.#running = undefined
    })
    return this.#running
  }

  #schedule(): void {
    if (this.#stopped) return
    this.#timer = setTimeout(() => {
      this.sweep()
        .catch((err: unknown) => this.#t.logger.warn({ err }, 'background refresh sweep failed'))
        .finally(() => this.#schedule())
    }, this.#options.intervalMs)
    this.#timer.unref()
  }

  async #sweep(): Promise<SweepResult> {
    const t: TokenContext = this.#t
    const o = this.#options
    const result: SweepResult = { refreshed: 0, examined: 0, failed: 0, pages: 0 }
    // Each installation at most once per sweep: a row whose refresh failed without a retry time (a lock
    // timeout) stays due, and must not keep the sweep going round.
    const done = new Set<string>()
    const queue: DueInstallation[] = []
    let exhausted = false
    let fetching = false
    let failure: unknown
    let active = 0
    const halted = () => this.#stopped || t.closing || failure !== undefined
    // Rows expiring before the next sweep's margin are due now (so none enters the margin unrefreshed).
    // The sweep goes on until a page comes back empty: a page a peer partly claimed is short, yet more
    // rows may be due behind it. The next page is read while the workers still have two rounds of the
    // current one ahead of them, so they never wait for a page (nor for the slowest row of the last).
    const readPage = async (): Promise<void> => {
      const now = t.clock.now()
      const page = await t.vault.installations.due({
        clientId: t.config.clientId,
        expiresBefore: new Date(now + t.config.refreshMarginMs + o.intervalMs),
        issuedBefore: new Date(now - o.idleRefreshAfterMs),
        now: new Date(now),
        limit: o.pageSize,
        claim: { owner: this.#owner, claimMs: Math.max(o.intervalMs, t.refreshBudgetMs * 2) },
      })
      result.pages++
      const fresh = page.filter((inst) => !done.has(inst.id))
      if (fresh.length === 0) exhausted = true
      for (const inst of fresh) {
        done.add(inst.id)
        queue.push(inst)
      }
    }
    await new Promise<void>((resolve) => {
      const pump = (): void => {
        // The queue holds at most a page and two rounds of workers: shift() is cheap at that size.
        if (!halted() && !exhausted && !fetching && queue.length < this.#concurrency * 2) {
          fetching = true
          readPage().then(
            () => {
              fetching = false
              pump()
            },
            (err: unknown) => {
              fetching = false
              failure = err
              pump()
            },
          )
        }
        while (!halted() && active < this.#concurrency && queue.length > 0) {
          active++
          this.#refreshOne(queue.shift()!, result).finally(() => {
            active--
            pump()
          })
        }
        if (active === 0 && !fetching && (halted() || (exhausted && queue.length === 0))) resolve()
      }
      pump()
    })
    if (failure !== undefined) throw failure
    return result
  }

  /** One installation of the sweep; its time and outcome adapt the concurrency. */
  async #refreshOne(inst: DueInstallation, result: SweepResult): Promise<void> {
    const t: TokenContext = this.#t
    const started = performance.now()
    try {
      // Answers are stored one per turn of the event loop (on SQLite those statements hold the loop);
      // the next refresh then starts (its lock and read) in the same turn.
      const { refreshed } = await this.#coordinator.refresh(inst.id, inst.version, { force: true, allowSuspended: true, pace: this.#pace })
      result.examined++
      if (refreshed) result.refreshed++
      this.#adapt(performance.now() - started, true)
    } catch (err) {
      result.examined++
      result.failed++
      // Only blips of HighLevel (or waits on the lock) say the endpoint is strained.
      this.#adapt(performance.now() - started, !(isTransient(err) || (err instanceof GhlError && err.code === 'GHL_LOCK_TIMEOUT')))
      const code = err instanceof GhlError ? err.code : 'GHL_INTERNAL'
      const level = code === 'GHL_INSTALLATION_SUSPENDED' || code === 'GHL_REAUTHORIZATION_REQUIRED' ? 'info' : 'warn'
      t.logger[level]({ installationId: inst.id, code, err: level === 'warn' ? err : undefined }, 'background refresh failed')
      t.emit('backgroundRefreshFailed', { installationId: inst.id, code })
    }
  }

  /** Additive increase while answers are fast and good, multiplicative decrease otherwise. */
  #adapt(ms: number, ok: boolean): void {
    if (!ok || ms > this.#options.slowMs) this.#concurrency = Math.max(1, Math.floor(this.#concurrency / 2))
    else this.#concurrency = Math.min(this.#options.concurrency, this.#concurrency + 1)
  }
}
