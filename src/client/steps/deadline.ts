/**
 * One deadline per call. Sets `req.deadline` and `req.signal` — which every wait below honours (the
 * limiter queue, the backoff sleeps, the token provider, undici) — and turns the ways a call can stop
 * into the project's errors: the deadline passed → GhlError `GHL_TIMEOUT`; the caller's signal
 * aborted → `GHL_ABORTED`; a network error → `GHL_NETWORK` (its `cause` is undici's error, which
 * holds no request headers). GhlErrors from below (RateLimitedError, ReauthorizationRequiredError,
 * NotInstalledError) pass through.
 *
 * For `responseType: 'stream'` the deadline covers the call up to the answer's headers; the body is
 * then the caller's to read (undici's idle `bodyTimeout` still applies, and the caller's signal still
 * aborts it).
 */
import type { Clock } from '../../clock.js'
import { GhlError } from '../../errors.js'
import type { Step } from '../types.js'
import { networkErrorCode } from './retry.js'

/** The reason given to the call's AbortController when its deadline passes. */
const TIMEOUT = Symbol('ghl-timeout')

function fireTimeout(ac: AbortController): void {
  ac.abort(TIMEOUT)
}

/** Maps what stopped a call to a GhlError (see the file comment). */
function toGhlError(err: unknown, signal: AbortSignal, timeoutMs: number): unknown {
  if (signal.aborted) {
    return signal.reason === TIMEOUT
      ? new GhlError('GHL_TIMEOUT', `HighLevel did not answer within ${timeoutMs} ms`)
      : new GhlError('GHL_ABORTED')
  }
  if (err instanceof GhlError) return err
  const code = networkErrorCode(err)
  return new GhlError('GHL_NETWORK', `HighLevel could not be reached${code ? ` (${code})` : ''}`, { cause: err })
}

/** The deadline step (outermost). */
export function deadline(clock: Clock): Step {
  return (next) => async (req) => {
    const caller = req.callerSignal
    if (caller?.aborted) throw new GhlError('GHL_ABORTED')
    const ac = new AbortController()
    req.signal = ac.signal
    req.deadline = clock.now() + req.timeoutMs
    let onAbort: (() => void) | undefined
    if (caller) {
      onAbort = () => ac.abort(caller.reason)
      caller.addEventListener('abort', onAbort, { once: true })
    }
    const timer = setTimeout(fireTimeout, req.timeoutMs, ac)
    let streaming = false
    try {
      const res = await next(req)
      streaming = res.body !== undefined
      return res
    } catch (err) {
      throw toGhlError(err, ac.signal, req.timeoutMs)
    } finally {
      clearTimeout(timer)
      // A streamed body stays abortable by the caller's signal until it is read.
      if (onAbort && !streaming) caller!.removeEventListener('abort', onAbort)
    }
  }
}
