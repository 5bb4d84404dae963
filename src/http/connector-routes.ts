/**
 * The connector's routes as one framework-neutral {@link RouteTable}: what `ghl-connect serve` mounts
 * on its own Fastify server, and what an app mounts in its own server through an adapter (Fastify
 * plugin, Express / Node middleware, fetch handler). One implementation for all of them.
 *
 * - `GET /oauth/install`                       302 to HighLevel's choose-location page with a one-time state
 * - `GET /oauth/callback`                      code exchange; success page (or the app's redirect) or error page
 * - `GET /oauth/reauthorize/:installationId`   302 to HighLevel's page to authorize that installation again
 * - `POST <GHL_WEBHOOK_PATH>`                  signed HighLevel webhooks (raw bytes verified before parsing)
 * - `POST /sso/decrypt`                        SSO user context for custom pages / custom JS
 * - Marketplace, when asked: `POST /actions/:key`, `POST /triggers/subscription`,
 *   `GET|POST|PUT|PATCH /external-auth`, `GET /billing/start` (paths are options)
 *
 * Paths are relative to where the routes are mounted: an app mounting them under `/ghl` sets
 * `GHL_REDIRECT_URI` to `…/ghl/oauth/callback` and its webhook URL to `…/ghl/webhooks/highlevel`.
 * Nothing here logs a request body or query: they carry codes, credentials and people's data.
 */
import type { Connector } from '../connector.js'
import { GhlError, HighLevelApiError } from '../errors.js'
import { handleBillingRedirect, type BillingStep } from '../marketplace/billing/external-billing.js'
import type { MarketplaceAnswer, MarketplaceRequest } from '../marketplace/exchange.js'
import { ExternalAuthEndpoint, type ExternalAuthOptions } from '../marketplace/external-auth.js'
import { StaticHeaders } from '../marketplace/static-headers.js'
import type { WorkflowActions } from '../marketplace/workflows/workflow-actions.js'
import { handleTriggerSubscription } from '../marketplace/workflows/workflow-triggers.js'
import { errorPage, installedPage } from '../server/html.js'
import { handleSsoRequest } from '../sso/decrypt.js'
import type { InstallationSummary } from '../vault/types.js'
import { json, newReference, type HttpResponse } from './http-exchange.js'
import { RouteTable, type Route, type RouteInput } from './route-table.js'

/** Which Marketplace routes to mount, and their settings. Each part is optional. */
export interface MarketplaceRouteOptions {
  /** The app's workflow actions, at `POST <actionsPath>/:key` (default `/actions`). */
  actions?: WorkflowActions
  actionsPath?: string
  /** The trigger subscription URL: the static headers configured for it in HighLevel. */
  triggers?: { headers: Record<string, string>; path?: string }
  /** External authentication (default path `/external-auth`). */
  externalAuth?: ExternalAuthOptions<any> & { path?: string }
  /** External billing: the app's payment step for HighLevel's redirect (default path `/billing/start`). */
  externalBilling?: { onBilling: BillingStep; path?: string }
}

/** Options of {@link connectorRoutes}. */
export interface ConnectorRouteOptions extends MarketplaceRouteOptions {
  /**
   * Where the browser goes after a successful install (a 302), instead of the connector's "Installed"
   * page: e.g. the app's own page for that location. `undefined` keeps the page.
   */
  afterInstall?: (installation: InstallationSummary) => string | undefined | Promise<string | undefined>
  /**
   * Which groups of routes to mount (default: all). `marketplace` mounts only what the Marketplace
   * options above ask for.
   */
  include?: { oauth?: boolean; webhooks?: boolean; sso?: boolean; marketplace?: boolean }
}

const HTML_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
}

/**
 * The connector's routes for `connector`.
 *
 * @throws GhlError `GHL_CONFIG_INVALID` for bad options (a path that is not one, trigger headers
 *   without a secret, an `onBilling` that is not a function), all named together.
 * @example
 * const table = connectorRoutes(ghl, { actions, afterInstall: (i) => `/app?locationId=${i.locationId}` })
 * const answer = await table.handle({ method: 'GET', path: '/oauth/install', query: {}, headers: {} })
 */
export function connectorRoutes(connector: Connector, options: ConnectorRouteOptions = {}): RouteTable {
  const { config, logger } = connector
  const include = { oauth: true, webhooks: true, sso: true, marketplace: true, ...options.include }
  const routes: Route[] = []

  if (include.oauth) {
    routes.push({
      methods: ['GET'],
      path: '/oauth/install',
      body: 'none',
      handle: async (req) => {
        const { url } = await connector.startInstall({ loginWindowOpenMode: req.query.loginWindowOpenMode === 'self' ? 'self' : undefined })
        return redirect(url)
      },
    })
    routes.push({
      methods: ['GET'],
      path: '/oauth/reauthorize/:installationId',
      body: 'none',
      handle: async (req) => {
        try {
          const { url } = await connector.startReauthorization(req.params.installationId!)
          return redirect(url)
        } catch (err) {
          return installErrorPage(err, logger)
        }
      },
    })
    routes.push({
      methods: ['GET'],
      path: '/oauth/callback',
      body: 'none',
      handle: async (req) => {
        let installation: InstallationSummary
        try {
          installation = await connector.completeInstall(req.query)
        } catch (err) {
          return installErrorPage(err, logger)
        }
        logger.info({ installationId: installation.id, locationId: installation.locationId, companyId: installation.companyId }, 'installed')
        const to = options.afterInstall ? await options.afterInstall(installation) : undefined
        return to === undefined ? { status: 200, headers: { ...HTML_HEADERS }, body: installedPage(installation) } : redirect(to)
      },
    })
  }

  if (include.webhooks) {
    routes.push({
      methods: ['POST'],
      path: config.webhookPath,
      // Webhook signatures are checked over the exact bytes received: no parser runs first. Twice the
      // limit is read so that the receiver itself answers GHL_WEBHOOK_TOO_LARGE for what is between.
      body: 'raw',
      maxBodyBytes: config.webhookMaxBytes * 2,
      tooLargeCode: 'GHL_WEBHOOK_TOO_LARGE',
      handle: async (req) => {
        const result = await connector.webhooks.receive({ rawBody: req.body as Buffer, headers: req.headers }).catch((err: unknown) => {
          connector.metrics.webhookRequest('refused')
          throw err
        })
        connector.metrics.webhookRequest(result.body.duplicate ? 'duplicate' : result.status < 300 ? 'accepted' : 'refused')
        return json(result.status, result.body, result.headers)
      },
    })
  }

  if (include.sso) {
    routes.push({
      methods: ['POST'],
      path: '/sso/decrypt',
      body: 'parsed',
      handle: async (req) => {
        const result = handleSsoRequest(req.body, config.sharedSecret)
        return json(result.status, result.body, { 'cache-control': 'no-store' })
      },
    })
  }

  if (include.marketplace) routes.push(...marketplaceRoutes(connector, options))
  return new RouteTable(routes, logger)
}

