/**
 * `ghl-connect serve`: the connector server, configured from the environment and `./.env`.
 */
import { ConfigError, loadConfig, productionIssues } from '../../config.js'
import { defineCommand, expectPositionals } from '../command.js'

export const serveCommand = defineCommand({
  name: 'serve',
  summary: 'Run the connector server (install/callback/webhook routes, proxy, operator page)',
  help: `Usage: ghl-connect serve

Runs the connector server: /oauth/install, /oauth/callback, the webhook route, /sso/decrypt, the proxy
(/proxy/locations/…, /proxy/companies/…), /api/installations and the operator page. Applies pending
database migrations at start. Logs JSON lines on stdout (LOG_LEVEL, default info).

Refuses to start with a bad or missing setting (every problem listed at once): GHL_CLIENT_ID,
GHL_CLIENT_SECRET, GHL_REDIRECT_URI, GHL_SCOPES and GHL_ENCRYPTION_KEY are required. With
NODE_ENV=production also GHL_CONNECTOR_API_KEY and GHL_WEBHOOK_ED25519_PUBLIC_KEY (HighLevel signs
webhooks with Ed25519 only since 2026-07-01), and unsigned webhooks are refused. Stored tokens
encrypted with a key that is not configured stop the start, naming the key ids. On SIGTERM/SIGINT it
stops taking requests, lets refreshes in flight store their rows (GHL_SHUTDOWN_TIMEOUT_MS), then exits.
See README.md, "Configuration".

Example:
  GHL_ENCRYPTION_KEY=$(ghl-connect keys generate) ghl-connect serve`,
  options: {},
  async run({ positionals }) {
    expectPositionals('serve', positionals, 0, 0, '')
    const config = loadConfig()
    // Production needs what the library alone does not: an API key, and HighLevel's Ed25519 webhook key.
    const issues = productionIssues(config)
    if (issues.length > 0) throw new ConfigError(issues)
    const { jsonLogger } = await import('../cli-logger.js')
    const { runConnector } = await import('../run-connector.js')
    return runConnector(config, jsonLogger(config.logLevel))
  },
})
