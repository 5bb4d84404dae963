/**
 * The in-process limiter: the budget of one process only (use {@link RedisRateLimiter} when several
 * processes call HighLevel for the same app).
 *
 * Burst window: a sliding-window log that can never under-count what HighLevel counts. HighLevel
 * counts a request when it *arrives*, some time after we send it (a fresh TLS connection can take
 * hundreds of ms). So a request holds its slot from `acquire()` (as "in flight", no expiry) until
 * its permit is released with the answer, and then for one more burst window from the moment of the
 * answer — a moment no earlier than its arrival. Every request in HighLevel's window is therefore in
 * ours.
 * Daily window: a fixed window that starts with the first request after the previous one ended.
 */
import type { Clock } from '../clock.js'
import type { RateLimitSettings } from '../config.js'
import { readRateLimitHeaders } from './headers.js'
import { Permit, QueuedRateLimiter, type Taken } from './queued-rate-limiter.js'
import type { RateLimitHeaders } from './rate-limiter.js'

class Budget {
  /** Answer times (epoch ms, non-decreasing) still inside the burst window, from `head` on. */
  times: number[] = []
  head = 0
  daily = 0
  dailyStart = 0
  penaltyUntil = 0
  /** Taken and not yet released: they hold a slot until released. */
  inflight = 0
  /** Slots added ever (taken, and foreign usage recorded): see {@link Permit.base}. */
  added = 0
  /** Slots given back unsent, ever (their permit reached no caller): HighLevel never saw them. */
  unsent = 0

  prune(cutoff: number): number {
    const t = this.times
    let h = this.head
    while (h < t.length && t[h]! <= cutoff) h++
    if (h > 256 && h * 2 > t.length) {
      this.times = t.slice(h)
      h = 0
    }
    this.head = h
    return this.times.length - h
  }
}

/** Options of {@link MemoryRateLimiter}. */
export interface MemoryRateLimiterOptions {
  clock?: Clock
  /** See {@link RateLimiterOptions.marginMs}. */
  marginMs?: number
}

/**
 * In-memory {@link RateLimiter}: two windows per resource, a FIFO queue of waiters, and learning
 * from `X-RateLimit-*` headers.
 *
 * @example
 * const limiter = new MemoryRateLimiter(config.rateLimit)
 * const permit = await limiter.acquire('LOCATION_ID', { deadline: Date.now() + 30_000 })
 * let headers = {}
 * try {
 *   headers = (await send()).headers
 * } finally {
 *   permit.release(headers)
 * }
 */
export class MemoryRateLimiter extends QueuedRateLimiter {
  #budgets = new Map<string, Budget>()
  #window: number

  constructor(settings: RateLimitSettings, options: MemoryRateLimiterOptions = {}) {
    super(settings, options.clock)
    // +1: times are whole ms rounded down, so an answer at x.9 ms is recorded as x; without it our
    // entry could leave the window up to 1 ms before HighLevel's.
    this.#window = settings.burstWindowMs + (options.marginMs ?? defaultMargin(settings)) + 1
  }

  #budget(resource: string): Budget {
    let b = this.#budgets.get(resource)
    if (b === undefined) {
      b = new Budget()
      this.#budgets.set(resource, b)
    }
    return b
  }

  protected readonly synchronous = true

  protected take(resource: string, n: number): Taken {
    const b = this.#budget(resource)
    const s = this.settings
    const now = this.clock.now()
    if (now < b.penaltyUntil) return { permits: [], waitMs: b.penaltyUntil - now }
    const logged = b.prune(now - this.#window)
    const used = logged + b.inflight
    if (used >= s.burstMax) {
      // The (used - max)-th oldest answered entry frees the next slot; when that slot is still in
      // flight, an answer wakes the queue (release → wake); the poll is only a safety net.
      const k = used - s.burstMax
      return { permits: [], waitMs: k < logged ? Math.max(1, b.times[b.head + k]! + this.#window - now) : inflightPoll(s) }
    }
    if (now - b.dailyStart >= s.dailyWindowMs) {
      b.dailyStart = now
      b.daily = 0
    }
    if (b.daily >= s.dailyMax) return { permits: [], waitMs: Math.max(1, b.dailyStart + s.dailyWindowMs - now) }
    const granted = Math.min(n, s.burstMax - used, s.dailyMax - b.daily)
    b.daily += granted
    b.inflight += granted
    b.added += granted
    const base = logged + b.inflight - b.added + b.unsent
    const permits: Permit[] = []
    for (let i = 0; i < granted; i++) permits.push(new Permit(this, resource, now, base, ''))
    // Fewer than asked: the next take tells how long to wait.
    return { permits, waitMs: 0 }
  }

  /**
   * A permit comes back. Answered (or failed after it may have been sent): its slot now runs one
   * window from this moment, and the answer's `X-RateLimit-Remaining` / `X-RateLimit-Daily-Remaining`
   * are read. HighLevel's count (`max − remaining`) is a snapshot taken when the request arrived; the
   * most of the app's requests it could include is our count when the permit was taken plus every
   * slot added since (later requests of ours may arrive first; foreign usage recorded since is in
   * HighLevel's count too). Only what exceeds that bound is another client's: it is recorded as used
   * now, and leaves our window one burst window later. Never more: without another client nothing is
   * ever added (no phantom usage), whatever the answer's delay or order. Never sent: the slot is free
   * again at once.
   */
  settle(permit: Permit, headers: RateLimitHeaders | undefined, sent: boolean): void {
    const b = this.#budgets.get(permit.resource)
    if (b === undefined) return
    const s = this.settings
    const now = this.clock.now()
    b.inflight--
    if (!sent) {
      b.unsent++
      if (b.daily > 0) b.daily--
      this.wake(permit.resource)
      return
    }
    const { remaining, max, dailyRemaining } = readRateLimitHeaders(headers ?? {})
    if (remaining !== undefined) {
      // HighLevel's count, from its own budget when it says it (it is the truth if ours is set otherwise).
      const theirs = (max ?? s.burstMax) - remaining
      const bound = permit.base + b.added - b.unsent
      if (theirs > bound) {
        // Never past a full window, this answer included (a header inconsistent with burstMax must not add millions).
        const foreign = Math.min(s.burstMax - b.prune(now - this.#window) - b.inflight - 1, theirs - bound)
        for (let i = 0; i < foreign; i++) b.times.push(now)
        b.added += foreign
      }
    }
    if (dailyRemaining !== undefined) {
      if (now - b.dailyStart >= s.dailyWindowMs) {
        b.dailyStart = now
        b.daily = 0
      }
      // Our daily count already holds every request of ours, answered or not.
      const theirs = s.dailyMax - dailyRemaining
      if (theirs > b.daily) b.daily = Math.min(s.dailyMax, theirs)
    }
    b.times.push(now)
    this.wake(permit.resource)
  }

  /** Blocks `resource` for `retryAfterMs` (a whole burst window when not positive). */
  penalize(resource: string, retryAfterMs: number): void {
    const b = this.#budget(resource)
    const ms = retryAfterMs > 0 ? retryAfterMs : this.settings.burstWindowMs
    b.penaltyUntil = Math.max(b.penaltyUntil, this.clock.now() + ms)
    this.wake(resource)
  }
}

/** How soon to ask again when the slot that blocks is in flight: 1/20 of the burst window, at least 5 ms. */
export function inflightPoll(settings: RateLimitSettings): number {
  return Math.max(5, Math.ceil(settings.burstWindowMs / 20))
}

/** No margin by default: slots are timed from the answer, which is never before HighLevel counted the request. */
export function defaultMargin(_settings: RateLimitSettings): number {
  return 0
}
