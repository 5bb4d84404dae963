/**
 * Tells a {@link CallObserver} about every call once it ends: method, path (without its query string),
 * status, duration, trace id and the installation whose token was used — never a header, a body or a
 * token. Outermost, so the duration covers every wait (token, limiter queue, retries) and a stop is
 * already the call's GhlError. The observer must be cheap and synchronous: it runs on the hot path
 * (the console's recorder only writes into memory; see `src/operator/call-recorder.ts`).
 */
import { performance } from 'node:perf_hooks'
import type { Clock } from '../../clock.js'
import { GhlError, HighLevelApiError } from '../../errors.js'
import { readRateLimitHeaders } from '../../ratelimit/headers.js'
import type { PipelineRequest, Step } from '../types.js'

/** One finished call as an observer sees it. */
export interface CallRecord {
  /** Epoch ms when the call ended. */
  at: number
  /** `null` for a static token, or when no token was had. */
  installationId: string | null
  method: string
  /** Without the query string. */
  path: string
  /** The typed operation's label (`contacts.getContact`), or `undefined` for an untyped call. */
  operation: string | undefined
  /** HighLevel's status; 0 when no answer came (network, deadline, refused before sending). */
  status: number
  durationMs: number
  traceId: string | undefined
  /** The GhlError code when the call stopped without an answer. */
  errorCode: string | undefined
  /** What HighLevel's `X-RateLimit-Remaining` / `X-RateLimit-Daily-Remaining` said, when sent. */
  burstRemaining: number | undefined
  dailyRemaining: number | undefined
}

/** Receives every finished call (synchronously, on the hot path: keep it cheap). */
export interface CallObserver {
  record(call: CallRecord): void
}

/** The record step (outermost). */
export function record(observer: CallObserver, clock: Clock): Step {
  return (next) => async (req) => {
    const start = performance.now()
    try {
      const res = await next(req)
      const call = callOf(req, clock.now(), res.status, performance.now() - start, res.traceId, undefined)
      const limits = readRateLimitHeaders(res.headers)
      call.burstRemaining = limits.remaining
      call.dailyRemaining = limits.dailyRemaining
      observer.record(call)
      return res
    } catch (err) {
      const status = err instanceof HighLevelApiError ? err.upstreamStatus : 0
      observer.record(callOf(req, clock.now(), status, performance.now() - start, err instanceof HighLevelApiError ? err.traceId : undefined, err instanceof GhlError ? err.code : 'GHL_INTERNAL'))
      throw err
    }
  }
}

function callOf(req: PipelineRequest, at: number, status: number, durationMs: number, traceId: string | undefined, errorCode: string | undefined): CallRecord {
  const q = req.path.indexOf('?')
  return {
    at,
    installationId: req.grant?.installationId ?? null,
    method: req.method,
    path: q === -1 ? req.path : req.path.slice(0, q),
    operation: req.operation?.label,
    status,
    durationMs,
    traceId,
    errorCode,
    burstRemaining: undefined,
    dailyRemaining: undefined,
  }
}
