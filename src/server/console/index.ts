/**
 * The operator's console on the connector's server: pages, JSON API, `/metrics`, and the counting of
 * server-side errors and webhook requests for the metrics. {@link registerConsole} is called once on
 * the root instance by `buildServer` (after {@link registerOpenApi}, before the other routes' scopes).
 */
import type { AnyFastify } from './openapi.js'
import type { Connector } from '../../connector.js'
import { GhlError } from '../../errors.js'
import { OperatorService } from '../../operator/operator-service.js'
import { registerConsoleApi } from './console-api.js'
import { registerConsolePages } from './console-pages.js'
import { OperatorAuth } from './operator-auth.js'

export { registerOpenApi, registeredRoutes } from './openapi.js'

/** Registers the console's routes and hooks on the root instance. */
export async function registerConsole(app: AnyFastify, connector: Connector, options: { sandboxUrl?: string } = {}): Promise<void> {
  const operator = new OperatorService(connector)
  const auth = new OperatorAuth(connector.config)
  const metrics = connector.metrics
  app.addHook('onError', async (_req, _reply, err) => {
    if (err instanceof GhlError) metrics.error(err.code)
  })
  await app.register(async (scope) => registerConsoleApi(scope, connector, operator))
  await app.register(async (scope) => registerConsolePages(scope, connector, operator, auth, options))
}
