/**
 * HighLevel's per-app, per-resource rate limits, as the sandbox enforces them.
 *
 * - Burst: a *sliding log* — at most `burstMax` requests in any `burstWindowMs` span.
 * - Daily: a *fixed window* of `dailyWindowMs` that starts with the first request of the key.
 * - A request answered 429 is not counted (it does not lengthen the wait).
 *
 * See Authorization.md ("What are current rate limits for API 2.0?") for the headers.
 */
import type { Clock } from '../clock.js'
import type { SandboxRateLimit } from './types.js'

/** The outcome of one request against a bucket. */
export interface RateDecision {
  allowed: boolean
  /** `X-RateLimit-*` headers to put on the answer, whatever it is. */
  headers: Record<string, string>
  /** Seconds until a retry can succeed (429 only). */
  retryAfterSec: number
}

interface Bucket {
  hits: number[]
  dayStart: number
  dayCount: number
}

/** @internal */
export class SandboxRateLimiter {
  readonly #limits: () => Required<SandboxRateLimit>
  readonly #clock: Clock
  #buckets = new Map<string, Bucket>()

  constructor(limits: () => Required<SandboxRateLimit>, clock: Clock) {
    this.#limits = limits
    this.#clock = clock
  }

  /** Counts one request for `key` (e.g. `clientId|locationId`) unless the limit is spent. */
  take(key: string): RateDecision {
    const limits = this.#limits()
    const now = this.#clock.now()
    let bucket = this.#buckets.get(key)
    if (!bucket) {
      bucket = { hits: [], dayStart: now, dayCount: 0 }
      this.#buckets.set(key, bucket)
    }
    while (bucket.hits.length > 0 && bucket.hits[0]! <= now - limits.burstWindowMs) bucket.hits.shift()
    if (now >= bucket.dayStart + limits.dailyWindowMs) {
      bucket.dayStart = now
      bucket.dayCount = 0
    }
    let retryAfterMs = 0
    if (bucket.dayCount >= limits.dailyMax) retryAfterMs = bucket.dayStart + limits.dailyWindowMs - now
    else if (bucket.hits.length >= limits.burstMax) {
      // Sliding log: the slot frees when the (length - max + 1)-th oldest hit leaves the window.
      const oldest = bucket.hits[bucket.hits.length - limits.burstMax]!
      retryAfterMs = oldest + limits.burstWindowMs - now
    }
    const allowed = retryAfterMs <= 0
    if (allowed) {
      bucket.hits.push(now)
      bucket.dayCount++
    }
    return {
      allowed,
      retryAfterSec: allowed ? 0 : Math.max(1, Math.ceil(retryAfterMs / 1000)),
      headers: {
        'x-ratelimit-limit-daily': String(limits.dailyMax),
        'x-ratelimit-daily-remaining': String(Math.max(0, limits.dailyMax - bucket.dayCount)),
        'x-ratelimit-interval-milliseconds': String(limits.burstWindowMs),
        'x-ratelimit-max': String(limits.burstMax),
        'x-ratelimit-remaining': String(Math.max(0, limits.burstMax - bucket.hits.length)),
      },
    }
  }

  clear(): void {
    this.#buckets.clear()
  }
}
