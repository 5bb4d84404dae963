/**
 * The connector's routes as a Fastify plugin, for an app's own Fastify server (and the one
 * `ghl-connect serve` runs). The routes are registered in an encapsulated scope whose bodies are taken
 * as raw bytes (webhook signatures are checked over them), so the app's own parsers and routes are
 * left as they are.
 *
 * @example
 * import Fastify from 'fastify'
 * import { createConnector } from 'ghl-connect'
 * import { ghlConnectFastify } from 'ghl-connect/fastify'
 *
 * const ghl = await createConnector()
 * const app = Fastify()
 * await app.register(ghlConnectFastify, { connector: ghl, prefix: '/ghl', afterInstall: (i) => `/app/${i.locationId}` })
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Connector } from '../connector.js'
import { connectorRoutes, type ConnectorRouteOptions } from './connector-routes.js'
import { errorResponse, responseFromError, splitTarget, type HttpResponse } from './http-exchange.js'
import { DEFAULT_MAX_BODY_BYTES, type Route, type RouteTable } from './route-table.js'

/** Options of {@link ghlConnectFastify}: the connector, and which routes (see {@link ConnectorRouteOptions}). */
export interface FastifyAdapterOptions extends ConnectorRouteOptions {
  connector: Connector
}

/**
 * Fastify plugin: registers the connector's routes (install, callback, re-authorization, webhooks,
 * SSO, and the Marketplace routes the options ask for). Use Fastify's `prefix` to mount them under a path.
 */
export async function ghlConnectFastify(scope: FastifyInstance, options: FastifyAdapterOptions): Promise<void> {
  const { connector, ...routeOptions } = options
  mountRouteTable(scope, connectorRoutes(connector, routeOptions), connector.logger)
}

/** Registers every route of a table on an encapsulated Fastify scope (see the file comment). */
export function mountRouteTable(scope: FastifyInstance, table: RouteTable, logger: Connector['logger']): void {
  const largest = Math.max(DEFAULT_MAX_BODY_BYTES, ...table.routes.map((r) => r.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES))
  scope.removeAllContentTypeParsers()
  scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: largest }, (_req, body, done) => done(null, body))
  // Fastify's own refusals in this scope (a body over the route's limit, …) get the one error body.
  scope.setErrorHandler(async (err: FastifyError, req, reply) => {
    const route = routeOf(req)
    if (err.statusCode === 413 && route) return send(reply, table.tooLarge(route))
    if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      return send(reply, errorResponse(err.statusCode === 404 ? 'GHL_NOT_FOUND' : 'GHL_BAD_REQUEST', err.message, err.statusCode))
    }
    return send(reply, responseFromError(err, logger))
  })
  for (const route of table.routes) {
    scope.route({
      method: [...route.methods],
      url: route.path,
      bodyLimit: route.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
      config: { ghlRoute: route },
      handler: async (req, reply) => {
        const { path, query } = splitTarget(req.url)
        const answer = await table.run(
          { route, params: (req.params ?? {}) as Record<string, string> },
          { method: req.method, path, query, headers: req.headers, rawBody: Buffer.isBuffer(req.body) ? req.body : undefined },
        )
        return send(reply, answer)
      },
    })
  }
}

function routeOf(req: FastifyRequest): Route | undefined {
  return (req.routeOptions?.config as { ghlRoute?: Route } | undefined)?.ghlRoute
}

function send(reply: FastifyReply, answer: HttpResponse): FastifyReply {
  reply.code(answer.status).headers(answer.headers)
  return answer.body === undefined ? reply.send() : reply.send(answer.body)
}
