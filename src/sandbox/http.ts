/**
 * HTTP helpers of the sandbox: HighLevel's error shapes (common-schemas.json), request counters,
 * faults, and the Bearer guard shared by every endpoint that takes an access token.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { z } from 'zod'
import type { Logger } from '../logger.js'
import type { FaultEndpoint, FaultInjector } from './faults.js'
import type { SandboxRateLimiter } from './rate-limiter.js'
import type { Counter, SandboxStore } from './store.js'
import type { WebhookSender } from './webhooks.js'
import type { TokenRecord } from './types.js'

/** @internal Everything a route needs. */
export interface SandboxContext {
  store: SandboxStore
  webhooks: WebhookSender
  faults: FaultInjector
  limiter: SandboxRateLimiter
  logger: Logger
  /** Writes the state file, when there is one. */
  persist(): void
}

/** API versions the sandbox accepts in the `Version` header. */
export const SUPPORTED_VERSIONS = ['2021-07-28', '2021-04-15']

// --- error bodies (common-schemas.json) -------------------------------------------------------

/** 400 `{statusCode, message}` (BadRequestDTO), plus optional extra fields. */
export function badRequest(reply: FastifyReply, message: string, extra: Record<string, unknown> = {}): FastifyReply {
  return reply.code(400).send({ statusCode: 400, message, ...extra })
}

/** 401 `{statusCode, message, error: 'Unauthorized'}` (UnauthorizedDTO). */
export function unauthorized(reply: FastifyReply, message: string): FastifyReply {
  return reply.code(401).send({ statusCode: 401, message, error: 'Unauthorized' })
}

/** 403 `{statusCode, message, error: 'Forbidden'}`. */
export function forbidden(reply: FastifyReply, message: string): FastifyReply {
  return reply.code(403).send({ statusCode: 403, message, error: 'Forbidden' })
}

/** 404 `{statusCode, message, error: 'Not Found'}`. */
export function notFound(reply: FastifyReply, message: string): FastifyReply {
  return reply.code(404).send({ statusCode: 404, message, error: 'Not Found' })
}

/** 422 `{statusCode, message: [..], error: 'Unprocessable Entity'}` (UnprocessableDTO). */
export function unprocessable(reply: FastifyReply, messages: string[]): FastifyReply {
  return reply.code(422).send({ statusCode: 422, message: messages, error: 'Unprocessable Entity' })
}

/**
 * 400 for a dead, unknown or used code or refresh token. ASSUMPTION about HighLevel's shape: the
 * BadRequestDTO `{statusCode, message}` plus OAuth's (RFC 6749 §5.2) `error: 'invalid_grant'` and
 * `error_description`, so clients keyed on either convention recognise it.
 */
export function invalidGrant(reply: FastifyReply, description: string): FastifyReply {
  return reply
    .code(400)
    .send({ statusCode: 400, message: description, error: 'invalid_grant', error_description: description })
}

/** Turns zod issues into class-validator-like messages ("client_id should not be empty"). */
export function zodMessages(error: z.ZodError, input?: unknown): string[] {
  return error.issues.map((issue) => {
    const path = issue.path.join('.') || 'body'
    let value: unknown = input
    for (const key of issue.path) value = value && typeof value === 'object' ? (value as Record<PropertyKey, unknown>)[key] : undefined
    if (input !== undefined && issue.path.length > 0 && (value === undefined || value === '')) return `${path} should not be empty`
    return `${path}: ${issue.message}`
  })
}

/**
 * A control's JSON body read with `schema`; on a mismatch the 400 (class-validator-like messages) is
 * sent and `undefined` returned: `const b = validBody(req, reply, schema); if (b === undefined) return reply`.
 */
export function validBody<T>(req: FastifyRequest, reply: FastifyReply, schema: z.ZodType<T>): T | undefined {
  const input = bodyOf(req)
  const parsed = schema.safeParse(input)
  if (parsed.success) return parsed.data
  badRequest(reply, zodMessages(parsed.error, input).join('; '))
  return undefined
}

