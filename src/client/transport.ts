/**
 * The one HTTP path to HighLevel for requests that are not calls of an installation (the OAuth
 * endpoints: token, location token, installed locations, Reconnect): the same steps as the API client
 * — deadline (one bound and one AbortSignal for everything; stops mapped to GHL_TIMEOUT / GHL_ABORTED /
 * GHL_NETWORK), retry (backoff with jitter, Retry-After, never past the deadline, a bound per attempt)
 * and send (undici) — without the steps that need an installation (auth, refresh-on-401, rate limit).
 *
 * @example
 * const transport = createTransport({ baseUrl: config.apiUrl })
 * const res = await transport.request({ method: 'POST', path: '/oauth/token', headers, body, timeoutMs: 10_000 })
 */
import { getGlobalDispatcher, type Dispatcher } from 'undici'
import { systemClock, type Clock } from '../clock.js'
import { silentLogger, type Logger } from '../logger.js'
import { compose } from './compose.js'
import { deadline } from './steps/deadline.js'
import { retry } from './steps/retry.js'
import { send } from './steps/send.js'
import type { Handler, PipelineRequest, PipelineResponse, RetryOptions } from './types.js'

/** One request through a {@link Transport}. */
export interface TransportRequest {
  method: 'GET' | 'POST'
  /** Path (and query) under the base URL. */
  path: string
  headers: Record<string, string>
  body?: string
  /** The whole request, retries included, ends within this (ms). */
  timeoutMs: number
  /** Each attempt ends within this (ms); default: only the whole bound. */
  attemptTimeoutMs?: number
  /**
   * Safe to send twice (5xx, stalled connections and timeouts are retried). Otherwise only a request
   * that provably never left (connection refused, DNS) is resent — an authorization code is never
   * sent twice: HighLevel may revoke what a reused code issued.
   */
  idempotent: boolean
  /** Also resend an answer this says is worth it. */
  retryWhen?: (res: PipelineResponse) => boolean
  signal?: AbortSignal
}

/** Sends requests to HighLevel outside an installation's pipeline. */
export interface Transport {
  request(req: TransportRequest): Promise<PipelineResponse>
}

/** Options of {@link createTransport}. */
export interface TransportOptions {
  /** HighLevel's base URL (may carry a path prefix). */
  baseUrl: string
  dispatcher?: Dispatcher
  clock?: Clock
  logger?: Logger
  retry?: RetryOptions
}

const NO_TARGET = Object.freeze({ kind: 'static' as const, token: '', resourceId: '' })

/** Builds a {@link Transport}: `deadline → retry → send` over one dispatcher. */
export function createTransport(options: TransportOptions): Transport {
  const url = new URL(options.baseUrl)
  const clock = options.clock ?? systemClock
  const logger = options.logger ?? silentLogger()
  const dispatcher = options.dispatcher ?? getGlobalDispatcher()
  const handler: Handler = compose([deadline(clock), retry(options.retry ?? {}, clock, logger)], send(dispatcher, url.origin, url.pathname.replace(/\/+$/, '')))
  return {
    request(r: TransportRequest): Promise<PipelineResponse> {
      const req: PipelineRequest = {
        method: r.method,
        target: NO_TARGET,
        path: r.path,
        headers: r.headers,
        body: r.body,
        idempotent: r.idempotent,
        replayable: true,
        responseType: 'json',
        timeoutMs: r.timeoutMs,
        callerSignal: r.signal,
        deadline: 0,
        signal: undefined,
        grant: undefined,
        operation: undefined,
        ...(r.attemptTimeoutMs !== undefined ? { attemptTimeoutMs: r.attemptTimeoutMs } : {}),
        ...(r.retryWhen ? { retryWhen: r.retryWhen } : {}),
      }
      return handler(req)
    },
  }
}
