/**
 * Serves every v2 operation of HighLevel's OpenAPI files from the spec artifact. Each request runs:
 *
 * 1. route: method + raw path → operation (unknown → 404 `Cannot GET /x`, as HighLevel's Nest router);
 * 2. {@link authenticate}: rate limit (headers on every answer) → fault → token (401);
 * 3. `Version` (400; see {@link VersionCheck});
 * 4. scopes, then token kind, from the operation's `security` (401, HighLevel's messages);
 * 5. path, query, header and body against the documented schemas (422 naming each failing field);
 * 6. resource: a `locationId`/`companyId` the request names must be the token's (403);
 * 7. a stateful handler (`resources/`) or a schema-valid answer derived from the request; either is
 *    conformed to the documented 2xx schema;
 * 8. the webhooks the change causes, after the answer.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { authenticate, badRequest, unauthorized, unprocessable, forbidden, type SandboxContext } from '../http.js'
import { ApiFailure, Collections, type Handler, type HandlerInput, type HandlerResult, type ResourceEvent } from '../resources/context.js'
import { ResourceEvents } from '../resources/events.js'
import type { SandboxStore } from '../store.js'
import type { TokenRecord, VersionCheck } from '../types.js'
import { conform, generate, type GenContext } from './data.js'
import { loadSpec, OperationRouter, type Operation, type SecurityScheme } from './spec.js'
import { checkBody, checkParams } from './validator.js'

/** API versions HighLevel publishes (marketplace.gohighlevel.com/docs/Versioning); all are accepted on every v2 operation. */
export const PUBLISHED_VERSIONS = ['2021-04-15', '2021-07-28', '2023-02-21', 'v3']

type TokenKind = 'location' | 'location-pit' | 'agency' | 'agency-pit'

/** Which tokens each security scheme admits (the schemes' descriptions in the OpenAPI files). */
const ADMITS: Record<SecurityScheme, readonly TokenKind[]> = {
  bearer: ['location', 'location-pit'],
  'Location-Access': ['location', 'location-pit'],
  'Location-Access-Only': ['location'],
  'Agency-Access': ['agency', 'agency-pit'],
  'Agency-Access-Only': ['agency'],
}

/** HighLevel's answer to an OAuth token of the wrong class (sub-account vs agency). */
export const AUTH_CLASS_MESSAGE = 'This authClass type is not allowed to access this scope. Please verify your IAM configuration if this is not the case.'
/** HighLevel's answer to a Private Integration Token of the wrong user type. */
export const USER_TYPE_MESSAGE = "Token's user type mismatch!"

function kindOf(token: TokenRecord): TokenKind {
  const pit = token.type === 'pit'
  if (token.userType === 'Location') return pit ? 'location-pit' : 'location'
  return pit ? 'agency-pit' : 'agency'
}

/** The `Version` problem of a request, or null. Operations that declare no `Version` take any or none. */
export function versionProblem(op: Operation, header: unknown, mode: VersionCheck): string | null {
  if (op.versions.length === 0) return null
  if (typeof header !== 'string' || header === '') return 'Version header was not found'
  const accepted = mode === 'operation' ? op.versions : PUBLISHED_VERSIONS
  return accepted.includes(header) ? null : `Version header ${header} is not supported (expected ${accepted.join(' or ')})`
}

/**
 * Scopes first, then the token's kind (HighLevel answers a token lacking the scope with the scope
 * message even when its kind is wrong too). Returns the 401 message, or null when admitted.
 */
export function accessProblem(op: Operation, token: TokenRecord): string | null {
  if (op.security.length === 0) return null
  const kind = kindOf(token)
  const holds = (alt: Operation['security'][number]): boolean => alt.scopes.every((s) => token.scopes.includes(s))
  const fitting = op.security.filter((alt) => ADMITS[alt.scheme].includes(kind))
  if (fitting.some(holds)) return null
  if (fitting.length > 0 || !op.security.some(holds)) {
    const alt = fitting[0] ?? op.security[0]!
    const missing = alt.scopes.find((s) => !token.scopes.includes(s))
    return `The token is not authorized for this scope: ${missing} is required`
  }
  if (token.type === 'pit') {
    // A PIT of the right user type on an OAuth-only operation is the wrong class; of the other user type, a mismatch.
    const sameUser = op.security.some((alt) => ADMITS[alt.scheme].includes(token.userType === 'Location' ? 'location' : 'agency'))
    return sameUser ? AUTH_CLASS_MESSAGE : USER_TYPE_MESSAGE
  }
  return AUTH_CLASS_MESSAGE
}

