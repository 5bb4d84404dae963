/**
 * The connector's HTTP server (Fastify): routes only, each calling into the library.
 *
 * - `GET /`                 operator page: Install button + installations (never a token)
 * - `GET /oauth/install`    302 to HighLevel's choose-location page with a one-time state
 * - `GET /oauth/callback`   code exchange; success or error page (with a reference id)
 * - `POST <webhookPath>`    signed HighLevel webhooks (raw bytes verified before parsing)
 * - `POST /sso/decrypt`     SSO user context for custom pages / custom JS
 * - `ALL /proxy/locations/:locationId/*`, `ALL /proxy/companies/:companyId/*`
 *                           HighLevel API with the installation's token added (API key required)
 * - `GET /api/installations` the installations as JSON (API key required)
 * - `GET /healthz`
 */
import { randomBytes } from 'node:crypto'
import Fastify, { LogController, type FastifyReply } from 'fastify'
import type { Connector } from '../connector.js'
import { GhlError, HighLevelApiError } from '../errors.js'
import { handleSsoRequest } from '../sso/decrypt.js'
import { errorPage, homePage, installedPage } from './html.js'
import { registerProxy } from './proxy.js'
import { checkApiKey } from './api-key.js'

export interface ServerOptions {
  /** Shown on the page in development (link to the sandbox). */
  sandboxUrl?: string
}

const HTML_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
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
  })

  app.addHook('onResponse', async (req, reply) => {
    log.info({ method: req.method, path: req.url.split('?')[0], status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request')
  })

  app.setErrorHandler(async (err: Error & { statusCode?: number; code?: string }, req, reply) => {
    if (err instanceof GhlError) return reply.code(err.status).send(err.toJSON())
    if (typeof err.statusCode === 'number' && err.statusCode < 500) {
      const code = err.statusCode === 413 && req.url.startsWith(config.webhookPath) ? 'GHL_WEBHOOK_TOO_LARGE' : 'GHL_BAD_REQUEST'
      return reply.code(err.statusCode).send({ code, message: err.message, status: err.statusCode })
    }
    const reference = newReference()
    log.error({ reference, err }, 'unhandled error')
    return reply.code(500).send({ code: 'GHL_INTERNAL', message: `Internal error (reference ${reference})`, status: 500 })
  })

  app.setNotFoundHandler(async (req, reply) =>
    reply.code(404).send({ code: 'GHL_BAD_REQUEST', message: `No route ${req.method} ${req.url.split('?')[0]}`, status: 404 }),
  )

  app.get('/healthz', async () => ({ ok: true }))

  app.get('/', async (req, reply) => {
    if (config.production && !checkApiKey(req, config.connectorApiKey, { basic: true })) {
      return reply
        .code(401)
        .header('www-authenticate', 'Basic realm="ghl-connect", charset="UTF-8"')
        .send({ code: 'GHL_UNAUTHORIZED', message: 'The operator page needs the connector API key (as the Basic auth password)', status: 401 })
    }
    const installations = await connector.installations()
    return reply.headers(HTML_HEADERS).send(homePage({ installations, apiUrl: config.apiUrl, clientId: config.clientId, sandboxUrl: options.sandboxUrl }))
  })

  app.get('/oauth/install', async (req, reply) => {
    const q = req.query as Record<string, unknown>
    const { url } = await connector.startInstall({ loginWindowOpenMode: q.loginWindowOpenMode === 'self' ? 'self' : undefined })
    return reply.header('cache-control', 'no-store').redirect(url, 302)
  })

  app.get('/oauth/callback', async (req, reply) => {
    try {
      const installation = await connector.completeInstall(req.query as Record<string, unknown>)
      log.info({ installationId: installation.id, locationId: installation.locationId, companyId: installation.companyId }, 'installed')
      const { tokens: _t, ...summary } = installation
      return reply.headers(HTML_HEADERS).send(installedPage(summary))
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
      return reply.code(result.status).send(result.body)
    })
  })

  app.post('/sso/decrypt', async (req, reply) => {
    const result = handleSsoRequest(req.body, config.sharedSecret)
    return reply.code(result.status).header('cache-control', 'no-store').send(result.body)
  })

  app.get('/api/installations', async (req, reply) => {
    if (!checkApiKey(req, config.connectorApiKey)) return unauthorized(reply)
    return { installations: await connector.installations() }
  })

  await app.register(async (scope) => registerProxy(scope, connector))

  return app
}

function unauthorized(reply: FastifyReply): FastifyReply {
  return reply.code(401).send({ code: 'GHL_UNAUTHORIZED', message: 'Missing or wrong connector API key (send it as "Authorization: Bearer <key>" or "x-connector-key")', status: 401 })
}

function newReference(): string {
  return randomBytes(6).toString('hex')
}

const INSTALL_TITLES: Partial<Record<string, string>> = {
  GHL_OAUTH_DENIED: 'Installation declined',
  GHL_OAUTH_STATE_INVALID: 'Installation link expired or invalid',
  GHL_OAUTH_CODE_MISSING: 'Installation incomplete',
}

function sendInstallError(reply: FastifyReply, err: unknown, log: Connector['logger']): FastifyReply {
  const reference = newReference()
  const ghl = err instanceof GhlError ? err : undefined
  const code = ghl?.code ?? 'GHL_INTERNAL'
  const status = ghl ? (ghl.status >= 500 ? 502 : ghl.status) : 500
  // The operator finds the cause under this reference; the user sees a plain explanation.
  // A user who declines, or an expired or replayed link, is an ordinary outcome: one info line, no stack.
  if (code === 'GHL_OAUTH_DENIED' || code === 'GHL_OAUTH_STATE_INVALID') log.info({ reference, code }, `install not completed: ${ghl!.message}`)
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

