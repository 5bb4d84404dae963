/**
 * The connector's HTTP server (Fastify): routes only, each calling into the library.
 *
 * - `GET /`, `/installations/:id`, `/console/webhooks`, actions, `/api/*`, `GET /metrics`
 *                           the operator console and its JSON API (`console/`; never a token)
 * - `GET /openapi.json`, `GET /docs`  the OpenAPI 3.1 document of these routes, and its reference page
 * - `GET /oauth/install`    302 to HighLevel's choose-location page with a one-time state
 * - `GET /oauth/callback`   code exchange; success or error page (with a reference id)
 * - `GET /oauth/reauthorize/:installationId`  302 to HighLevel's page to authorize that installation again
 * - `POST <webhookPath>`    signed HighLevel webhooks (raw bytes verified before parsing)
 * - `POST /sso/decrypt`     SSO user context for custom pages / custom JS
 * - `ALL /proxy/locations/:locationId/*`, `ALL /proxy/companies/:companyId/*`
 *                           HighLevel API with the installation's token added (API key required)
 * - Marketplace routes, when `marketplace` is given (`marketplace-routes.ts`): `POST /actions/:key`,
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
import { GhlError, HighLevelApiError, type ErrorCode } from '../errors.js'
import { handleSsoRequest } from '../sso/decrypt.js'
import { errorPage, installedPage } from './html.js'
import { registerProxy } from './proxy.js'
import { registerMarketplaceRoutes, type MarketplaceRouteOptions } from './marketplace-routes.js'
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

const HTML_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
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

  app.addHook('onResponse', async (req, reply) => {
    log.info({ method: req.method, path: req.url.split('?')[0], status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request')
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

  app.get('/oauth/install', async (req, reply) => {
    const q = req.query as Record<string, unknown>
    const { url } = await connector.startInstall({ loginWindowOpenMode: q.loginWindowOpenMode === 'self' ? 'self' : undefined })
    return reply.header('cache-control', 'no-store').redirect(url, 302)
  })

  app.get('/oauth/reauthorize/:installationId', async (req, reply) => {
    try {
      const { url } = await connector.startReauthorization((req.params as { installationId: string }).installationId)
      return reply.header('cache-control', 'no-store').redirect(url, 302)
    } catch (err) {
      return sendInstallError(reply, err, log)
    }
  })

  app.get('/oauth/callback', async (req, reply) => {
    try {
      const installation = await connector.completeInstall(req.query as Record<string, unknown>)
      log.info({ installationId: installation.id, locationId: installation.locationId, companyId: installation.companyId }, 'installed')
      return reply.headers(HTML_HEADERS).send(installedPage(installation))
    } catch (err) {
      return sendInstallError(reply, err, log)
    }
  })

  await app.register(async (scope) => {
    // Webhook signatures are checked over the exact bytes received: no JSON parser runs first.
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: config.webhookMaxBytes * 2 }, (_req, body, done) => done(null, body))
    scope.post(config.webhookPath, async (req, reply) => {
      const rawBody = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0)
      const result = await connector.webhooks.receive({ rawBody, headers: req.headers })
      return reply
        .code(result.status)
        .headers(result.headers ?? {})
        .send(result.body)
    })
  })

  app.post('/sso/decrypt', async (req, reply) => {
    const result = handleSsoRequest(req.body, config.sharedSecret)
    return reply.code(result.status).header('cache-control', 'no-store').send(result.body)
  })

  // The operator console: pages (`GET /`, details, actions, webhook log), `/api/*`, `/metrics`.
  await registerConsole(app, connector, { sandboxUrl: options.sandboxUrl })

  await app.register(async (scope) => registerProxy(scope, connector))

  if (options.marketplace) {
    const marketplace = options.marketplace
    await app.register(async (scope) => registerMarketplaceRoutes(scope, connector, marketplace))
  }

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

const INSTALL_TITLES: Partial<Record<string, string>> = {
  GHL_OAUTH_DENIED: 'Installation declined',
  GHL_OAUTH_STATE_INVALID: 'Installation link expired or invalid',
  GHL_OAUTH_CODE_MISSING: 'Installation incomplete',
  GHL_OAUTH_CODE_REUSED: 'Installation link already used',
  GHL_NOT_INSTALLED: 'Unknown installation',
}

/** Ordinary outcomes of a person's install (declined, an old link): one info line, no stack. */
const ORDINARY_INSTALL_OUTCOMES = new Set<string>(['GHL_OAUTH_DENIED', 'GHL_OAUTH_STATE_INVALID', 'GHL_OAUTH_CODE_MISSING', 'GHL_OAUTH_CODE_REUSED'])

function sendInstallError(reply: FastifyReply, err: unknown, log: Connector['logger']): FastifyReply {
  const reference = newReference()
  const ghl = err instanceof GhlError ? err : undefined
  const code = ghl?.code ?? 'GHL_INTERNAL'
  const status = ghl ? (ghl.status >= 500 ? 502 : ghl.status) : 500
  // The operator finds the cause under this reference; the user sees a plain explanation.
  if (ORDINARY_INSTALL_OUTCOMES.has(code)) log.info({ reference, code }, `install not completed: ${ghl?.message ?? code}`)
  else log[status >= 500 ? 'error' : 'warn']({ reference, code, err }, 'install failed')
  const message = ghl
    ? status >= 500 && !(ghl instanceof HighLevelApiError)
      ? `${ghl.message} Nothing was stored; please try again in a moment.`
      : ghl.message
    : 'Something went wrong while completing the installation. Nothing was stored.'
  return reply
    .code(status)
    .headers(HTML_HEADERS)
    .send(errorPage({ title: INSTALL_TITLES[code] ?? 'Installation failed', message, reference, code }))
}