/** The 403 of a request naming a location or company the token may not act on, or null. */
export function resourceProblem(store: SandboxStore, token: TokenRecord, sources: ReadonlyArray<Record<string, unknown>>): string | null {
  for (const src of sources) {
    const locations = [src.locationId, src.location_id, src.altType === 'location' ? src.altId : undefined]
    for (const id of locations) {
      if (typeof id !== 'string' || id === '') continue
      const ok = token.userType === 'Location' ? token.locationId === id : store.location(id)?.companyId === token.companyId
      if (!ok) return 'The token does not have access to this location'
    }
    const company = src.companyId
    if (typeof company === 'string' && company !== '' && company !== token.companyId) return 'The token does not have access to this company'
  }
  return null
}

const NUMBER_KEYS = ['limit', 'pageLimit', 'pageSize', 'perPage'] as const
const PAGING = new Set([...NUMBER_KEYS, 'skip', 'offset', 'page', 'startAfter', 'startAfterId'])

/** What a generated answer derives from: the request's values, its pagination, a seed. */
function genContext(store: SandboxStore, token: TokenRecord, seed: string, sources: ReadonlyArray<Record<string, unknown>>, path: Record<string, string>, op: Operation): GenContext {
  const hints = new Map<string, unknown>()
  if (token.locationId) hints.set('locationId', token.locationId)
  hints.set('companyId', token.companyId)
  for (const src of sources) for (const [k, v] of Object.entries(src)) if (v !== undefined && v !== null) hints.set(k, v)
  // The last path parameter names the answer's own object: echo it as its id.
  const names = [...op.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!)
  const last = names[names.length - 1]
  if (last && (last === 'id' || /Id$/.test(last)) && path[last] !== undefined) {
    hints.set('id', path[last])
    hints.set('_id', path[last])
  }
  const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'string' && Number.isFinite(Number(v)) && v !== '' ? Number(v) : undefined)
  let limit = 20
  let offset = 0
  for (const src of sources) {
    for (const k of NUMBER_KEYS) if (num(src[k]) !== undefined) limit = num(src[k])!
    const skip = num(src.skip) ?? num(src.offset)
    if (skip !== undefined) offset = skip
    else if (num(src.page) !== undefined) offset = (Math.max(1, num(src.page)!) - 1) * limit
  }
  limit = Math.max(0, Math.min(Math.floor(limit), 100))
  // Generated dates count back from the start of the day, so the same request answers the same data all day.
  const day = Math.floor(store.now() / 86_400_000) * 86_400_000
  return { seed, hints, now: day, page: { limit, offset: Math.max(0, Math.floor(offset)), total: 3 } }
}

/** A schema-valid answer for an operation without a stateful handler. */
function generatedAnswer(op: Operation, gen: GenContext): HandlerResult {
  if (op.response.schema === null) return { body: op.response.status === 204 ? undefined : {} }
  return { body: generate(op.response.schema, gen) }
}

/** Parses a multipart body with the platform's own parser (undici's `Response.formData`): fields as strings, files as their names. */
async function parseMultipart(req: FastifyRequest, body: Buffer): Promise<Record<string, unknown>> {
  const form = await new Response(body, { headers: { 'content-type': String(req.headers['content-type']) } }).formData()
  const out: Record<string, unknown> = {}
  for (const [key, value] of form.entries()) {
    const v = typeof value === 'string' ? value : value.name
    const prev = out[key]
    out[key] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v]
  }
  return out
}

/**
 * Registers the catch-all route that serves the spec's operations. Routes registered elsewhere
 * (OAuth, `/_sandbox/*`) are more specific and win.
 */
