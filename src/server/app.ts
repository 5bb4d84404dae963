/**
 * The connector's HTTP server (Fastify): routes only, each calling into the library.
 *
 * - `GET /`, `/installations/:id`, `/console/webhooks`, actions, `/api/*`, `GET /metrics`
 *                           the operator console and its JSON API (`console/`; never a token)
 * - `GET /openapi.json`, `GET /docs`  the OpenAPI 3.1 document of these routes, and its reference page
 * - the connector's routes (`src/http/connector-routes.ts`, the same table apps mount through an adapter):
 *   `GET /oauth/install`, `GET /oauth/callback`, `GET /oauth/reauthorize/:installationId`,
 *   `POST <webhookPath>`, `POST /sso/decrypt`
 * - `ALL /proxy/locations/:locationId/*`, `ALL /proxy/companies/:companyId/*`
 *                           HighLevel API with the installation's token added (API key required)
 * - Marketplace routes of that table, when `marketplace` is given: `POST /actions/:key`,
 *   `POST /triggers/subscription`, `/external-auth`, `GET /billing/start`
 * - `GET /healthz`          liveness: the process answers
 * - `GET /readyz`           readiness: the database (and Redis) answer, migrations applied; 503 naming what failed
 *
 * Every error answer has one shape, `{code, message, status}` (+ `retryAfterMs` when a retry may work, also
 * sent as `Retry-After`), whatever the route.
 */
import { randomBytes } from 'node:crypto'
import Fastify, { LogController, type FastifyError, type FastifyReply } from 'fastify'
import type { Connector } from '../connector.js'
import { GhlError, type ErrorCode } from '../errors.js'
import { connectorRoutes } from '../http/connector-routes.js'
import { mountRouteTable } from '../http/fastify-plugin.js'
import { registerProxy } from './proxy.js'
import type { MarketplaceRouteOptions } from './marketplace-routes.js'
import { registerConsole, registerOpenApi } from './console/index.js'

export interface ServerOptions {
  /** Shown on the page in development (link to the sandbox). */
  sandboxUrl?: string
  /**
   * Serve on this node HTTP server (already listening, e.g. on port 0 so its port is known before the
   * connector is configured) instead of calling `listen()`: await `app.ready()` after building.
   */
  server?: import('node:http').Server
  /** Marketplace routes to mount (workflow actions, trigger subscriptions, external auth and billing). */
  marketplace?: MarketplaceRouteOptions
}

/** The one error body of every route. */
export function errorBody(code: ErrorCode, message: string, status: number, retryAfterMs?: number) {
  return retryAfterMs === undefined ? { code, message, status } : { code, message, status, retryAfterMs }
}

/** Sends a GhlError as the one error body, with Retry-After when a retry may work. */
export function sendError(reply: FastifyReply, err: GhlError): FastifyReply {
  if (err.retryAfterMs !== undefined) reply.header('retry-after', String(Math.max(1, Math.ceil(err.retryAfterMs / 1000))))
  return reply.code(err.status).send(errorBody(err.code, err.message, err.status, err.retryAfterMs))
}

