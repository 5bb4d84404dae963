/**
 * A framework-neutral request and answer: the Marketplace handlers take the parts of a request they
 * need and give back a status and a JSON body, so Fastify (`src/server`), Express or a fetch handler
 * only translate. Error answers have the server's one shape, `{code, message, status}`.
 */
import { GhlError, type ErrorCode } from '../errors.js'
import type { IncomingHeaders } from './static-headers.js'

/** What a handler reads from an HTTP request. */
export interface MarketplaceRequest {
  method: string
  /** Lower-case names, as Node delivers them. */
  headers: IncomingHeaders
  /** Parsed query string (a repeated key: an array). */
  query: Record<string, unknown>
  /** Parsed JSON body (`undefined` when none). */
  body: unknown
}

/** What a handler answers. */
export interface MarketplaceAnswer {
  status: number
  body?: unknown
  /** Extra headers (e.g. `location` of a redirect, `content-type` of a page). */
  headers?: Record<string, string>
}

/** The one error body: `{code, message, status}`. */
export function errorAnswer(code: ErrorCode, message: string, status?: number): MarketplaceAnswer {
  const s = status ?? new GhlError(code).status
  return { status: s, body: { code, message, status: s } }
}

/** A GhlError as an answer (its status and message; never its cause). */
export function answerFromError(err: GhlError): MarketplaceAnswer {
  return errorAnswer(err.code, err.message, err.status)
}
