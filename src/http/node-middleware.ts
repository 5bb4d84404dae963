/**
 * The connector's routes as a Node / Express middleware `(req, res, next)`: for an Express (4 or 5)
 * app, Connect, or a plain `node:http` server. A request no route matches goes to `next()` (or is
 * answered 404 without one). Mount it before body parsers such as `express.json()`: webhook signatures
 * are checked over the exact bytes received (a router mounted after one is told so in its 400 answer).
 *
 * @example
 * import express from 'express'
 * import { createConnector } from 'ghl-connect'
 * import { ghlConnectExpress } from 'ghl-connect/express'
 *
 * const ghl = await createConnector()
 * const app = express()
 * app.use(ghlConnectExpress(ghl, { afterInstall: (i) => `/contacts?locationId=${i.locationId}` }))
 * app.use(express.json())   // the app's own routes after it
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Connector } from '../connector.js'
import { connectorRoutes, type ConnectorRouteOptions } from './connector-routes.js'
import { errorResponse, splitTarget, type HttpResponse } from './http-exchange.js'
import { DEFAULT_MAX_BODY_BYTES, type RouteTable } from './route-table.js'

/** A Node / Express middleware. */
export type NodeMiddleware = (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void

/**
 * The connector's routes as an Express (or Node) middleware. Mounted under a path
 * (`app.use('/ghl', …)`), its routes are relative to that path.
 *
 * @throws GhlError `GHL_CONFIG_INVALID` for bad route options.
 */
export function ghlConnectExpress(connector: Connector, options: ConnectorRouteOptions = {}): NodeMiddleware {
  return nodeMiddleware(connectorRoutes(connector, options))
}

/** A middleware serving any route table. */
export function nodeMiddleware(table: RouteTable): NodeMiddleware {
  return (req, res, next) => {
    const { path, query } = splitTarget(req.url ?? '/')
    const match = table.match(req.method ?? 'GET', path)
    if (!match) {
      if (next) return next()
      return write(res, errorResponse('GHL_NOT_FOUND', `No route ${req.method} ${path}`, 404))
    }
    void (async () => {
      const base = { method: req.method ?? 'GET', path, query, headers: req.headers }
      const route = match.route
      if (route.body === 'none') return write(res, await table.run(match, base))
      const framework = (req as { body?: unknown }).body
      if (Buffer.isBuffer(framework)) return write(res, await table.run(match, { ...base, rawBody: framework }))
      if (framework !== undefined || req.readableEnded) return write(res, await table.run(match, { ...base, parsedBody: framework }))
      const raw = await readBody(req, route.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES)
      if (raw === 'too-large') {
        // The rest of the body is not read: the connection closes once the answer is sent.
        res.setHeader('connection', 'close')
        res.once('finish', () => req.destroy())
        return write(res, table.tooLarge(route))
      }
      return write(res, await table.run(match, { ...base, rawBody: raw }))
    })().catch((err: unknown) => (next ? next(err) : res.destroy(err as Error)))
  }
}

/** Reads a request body up to `max` bytes. */
function readBody(req: IncomingMessage, max: number): Promise<Buffer | 'too-large'> {
  const declared = Number(req.headers['content-length'])
  if (Number.isFinite(declared) && declared > max) return Promise.resolve('too-large')
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size > max) {
        req.off('data', onData)
        req.pause()
        resolve('too-large')
        return
      }
      chunks.push(chunk)
    }
    req.on('data', onData)
    req.once('end', () => resolve(Buffer.concat(chunks)))
    req.once('error', reject)
  })
}

function write(res: ServerResponse, answer: HttpResponse): void {
  res.statusCode = answer.status
  for (const [name, value] of Object.entries(answer.headers)) res.setHeader(name, value)
  if (answer.body !== undefined && !res.hasHeader('content-length')) res.setHeader('content-length', Buffer.byteLength(answer.body))
  res.end(answer.body)
}
