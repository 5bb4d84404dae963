/**
 * `ghl-connect dev` (what `npm start` runs): the sandbox and the connector wired together, on SQLite,
 * with data and generated keys under GHL_DATA_DIR (./data). Logs for people (pino-pretty).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join, resolve } from 'node:path'
import { loadConfig, readEnvFile } from '../../config.js'
import { defineCommand, expectPositionals, UsageError } from '../command.js'
import { print } from '../output.js'

export const devCommand = defineCommand({
  name: 'dev',
  summary: 'Run the connector and a local HighLevel sandbox together (npm start)',
  help: `Usage: ghl-connect dev

Starts the HighLevel sandbox and the connector, wired together, on an embedded SQLite file. Data lives
under GHL_DATA_DIR (./data): the database, the sandbox's state, and a local encryption key and proxy
API key created on first start (mode 0600). Open the printed URL and click Install.

Logs are human-readable, warnings only unless LOG_LEVEL says otherwise (LOG_LEVEL=info shows every
request). Whatever .env says about a real app, the HighLevel side is the sandbox.

Environment: PORT (3000), GHL_SANDBOX_PORT (3100), HOST (127.0.0.1), GHL_DATA_DIR (./data),
GHL_ENCRYPTION_KEY and GHL_CONNECTOR_API_KEY (instead of the generated ones).

Example:
  PORT=4000 GHL_SANDBOX_PORT=4100 ghl-connect dev`,
  options: {},
  async run({ positionals }) {
    expectPositionals('dev', positionals, 0, 0, '')
    const port = Number(process.env.PORT ?? 3000)
    // The redirect URI registered with the sandbox names the port before anything listens.
    if (!Number.isInteger(port) || port <= 0) throw new UsageError(`PORT must be a fixed port number (the redirect URI names it), not ${JSON.stringify(process.env.PORT)}`, 'dev')
    const { humanLogger } = await import('../cli-logger.js')
    const { startSandbox } = await import('../../sandbox/index.js')
    const { runConnector } = await import('../run-connector.js')
    const logger = await humanLogger(process.env.LOG_LEVEL ?? 'warn', 1)
    const dataDir = resolve(process.env.GHL_DATA_DIR ?? './data')
    mkdirSync(dataDir, { recursive: true })
    const fromEnv = { ...readEnvFile('.env'), ...process.env }
    const key = fromEnv.GHL_ENCRYPTION_KEY ?? readOrCreateSecret(join(dataDir, 'encryption.key'), () => randomBytes(32).toString('base64'), 'encryption key', 'Keep it: the stored tokens cannot be read without it.')
    const apiKey = fromEnv.GHL_CONNECTOR_API_KEY ?? readOrCreateSecret(join(dataDir, 'connector-api.key'), () => randomBytes(24).toString('base64url'), 'connector API key', 'Send it as "Authorization: Bearer <key>" to the proxy.')
    const sandboxPort = Number(process.env.GHL_SANDBOX_PORT ?? 3100)
    const host = process.env.HOST ?? '127.0.0.1'
    const sb = await startSandbox({ port: sandboxPort, host, statePath: join(dataDir, 'sandbox.json'), logger: logger.child({ component: 'sandbox' }) })
    const redirectUri = `http://${host}:${port}/oauth/callback`
    const webhookPath = process.env.GHL_WEBHOOK_PATH ?? '/webhooks/highlevel'
    sb.configureApp({ redirectUris: [...new Set([...sb.app.redirectUris, redirectUri])], webhookUrl: `http://${host}:${port}${webhookPath}` })
    // In dev the HighLevel side is the sandbox, whatever .env says about a real app.
    const config = loadConfig({
      overrides: {
        GHL_CLIENT_ID: sb.app.clientId,
        GHL_CLIENT_SECRET: sb.app.clientSecret,
        GHL_REDIRECT_URI: redirectUri,
        GHL_SCOPES: sb.app.scopes.join(' '),
        GHL_API_URL: sb.url,
        GHL_MARKETPLACE_URL: sb.url,
        GHL_WEBHOOK_ED25519_PUBLIC_KEY: sb.publicKeys.ed25519,
        GHL_WEBHOOK_RSA_PUBLIC_KEY: sb.publicKeys.rsa,
        GHL_SHARED_SECRET: sb.app.sharedSecret,
        GHL_ENCRYPTION_KEY: key,
        GHL_CONNECTOR_API_KEY: apiKey,
        GHL_DATA_DIR: dataDir,
        PORT: String(port),
        HOST: host,
      },
    })
    return runConnector(config, logger, {
      sandboxUrl: sb.url,
      onClose: () => sb.close(),
      onListening: (url) => {
        print(
          '',
          `  ghl-connect is running.  Open:  ${url}`,
          '',
          `  HighLevel sandbox:  ${sb.url}   (app client id ${sb.app.clientId}, client secret ${sb.app.clientSecret})`,
          `  Database:           ${config.databaseUrl}`,
          `  Proxy API key:      stored in ${join(dataDir, 'connector-api.key')}`,
          `  Logs:               ${process.env.LOG_LEVEL ? `level ${process.env.LOG_LEVEL}` : 'warnings only; LOG_LEVEL=info shows every request'}`,
          '',
        )
      },
    })
  },
})

/** Reads a secret file, or creates it with mode 0600 and says so. */
function readOrCreateSecret(path: string, make: () => string, what: string, why: string): string {
  if (existsSync(path)) return readFileSync(path, 'utf8').trim()
  const value = make()
  writeFileSync(path, `${value}\n`, { mode: 0o600 })
  chmodSync(path, 0o600)
  print(`Created a local ${what} at ${path} (mode 0600). ${why}`)
  return value
}