/** Body as a plain object (undefined or a non-object body becomes `{}`). */
export function bodyOf(req: FastifyRequest): Record<string, unknown> {
  const b = req.body
  return b && typeof b === 'object' && !Array.isArray(b) ? (b as Record<string, unknown>) : {}
}

// --- counters ---------------------------------------------------------------------------------

interface CountState {
  counter: Counter & { rateLimited?: number }
  faulted: boolean
}
const counted = new WeakMap<FastifyRequest, CountState>()

/** Counts this request's outcome in `counter` once the answer is sent (2xx ok, 429 rateLimited, else error). */
export function countAs(req: FastifyRequest, counter: Counter & { rateLimited?: number }): void {
  const prev = counted.get(req)
  counted.set(req, { counter, faulted: prev?.faulted ?? false })
}

/** @internal Called from the onResponse hook. */
export function recordOutcome(req: FastifyRequest, statusCode: number): void {
  const state = counted.get(req)
  if (!state) return
  if (statusCode === 429 && state.counter.rateLimited !== undefined) state.counter.rateLimited++
  else if (statusCode >= 200 && statusCode < 300 && !state.faulted) state.counter.ok++
  else state.counter.error++
}

// --- faults -----------------------------------------------------------------------------------

/**
 * Applies the next queued fault of `endpoint`, if any. Returns true when the fault answered.
 * - `error500`: 500 `{statusCode:500, message}`.
 * - `malformed`: 200 with a JSON content type and a truncated, unparsable body.
 * - `hang`: no answer for `hangMs`; then 504 (or 503 if the sandbox is closing).
 */
export async function applyFault(ctx: SandboxContext, endpoint: FaultEndpoint, req: FastifyRequest, reply: FastifyReply): Promise<boolean> {
  const fault = ctx.faults.take(endpoint)
  if (!fault) return false
  ctx.store.stats.faults[endpoint]++
  const state = counted.get(req)
  if (state) state.faulted = true
  else counted.set(req, { counter: { ok: 0, error: 0 }, faulted: true })
  switch (fault.kind) {
    case 'error500':
      reply.code(500).send({ statusCode: 500, message: 'Internal Server Error (sandbox fault)' })
      return true
    case 'malformed':
      reply.code(200).header('content-type', 'application/json; charset=utf-8').send('{"access_token":"trunc')
      return true
    case 'drop':
      // The connection closes without an answer.
      reply.hijack()
      req.raw.socket.destroy()
      return true
    case 'hang': {
      const how = await ctx.faults.hang(fault.hangMs)
      if (how === 'released') reply.code(503).send({ statusCode: 503, message: 'Service Unavailable (sandbox closing)' })
      else reply.code(504).send({ statusCode: 504, message: 'Gateway Timeout (sandbox fault)' })
      return true
    }
  }
}

// --- Bearer guard -----------------------------------------------------------------------------

/** Which tokens an endpoint takes (the securitySchemes of the OpenAPI files). */
export type AccessKind =
  /** `bearer` / `Location-Access`: a Location token or a Location PIT. */
  | 'location'
  /** `Location-Access` or `Agency-Access`: any token; the handler checks the resource. */
  | 'location-or-agency'
  /** `Agency-Access-Only`: an agency (Company) OAuth token, no PIT. */
  | 'agency-only'

/** Options of {@link guard}. */
export interface GuardOptions {
  scope: string
  access: AccessKind
  counter: Counter & { rateLimited: number }
  fault: FaultEndpoint
  /** Accepted `Version` values (default {@link SUPPORTED_VERSIONS}; the v3 OAuth routes take `v3`). */
  versions?: string[]
}

