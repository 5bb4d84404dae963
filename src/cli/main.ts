#!/usr/bin/env node
/**
 * The `ghl-connect` command.
 *
 *   ghl-connect serve            the connector server (production: refuses to start without an encryption key)
 *   ghl-connect dev              the connector + the sandbox, wired together, on SQLite (what `npm start` runs)
 *   ghl-connect sandbox          the sandbox alone (--port N, --seed file.json, --state file.json)
 *   ghl-connect migrate          runs the vault's migrations
 *   ghl-connect keys generate    prints a new encryption key
 *   ghl-connect keys rotate      re-encrypts every stored token with the first configured key
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { loadConfig, productionIssues, readEnvFile, ConfigError, type Config } from '../config.js'
import { createLogger, type Logger } from '../logger.js'
import { createConnector } from '../connector.js'
import { buildServer } from '../server/app.js'
import { createVault } from '../vault/create-vault.js'
import { startSandbox } from '../sandbox/index.js'

const USAGE = `Usage: ghl-connect <command>

Commands:
  serve                 Run the connector server (install/callback/webhook routes, proxy, operator page)
  dev                   Run the connector and a local HighLevel sandbox together (npm start)
  sandbox [--port N] [--seed FILE] [--state FILE]
                        Run the HighLevel sandbox alone
  migrate               Apply the vault's database migrations
  keys generate         Print a new random encryption key (base64, 32 bytes)
  keys rotate           Re-encrypt every stored token with the first key of GHL_ENCRYPTION_KEY

Configuration comes from environment variables and ./.env — see README.md.`

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  // `dev` keeps the terminal to its banner and warnings unless LOG_LEVEL asks for more.
  const logger = createLogger({ level: process.env.LOG_LEVEL ?? (command === 'dev' ? 'warn' : 'info') })
  switch (command) {
    case 'serve':
      return serve(logger)
    case 'dev':
      return dev(logger)
    case 'sandbox':
      return sandbox(rest, logger)
    case 'migrate':
      return migrate(logger)
    case 'keys':
      return keys(rest, logger)
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`)
      return command === undefined ? 1 : 0
    default:
      process.stderr.write(`Unknown command "${command}".\n\n${USAGE}\n`)
      return 1
  }
}

async function serve(logger: Logger): Promise<number> {
  const config = loadConfig()
  const issues = productionIssues(config)
  if (issues.length > 0) throw new ConfigError(issues)
  return runConnector(config, logger)
}

async function runConnector(
  config: Config,
  logger: Logger,
  extra: { sandboxUrl?: string; onListening?: (url: string) => void; onClose?: () => Promise<void> } = {},
): Promise<number> {
  const connector = await createConnector({ config, logger })
  const app = await buildServer(connector, { sandboxUrl: extra.sandboxUrl })
  try {
    await app.listen({ port: config.port, host: config.host })
  } catch (err) {
    // e.g. EADDRINUSE: release everything that was opened so the process ends with the error.
    await app.close()
    await connector.close()
    await extra.onClose?.()
    throw err
  }
  const url = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${config.port}`
  extra.onListening?.(url)
  logger.info({ url, database: connector.vault.dialect, redis: Boolean(config.redisUrl) }, 'ghl-connect listening')
  await onShutdown(async () => {
    await app.close()
    await connector.close()
    await extra.onClose?.()
  })
  return 0
}

/** Development: sandbox + connector, wired together, data under GHL_DATA_DIR (./data). */
async function dev(logger: Logger): Promise<number> {
  const dataDir = resolve(process.env.GHL_DATA_DIR ?? './data')
  mkdirSync(dataDir, { recursive: true })
  const fromEnv = { ...readEnvFile('.env'), ...process.env }
  const key = fromEnv.GHL_ENCRYPTION_KEY ?? readOrCreateSecret(join(dataDir, 'encryption.key'), () => randomBytes(32).toString('base64'), 'encryption key', 'Keep it: the stored tokens cannot be read without it.')
  const apiKey = fromEnv.GHL_CONNECTOR_API_KEY ?? readOrCreateSecret(join(dataDir, 'connector-api.key'), () => randomBytes(24).toString('base64url'), 'connector API key', 'Send it as "Authorization: Bearer <key>" to the proxy.')
  const port = Number(process.env.PORT ?? 3000)
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
      process.stdout.write(
        [
          '',
          `  ghl-connect is running.  Open:  ${url}`,
          '',
          `  HighLevel sandbox:  ${sb.url}   (app client id ${sb.app.clientId}, client secret ${sb.app.clientSecret})`,
          `  Database:           ${config.databaseUrl}`,
          `  Proxy API key:      stored in ${join(dataDir, 'connector-api.key')}`,
          `  Logs:               warnings only; LOG_LEVEL=info shows every request`,
          '',
        ].join('\n') + '\n',
      )
    },
  })
}

