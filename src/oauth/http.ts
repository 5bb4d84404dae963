/**
 * The one HTTP primitive of the OAuth client: send a request to HighLevel and hand back the raw answer,
 * through the same steps as the API client (`src/client/transport.ts`: deadline, retry, send). The
 * validation of the answer lives in the `process*` functions beside each request (the request/process
 * split of panva/oauth4webapi), so each half is testable alone.
 */
import type { Dispatcher } from 'undici'
import { createTransport, type Transport } from '../client/transport.js'
import { traceIdOf as traceIdFrom } from '../client/trace-id.js'
import { GhlError, OAuthError, type ErrorCode } from '../errors.js'

/**
 * How OAuth requests reach HighLevel.
 *
 * @example
 * const http: OAuthHttp = { apiUrl: config.apiUrl, timeoutMs: config.tokenRequestTimeoutMs }
 */
export interface OAuthHttp {
  /** Base URL of HighLevel's API, e.g. `https://services.leadconnectorhq.com` (no trailing slash). */
  apiUrl: string
  /** undici dispatcher to send through (tests, proxies); the global one by default. */
  dispatcher?: Dispatcher
  /** The whole exchange, retries included, must finish within this many milliseconds. */
  timeoutMs: number
  /** Each attempt must finish within this (default: `timeoutMs`). */
  attemptTimeoutMs?: number
  /** The caller's cancellation. */
  signal?: AbortSignal
  /**
   * HighLevel's OAuth API version: `v2` (default: `/oauth/locationToken`, snake_case token answers) or
   * `v3` (oauth-v3.json: `Version: v3`, camelCase bodies and answers, `/oauth/location-token`,
   * `/oauth/installed-locations` with cursor paging).
   */
  version?: OAuthVersion
  /**
   * The transport to send through, with its retry settings. Without one, a transport over `dispatcher`
   * that sends each request once (no retries) is used.
   */
  transport?: Transport
}

/** HighLevel's OAuth API versions. */
export type OAuthVersion = 'v2' | 'v3'

/** A raw HTTP answer: what a `*Request` function returns and a `process*` function validates. */
export interface RawResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

/**
 * @internal One request through the transport. `idempotent`: safe to send twice (a refresh, a location
 * token, a listing) — 5xx, 429, stalled or timed-out attempts and answers that are not JSON are resent
 * within the deadline; otherwise (an authorization code exchange) only a request that never left is.
 * Stops become GhlErrors naming the request: `GHL_TIMEOUT`, `GHL_NETWORK`, `GHL_ABORTED`.
 */
export async function send(
  http: OAuthHttp,
  what: string,
  options: { method: 'GET' | 'POST'; path: string; headers: Record<string, string>; body?: string; idempotent?: boolean },
): Promise<RawResponse> {
  const transport = http.transport ?? createTransport({ baseUrl: http.apiUrl, dispatcher: http.dispatcher, retry: { maxRetries: 0 } })
  const idempotent = options.idempotent ?? true
  try {
    const res = await transport.request({
      method: options.method,
      path: options.path,
      headers: options.headers,
      body: options.body,
      timeoutMs: http.timeoutMs,
      ...(http.attemptTimeoutMs !== undefined ? { attemptTimeoutMs: http.attemptTimeoutMs } : {}),
      idempotent,
      ...(idempotent ? { retryWhen: notJson } : {}),
      signal: http.signal,
    })
    return { status: res.status, headers: res.headers, body: res.text ?? '' }
  } catch (err) {
    // The cause is undici's error: it names the host and the failure, never our request body.
    if (err instanceof GhlError) {
      if (err.code === 'GHL_TIMEOUT') throw new GhlError('GHL_TIMEOUT', `HighLevel did not answer the ${what} request within ${http.attemptTimeoutMs ?? http.timeoutMs} ms`, { cause: err })
      if (err.code === 'GHL_ABORTED') throw new GhlError('GHL_ABORTED', `The ${what} request was aborted by the caller`, { cause: err })
      if (err.code === 'GHL_NETWORK') throw new GhlError('GHL_NETWORK', `HighLevel could not be reached for the ${what} request (${err.message.replace(/^HighLevel could not be reached ?/, '') || 'network error'})`, { cause: err.cause ?? err })
      throw err
    }
    throw new GhlError('GHL_NETWORK', `HighLevel could not be reached for the ${what} request (${(err as Error).message})`, { cause: err })
  }
}

