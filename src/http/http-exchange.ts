/**
 * A framework-neutral HTTP request and answer: the connector's routes (`connector-routes.ts`) read an
 * {@link HttpRequest} and give back an {@link HttpResponse}; each adapter (Fastify, Express / Node,
 * fetch) only translates its framework's request and response to these shapes.
 */
import { randomBytes } from 'node:crypto'
import { GhlError, type ErrorCode } from '../errors.js'
import type { Logger } from '../logger.js'

/** Lower-case header names, as Node delivers them. */
export type HttpHeaders = Record<string, string | string[] | undefined>

/** What a route reads from a request. */
export interface HttpRequest {
  method: string
  /** The path relative to where the routes are mounted, without the query string. */
  path: string
  /** The query string, parsed (a repeated key: an array). */
  query: Record<string, string | string[]>
  headers: HttpHeaders
  /** The exact bytes received (always given by the adapters when the framework has not parsed the body). */
  rawBody?: Buffer
  /** A body the app's framework parsed already (e.g. `express.json()` ran first); used when `rawBody` is absent. */
  parsedBody?: unknown
}

/** What a route answers. `body` is sent as is (JSON bodies are already serialised, see {@link json}). */
export interface HttpResponse {
  status: number
  headers: Record<string, string>
  body?: string | Buffer
}

/** A JSON answer. `undefined` sends no body. */
export function json(status: number, value: unknown, headers: Record<string, string> = {}): HttpResponse {
  if (value === undefined) return { status, headers: { ...headers } }
  return { status, headers: { 'content-type': 'application/json; charset=utf-8', ...headers }, body: JSON.stringify(value) }
}

/** The one error body of every route, `{code, message, status}` (+ `retryAfterMs`, also sent as `Retry-After`). */
export function errorResponse(code: ErrorCode, message: string, status: number, retryAfterMs?: number): HttpResponse {
  const headers: Record<string, string> = retryAfterMs === undefined ? {} : { 'retry-after': String(Math.max(1, Math.ceil(retryAfterMs / 1000))) }
  return json(status, retryAfterMs === undefined ? { code, message, status } : { code, message, status, retryAfterMs }, headers)
}

/** A short random id that ties an answer to its log line. */
export function newReference(): string {
  return randomBytes(6).toString('hex')
}

/**
 * The answer for anything a route threw: a {@link GhlError} as its status and message (never its
 * cause); anything else as `500 GHL_INTERNAL` with a reference, logged with its stack.
 */
export function responseFromError(err: unknown, logger: Logger): HttpResponse {
  if (err instanceof GhlError) return errorResponse(err.code, err.message, err.status, err.retryAfterMs)
  const reference = newReference()
  logger.error({ reference, err }, 'unhandled error')
  return errorResponse('GHL_INTERNAL', `Internal error (reference ${reference})`, 500)
}

/** The query string of a URL (`a=1&a=2` → `{a: ['1', '2']}`). */
export function parseQuery(search: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>
  for (const [key, value] of new URLSearchParams(search)) {
    const seen = out[key]
    out[key] = seen === undefined ? value : Array.isArray(seen) ? [...seen, value] : [seen, value]
  }
  return out
}

/** Splits a request target (`/path?x=1`) into its path and parsed query. */
export function splitTarget(target: string): { path: string; query: Record<string, string | string[]> } {
  const q = target.indexOf('?')
  return q < 0 ? { path: target, query: parseQuery('') } : { path: target.slice(0, q), query: parseQuery(target.slice(q + 1)) }
}

/** A refusal while parsing a body: status and message for {@link errorResponse}. */
export class BodyError extends GhlError {
  constructor(status: 400 | 413 | 415, message: string, code: ErrorCode = 'GHL_BAD_REQUEST') {
    super(code, message, { status })
  }
}

/**
 * The body of a route that takes JSON or form fields: `application/json` (keys `__proto__` and
 * `constructor.prototype` refused, as Fastify's own parser does), `application/x-www-form-urlencoded`,
 * `text/plain` (the string), or nothing.
 *
 * @throws BodyError 400 for malformed JSON, 415 for another content type.
 */
export function parseBody(req: HttpRequest): unknown {
  if (!req.rawBody) return req.parsedBody
  const type = String(headerValue(req.headers, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase()
  if (req.rawBody.length === 0) {
    if (type === 'application/json') throw new BodyError(400, "Body cannot be empty when content-type is set to 'application/json'")
    return undefined
  }
  if (type === 'application/json' || type.endsWith('+json')) {
    try {
      return JSON.parse(req.rawBody.toString('utf8'), (key, value: unknown) => {
        if (key === '__proto__' || (key === 'constructor' && value !== null && typeof value === 'object' && 'prototype' in value)) {
          throw new BodyError(400, 'Body contains a forbidden prototype property')
        }
        return value
      })
    } catch (err) {
      if (err instanceof BodyError) throw err
      throw new BodyError(400, `Body is not valid JSON: ${(err as Error).message}`)
    }
  }
  if (type === 'application/x-www-form-urlencoded') return parseQuery(req.rawBody.toString('utf8'))
  // As Fastify's default parser: the text itself (the route then says what it expected).
  if (type === 'text/plain') return req.rawBody.toString('utf8')
  throw new BodyError(415, `Unsupported Media Type: ${type || '(none)'}`)
}

/** One header's value (the first when repeated). */
export function headerValue(headers: HttpHeaders, name: string): string | undefined {
  const v = headers[name]
  return Array.isArray(v) ? v[0] : v
}