/**
 * The first steps of every Bearer endpoint: find the token → rate limit (headers on every answer; a
 * 429 is not counted) → fault → token validity (401) → suspended location (401/403). Returns the live
 * access token or PIT, or `null` when an error answer was sent. {@link guard} and the spec-driven APIs
 * (`openapi/engine.ts`, which checks `Version`, scopes and token kinds per operation) build on it.
 */
export async function authenticate(
  ctx: SandboxContext,
  req: FastifyRequest,
  reply: FastifyReply,
  opts: Pick<GuardOptions, 'counter' | 'fault'>,
): Promise<TokenRecord | null> {
  countAs(req, opts.counter)
  const header = req.headers.authorization
  const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null
  const found = match ? ctx.store.tokens.get(match[1]!) : undefined
  const token = found && (found.type === 'access' || found.type === 'pit') ? found : undefined

  // Rate limits are per app (client) and resource (location or company). PITs share one budget per
  // resource; requests without a recognisable token share one budget per client IP.
  const key = token
    ? `${token.clientId ?? 'pit'}|${token.locationId ?? token.companyId}`
    : `anonymous|${req.ip}`
  const decision = ctx.limiter.take(key)
  reply.headers(decision.headers)
  if (!decision.allowed) {
    reply.header('retry-after', String(decision.retryAfterSec))
    reply.code(429).send({ statusCode: 429, message: `Too many requests: rate limit exceeded, retry in ${decision.retryAfterSec} s` })
    return null
  }
  if (await applyFault(ctx, opts.fault, req, reply)) return null

  if (!token) {
    unauthorized(reply, 'Invalid JWT')
    return null
  }
  const state = ctx.store.tokenState(token)
  if (state === 'expired') {
    unauthorized(reply, 'Invalid JWT: the access token has expired')
    return null
  }
  if (state !== 'active') {
    unauthorized(reply, 'Invalid JWT')
    return null
  }
  // A suspended location's tokens stay valid (they work again once it is reactivated) but its calls
  // are refused. ASSUMPTION: HighLevel documents "Location is not active" for the refresh
  // (oauth-v3.json, issue #249) but not for API calls; the status is the `suspendedApiStatus` setting.
  if (token.locationId !== null && ctx.store.location(token.locationId)?.suspended) {
    const status = ctx.store.settings.suspendedApiStatus
    reply.code(status).send({ statusCode: status, message: 'Location is not active', error: status === 401 ? 'Unauthorized' : 'Forbidden' })
    return null
  }
  return token
}

/**
 * Authenticates a Bearer request. Order: {@link authenticate} (rate limit, fault, token validity,
 * suspended location) → `Version` (400) → scope (401) → token kind (403). Returns the token, or `null`
 * when an error answer was sent.
 */
export async function guard(ctx: SandboxContext, req: FastifyRequest, reply: FastifyReply, opts: GuardOptions): Promise<TokenRecord | null> {
  const token = await authenticate(ctx, req, reply, opts)
  if (!token) return null
  const versions = opts.versions ?? SUPPORTED_VERSIONS
  const version = req.headers.version
  if (typeof version !== 'string' || version === '') {
    badRequest(reply, 'Version header was not found', { error: 'Bad Request' })
    return null
  }
  if (!versions.includes(version)) {
    badRequest(reply, `Version header ${version} is not supported (expected ${versions.join(' or ')})`, { error: 'Bad Request' })
    return null
  }
  if (!token.scopes.includes(opts.scope)) {
    unauthorized(reply, `The token is not authorized for this scope: ${opts.scope} is required`)
    return null
  }
  if (opts.access === 'location' && token.userType !== 'Location') {
    forbidden(reply, 'This endpoint requires a Sub-Account (Location) access token')
    return null
  }
  if (opts.access === 'agency-only' && (token.userType !== 'Company' || token.type === 'pit')) {
    forbidden(reply, 'This endpoint requires an Agency (Company) OAuth access token')
    return null
  }
  return token
}

/** Escapes text for HTML. */
export function html(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!)
}