/** A 2xx answer that is not JSON (a cut-off body): worth asking again. */
function notJson(res: { status: number; text: string | undefined }): boolean {
  return res.status >= 200 && res.status < 300 && parseJson(res.text ?? '') === undefined
}

/** @internal Form-encodes fields, leaving out undefined ones. */
export function formBody(fields: Record<string, string | undefined>): string {
  const params = new URLSearchParams()
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) params.set(k, v)
  return params.toString()
}

/** @internal The trace id HighLevel puts on every answer (header or body): the client's reading of it. */
export function traceIdOf(raw: RawResponse, parsed?: unknown): string | undefined {
  return traceIdFrom(raw.headers, parsed)
}

/** @internal JSON.parse that answers `undefined` instead of throwing. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

/** The error codes of RFC 6749 §5.2 (token endpoint) that HighLevel may put in `error`. */
const OAUTH_ERROR_CODES = new Set([
  'invalid_request',
  'invalid_client',
  'invalid_grant',
  'unauthorized_client',
  'unsupported_grant_type',
  'invalid_scope',
  'access_denied',
])

/**
 * @internal Replaces anything that looks like a credential (20+ characters of token alphabet) so a
 * HighLevel message that echoes a code or token can be shown to a person.
 */
export function sanitize(text: string, max = 200): string {
  const cleaned = text.replace(/[A-Za-z0-9._~+/=-]{20,}/g, '[redacted]').replace(/\s+/g, ' ').trim()
  return cleaned.length > max ? `${cleaned.slice(0, max)}…` : cleaned
}

/**
 * @internal The error fields of either envelope: v2's `{statusCode, message, error}` (common-schemas.json)
 * or RFC 6749's `{error, error_description}`, and v3's `{error: {code, message, details, resolution}}`
 * (oauth-v3.json `AipErrorResponseDto`), flattened to one shape.
 */
export function errorFields(parsed: unknown): { message?: string | string[]; error?: string; error_description?: string; resolution?: string } {
  if (!parsed || typeof parsed !== 'object') return {}
  const o = parsed as Record<string, unknown>
  if (o.error && typeof o.error === 'object' && !Array.isArray(o.error)) {
    const e = o.error as Record<string, unknown>
    return {
      message: typeof e.message === 'string' ? e.message : undefined,
      error: typeof e.code === 'string' ? e.code : undefined,
      resolution: typeof e.resolution === 'string' ? e.resolution : undefined,
    }
  }
  return {
    message: typeof o.message === 'string' || Array.isArray(o.message) ? (o.message as string | string[]) : undefined,
    error: typeof o.error === 'string' ? o.error : undefined,
    error_description: typeof o.error_description === 'string' ? o.error_description : undefined,
  }
}

/** @internal HighLevel's human message from an error body (`message`, `error_description`), sanitised. */
function describe(parsed: unknown): string | undefined {
  if (!parsed || typeof parsed !== 'object') return undefined
  const o = errorFields(parsed) as Record<string, unknown>
  const parts: string[] = []
  for (const key of ['error_description', 'message', 'resolution'] as const) {
    const v = o[key]
    if (typeof v === 'string' && v) parts.push(v)
    else if (Array.isArray(v)) parts.push(v.filter((x) => typeof x === 'string').join('; '))
  }
  const text = parts.filter(Boolean).join(' — ')
  return text ? sanitize(text) : undefined
}

/**
 * @internal Turns a non-2xx answer of an OAuth endpoint into an {@link OAuthError}.
 *
 * The mapping (HighLevel's bodies are `{statusCode, message, error}` (common-schemas.json), sometimes
 * RFC 6749 `{error, error_description}`):
 * - 5xx, 429 → `GHL_UPSTREAM_UNAVAILABLE` (transient: the grant is untouched).
 * - "Location is not active" (a suspended sub-account; oauth-v3.json `locationNotActive`) →
 *   `GHL_INSTALLATION_SUSPENDED` with `oauthError: 'location_not_active'`: the refresh token is still good.
 * - "API endpoint has been removed" / "removed in version …" → `GHL_OAUTH_GRANT_REJECTED` with
 *   `oauthError: 'endpoint_removed'`: a verdict on the endpoint, not on any grant (FACTS.md, Reconnect).
 * - `error` is an RFC 6749 §5.2 code → `invalid_client` gives `GHL_OAUTH_CLIENT_REJECTED`; every other
 *   code gives `GHL_OAUTH_GRANT_REJECTED` with `oauthError` = that code.
 * - otherwise a message about the client (id/secret) → `GHL_OAUTH_CLIENT_REJECTED` (`invalid_client`);
 * - otherwise a message saying a code, token or grant is invalid, expired, used or revoked →
 *   `GHL_OAUTH_GRANT_REJECTED` with `oauthError: 'invalid_grant'`;
 * - otherwise 401 → `GHL_OAUTH_CLIENT_REJECTED` for the token endpoint (client authentication is the
 *   401 of RFC 6749 §5.2) and `GHL_OAUTH_GRANT_REJECTED`/`invalid_token` for bearer-authenticated ones;
 * - any other 4xx → `GHL_OAUTH_GRANT_REJECTED` with `oauthError: 'invalid_request'`.
 */
