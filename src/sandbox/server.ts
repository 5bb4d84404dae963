/**
 * Starts the sandbox: resolves the seed (or loads the state file), builds the Fastify server, and
 * returns a {@link Sandbox} handle.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import Fastify, { type FastifyError } from 'fastify'
import formbody from '@fastify/formbody'
import { systemClock } from '../clock.js'
import { silentLogger } from '../logger.js'
import { FaultInjector } from './faults.js'
import { recordOutcome, type SandboxContext } from './http.js'
import { traceIdValue } from './ids.js'
import { SandboxRateLimiter } from './rate-limiter.js'
import { registerApiRoutes } from './routes/api.js'
import { registerBillingRoutes } from './routes/billing.js'
import { registerWorkflowRoutes } from './routes/workflows.js'
import { registerControlRoutes } from './routes/controls.js'
import { registerOAuthRoutes } from './routes/oauth.js'
import { registerV3OAuthRoutes } from './routes/v3-oauth.js'
import { registerPageRoutes } from './pages.js'
import { defaultSeed, loadSeedFile, resolveSeed } from './seed.js'
import { SandboxStore, type StoreSnapshot } from './store.js'
import { sandboxEnv, sandboxEvents, sandboxExpire, sandboxInstall } from './test-helpers.js'
import type { Sandbox, SandboxApp, SandboxOptions, SandboxSettings } from './types.js'
import { generateWebhookKeys, keysFromPem, keysToPem, WebhookSender, type WebhookKeys, type WebhookKeysPem } from './webhooks.js'

interface StateFile {
  store: StoreSnapshot
  keys: WebhookKeysPem
}

function validateOptions(o: SandboxOptions): void {
  const problems: string[] = []
  const positive = (name: string, v: unknown): void => {
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)) {
      problems.push(`expected ${name} to be a positive finite number, got ${String(v)}`)
    }
  }
  if (o.port !== undefined && (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535)) {
    problems.push(`expected port to be an integer 0..65535, got ${String(o.port)}`)
  }
  positive('accessTokenTtlSec', o.accessTokenTtlSec)
  positive('codeTtlSec', o.codeTtlSec)
  if (o.versionCheck !== undefined && o.versionCheck !== 'published' && o.versionCheck !== 'operation') {
    problems.push(`expected versionCheck to be 'published' or 'operation', got ${String(o.versionCheck)}`)
  }
  if (o.rateLimit) {
    positive('rateLimit.burstMax', o.rateLimit.burstMax)
    positive('rateLimit.burstWindowMs', o.rateLimit.burstWindowMs)
    positive('rateLimit.dailyMax', o.rateLimit.dailyMax)
    positive('rateLimit.dailyWindowMs', o.rateLimit.dailyWindowMs)
  }
  const oneOf = (name: string, v: unknown, allowed: readonly unknown[]): void => {
    if (v !== undefined && !allowed.includes(v)) problems.push(`expected ${name} to be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${JSON.stringify(v)}`)
  }
  oneOf('userTypeCheck', o.userTypeCheck, ['hint', 'strict'])
  oneOf('locationPickToken', o.locationPickToken, ['location', 'company'])
  oneOf('reconnect', o.reconnect, ['allow', 'removed', 'refuse'])
  oneOf('webhookSignatures', o.webhookSignatures, ['ed25519', 'rsa', 'both'])
  oneOf('webhookTiming', o.webhookTiming, ['early', 'after-exchange', 'none'])
  oneOf('suspendedApiStatus', o.suspendedApiStatus, [401, 403])
  if (o.reconnectRefusedIds !== undefined && !(Array.isArray(o.reconnectRefusedIds) && o.reconnectRefusedIds.every((id) => typeof id === 'string' && id !== ''))) {
    problems.push(`expected reconnectRefusedIds to be an array of ids, got ${JSON.stringify(o.reconnectRefusedIds)}`)
  }
  if (problems.length > 0) throw new Error(`invalid sandbox options: ${problems.join('; ')}`)
}

/**
 * Starts a local HighLevel sandbox (OAuth server, APIs, rate limits, signed webhooks, SSO, faults).
 * Controls and behaviours: src/sandbox/README.md.
 *
 * @example
 * const sb = await startSandbox()
 * const { redirect } = await (await fetch(`${sb.url}/_sandbox/authorize`, { method: 'POST',
 *   headers: { 'content-type': 'application/json' },
 *   body: JSON.stringify({ clientId: sb.app.clientId, redirectUri: sb.app.redirectUris[0],
 *     scope: sb.app.scopes.join(' '), locationId: sb.companies[0].locations[0].locationId }) })).json()
 * await sb.close()
 */
