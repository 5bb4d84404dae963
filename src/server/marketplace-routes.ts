/**
 * The routes HighLevel calls for the app's Marketplace features, on a Fastify instance. They are part
 * of the connector's route table (`src/http/connector-routes.ts`); this mounts only them.
 *
 * - `POST /actions/:key`            a workflow action (static headers; the app's handler; its outputs)
 * - `POST /triggers/subscription`   a workflow subscribes to / unsubscribes from a trigger (static headers)
 * - `GET|POST|PUT|PATCH /external-auth`  external authentication validates a third-party credential
 * - `GET /billing/start`            HighLevel's redirect to the billing URL (external billing)
 *
 * @example
 * const app = await buildServer(ghl, { marketplace: { actions, triggers: { headers: { 'x-app-secret': S } } } })
 * // or, on an app's own Fastify instance (or through `ghl-connect/fastify`, with every route):
 * await registerMarketplaceRoutes(app, ghl, { actions })
 */
import type { FastifyInstance } from 'fastify'
import type { Connector } from '../connector.js'
import { connectorRoutes, type MarketplaceRouteOptions } from '../http/connector-routes.js'
import { mountRouteTable } from '../http/fastify-plugin.js'

export type { MarketplaceRouteOptions }

/**
 * Registers the Marketplace routes the options ask for, in their own scope.
 * @throws GhlError `GHL_CONFIG_INVALID` for bad options (e.g. trigger headers without a secret).
 */
export async function registerMarketplaceRoutes(app: FastifyInstance, connector: Connector, options: MarketplaceRouteOptions): Promise<void> {
  const table = connectorRoutes(connector, { ...options, include: { oauth: false, webhooks: false, sso: false } })
  await app.register(async (scope) => mountRouteTable(scope, table, connector.logger))
}
