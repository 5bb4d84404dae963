/**
 * A whole stack for end-to-end tests: the sandbox (HighLevel's side) and the connector server, both
 * on loopback, wired together like `ghl-connect dev` does, on a fresh SQLite file or PostgreSQL database.
 * Everything the connector logs is captured in `logs` so tests can search it for secrets.
 */
import { createServer } from 'node:net'
import { createServer as createHttpServer } from 'node:http'
import { Writable } from 'node:stream'
import { request } from 'undici'
import { loadConfig, type Config } from '../../src/config.js'
import { createLogger } from '../../src/logger.js'
import { createConnector, type Connector, type ConnectorOptions } from '../../src/connector.js'
import { buildServer } from '../../src/server/app.js'
import type { MarketplaceRouteOptions } from '../../src/server/marketplace-routes.js'
import { startSandbox, type Sandbox, type SandboxOptions } from '../../src/sandbox/index.js'
import { freshDatabase, testKey, type DialectName } from './services.js'

export interface Stack {
  sandbox: Sandbox
  connector: Connector
  config: Config
  /** The connector's base URL. */
  url: string
  apiKey: string
  databaseUrl: string
  /** Every line the connector logged (JSON). */
  logs: string[]
  close(): Promise<void>
}

export interface StackOptions {
  dialect?: DialectName
  env?: Record<string, string>
  sandbox?: SandboxOptions
  background?: boolean
  /** Marketplace routes the server mounts (actions, trigger subscriptions, external auth and billing). */
  marketplace?: MarketplaceRouteOptions
  /** The connector's Marketplace settings (billing, trigger keys). */
  connectorMarketplace?: ConnectorOptions['marketplace']
}

/**
 * A free loopback port, for a server another process will bind (the CLI tests): it may be taken in
 * between, so in-process servers listen on port 0 instead (see {@link startStack}).
 */
export async function freePort(): Promise<number> {
  const srv = createServer()
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
  const port = (srv.address() as { port: number }).port
  await new Promise<void>((resolve) => srv.close(() => resolve()))
  return port
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const sandbox = await startSandbox({ port: 0, ...options.sandbox })
  const db = await freshDatabase(options.dialect ?? 'sqlite')
  // Listen on port 0 first and read the port back: the connector's redirect URI must be known before
  // it is configured, and a port picked and released earlier could be taken by someone else meanwhile.
  const server = createHttpServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  const url = `http://127.0.0.1:${port}`
  const apiKey = `test-api-key-${Math.random().toString(36).slice(2)}xxxxxxxx`
  sandbox.configureApp({ redirectUris: [`${url}/oauth/callback`], webhookUrl: `${url}/webhooks/highlevel` })
  const config = loadConfig({
    env: {
      GHL_CLIENT_ID: sandbox.app.clientId,
      GHL_CLIENT_SECRET: sandbox.app.clientSecret,
      GHL_REDIRECT_URI: `${url}/oauth/callback`,
      GHL_SCOPES: sandbox.app.scopes.join(' '),
      GHL_API_URL: sandbox.url,
      GHL_MARKETPLACE_URL: sandbox.url,
      GHL_ENCRYPTION_KEY: testKey(),
      GHL_CONNECTOR_API_KEY: apiKey,
      GHL_SHARED_SECRET: sandbox.app.sharedSecret,
      GHL_WEBHOOK_ED25519_PUBLIC_KEY: sandbox.publicKeys.ed25519,
      GHL_WEBHOOK_RSA_PUBLIC_KEY: sandbox.publicKeys.rsa,
      GHL_TOKEN_TIMEOUT_MS: '1500',
      GHL_REFRESH_JITTER_MS: '0',
      DATABASE_URL: db.url,
      PORT: String(port),
      LOG_LEVEL: 'debug',
      ...options.env,
    },
  })
  const logs: string[] = []
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean))
      cb()
    },
  })
  const logger = createLogger({ level: 'debug', destination })
  const connector = await createConnector({ config, logger, background: options.background ?? false, marketplace: options.connectorMarketplace })
  const app = await buildServer(connector, { sandboxUrl: sandbox.url, server, marketplace: options.marketplace })
  await app.ready()
  return {
    sandbox,
    connector,
    config,
    url,
    apiKey,
    databaseUrl: db.url,
    logs,
    close: async () => {
      await app.close()
      // Fastify closes only a server it listened on itself.
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await connector.close()
      await sandbox.close()
      await db.cleanup()
    },
  }
}

/** JSON from a sandbox control. */
export async function sandboxJson<T = any>(sandbox: Sandbox, method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<T> {
  const res = await request(`${sandbox.url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.body.text()
  if (res.statusCode >= 400) throw new Error(`sandbox ${method} ${path} → ${res.statusCode}: ${text}`)
  return (text ? JSON.parse(text) : undefined) as T
}

/**
 * Runs the install flow over HTTP without a browser: `/oauth/install` → the sandbox's consent
 * (`POST /_sandbox/authorize`) → the connector's callback. Returns the callback's answer.
 */
export async function installViaHttp(
  stack: Stack,
  target: { locationId?: string; companyId?: string; locationIds?: string[]; webhookTiming?: 'early' | 'after-exchange' | 'none' },
): Promise<{ status: number; html: string; callbackUrl: string }> {
  const start = await request(`${stack.url}/oauth/install`, { method: 'GET' })
  await start.body.dump()
  if (start.statusCode !== 302) throw new Error(`/oauth/install answered ${start.statusCode}`)
  const callbackUrl = await approveAt(stack.sandbox, String(start.headers.location), target)
  const callback = await request(callbackUrl, { method: 'GET' })
  return { status: callback.statusCode, html: await callback.body.text(), callbackUrl }
}

/**
 * A user approving on HighLevel's consent page for an authorize URL the connector made (the sandbox's
 * `POST /_sandbox/authorize` with that URL's client, redirect URI, scopes and state). Returns the
 * callback URL the browser would open next.
 */
export async function approveAt(sandbox: Sandbox, authorizeUrl: string, target: Record<string, unknown>): Promise<string> {
  const authorize = new URL(authorizeUrl)
  const consent = await sandboxJson<{ redirect: string }>(sandbox, 'POST', '/_sandbox/authorize', {
    clientId: authorize.searchParams.get('client_id'),
    redirectUri: authorize.searchParams.get('redirect_uri'),
    scope: authorize.searchParams.get('scope'),
    state: authorize.searchParams.get('state'),
    ...target,
  })
  return consent.redirect
}