async function sandbox(args: string[], logger: Logger): Promise<number> {
  const { values } = parseArgs({ args, options: { port: { type: 'string' }, seed: { type: 'string' }, state: { type: 'string' }, host: { type: 'string' } } })
  const port = Number(values.port ?? process.env.GHL_SANDBOX_PORT ?? 3100)
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`--port: expected an integer from 0 to 65535, got ${JSON.stringify(values.port)}\n`)
    return 1
  }
  const sb = await startSandbox({ port, host: values.host ?? '127.0.0.1', seed: values.seed, statePath: values.state, logger })
  process.stdout.write(
    `HighLevel sandbox listening on ${sb.url}\n  app id        ${sb.app.appId}\n  client id     ${sb.app.clientId}\n  client secret ${sb.app.clientSecret}\n  shared secret ${sb.app.sharedSecret}\n`,
  )
  await onShutdown(() => sb.close())
  return 0
}

async function migrate(logger: Logger): Promise<number> {
  const config = loadConfig({ allowMissingKey: true })
  // Migrations never read or write a token: without a configured key, an ephemeral one satisfies the vault.
  const keys = config.encryptionKeys.length > 0 ? config.encryptionKeys : [{ id: 'migrate-only', key: randomBytes(32) }]
  const vault = await createVault({ databaseUrl: config.databaseUrl, keys, logger, migrate: false })
  await vault.migrate()
  await vault.close()
  logger.info({ database: vault.dialect }, 'migrations applied')
  return 0
}

async function keys(args: string[], logger: Logger): Promise<number> {
  const sub = args[0]
  if (sub === 'generate') {
    process.stdout.write(`${randomBytes(32).toString('base64')}\n`)
    return 0
  }
  if (sub === 'rotate') {
    const config = loadConfig()
    const vault = await createVault({ databaseUrl: config.databaseUrl, keys: config.encryptionKeys, logger })
    const count = await vault.keys.rotate()
    await vault.close()
    process.stdout.write(`Re-encrypted ${count} installation(s) with key ${config.encryptionKeys[0]!.id}.\n`)
    return 0
  }
  process.stderr.write(`Unknown keys command ${JSON.stringify(sub ?? '')}: use "keys generate" or "keys rotate".\n`)
  return 1
}

/** Reads a secret file, or creates it with mode 0600 and says so. */
function readOrCreateSecret(path: string, make: () => string, what: string, why: string): string {
  if (existsSync(path)) return readFileSync(path, 'utf8').trim()
  const value = make()
  writeFileSync(path, `${value}\n`, { mode: 0o600 })
  chmodSync(path, 0o600)
  process.stdout.write(`Created a local ${what} at ${path} (mode 0600). ${why}\n`)
  return value
}

/** Resolves once a SIGINT/SIGTERM has been handled by `stop` (bounded: a stuck close does not keep the process). */
function onShutdown(stop: () => Promise<void>): Promise<void> {
  return new Promise((resolveDone) => {
    let stopping = false
    const handler = (signal: string) => {
      if (stopping) return
      stopping = true
      process.stdout.write(`\n${signal}: shutting down\n`)
      // The connector waits up to GHL_SHUTDOWN_TIMEOUT_MS for refreshes in flight; this is the last resort.
      const limit = Number(process.env.GHL_SHUTDOWN_TIMEOUT_MS ?? 30_000) + 15_000
      setTimeout(() => {
        process.stderr.write(`shutdown took longer than ${Math.round(limit / 1000)} s; exiting\n`)
        process.exit(1)
      }, limit).unref()
      stop()
        .catch((err) => process.stderr.write(`shutdown error: ${(err as Error).message}\n`))
        .finally(() => resolveDone())
    }
    process.once('SIGINT', () => handler('SIGINT'))
    process.once('SIGTERM', () => handler('SIGTERM'))
  })
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (err: unknown) => {
    if (err instanceof ConfigError) process.stderr.write(`${err.message}\n`)
    else process.stderr.write(`ghl-connect: ${(err as Error).message}\n`)
    process.exitCode = 1
  },
)
