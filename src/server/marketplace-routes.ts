/**
 * The routes HighLevel calls for the app's Marketplace features, on Fastify. Each route only
 * translates: the parsing, the checks and the answers are the library's framework-neutral handlers
 * (`src/marketplace`), which other adapters (Express, fetch) can mount the same way.
 *
 * - `POST /actions/:key`            a workflow action (static headers; the app's handler; its outputs)
 * - `POST /triggers/subscription`   a workflow subscribes to / unsubscribes from a trigger (static headers)
 * - `GET|POST|PUT|PATCH /external-auth`  external authentication validates a third-party credential
 * - `GET /billing/start`            HighLevel's redirect to the billing URL (external billing)
 *
 * Paths are options. Nothing here logs a request body or query: they carry credentials and people's data.
 *
 * @example
 * const app = await buildServer(ghl, { marketplace: { actions, triggers: { headers: { 'x-app-secret': S } } } })
 * // or, on an app's own Fastify instance:
 * await registerMarketplaceRoutes(app, ghl, { actions })
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Connector } from '../connector.js'
import { GhlError } from '../errors.js'
import { handleBillingRedirect, type BillingStep } from '../marketplace/billing/external-billing.js'
import type { MarketplaceAnswer, MarketplaceRequest } from '../marketplace/exchange.js'
import { ExternalAuthEndpoint, type ExternalAuthOptions } from '../marketplace/external-auth.js'
import { StaticHeaders } from '../marketplace/static-headers.js'
import type { WorkflowActions } from '../marketplace/workflows/workflow-actions.js'
import { handleTriggerSubscription } from '../marketplace/workflows/workflow-triggers.js'

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

/**
 * Registers the Marketplace routes the options ask for.
 * @throws GhlError `GHL_CONFIG_INVALID` for bad options (e.g. trigger headers without a secret).
 */
export async function registerMarketplaceRoutes(app: FastifyInstance, connector: Connector, options: MarketplaceRouteOptions): Promise<void> {
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

  if (options.actions) {
    const actions = options.actions
    app.post(`${actionsPath}/:key`, async (req, reply) => send(reply, await actions.handle(connector, (req.params as { key: string }).key, exchange(req))))
  }
  if (triggerHeaders) {
    app.post(triggersPath, async (req, reply) => send(reply, await handleTriggerSubscription(connector.triggers, triggerHeaders, exchange(req))))
  }
  if (externalAuth) {
    app.route({
      method: ['GET', 'POST', 'PUT', 'PATCH'],
      url: authPath,
      handler: async (req, reply) => send(reply, await externalAuth.handle({ clientId: config.clientId, vault: connector.vault, logger }, exchange(req))),
    })
  }
  if (options.externalBilling) {
    const step = options.externalBilling.onBilling
    app.get(billingPath, async (req, reply) => {
      const answer = await handleBillingRedirect(connector.externalBilling, step, (req.query ?? {}) as Record<string, unknown>)
      return reply.code(answer.status).headers(answer.headers).send(answer.body)
    })
  }
}

/** The parts of a Fastify request the handlers read. */
function exchange(req: FastifyRequest): MarketplaceRequest {
  return { method: req.method, headers: req.headers, query: (req.query ?? {}) as Record<string, unknown>, body: req.body }
}

function send(reply: FastifyReply, answer: MarketplaceAnswer): FastifyReply {
  reply.code(answer.status).header('cache-control', 'no-store')
  if (answer.headers) reply.headers(answer.headers)
  return answer.body === undefined ? reply.send() : reply.send(answer.body)
}
