/**
 * The HighLevel API client: `client.forTarget(target).get('/contacts/', { query })`.
 *
 * Each call runs through steps composed once per client (outermost first):
 * `deadline → auth → refreshOn401 → retry → rateLimit → send`.
 * - deadline: one deadline and one AbortSignal for everything below; maps stops to GhlErrors.
 * - auth: `Authorization: Bearer` from the TokenProvider (memory on the hot path).
 * - refreshOn401: a 401 for a rejected token → `tokens.onUnauthorized()` and ONE resend.
 * - retry: 429 / 5xx / network errors, backoff with full jitter, POST/PATCH only when never sent.
 * - rateLimit: one limiter slot per attempt (so each resend is counted too), headers fed back, 429 → penalty.
 * - send: undici `dispatcher.request()`.
 *
 * @see /work/shared/reference/highlevel/FACTS.md ("Calls", "Rate limits")
 * @example
 * const client = new HighLevelClient({ baseUrl: config.apiUrl, apiVersion: config.apiVersion, tokens, limiter })
 * const { data } = await client.forTarget({ kind: 'location', id: 'LOC' }).get('/contacts/', { query: { locationId: 'LOC', limit: 20 } })
 * await client.close()
 */
import { Readable } from 'node:stream'
import { Agent, type Dispatcher } from 'undici'
import { systemClock, type Clock } from '../clock.js'
import { GhlError, HighLevelApiError, RateLimitedError } from '../errors.js'
import { silentLogger } from '../logger.js'
import { parseRetryAfter } from '../ratelimit/headers.js'
import type { Target } from '../tokens/types.js'
import { compose } from './compose.js'
import { auth } from './steps/auth.js'
import { deadline } from './steps/deadline.js'
import { rateLimit } from './steps/rate-limit.js'
import { refreshOn401 } from './steps/refresh-on-401.js'
import { retry } from './steps/retry.js'
import { send } from './steps/send.js'
import type { ApiResponse, ClientOptions, Handler, PipelineRequest, PipelineResponse, QueryValue, RequestOptions, ResourceClient, Step, StreamResponse } from './types.js'

const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS'])

/** See the file comment. Stateful: owns its dispatcher unless one was given. */
export class HighLevelClient {
  #handler: Handler
  #dispatcher: Dispatcher
  #ownsDispatcher: boolean
  #apiVersion: string
  #timeoutMs: number
  #clock: Clock
  #closed = false

