/**
 * Public shapes of the HighLevel API client and of its pipeline steps.
 */
import type { Readable } from 'node:stream'
import type { Dispatcher, FormData } from 'undici'
import type { ApiOperation } from '../api/operation.js'
import type { Clock } from '../clock.js'
import type { Logger } from '../logger.js'
import type { RateLimiter } from '../ratelimit/rate-limiter.js'
import type { AccessGrant, Target, TokenProvider } from '../tokens/types.js'
import type { ServiceNamespaces, TypedPathCalls } from './typed.js'
import type { CallObserver } from './steps/record.js'

/** Options of {@link HighLevelClient}. */
export interface ClientOptions {
  /** `https://services.leadconnectorhq.com` (FACTS.md "Calls"), or the sandbox's URL. May carry a path prefix. */
  baseUrl: string
  /** Default `Version` header, e.g. `'2021-07-28'`; overridable per call. */
  apiVersion: string
  tokens: TokenProvider
  /** `undefined` = no client-side rate limiting. */
  limiter?: RateLimiter
  /** undici dispatcher; default: one keep-alive Agent owned (and closed) by the client. */
  dispatcher?: Dispatcher
  clock?: Clock
  logger?: Logger
  /** Default per-call deadline in ms (30000). Every wait of the call counts against it. */
  timeoutMs?: number
  retry?: RetryOptions
  /**
   * Validate mode: typed calls check their params and body, and HighLevel's answers, against the spec
   * and log each mismatch as a warning (operation and field, never the value). Off by default: the
   * validators (ajv and the schemas) are loaded on the first typed call only when on.
   */
  validate?: boolean
  /** Told about every finished call (method, path, status, duration, trace id; never a token): the console's recorder. */
  observer?: CallObserver
}

/** Bounds of the retry step. */
export interface RetryOptions {
  /** Retries after the first attempt (3). */
  maxRetries?: number
  /** Backoff base: attempt n waits a random time in [0, min(maxDelayMs, baseDelayMs·2ⁿ)) (200). */
  baseDelayMs?: number
  /** Backoff cap (5000). A longer `Retry-After` is still honoured while the deadline allows. */
  maxDelayMs?: number
}

/** Query values: arrays become repeated keys (`a=1&a=2`); `undefined` is left out. */
export type QueryValue = string | number | boolean | undefined | Array<string | number>

/** Options of one call. */
export interface RequestOptions {
  query?: Record<string, QueryValue>
  /** Extra headers (names are case-insensitive; `Authorization` is always set by the client). */
  headers?: Record<string, string>
  /** Sent as JSON. */
  body?: unknown
  /** Sent as is (the proxy). A `Readable` cannot be replayed: such a call is never retried. */
  rawBody?: Buffer | string | Readable
  /** `Version` header for this call (default: the client's `apiVersion`). */
  version?: string
  /** Deadline of this call in ms (default: the client's `timeoutMs`). */
  timeoutMs?: number
  /** Aborts the call wherever it is (GhlError `GHL_ABORTED`). */
  signal?: AbortSignal
  /** `'stream'`: the answer's body as a Readable, not buffered, whatever the status. */
  responseType?: 'json' | 'stream'
  /**
   * The HighLevel operation this call is (e.g. from `matchOperation()`): the call is refused before
   * anything is sent when the target's token kind or the installation's scopes do not fit it
   * (`GHL_WRONG_TOKEN_KIND`, `GHL_SCOPE_MISSING`), and its `Version` is sent unless `version` or a
   * `Version` header is given. Typed calls set it themselves.
   */
  operation?: ApiOperation
}

/** A buffered answer (2xx/3xx; error statuses throw). */
export interface ApiResponse<T = unknown> {
  status: number
  headers: Record<string, string | string[] | undefined>
  /** Parsed JSON when the content type is JSON, else the text; `undefined` for an empty body. */
  data: T
  traceId?: string
}

/** A streamed answer: HighLevel's status, headers and body as they come. */
export interface StreamResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Readable
}

/**
 * The API calls for one target (a location, a company, or a static token): typed calls by path
 * (`GET('/contacts/{contactId}', …)`) and by name (`contacts.getContact(…)`), and untyped ones
 * (`get('/contacts/abc')`).
 */
export interface ResourceClient extends TypedPathCalls, ServiceNamespaces {
  get<T = unknown>(path: string, options?: RequestOptions): Promise<ApiResponse<T>>
  post<T = unknown>(path: string, options?: RequestOptions): Promise<ApiResponse<T>>
  put<T = unknown>(path: string, options?: RequestOptions): Promise<ApiResponse<T>>
  patch<T = unknown>(path: string, options?: RequestOptions): Promise<ApiResponse<T>>
  delete<T = unknown>(path: string, options?: RequestOptions): Promise<ApiResponse<T>>
  /** Any method; a {@link StreamResponse} when `responseType: 'stream'`. */
  request(method: string, path: string, options?: RequestOptions): Promise<ApiResponse | StreamResponse>
}

/** What travels down the pipeline: one object per call, mutated by the steps (no per-step copies). */
export interface PipelineRequest {
  readonly method: string
  readonly target: Target
  /** Path relative to the base URL, query string included. */
  readonly path: string
  /** Lower-case names. `authorization` is set by the auth step and never logged. */
  readonly headers: Record<string, string>
  readonly body: string | Buffer | Readable | FormData | undefined
  /** GET/HEAD/PUT/DELETE/OPTIONS: safe to send twice. */
  readonly idempotent: boolean
  /** False for a streamed request body: nothing may resend it. */
  readonly replayable: boolean
  readonly responseType: 'json' | 'stream'
  readonly timeoutMs: number
  readonly callerSignal: AbortSignal | undefined
  /** Epoch ms; set by the deadline step. */
  deadline: number
  /** Aborts on the caller's signal or the deadline; set by the deadline step. */
  signal: AbortSignal | undefined
  /** The token in use; set by the auth step. */
  grant: AccessGrant | undefined
  /** The HighLevel operation (typed calls, or `RequestOptions.operation`): checked by the operation guard. */
  readonly operation: ApiOperation | undefined
  /** Each attempt must be answered within this (ms), besides the call's deadline (OAuth requests). */
  readonly attemptTimeoutMs?: number
  /** Also resend an answer this says is worth it (OAuth: a token answer that is not JSON). */
  readonly retryWhen?: (res: PipelineResponse) => boolean
}

/** What comes back up. Error statuses are always buffered (`data`), so steps can read them. */
export interface PipelineResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  /** Parsed body (buffered answers). */
  data: unknown
  /** Raw text of a buffered answer (to re-stream it in stream mode). */
  text: string | undefined
  /** Unbuffered body: only for `responseType: 'stream'` and status < 400. */
  body: Readable | undefined
  /** HighLevel's trace id of this answer (a header, or `traceId` in a buffered body), read once when it arrives. */
  traceId: string | undefined
}

/** One stage of the pipeline. */
export type Handler = (req: PipelineRequest) => Promise<PipelineResponse>
/** A step wraps the next handler: `(next) => (req) => …` (undici `Dispatcher.compose()` style). */
export type Step = (next: Handler) => Handler