export async function startSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  validateOptions(options)
  const clock = options.clock ?? systemClock
  const logger = (options.logger ?? silentLogger()).child({ component: 'sandbox' })
  const settings: SandboxSettings = {
    accessTokenTtlSec: options.accessTokenTtlSec ?? 86399,
    codeTtlSec: options.codeTtlSec ?? 600,
    rateLimit: {
      burstMax: options.rateLimit?.burstMax ?? 100,
      burstWindowMs: options.rateLimit?.burstWindowMs ?? 10_000,
      dailyMax: options.rateLimit?.dailyMax ?? 200_000,
      dailyWindowMs: options.rateLimit?.dailyWindowMs ?? 86_400_000,
    },
    // Defaults: HighLevel as it behaves in 2026 (src/sandbox/README.md, "Settings").
    reconnect: options.reconnect ?? 'removed',
    reconnectRefusedIds: [...(options.reconnectRefusedIds ?? [])],
    webhookTiming: options.webhookTiming ?? 'after-exchange',
    userTypeCheck: options.userTypeCheck ?? 'hint',
    locationPickToken: options.locationPickToken ?? 'location',
    webhookSignatures: options.webhookSignatures ?? 'ed25519',
    suspendedApiStatus: options.suspendedApiStatus ?? 401,
    versionCheck: options.versionCheck ?? 'published',
  }

  let store: SandboxStore
  let keys: WebhookKeys
  const statePath = options.statePath
  if (statePath && existsSync(statePath)) {
    let state: StateFile
    try {
      state = JSON.parse(readFileSync(statePath, 'utf8')) as StateFile
    } catch (err) {
      throw new Error(`sandbox state file ${statePath} could not be read as JSON: ${(err as Error).message}`, { cause: err })
    }
    if (state?.store?.version !== 1 || !state.keys) throw new Error(`sandbox state file ${statePath} has an unknown format`)
    store = new SandboxStore(state.store.seed, settings, clock, state.store)
    keys = keysFromPem(state.keys)
  } else {
    const seedInput = typeof options.seed === 'string' ? loadSeedFile(options.seed) : (options.seed ?? defaultSeed())
    store = new SandboxStore(resolveSeed(seedInput, clock.now()), settings, clock)
    keys = await generateWebhookKeys()
  }
  const keysPem = keysToPem(keys)

  const persist = (): void => {
    if (!statePath) return
    const file: StateFile = { store: store.toJSON(), keys: keysPem }
    const tmp = `${statePath}.${process.pid}.tmp`
    writeFileSync(tmp, JSON.stringify(file), { mode: 0o600 })
    renameSync(tmp, statePath)
  }

  const limiter = new SandboxRateLimiter(() => store.settings.rateLimit, clock)
  const faults = new FaultInjector()
  const webhooks = new WebhookSender(keys, clock, logger, () => store.settings.webhookSignatures)
  const ctx: SandboxContext = { store, webhooks, faults, limiter, logger, persist }

  /** The sandbox's base URL, known once it listens (trigger target URLs name it). */
  let url = ''
  const app = Fastify({ logger: false, genReqId: () => traceIdValue(), forceCloseConnections: true, bodyLimit: 1024 * 1024 })
  await app.register(formbody)
  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-trace-id', req.id)
  })
  app.addHook('onResponse', async (req, reply) => {
    recordOutcome(req, reply.statusCode)
  })
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500
    if (status === 500) logger.error({ err, traceId: req.id }, 'sandbox internal error')
    return reply.code(status).send({ statusCode: status, message: status === 500 ? 'Internal Server Error' : err.message })
  })
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ statusCode: 404, message: `Cannot ${req.method} ${req.url.split('?')[0]}`, error: 'Not Found' }),
  )

  registerPageRoutes(app, ctx)
  registerOAuthRoutes(app, ctx)
  registerV3OAuthRoutes(app, ctx)
  registerBillingRoutes(app, ctx)
  registerWorkflowRoutes(app, ctx, () => url)
  registerApiRoutes(app, ctx)
  registerControlRoutes(app, ctx, () => {
    store.reset()
    limiter.clear()
    faults.clear()
    webhooks.clear()
    persist()
  })

  const host = options.host ?? '127.0.0.1'
  await app.listen({ port: options.port ?? 0, host })
  const address = app.server.address()
  const port = typeof address === 'object' && address ? address.port : (options.port ?? 0)
  url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`
  persist()
  logger.info({ url }, 'sandbox listening')

  const publicKeys = webhooks.publicKeys()
  let closed: Promise<void> | undefined
  const first = (): SandboxApp => {
    const a = store.apps[0]!
    return {
      appId: a.appId,
      clientId: a.clientId,
      clientSecret: a.clientSecret,
      sharedSecret: a.sharedSecret,
      redirectUris: [...a.redirectUris],
      scopes: [...a.scopes],
      distribution: a.distribution,
      webhookUrl: a.webhookUrl,
    }
  }

  return {
    url,
    get app() {
      return first()
    },
    get companies() {
      return store.companies.map((c) => ({
        companyId: c.companyId,
        name: c.name,
        locations: c.locations.map((l) => ({ locationId: l.locationId, name: l.name })),
      }))
    },
    publicKeys,
    configureApp(change) {
      const a = store.apps[0]!
      if (change.redirectUris) a.redirectUris = [...change.redirectUris]
      if (change.webhookUrl !== undefined) a.webhookUrl = change.webhookUrl
      if (change.scopes) a.scopes = [...change.scopes]
      persist()
    },
    env: (envOptions) => sandboxEnv(ctx, url, publicKeys, envOptions),
    install: (target) => sandboxInstall(ctx, target),
    expire: (target) => sandboxExpire(ctx, target),
    events: (filter) => sandboxEvents(ctx, filter),
    close() {
      closed ??= (async () => {
        faults.releaseHangs()
        await webhooks.close()
        await app.close()
        persist()
      })()
      return closed
    },
  }
}
