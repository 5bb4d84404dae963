/**
 * `ghl-connect/adapters`: the connector's routes (install, callback, re-authorization, webhooks, SSO,
 * workflow actions, triggers, external authentication, the billing URL) mounted in an app's own server.
 * One route table, three adapters: a Fastify plugin, an Express / Node middleware and a fetch handler.
 */
export { connectorRoutes, type ConnectorRouteOptions, type MarketplaceRouteOptions } from './connector-routes.js'
export { RouteTable, type Route, type RouteInput, type RouteMatch } from './route-table.js'
export { json, errorResponse, parseQuery, type HttpHeaders, type HttpRequest, type HttpResponse } from './http-exchange.js'
export { ghlConnectFastify, mountRouteTable, type FastifyAdapterOptions } from './fastify-plugin.js'
export { ghlConnectExpress, nodeMiddleware, type NodeMiddleware } from './node-middleware.js'
export { createFetchHandler, fetchHandler, type FetchHandler, type FetchHandlerOptions } from './fetch-handler.js'
