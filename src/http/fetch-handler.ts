/**
 * The connector's routes as a standard fetch handler `(Request) => Promise<Response>`: Hono, Next.js
 * route handlers (App Router), Bun.serve, Deno.serve, Cloudflare-style runtimes with Node APIs.
 *
 * @example
 * // Next.js: app/ghl/[...path]/route.ts
 * import { createFetchHandler } from 'ghl-connect/fetch'
 * const handler = createFetchHandler(await getConnector(), { basePath: '/ghl' })
 * export { handler as GET, handler as POST, handler as PUT, handler as PATCH }
 *
 * // Hono
 * app.all('/ghl/*', (c) => handler(c.req.raw))
 */
import type { Connector } from '../connector.js'
import { connectorRoutes, type ConnectorRouteOptions } from './connector-routes.js'
import { errorResponse, parseQuery, type HttpResponse } from './http-exchange.js'
import { DEFAULT_MAX_BODY_BYTES, type RouteTable } from './route-table.js'

/** Options of {@link createFetchHandler}. */
export interface FetchHandlerOptions extends ConnectorRouteOptions {
  /** The path the routes are mounted under (e.g. `/ghl` or `/api/ghl`); stripped before matching. */
  basePath?: string
}

/** A standard fetch handler. */
export type FetchHandler = (request: Request) => Promise<Response>

/**
 * The connector's routes as a fetch handler. A request no route matches is answered 404 with the one
 * error body. Never throws.
 *
 * @throws GhlError `GHL_CONFIG_INVALID` (when created) for bad route options.
 */
export function createFetchHandler(connector: Connector, options: FetchHandlerOptions = {}): FetchHandler {
  const { basePath, ...routeOptions } = options
  return fetchHandler(connectorRoutes(connector, routeOptions), basePath)
}

/** A fetch handler serving any route table under `basePath`. */
export function fetchHandler(table: RouteTable, basePath = ''): FetchHandler {
  const base = basePath.replace(/\/+$/, '')
  return async (request) => {
    const url = new URL(request.url)
    const path = base === '' ? url.pathname : url.pathname === base ? '/' : url.pathname.startsWith(`${base}/`) ? url.pathname.slice(base.length) : undefined
    const match = path === undefined ? undefined : table.match(request.method, path)
    if (!match || path === undefined) return toResponse(errorResponse('GHL_NOT_FOUND', `No route ${request.method} ${url.pathname}`, 404), request.method)
    const headers: Record<string, string> = {}
    request.headers.forEach((value, name) => {
      headers[name] = value
    })
    const req = { method: request.method, path, query: parseQuery(url.search), headers }
    if (match.route.body === 'none') return toResponse(await table.run(match, req), request.method)
    const raw = await readBody(request, match.route.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES)
    if (raw === 'too-large') return toResponse(table.tooLarge(match.route), request.method)
    return toResponse(await table.run(match, { ...req, rawBody: raw }), request.method)
  }
}

/** Reads a request body up to `max` bytes (the rest is not read). */
async function readBody(request: Request, max: number): Promise<Buffer | 'too-large'> {
  const declared = Number(request.headers.get('content-length'))
  if (Number.isFinite(declared) && declared > max) return 'too-large'
  if (!request.body) return Buffer.alloc(0)
  const reader = request.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > max) {
      await reader.cancel().catch(() => undefined)
      return 'too-large'
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks)
}

function toResponse(answer: HttpResponse, method: string): Response {
  const body = answer.body === undefined || method === 'HEAD' || answer.status === 204 || answer.status === 304 ? null : answer.body
  return new Response(typeof body === 'string' || body === null ? body : new Uint8Array(body), { status: answer.status, headers: answer.headers })
}
