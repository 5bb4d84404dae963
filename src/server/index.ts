/**
 * `ghl-connect/server`: the HTTP server that runs beside an app in any language.
 * @example
 * const connector = await createConnector()
 * const app = await buildServer(connector)
 * await app.listen({ port: 3000 })
 */
export { buildServer, type ServerOptions } from './app.js'
export { escapeHtml } from './html.js'
export { registerMarketplaceRoutes, type MarketplaceRouteOptions } from './marketplace-routes.js'