export function registerOperations(app: FastifyInstance, ctx: SandboxContext, handlers: ReadonlyMap<string, Handler>): void {
  const spec = loadSpec()
  const known = new Set(spec.operations.map((o) => o.id))
  for (const id of handlers.keys()) if (!known.has(id)) throw new Error(`sandbox handler for unknown operation ${id}`)
  const router = new OperationRouter(spec.operations)
  const events = new ResourceEvents(ctx)
  const data = new Collections(ctx.store)
  let sequence = 0

  app.register(async (scope) => {
    const json = scope.getDefaultJsonParser('error', 'ignore')
    scope.removeContentTypeParser('application/json')
    // An empty JSON body (clients send the content type on DELETE without a body) is no body.
    scope.addContentTypeParser('application/json', { parseAs: 'string' }, (req, text, done) => {
      if (text === '' || (typeof text === 'string' && text.trim() === '')) done(null, undefined)
      else json(req, text as string, done)
    })
    scope.addContentTypeParser('multipart/form-data', { parseAs: 'buffer' }, async (req: FastifyRequest, body: Buffer) => parseMultipart(req, body))

    scope.all('/*', async (req: FastifyRequest, reply: FastifyReply) => {
      const q = req.url.indexOf('?')
      const rawPath = q >= 0 ? req.url.slice(0, q) : req.url
      const match = router.match(req.method, rawPath)
      if (!match) return reply.code(404).send({ statusCode: 404, message: `Cannot ${req.method} ${rawPath}`, error: 'Not Found' })
      const { op, params } = match
      const store = ctx.store

      const token = await authenticate(ctx, req, reply, { counter: store.stats.api, fault: 'api' })
      if (!token) return reply
      const version = versionProblem(op, req.headers.version, store.settings.versionCheck)
      if (version) return badRequest(reply, version, { error: 'Bad Request' })
      const access = accessProblem(op, token)
      if (access) return unauthorized(reply, access)

      const query: Record<string, unknown> = { ...(req.query as Record<string, unknown>) }
      const headers: Record<string, unknown> = { ...req.headers }
      const checked = checkParams(op, params, query, headers)
      if (!checked.ok) return unprocessable(reply, checked.messages)
      let body: unknown = req.body
      if (op.body) {
        // No body is validated as `{}` (class-validator's view of it): each missing required field is named.
        body ??= {}
        const b = checkBody(op, body)
        if (!b.ok) return unprocessable(reply, b.messages)
      }
      const bodyObject = body && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : {}
      const denied = resourceProblem(store, token, [params, query, bodyObject])
      if (denied) return forbidden(reply, denied)

      const write = req.method !== 'GET'
      // The seed leaves pagination out, so every page of a generated list agrees with the others.
      const stable = Object.entries(query).filter(([k]) => !PAGING.has(k)).sort(([a], [b]) => a.localeCompare(b))
      const seed = `${op.id}|${rawPath}|${JSON.stringify(stable)}${write ? `|${++sequence}` : ''}`
      const gen = genContext(store, token, seed, [params, query, bodyObject], params, op)
      const handler = handlers.get(op.id)
      const emitted: ResourceEvent[] = []
      let result: HandlerResult
      try {
        if (handler) {
          const fault = (endpoint: Parameters<HandlerInput['fault']>[0]) => {
            const f = ctx.faults.take(endpoint)
            if (f) store.stats.faults[endpoint]++
            return f
          }
          const input: HandlerInput = { op, token, path: params, query, body: bodyObject, store, data, emit: (e) => emitted.push(e), fault }
          result = handler(input)
        } else result = generatedAnswer(op, gen)
      } catch (err) {
        if (err instanceof ApiFailure) return reply.code(err.status).send(err.body)
        throw err
      }
      const status = result.status ?? op.response.status
      let out = result.body
      if (op.response.schema !== null && status >= 200 && status < 300) out = conform(op.response.schema, out, gen)
      if (handler && write) ctx.persist()
      events.dispatch(emitted)
      if (result.drop) {
        // The answer is lost: the change stays, the client sees the connection close.
        reply.hijack()
        req.raw.socket.destroy()
        return reply
      }
      if (status === 204 || out === undefined) return reply.code(status).send()
      return reply.code(status).send(out)
    })
  })
}