/** The Marketplace routes the options ask for (see {@link MarketplaceRouteOptions}). */
function marketplaceRoutes(connector: Connector, options: MarketplaceRouteOptions): Route[] {
  const { config, logger } = connector
  const problems: string[] = []
  const path = (value: string | undefined, fallback: string, name: string): string => {
    const p = value ?? fallback
    if (!/^\/[A-Za-z0-9/_.-]*$/.test(p) || p.includes('//')) problems.push(`expected marketplace.${name} to be a path such as ${fallback}, got ${JSON.stringify(p)}`)
    return p.replace(/\/+$/, '') || '/'
  }
  const actionsPath = path(options.actionsPath, '/actions', 'actionsPath')
  const triggersPath = path(options.triggers?.path, '/triggers/subscription', 'triggers.path')
  const authPath = path(options.externalAuth?.path, '/external-auth', 'externalAuth.path')
  const billingPath = path(options.externalBilling?.path, '/billing/start', 'externalBilling.path')
  if (options.externalBilling && typeof options.externalBilling.onBilling !== 'function') problems.push('expected marketplace.externalBilling.onBilling to be a function')
  if (problems.length > 0) throw new GhlError('GHL_CONFIG_INVALID', `Invalid marketplace routes: ${problems.join('; ')}`)
  const triggerHeaders = options.triggers ? new StaticHeaders(options.triggers.headers, 'marketplace.triggers.headers') : undefined
  const externalAuth = options.externalAuth ? new ExternalAuthEndpoint(options.externalAuth) : undefined

  const routes: Route[] = []
  if (options.actions) {
    const actions = options.actions
    routes.push({
      methods: ['POST'],
      path: `${actionsPath === '/' ? '' : actionsPath}/:key`,
      body: 'parsed',
      handle: async (req) => fromMarketplace(await actions.handle(connector, req.params.key!, exchange(req))),
    })
  }
  if (triggerHeaders) {
    routes.push({
      methods: ['POST'],
      path: triggersPath,
      body: 'parsed',
      handle: async (req) => fromMarketplace(await handleTriggerSubscription(connector.triggers, triggerHeaders, exchange(req))),
    })
  }
  if (externalAuth) {
    routes.push({
      methods: ['GET', 'POST', 'PUT', 'PATCH'],
      path: authPath,
      body: 'parsed',
      handle: async (req) => fromMarketplace(await externalAuth.handle({ clientId: config.clientId, vault: connector.vault, logger }, exchange(req))),
    })
  }
  if (options.externalBilling) {
    const step = options.externalBilling.onBilling
    routes.push({
      methods: ['GET'],
      path: billingPath,
      body: 'none',
      handle: async (req) => {
        const answer = await handleBillingRedirect(connector.externalBilling, step, req.query)
        return { status: answer.status, headers: answer.headers, body: answer.body }
      },
    })
  }
  return routes
}

/** The parts of a request the Marketplace handlers read. */
function exchange(req: RouteInput): MarketplaceRequest {
  return { method: req.method, headers: req.headers, query: req.query, body: req.body }
}

function fromMarketplace(answer: MarketplaceAnswer): HttpResponse {
  return json(answer.status, answer.body, { 'cache-control': 'no-store', ...answer.headers })
}

function redirect(url: string): HttpResponse {
  return { status: 302, headers: { location: url, 'cache-control': 'no-store' } }
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

/** A failed install as a page for the person, with the reference the operator finds in the log. */
function installErrorPage(err: unknown, log: Connector['logger']): HttpResponse {
  const reference = newReference()
  const ghl = err instanceof GhlError ? err : undefined
  const code = ghl?.code ?? 'GHL_INTERNAL'
  const status = ghl ? (ghl.status >= 500 ? 502 : ghl.status) : 500
  if (ORDINARY_INSTALL_OUTCOMES.has(code)) log.info({ reference, code }, `install not completed: ${ghl?.message ?? code}`)
  else log[status >= 500 ? 'error' : 'warn']({ reference, code, err }, 'install failed')
  const message = ghl
    ? status >= 500 && !(ghl instanceof HighLevelApiError)
      ? `${ghl.message} Nothing was stored; please try again in a moment.`
      : ghl.message
    : 'Something went wrong while completing the installation. Nothing was stored.'
  return { status, headers: { ...HTML_HEADERS }, body: errorPage({ title: INSTALL_TITLES[code] ?? 'Installation failed', message, reference, code }) }
}
