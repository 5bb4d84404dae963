/**
 * `ghl-connect serve`: the connector server, configured from the environment and `./.env`.
 */
import { loadConfig } from '../../config.js'
import { defineCommand, expectPositionals } from '../command.js'

export const serveCommand = defineCommand({
  name: 'serve',
  summary: 'Run the connector server (install/callback/webhook routes, proxy, operator page)',
  help: `Usage: ghl-connect serve

Runs the connector server: /oauth/install, /oauth/callback, the webhook route, /sso/decrypt, the proxy
(/proxy/locations/…, /proxy/companies/…), /api/installations and the operator page. Applies pending
database migrations at start. Logs JSON lines on stdout (LOG_LEVEL, default info).

Refuses to start with a bad or missing setting (every problem listed at once): GHL_CLIENT_ID,
GHL_CLIENT_SECRET, GHL_REDIRECT_URI, GHL_SCOPES and GHL_ENCRYPTION_KEY are required; unsigned webhooks
are refused when NODE_ENV=production. See README.md, "Configuration".

Example:
  GHL_ENCRYPTION_KEY=$(ghl-connect keys generate) ghl-connect serve`,
  options: {},
  async run({ positionals }) {
    expectPositionals('serve', positionals, 0, 0, '')
    const config = loadConfig()
    const { jsonLogger } = await import('../cli-logger.js')
    const { runConnector } = await import('../run-connector.js')
    return runConnector(config, jsonLogger(config.logLevel))
  },
})
