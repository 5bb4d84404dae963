/**
 * The HighLevel API client: typed calls `client.forTarget(target).GET('/contacts/{contactId}', { params })`
 * and `.contacts.getContact({ params })`, and untyped ones `.get('/contacts/', { query })`.
 *
 * Each call runs through steps composed once per client (outermost first):
 * `[record →] deadline → auth → operationGuard → refreshOn401 → retry → rateLimit → send`.
 * - record (when an observer is given): each finished call, to the operator's console (no token).
 * - deadline: one deadline and one AbortSignal for everything below; maps stops to GhlErrors.
 * - auth: `Authorization: Bearer` from the TokenProvider (memory on the hot path).
 * - operationGuard: a typed call whose operation needs a scope the grant lacks stops here, unsent.
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
import { Agent, FormData, type Dispatcher } from 'undici'
import { assertTokenKind, fillPath, OPERATIONS_BY_NAME, OPERATIONS_BY_TEMPLATE, type ApiOperation } from '../api/operation.js'
import type { HttpMethod } from '../api/types.js'
import type { OperationValidator } from '../api/validator.js'
import { systemClock, type Clock } from '../clock.js'
import { GhlError, HighLevelApiError, RateLimitedError } from '../errors.js'
import { silentLogger, type Logger } from '../logger.js'
import { parseRetryAfter } from '../ratelimit/headers.js'
import type { Target } from '../tokens/types.js'
import { compose } from './compose.js'
import { auth } from './steps/auth.js'
import { deadline } from './steps/deadline.js'
import { operationGuard } from './steps/operation-guard.js'
import { record } from './steps/record.js'
import { rateLimit } from './steps/rate-limit.js'
import { refreshOn401 } from './steps/refresh-on-401.js'
import { retry } from './steps/retry.js'
import { send } from './steps/send.js'
import type { TypedResponseInfo } from './typed.js'
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
  #logger: Logger
  #validate: boolean
  #validator: Promise<OperationValidator> | undefined
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
    this.#logger = logger
    this.#validate = options.validate === true
    const steps: Step[] = [
      deadline(this.#clock),
      auth(options.tokens),
      operationGuard(),
      refreshOn401(options.tokens, logger),
      retry(options.retry ?? {}, this.#clock, logger),
    ]
    if (options.limiter) steps.push(rateLimit(options.limiter, this.#clock, logger))
    if (options.observer) steps.unshift(record(options.observer, this.#clock))
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
    const operation = o?.operation
    if (operation !== undefined) assertTokenKind(operation, target)
    const req: PipelineRequest = {
      method: m,
      target,
      path: buildPath(path, o?.query),
      headers: { accept: 'application/json', version: o?.version ?? operation?.version ?? this.#apiVersion },
      body: undefined,
      idempotent: IDEMPOTENT.has(m),
      replayable: true,
      responseType: o?.responseType ?? 'json',
      timeoutMs: o?.timeoutMs ?? this.#timeoutMs,
      callerSignal: o?.signal,
      deadline: 0,
      signal: undefined,
      grant: undefined,
      operation,
    }
    if (o !== undefined) prepare(req, o)
    const res = await this.#handler(req)
    if (req.responseType === 'stream') {
      return { status: res.status, headers: res.headers, body: res.body ?? Readable.from(res.text ? [Buffer.from(res.text)] : []) }
    }
    if (res.status >= 400) throw this.#toError(res)
    const traceId = res.traceId
    return traceId === undefined ? { status: res.status, headers: res.headers, data: res.data } : { status: res.status, headers: res.headers, data: res.data, traceId }
  }

  /**
   * @internal Runs one typed call: checks the token kind (before anything else), builds the path from
   * the template, sends the operation's `Version`, and answers `{ data }` or `{ error }` (HighLevel's
   * body) with the status; in validate mode, checks the request and the answer against the spec.
   */
  async callOperation(target: Target, op: ApiOperation, init: TypedInitLike | undefined): Promise<TypedResultLike> {
    if (this.#closed) throw new GhlError('GHL_INTERNAL', 'The HighLevel client is closed')
    assertTokenKind(op, target)
    const params = init?.params
    const headers: Record<string, string> = { accept: 'application/json', version: op.version ?? this.#apiVersion }
    if (params?.header) copyHeaders(headers, params.header)
    if (init?.headers) copyHeaders(headers, init.headers)
    const body = init?.body === undefined ? undefined : encodeBody(op, init.body, headers)
    const req: PipelineRequest = {
      method: op.method,
      target,
      path: buildPath(fillPath(op, params?.path), params?.query),
      headers,
      body,
      idempotent: IDEMPOTENT.has(op.method),
      replayable: true,
      responseType: 'json',
      timeoutMs: init?.timeoutMs ?? this.#timeoutMs,
      callerSignal: init?.signal,
      deadline: 0,
      signal: undefined,
      grant: undefined,
      operation: op,
    }
    const validator = this.#validate ? await this.#loadValidator() : undefined
    if (validator) await validator.checkRequest(op, params, init?.body)
    const res = await this.#handler(req)
    if (validator) await validator.checkResponse(op, res.status, res.data)
    const traceId = res.traceId
    const response: TypedResponseInfo = traceId === undefined ? { status: res.status, headers: res.headers } : { status: res.status, headers: res.headers, traceId }
    return res.status < 400 ? { data: res.data, response } : { error: res.data, response }
  }

  #loadValidator(): Promise<OperationValidator> {
    // ajv and the schemas load on the first validated call only.
    return (this.#validator ??= import('../api/validator.js').then((m) => new m.OperationValidator(this.#logger)))
  }

  #toError(res: PipelineResponse): GhlError {
    if (res.status === 429) return new RateLimitedError(parseRetryAfter(res.headers, this.#clock.now()) ?? 0, 'HighLevel answered 429 (rate limit) and the call could not be retried in time')
    return new HighLevelApiError(res.status, res.data, res.traceId)
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

/** What a typed call takes, as the runtime sees it (the types are in typed.ts). */
interface TypedInitLike {
  params?: { path?: Record<string, unknown>; query?: Record<string, QueryValue>; header?: Record<string, unknown> }
  body?: unknown
  headers?: Record<string, string>
  timeoutMs?: number
  signal?: AbortSignal
}

type TypedResultLike = { data: unknown; response: TypedResponseInfo } | { error: unknown; response: TypedResponseInfo }

/** Copies caller headers (lower-cased); `Authorization`, `Host` and `Version` are the client's. */
function copyHeaders(into: Record<string, string>, from: Record<string, unknown>): void {
  for (const name of Object.keys(from)) {
    const value = from[name]
    if (value === undefined) continue
    const lower = name.toLowerCase()
    if (lower === 'authorization' || lower === 'host' || lower === 'version') continue
    into[lower] = String(value)
  }
}

/** A typed call's body, encoded as its operation declares (JSON, form, multipart). */
function encodeBody(op: ApiOperation, body: unknown, headers: Record<string, string>): string | FormData {
  switch (op.body) {
    case 'json':
      headers['content-type'] ??= 'application/json'
      return JSON.stringify(body)
    case 'form': {
      if (typeof body !== 'object' || body === null) throw new GhlError('GHL_BAD_REQUEST', `${op.label} takes a form body: an object of fields, got ${typeof body}`)
      const form = new URLSearchParams()
      for (const [k, v] of Object.entries(body)) {
        if (v === undefined) continue
        if (Array.isArray(v)) for (const item of v) form.append(k, String(item))
        else form.append(k, String(v))
      }
      headers['content-type'] ??= 'application/x-www-form-urlencoded'
      return form.toString()
    }
    case 'multipart':
      // undici sets the multipart content type with its boundary.
      delete headers['content-type']
      return toFormData(op, body)
    default:
      throw new GhlError('GHL_BAD_REQUEST', `${op.label} (${op.method} ${op.path}) takes no request body`)
  }
}

/** undici's FormData from a FormData (Node's global one is not undici 7's) or an object of parts. */
function toFormData(op: ApiOperation, body: unknown): FormData {
  if (body instanceof FormData) return body
  const fd = new FormData()
  const add = (k: string, v: unknown): void => {
    if (v === undefined) return
    if (v instanceof Blob) fd.append(k, v)
    else if (v instanceof Uint8Array) fd.append(k, new Blob([v]))
    else fd.append(k, typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v))
  }
  if (typeof body === 'object' && body !== null && typeof (body as { entries?: unknown }).entries === 'function' && typeof (body as { append?: unknown }).append === 'function') {
    for (const [k, v] of (body as { entries(): Iterable<[string, unknown]> }).entries()) add(k, v)
    return fd
  }
  if (typeof body !== 'object' || body === null) throw new GhlError('GHL_BAD_REQUEST', `${op.label} takes a multipart body: a FormData or an object of parts, got ${typeof body}`)
  for (const [k, v] of Object.entries(body)) {
    if (Array.isArray(v)) for (const item of v) add(k, item)
    else add(k, v)
  }
  return fd
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

// The typed calls (GET…DELETE and the service namespaces) are put on the prototype by the static block
// below, once; their types come from the ResourceClient interface merged here.
interface TargetClient extends ResourceClient {}

/** Where a namespace object keeps its TargetClient. */
const OWNER = Symbol('owner')

class TargetClient {
  readonly #client: HighLevelClient
  readonly #target: Target
  constructor(client: HighLevelClient, target: Target) {
    this.#client = client
    this.#target = target
  }

  static {
    const proto = TargetClient.prototype as unknown as Record<string, unknown>
    const define = (name: string, descriptor: PropertyDescriptor): void => {
      if (name in proto) throw new Error(`TargetClient already has a member named ${name}`)
      Object.defineProperty(proto, name, { ...descriptor, enumerable: false, configurable: false })
    }
    for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const satisfies readonly HttpMethod[]) {
      const byTemplate = OPERATIONS_BY_TEMPLATE[method]
      define(method, {
        value(this: TargetClient, path: string, init?: TypedInitLike): Promise<TypedResultLike> {
          const op = byTemplate.get(path)
          if (op === undefined) {
            return Promise.reject(new GhlError('GHL_BAD_REQUEST', `${method} ${path} is not an operation of HighLevel's API (the Paths type lists them); use ${method.toLowerCase()}() for an untyped call`))
          }
          return this.#client.callOperation(this.#target, op, init)
        },
      })
    }
    // One small class per service namespace: `ghl.location(id).contacts` allocates one object.
    for (const [namespace, operations] of OPERATIONS_BY_NAME) {
      const Namespace = class {
        readonly [OWNER]: TargetClient
        constructor(owner: TargetClient) {
          this[OWNER] = owner
        }
      }
      const nsProto = Namespace.prototype as unknown as Record<string, unknown>
      for (const [name, op] of operations) {
        if (name in nsProto) throw new Error(`the ${namespace} namespace already has a member named ${name}`)
        nsProto[name] = function (this: InstanceType<typeof Namespace>, init?: TypedInitLike): Promise<TypedResultLike> {
          const owner = this[OWNER]
          return owner.#client.callOperation(owner.#target, op, init)
        }
      }
      define(namespace, {
        get(this: TargetClient) {
          return new Namespace(this)
        },
      })
    }
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
