/**
 * Keeps the call inside HighLevel's per-resource budget: waits for a slot before sending (within the
 * call's deadline), feeds the answer's `X-RateLimit-*` headers back to the limiter, and on 429 blocks
 * the resource for `Retry-After` (or the rest of the window). The retry step above then resends,
 * and the next acquire waits out the block.
 */
import type { Clock } from '../../clock.js'
import type { Logger } from '../../logger.js'
import { parseRetryAfter } from '../../ratelimit/headers.js'
import type { RateLimiter } from '../../ratelimit/rate-limiter.js'
import type { Target } from '../../tokens/types.js'
import type { Step } from '../types.js'

const NO_HEADERS: Record<string, string | undefined> = Object.freeze({}) as Record<string, string | undefined>

/** The rate-limit resource of a target (when no grant says otherwise). */
export function resourceOf(target: Target): string {
  return target.kind === 'static' ? target.resourceId : target.id
}

/** The rate-limit step. */
export function rateLimit(limiter: RateLimiter, clock: Clock, logger: Logger): Step {
  const warn = (err: unknown): void => logger.warn({ err }, 'rate limiter failed to record an answer')
  return (next) => async (req) => {
    const resource = req.grant?.resourceId ?? resourceOf(req.target)
    // `req` carries `deadline` and `signal`: it serves as the AcquireOptions (no allocation).
    await limiter.acquire(resource, req as { deadline?: number; signal?: AbortSignal })
    let res
    try {
      res = await next(req)
    } catch (err) {
      const p = limiter.observe(resource, NO_HEADERS) // releases the in-flight count
      if (p) p.catch(warn)
      throw err
    }
    const p = limiter.observe(resource, res.headers)
    if (p) p.catch(warn)
    if (res.status === 429) {
      const retryAfter = parseRetryAfter(res.headers, clock.now()) ?? 0
      logger.debug({ resource, retryAfterMs: retryAfter }, 'HighLevel answered 429')
      await limiter.penalize(resource, retryAfter)
    }
    return res
  }
}
