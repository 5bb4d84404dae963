/**
 * The in-process limiter: the budget of one process only (use {@link RedisRateLimiter} when several
 * processes call HighLevel for the same app).
 *
 * Burst window: a sliding-window log that can never under-count what HighLevel counts. HighLevel
 * counts a request when it *arrives*, some time after we send it (a fresh TLS connection can take
 * hundreds of ms). So a request holds its slot from `acquire()` (as "in flight", no expiry) until
 * its answer is observed, and then for one more burst window from the moment of the answer — a
 * moment no earlier than its arrival. Every request in HighLevel's window is therefore in ours.
 * Daily window: a fixed window that starts with the first request after the previous one ended.
 */
import type { Clock } from '../clock.js'
import type { RateLimitSettings } from '../config.js'
import { readRateLimitHeaders } from './headers.js'
import { QueuedRateLimiter } from './queued-rate-limiter.js'

class Budget {
  /** Answer times (epoch ms, non-decreasing) still inside the burst window, from `head` on. */
  times: number[] = []
  head = 0
  daily = 0
  dailyStart = 0
  penaltyUntil = 0
  /** Acquired and not yet observed: they hold a slot until observed. */
  inflight = 0

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
 * await limiter.acquire('LOCATION_ID', { deadline: Date.now() + 30_000 })
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

  protected tryTake(resource: string): number {
    const b = this.#budget(resource)
    const s = this.settings
    const now = this.clock.now()
    if (now < b.penaltyUntil) return b.penaltyUntil - now
    const logged = b.prune(now - this.#window)
    const used = logged + b.inflight
    if (used >= s.burstMax) {
      // The (used - max)-th oldest answered entry frees the next slot; when that slot is still in
      // flight, an answer wakes the queue (observe → wake); the poll is only a safety net.
      const k = used - s.burstMax
      return k < logged ? Math.max(1, b.times[b.head + k]! + this.#window - now) : inflightPoll(s)
    }
    if (now - b.dailyStart >= s.dailyWindowMs) {
      b.dailyStart = now
      b.daily = 0
    }
    if (b.daily >= s.dailyMax) return Math.max(1, b.dailyStart + s.dailyWindowMs - now)
    b.daily++
    b.inflight++
    return 0
  }

  /**
   * Reads `X-RateLimit-Remaining` / `X-RateLimit-Daily-Remaining` of an answer. HighLevel's count is
   * `max − remaining`; ours counts every request of ours that HighLevel may have in its window
   * (answered ones, and all in flight). Without another client, HighLevel's count can never be
   * higher than ours. When it is, another client of the app spent the difference — and HighLevel
   * may not yet have seen our other requests in flight, so we assume it had not (the conservative
   * side) and record `difference + our other in-flight requests` as used now: they leave our window
   * one burst window later. (Adding in-flight requests when the counts merely differ by them would
   * waste slots: HighLevel usually has seen some of them.)
   */
  observe(resource: string, headers: Record<string, string | string[] | undefined>): void {
    const b = this.#budgets.get(resource)
    if (b === undefined) return
    const s = this.settings
    const now = this.clock.now()
    const others = Math.max(0, b.inflight - 1)
    const { remaining, dailyRemaining } = readRateLimitHeaders(headers)
    if (remaining !== undefined) {
      const ours = b.prune(now - this.#window) + b.inflight // this call included
      const theirs = s.burstMax - remaining
      if (theirs > ours) {
        const extra = Math.min(s.burstMax, theirs + others) - ours
        for (let i = 0; i < extra; i++) b.times.push(now)
      }
    }
    if (dailyRemaining !== undefined) {
      if (now - b.dailyStart >= s.dailyWindowMs) {
        b.dailyStart = now
        b.daily = 0
      }
      const theirs = s.dailyMax - dailyRemaining
      if (theirs > b.daily) b.daily = Math.min(s.dailyMax, theirs + others)
    }
    if (b.inflight > 0) {
      // The answered call's slot now runs one window from its answer.
      b.inflight--
      b.times.push(now)
      this.wake(resource)
    }
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