  constructor(options: ClientOptions) {
    const url = new URL(options.baseUrl)
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new GhlError('GHL_CONFIG_INVALID', `expected baseUrl to be an http(s) URL, got ${JSON.stringify(options.baseUrl)}`)
    }
    const timeoutMs = options.timeoutMs ?? 30_000
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      throw new GhlError('GHL_CONFIG_INVALID', `expected timeoutMs to be a positive finite number, got ${timeoutMs}`)
    }
    this.#clock = options.clock ?? systemClock
    this.#timeoutMs = timeoutMs
    this.#apiVersion = options.apiVersion
    this.#ownsDispatcher = options.dispatcher === undefined
    this.#dispatcher = options.dispatcher ?? new Agent({ keepAliveTimeout: 10_000, keepAliveMaxTimeout: 60_000 })
    const logger = options.logger ?? silentLogger()
    const steps: Step[] = [
      deadline(this.#clock),
      auth(options.tokens),
      refreshOn401(options.tokens, logger),
      retry(options.retry ?? {}, this.#clock, logger),
    ]
    if (options.limiter) steps.push(rateLimit(options.limiter, this.#clock, logger))
    this.#handler = compose(steps, send(this.#dispatcher, url.origin, url.pathname.replace(/\/+$/, '')))
  }

  /** The calls for one location, company, or static token. Cheap: no I/O, no copies of state. */
  forTarget(target: Target): ResourceClient {
    return new TargetClient(this, target)
  }

  /** Closes the dispatcher the client created (a given one is the caller's to close). */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#ownsDispatcher) await this.#dispatcher.close()
  }

  /** @internal Runs one call through the pipeline. */
  async call(target: Target, method: string, path: string, o: RequestOptions | undefined): Promise<ApiResponse | StreamResponse> {
    if (this.#closed) throw new GhlError('GHL_INTERNAL', 'The HighLevel client is closed')
    const m = method.toUpperCase()
    const req: PipelineRequest = {
      method: m,
      target,
      path: buildPath(path, o?.query),
      headers: { accept: 'application/json', version: o?.version ?? this.#apiVersion },
      body: undefined,
      idempotent: IDEMPOTENT.has(m),
      replayable: true,
      responseType: o?.responseType ?? 'json',
      timeoutMs: o?.timeoutMs ?? this.#timeoutMs,
      callerSignal: o?.signal,
      deadline: 0,
      signal: undefined,
      grant: undefined,
    }
    if (o !== undefined) prepare(req, o)
    const res = await this.#handler(req)
    if (req.responseType === 'stream') {
      return { status: res.status, headers: res.headers, body: res.body ?? Readable.from(res.text ? [Buffer.from(res.text)] : []) }
    }
    if (res.status >= 400) throw this.#toError(res)
    const traceId = traceIdOf(res)
    return traceId === undefined ? { status: res.status, headers: res.headers, data: res.data } : { status: res.status, headers: res.headers, data: res.data, traceId }
  }

  #toError(res: PipelineResponse): GhlError {
    if (res.status === 429) return new RateLimitedError(parseRetryAfter(res.headers, this.#clock.now()) ?? 0, 'HighLevel answered 429 (rate limit) and the call could not be retried in time')
    return new HighLevelApiError(res.status, res.data, traceIdOf(res))
  }
}

/** Headers and body of a call from its options (the rare parts, kept off the common path). */
function prepare(req: PipelineRequest, o: RequestOptions): void {
  const h = req.headers
  if (o.headers) {
    for (const name of Object.keys(o.headers)) {
      const lower = name.toLowerCase()
      if (lower === 'authorization' || lower === 'host') continue // set by the client
      if (lower === 'version' && o.version !== undefined) continue
      h[lower] = o.headers[name]!
    }
  }
  let body: PipelineRequest['body']
  let replayable = true
  if (o.rawBody !== undefined) {
    body = o.rawBody
    replayable = typeof body === 'string' || Buffer.isBuffer(body)
  } else if (o.body !== undefined) {
    body = JSON.stringify(o.body)
    if (h['content-type'] === undefined) h['content-type'] = 'application/json'
  }
  ;(req as { body: PipelineRequest['body'] }).body = body
  ;(req as { replayable: boolean }).replayable = replayable
}

/** `path` + serialised query. Arrays become repeated keys; `undefined` values are left out. */
export function buildPath(path: string, query: Record<string, QueryValue> | undefined): string {
  if (/^[a-z][a-z0-9+.-]*:/i.test(path) || path.startsWith('//')) {
    throw new GhlError('GHL_BAD_REQUEST', 'expected a path relative to the HighLevel base URL, got an absolute URL')
  }
  let p = path.startsWith('/') ? path : `/${path}`
  if (query === undefined) return p
  let qs = ''
  for (const key of Object.keys(query)) {
    const v = query[key]
    if (v === undefined) continue
    const k = encodeURIComponent(key)
    if (Array.isArray(v)) {
      for (const item of v) qs += `${qs ? '&' : ''}${k}=${encodeURIComponent(String(item))}`
    } else qs += `${qs ? '&' : ''}${k}=${encodeURIComponent(String(v))}`
  }
  if (qs) p += (p.includes('?') ? '&' : '?') + qs
  return p
}

function traceIdOf(res: PipelineResponse): string | undefined {
  const h = res.headers['x-trace-id']
  if (typeof h === 'string' && h) return h
  if (Array.isArray(h) && h[0]) return h[0]
  const d = res.data
  if (d && typeof d === 'object' && typeof (d as { traceId?: unknown }).traceId === 'string') return (d as { traceId: string }).traceId
  return undefined
}

class TargetClient implements ResourceClient {
  readonly #client: HighLevelClient
  readonly #target: Target
  constructor(client: HighLevelClient, target: Target) {
    this.#client = client
    this.#target = target
  }
  get<T = unknown>(path: string, options?: RequestOptions): Promise<ApiResponse<T>> {
    return this.#client.call(this.#target, 'GET', path, json(options)) as Promise<ApiResponse<T>>
  }
  post<T = unknown>(path: string, options?: RequestOptions): Promise<ApiResponse<T>> {
    return this.#client.call(this.#target, 'POST', path, json(options)) as Promise<ApiResponse<T>>
  }
  put<T = unknown>(path: string, options?: RequestOptions): Promise<ApiResponse<T>> {
    return this.#client.call(this.#target, 'PUT', path, json(options)) as Promise<ApiResponse<T>>
  }
  patch<T = unknown>(path: string, options?: RequestOptions): Promise<ApiResponse<T>> {
    return this.#client.call(this.#target, 'PATCH', path, json(options)) as Promise<ApiResponse<T>>
  }
  delete<T = unknown>(path: string, options?: RequestOptions): Promise<ApiResponse<T>> {
    return this.#client.call(this.#target, 'DELETE', path, json(options)) as Promise<ApiResponse<T>>
  }
  request(method: string, path: string, options?: RequestOptions): Promise<ApiResponse | StreamResponse> {
    return this.#client.call(this.#target, method, path, options)
  }
}

/** The typed verbs always buffer (a stream answer is `request(…, { responseType: 'stream' })`). */
function json(o: RequestOptions | undefined): RequestOptions | undefined {
  return o?.responseType === 'stream' ? { ...o, responseType: 'json' } : o
}