/** Builds the Fastify app for a connector (not listening yet). */
export async function buildServer(connector: Connector, options: ServerOptions = {}) {
  const { config } = connector
  const log = connector.logger
  const app = Fastify({
    loggerInstance: log,
    // Request URLs carry the OAuth code and state: we log requests ourselves, without query strings.
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: true,
    bodyLimit: 1024 * 1024,
    // A request that arrives while closing gets the one error body (hook below), not Fastify's own 503.
    return503OnClosing: false,
    // A request that never finishes sending must not hold a connection forever.
    requestTimeout: Math.max(config.requestTimeoutMs * 2, 60_000),
    // The router's own refusals (a path that is not valid percent-encoding, a path parameter over
    // `maxParamLength`) get the one error body too: Fastify's default answers them before any error
    // handler runs, in its own shape.
    frameworkErrors: (err, _req, reply) => void sendFrameworkError(reply as FastifyReply, err),
    ...(options.server
      ? {
          serverFactory: (handler: (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void) => {
            options.server!.on('request', handler)
            return options.server!
          },
        }
      : {}),
  })

  // First, so that the OpenAPI document sees every route registered after it.
  await registerOpenApi(app)

  // Shutdown: Fastify closes the connections that are idle when close() starts, but a keep-alive
  // connection whose request was under way would stay open after its answer until the client's
  // keep-alive ends (72 s with Fastify's default), holding the shutdown past its limit. While closing,
  // every answer says `Connection: close`: the server ends that connection after it, and the client
  // knows not to send another request on it (closing idle connections from our side instead races
  // with a client that is just reusing one: its request is cut off unanswered).
  let closing = false
  app.addHook('preClose', async () => {
    closing = true
  })
  // The hooks below run on every request: callback style, not async, so that none costs a promise and
  // a turn of the microtask queue (`npm run bench:proxy`: the proxy's CPU per call).
  app.addHook('onRequest', (_req, reply, done) => {
    if (!closing) return done()
    sendError(reply, new GhlError('GHL_SHUTTING_DOWN', undefined, { retryAfterMs: 1000 }))
  })
  app.addHook('onSend', (_req, reply, payload, done) => {
    if (closing) reply.header('connection', 'close')
    done(null, payload)
  })
  app.addHook('onResponse', (req, reply, done) => {
    const url = req.url
    const q = url.indexOf('?')
    log.info({ method: req.method, path: q < 0 ? url : url.slice(0, q), status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request')
    done()
  })

  app.setErrorHandler(async (err: Error & { statusCode?: number; code?: string }, req, reply) => {
    if (err instanceof GhlError) return sendError(reply, err)
    if (typeof err.statusCode === 'number' && err.statusCode < 500) {
      const code: ErrorCode =
        err.statusCode === 413 && req.url.startsWith(config.webhookPath) ? 'GHL_WEBHOOK_TOO_LARGE' : err.statusCode === 404 ? 'GHL_NOT_FOUND' : 'GHL_BAD_REQUEST'
      return reply.code(err.statusCode).send(errorBody(code, err.message, err.statusCode))
    }
    const reference = newReference()
    log.error({ reference, err }, 'unhandled error')
    return reply.code(500).send(errorBody('GHL_INTERNAL', `Internal error (reference ${reference})`, 500))
  })

  app.setNotFoundHandler(async (req, reply) =>
    reply.code(404).send(errorBody('GHL_NOT_FOUND', `No route ${req.method} ${req.url.split('?')[0]}`, 404)),
  )

  app.get('/healthz', { schema: { summary: 'Liveness: the process answers', tags: ['operations'] } }, async () => ({ ok: true }))

  app.get('/readyz', { schema: { summary: 'Readiness: the database (and Redis) answer, migrations applied; 503 naming what failed', tags: ['operations'] } }, async (_req, reply) => {
    const readiness = await connector.readiness(Math.min(5000, config.database.statementTimeoutMs))
    if (!readiness.ok) reply.code(503).header('retry-after', '5')
    return readiness
  })

  // The operator console: pages (`GET /`, details, actions, webhook log), `/api/*`, `/metrics`.
  await registerConsole(app, connector, { sandboxUrl: options.sandboxUrl })

  await app.register(async (scope) => registerProxy(scope, connector))

  // Install, callback, re-authorization, webhooks, SSO and the Marketplace routes: the same route
  // table an app mounts in its own server through an adapter (src/http).
  const routes = connectorRoutes(connector, options.marketplace ?? {})
  await app.register(async (scope) => mountRouteTable(scope, routes, log))

  return app
}

/** A refusal of Fastify's router (see `frameworkErrors` above) in the one error body. */
function sendFrameworkError(reply: FastifyReply, err: FastifyError): FastifyReply {
  const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500
  if (status === 500) return reply.code(500).send(errorBody('GHL_INTERNAL', 'Internal error', 500))
  const message =
    err.code === 'FST_ERR_BAD_URL'
      ? 'The request path has an invalid percent-encoding'
      : err.code === 'FST_ERR_MAX_PARAM_LENGTH'
        ? 'A path parameter of the request is too long'
        : err.message
  return reply.code(status).send(errorBody('GHL_BAD_REQUEST', message, status))
}

function newReference(): string {
  return randomBytes(6).toString('hex')
}
