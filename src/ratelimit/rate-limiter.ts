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

/**
 * Client-side budget keeper for HighLevel's per-resource limits.
 *
 * Every call that {@link acquire}d a slot must later call {@link observe} exactly once — with the
 * answer's headers, or with `{}` when no answer came — so that the limiter knows how many of its
 * requests are still in flight (used to read `X-RateLimit-Remaining` conservatively).
 */
export interface RateLimiter {
  /** Waits until one request for `resource` may be sent (or throws RateLimitedError if the wait would pass `deadline` (epoch ms) or the queue is full). */
  acquire(resource: string, options?: AcquireOptions): Promise<void>
  /** Learns from HighLevel's X-RateLimit-* headers (another client of the same app may be spending the budget). */
  observe(resource: string, headers: Record<string, string | string[] | undefined>): void | Promise<void>
  /** HighLevel answered 429: block `resource` for retryAfterMs (or the rest of the window). */
  penalize(resource: string, retryAfterMs: number): void | Promise<void>
  /** Rejects queued waiters and releases timers / the Redis connection it owns (never a caller's). */
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