export function errorFromResponse(raw: RawResponse, what: string, options: { bearer?: boolean } = {}): OAuthError {
  const parsed = parseJson(raw.body)
  const traceId = traceIdOf(raw, parsed)
  const detail = describe(parsed)
  const says = detail ? `: ${detail}` : ''
  const base = { upstreamStatus: raw.status, traceId }
  if (raw.status >= 500 || raw.status === 429) {
    return new OAuthError('GHL_UPSTREAM_UNAVAILABLE', `HighLevel answered the ${what} request with ${raw.status}${says}`, base)
  }
  const o = errorFields(parsed)
  const error = typeof o.error === 'string' ? o.error.toLowerCase() : undefined
  const text = `${typeof o.message === 'string' ? o.message : Array.isArray(o.message) ? o.message.join(' ') : ''} ${o.error_description ?? ''}`.toLowerCase()
  const make = (code: ErrorCode, oauthError: string, lead: string): OAuthError =>
    new OAuthError(code, `${lead} (HighLevel answered ${raw.status}${says})`, { ...base, oauthError })
  if (/location is not active|location (is )?(inactive|suspended|paused)/.test(text)) {
    return make('GHL_INSTALLATION_SUSPENDED', 'location_not_active', `HighLevel refused the ${what} request because the location is not active (suspended)`)
  }
  if (/endpoint has been removed|removed in version|endpoint (is )?no longer (available|supported)/.test(text)) {
    return make('GHL_OAUTH_GRANT_REJECTED', 'endpoint_removed', `HighLevel no longer offers the ${what} endpoint`)
  }
  if (error && OAUTH_ERROR_CODES.has(error)) {
    if (error === 'invalid_client') return make('GHL_OAUTH_CLIENT_REJECTED', error, `HighLevel rejected the app's client id or secret for the ${what} request`)
    return make('GHL_OAUTH_GRANT_REJECTED', error, `HighLevel rejected the ${what} request`)
  }
  if (/\bclient\b/.test(text) && !/\b(refresh|code|grant)\b/.test(text)) {
    return make('GHL_OAUTH_CLIENT_REJECTED', 'invalid_client', `HighLevel rejected the app's client id or secret for the ${what} request`)
  }
  if (/(invalid|expired|used|revoked|not found|unknown)/.test(text) && /(code|token|grant)/.test(text)) {
    return make('GHL_OAUTH_GRANT_REJECTED', 'invalid_grant', `HighLevel rejected the ${what} request: the authorization code or token is invalid, expired or already used`)
  }
  if (raw.status === 401) {
    return options.bearer
      ? make('GHL_OAUTH_GRANT_REJECTED', 'invalid_token', `HighLevel rejected the access token of the ${what} request`)
      : make('GHL_OAUTH_CLIENT_REJECTED', 'invalid_client', `HighLevel rejected the app's client id or secret for the ${what} request`)
  }
  return make('GHL_OAUTH_GRANT_REJECTED', 'invalid_request', `HighLevel refused the ${what} request`)
}

/** @internal A 2xx whose body is not JSON or not the documented shape. */
export function invalidResponse(raw: RawResponse, what: string, problem: string): OAuthError {
  return new OAuthError('GHL_OAUTH_INVALID_RESPONSE', `HighLevel's answer to the ${what} request ${problem}`, {
    upstreamStatus: raw.status,
    traceId: traceIdOf(raw, parseJson(raw.body)),
  })
}

/** @internal Names the fields a zod error complains about (paths only: values may be secrets). */
export function describeIssues(issues: readonly { path: readonly PropertyKey[]; message: string }[]): string {
  return issues
    .slice(0, 5)
    .map((i) => `${i.path.map(String).join('.') || '(root)'} ${i.message.toLowerCase()}`)
    .join('; ')
}
