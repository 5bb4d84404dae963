/**
 * The rate-limiter contract shared by the in-memory and the Redis implementations.
 *
 * HighLevel limits every Marketplace app per resource (one location or one company): a burst window
 * (100 requests per 10 s) and a daily budget (200,000 per day); answers carry `X-RateLimit-*` headers
 * and an over-limit call gets HTTP 429 (Authorization.md, "What are current rate limits for API 2.0?").
 *
 * @see /work/shared/reference/highlevel/Authorization.md
 */
import type { Redis } from 'ioredis'
import type { Clock } from '../clock.js'

/** Options of one {@link RateLimiter.acquire} call. */
export interface AcquireOptions {
  /** Epoch ms after which the call is useless: a wait that would pass it fails fast with RateLimitedError. */
  deadline?: number
  /** Aborts the wait (rejects with GhlError `GHL_ABORTED`). */
  signal?: AbortSignal
}

/** An answer's headers, as undici gives them (lower-case names). */
export type RateLimitHeaders = Record<string, string | string[] | undefined>

/**
 * One slot of a resource's budget, held from {@link RateLimiter.acquire} until {@link RatePermit.release}.
 *
 * The permit carries what the limiter needs to read the answer's `X-RateLimit-Remaining` without
 * guessing: when the request counted as sent, and our count at that moment (HighLevel's figure is a
 * snapshot taken when the request arrived, so it must be compared with ours then, not later).
 */
export interface RatePermit {
  /** The location or company id whose budget the slot is from. */
  readonly resource: string
  /** When the slot was taken (the limiter's clock, epoch ms): the request counts as sent from then on. */
  readonly sentAt: number
  /**
   * Gives the slot back. Call it exactly once, whatever happened: with the answer's headers when one
   * came, with none (`{}`) when the call failed — the request may still have reached HighLevel, so
   * the slot stays used for one burst window from now. Later calls do nothing. Never throws; the
   * Redis limiter returns a promise that settles when the release is stored (rejecting with GhlError
   * `GHL_REDIS_UNAVAILABLE` when Redis failed: the slot is then freed by its in-flight expiry).
   */
  release(headers?: RateLimitHeaders): void | Promise<void>
}

/**
 * Client-side budget keeper for HighLevel's per-resource limits.
 *
 * Use it in the acquire/try/finally shape (as kysely's connection provider does with connections),
 * so no slot can leak — a permit that never reached a caller (its wait was aborted or closed) is
 * given back by the limiter itself:
 *
 * @example
 * const permit = await limiter.acquire(locationId, { deadline, signal })
 * let headers = {}
 * try {
 *   const res = await send()
 *   headers = res.headers
 * } finally {
 *   void permit.release(headers)
 * }
 */
export interface RateLimiter {
  /** Waits until one request for `resource` may be sent (or throws RateLimitedError if the wait would pass `deadline` (epoch ms) or the queue is full; GhlError `GHL_ABORTED` when `signal` aborts). */
  acquire(resource: string, options?: AcquireOptions): Promise<RatePermit>
  /** HighLevel answered 429: block `resource` for retryAfterMs (or the rest of the window). */
  penalize(resource: string, retryAfterMs: number): void | Promise<void>
  /** Rejects queued waiters, stores the releases not stored yet, and stops its timers (never closes a caller's Redis connection). */
  close(): Promise<void>
}

/** Options of {@link createRateLimiter}. */
export interface RateLimiterOptions {
  /** The Marketplace app's client id: budgets are per (app, resource). */
  clientId: string
  /** When given, the budget lives in Redis and is shared by every process using the same `keyPrefix`. */
  redis?: Redis
  clock?: Clock
  /** Redis key prefix (default `ghl:rl:`). */
  keyPrefix?: string
  /**
   * Extra ms a slot stays used after its burst window (default 0). Slots are already timed from the
   * answer — never earlier than HighLevel's count of the request — so this is only for a peer whose
   * clock or counting is looser than that.
   */
  marginMs?: number
}
