/**
 * Resends a call that failed in a way a resend can fix, with exponential backoff and full jitter
 * (attempt n waits a random time in [0, min(maxDelayMs, baseDelayMs·2ⁿ))), honouring `Retry-After`,
 * and never past the call's deadline.
 *
 * What is retried:
 * - 429, any method: HighLevel refused the call without processing it.
 * - 5xx except 501/505, idempotent methods only (GET, HEAD, PUT, DELETE, OPTIONS). A POST/PATCH that
 *   got a 5xx may have been applied: resending could create a second contact.
 * - Network errors, idempotent methods: {@link IDEMPOTENT_RETRY_CODES}.
 * - Network errors, POST/PATCH: only {@link NEVER_SENT_CODES}, which undici raises while *connecting*,
 *   before a byte of the request was written, so HighLevel cannot have seen it. A reset on a reused
 *   keep-alive socket (ECONNRESET, UND_ERR_SOCKET) is NOT among them: the request may have arrived.
 * - Never: a request whose body is a stream (it cannot be replayed).
 * - Also what `req.retryWhen` says (the OAuth requests: a token answer that is not JSON).
 * With `req.attemptTimeoutMs`, each attempt has its own bound inside the call's deadline; an attempt
 * that runs out counts as a timed-out connection (retried for idempotent methods only).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { GhlError } from '../../errors.js'
import type { Clock } from '../../clock.js'
import type { Logger } from '../../logger.js'
import { parseRetryAfter } from '../../ratelimit/headers.js'
import type { Handler, PipelineRequest, PipelineResponse, RetryOptions, Step } from '../types.js'

/**
 * Raised while connecting, before any request byte is written: safe to resend any method.
 * ECONNREFUSED (nothing listens), ENOTFOUND / EAI_AGAIN (DNS), EHOSTUNREACH / ENETUNREACH /
 * EADDRNOTAVAIL (routing), UND_ERR_CONNECT_TIMEOUT (undici's connect timeout).
 */
export const NEVER_SENT_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT',
])

/** Also retried for idempotent methods: the connection broke or stalled mid-call. */
export const IDEMPOTENT_RETRY_CODES: ReadonlySet<string> = new Set([
  ...NEVER_SENT_CODES, 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT',
])

/** The error code of a network error (Node's happy-eyeballs AggregateError carries its parts' codes). */
export function networkErrorCode(err: unknown): string | undefined {
  if (!err || typeof err !== 'object') return undefined
  const code = (err as { code?: unknown }).code
  if (typeof code === 'string') return code
  const errors = (err as { errors?: unknown }).errors
  if (Array.isArray(errors) && errors.length > 0) return networkErrorCode(errors[0])
  const cause = (err as { cause?: unknown }).cause
  return cause === undefined ? undefined : networkErrorCode(cause)
}

/** Whether a status is worth resending. */
function retryableStatus(status: number, idempotent: boolean): boolean {
  return status === 429 || (idempotent && status >= 500 && status !== 501 && status !== 505)
}

/** The reason an attempt's own bound gives its AbortController. */
const ATTEMPT_TIMEOUT = Symbol('ghl-attempt-timeout')

/** An attempt ran out of `attemptTimeoutMs` (retried like a stalled connection). */
class AttemptTimeoutError extends GhlError {
  constructor(ms: number, cause: unknown) {
    super('GHL_TIMEOUT', `HighLevel did not answer within ${ms} ms`, { cause })
  }
  get attemptCode(): string {
    return 'ETIMEDOUT'
  }
}

/**
 * One attempt: `next(req)` with its own bound when `req.attemptTimeoutMs` is set (an AbortController
 * joined to the call's signal, put on the request for this attempt only).
 */
async function attempt(next: Handler, req: PipelineRequest): Promise<PipelineResponse> {
  const ms = req.attemptTimeoutMs
  if (ms === undefined) return next(req)
  const outer = req.signal
  const ac = new AbortController()
  const onAbort = (): void => ac.abort(outer?.reason)
  outer?.addEventListener('abort', onAbort, { once: true })
  const timer = setTimeout(() => ac.abort(ATTEMPT_TIMEOUT), ms)
  req.signal = ac.signal
  try {
    return await next(req)
  } catch (err) {
    if (ac.signal.reason === ATTEMPT_TIMEOUT && !outer?.aborted) throw new AttemptTimeoutError(ms, err)
    throw err
  } finally {
    clearTimeout(timer)
    outer?.removeEventListener('abort', onAbort)
    req.signal = outer
  }
}

/** The retry step. */
export function retry(options: RetryOptions, clock: Clock, logger: Logger): Step {
  const maxRetries = options.maxRetries ?? 3
  const base = options.baseDelayMs ?? 200
  const cap = options.maxDelayMs ?? 5000
  const backoff = (attempt: number): number => Math.random() * Math.min(cap, base * 2 ** attempt)
  return (next) => async (req) => {
    for (let n = 0; ; n++) {
      const attemptNo = n
      let delay: number
      try {
        const res = await attempt(next, req)
        const worth = retryableStatus(res.status, req.idempotent) || (req.retryWhen?.(res) ?? false)
        if (attemptNo >= maxRetries || !req.replayable || !worth) return res
        delay = parseRetryAfter(res.headers, clock.now()) ?? backoff(attemptNo)
        if (clock.now() + delay >= req.deadline) return res
        logger.debug({ method: req.method, path: req.path, status: res.status, attempt: attemptNo, delayMs: Math.round(delay) }, 'retrying HighLevel call')
      } catch (err) {
        if (attemptNo >= maxRetries || !req.replayable || req.signal?.aborted) throw err
        const code = err instanceof AttemptTimeoutError ? err.attemptCode : networkErrorCode(err)
        if (code === undefined || !(req.idempotent ? IDEMPOTENT_RETRY_CODES : NEVER_SENT_CODES).has(code)) throw err
        delay = backoff(attemptNo)
        if (clock.now() + delay >= req.deadline) throw err
        logger.debug({ method: req.method, path: req.path, code, attempt: attemptNo, delayMs: Math.round(delay) }, 'retrying HighLevel call')
      }
      await sleep(delay, undefined, { signal: req.signal })
    }
  }
}
