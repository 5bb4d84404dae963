/**
 * Keeps the call inside HighLevel's per-resource budget: waits for a slot before sending (within the
 * call's deadline), releases its slot with the answer's `X-RateLimit-*` headers, and on 429 blocks
 * the resource for `Retry-After` (or the rest of the window). The retry step above then resends,
 * and the next acquire waits out the block.
 */
import type { Clock } from '../../clock.js'
import type { Logger } from '../../logger.js'
import { parseRetryAfter } from '../../ratelimit/headers.js'
import type { RateLimiter, RateLimitHeaders } from '../../ratelimit/rate-limiter.js'
import type { Target } from '../../tokens/types.js'
import type { Step } from '../types.js'

const NO_HEADERS: RateLimitHeaders = Object.freeze({}) as RateLimitHeaders

/** The rate-limit resource of a target (when no grant says otherwise). */
export function resourceOf(target: Target): string {
  return target.kind === 'static' ? target.resourceId : target.id
}

/**
 * The rate-limit step, in the acquire/try/finally shape (as kysely's connection provider): the permit
 * is released whatever happens below — with the answer's headers, or none when the call failed — so
 * no slot can leak.
 */
export function rateLimit(limiter: RateLimiter, clock: Clock, logger: Logger): Step {
  const warn = (err: unknown): void => logger.warn({ err }, 'rate limiter failed to record an answer')
  return (next) => async (req) => {
    const resource = req.grant?.resourceId ?? resourceOf(req.target)
    // `req` carries `deadline` and `signal`: it serves as the AcquireOptions (no allocation).
    const permit = await limiter.acquire(resource, req as { deadline?: number; signal?: AbortSignal })
    let headers: RateLimitHeaders = NO_HEADERS
    try {
      const res = await next(req)
      headers = res.headers
      if (res.status === 429) {
        const retryAfter = parseRetryAfter(res.headers, clock.now()) ?? 0
        logger.debug({ resource, retryAfterMs: retryAfter }, 'HighLevel answered 429')
        await limiter.penalize(resource, retryAfter)
      }
      return res
    } finally {
      const p = permit.release(headers)
      if (p) p.catch(warn)
    }
  }
}
