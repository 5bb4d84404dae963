/**
 * Client-side rate limiting of HighLevel calls: {@link createRateLimiter} picks the in-memory or the
 * Redis-backed limiter.
 */
import type { RateLimitSettings } from '../config.js'
import { MemoryRateLimiter } from './memory-rate-limiter.js'
import type { RateLimiter, RateLimiterOptions } from './rate-limiter.js'
import { RedisRateLimiter } from './redis-rate-limiter.js'

export type { AcquireOptions, RateLimiter, RateLimiterOptions, RateLimitHeaders, RatePermit } from './rate-limiter.js'
export { MemoryRateLimiter, type MemoryRateLimiterOptions } from './memory-rate-limiter.js'
export { RedisRateLimiter, type RedisRateLimiterOptions } from './redis-rate-limiter.js'
export { parseRetryAfter, readRateLimitHeaders, type RateLimitReport } from './headers.js'

/**
 * Creates the limiter: shared through Redis when `options.redis` is given, in memory otherwise.
 * `settings.enabled` is the caller's business (pass no limiter to the client when it is false).
 *
 * @example
 * const limiter = createRateLimiter(config.rateLimit, { clientId: config.clientId, redis })
 */
export function createRateLimiter(settings: RateLimitSettings, options: RateLimiterOptions): RateLimiter {
  if (options.redis) {
    return new RedisRateLimiter(settings, options.redis, {
      clientId: options.clientId,
      clock: options.clock,
      keyPrefix: options.keyPrefix,
      marginMs: options.marginMs,
    })
  }
  // The in-process budget is this process's own: the clientId only matters for shared keys.
  return new MemoryRateLimiter(settings, { clock: options.clock, marginMs: options.marginMs })
}
