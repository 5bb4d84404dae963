/**
 * `createConnector()`: the one object a Node app holds. It wires the vault, the token manager, the
 * rate limiter, the API client, the install flow, the webhook receiver and SSO together from one
 * validated {@link Config}.
 *
 * @example
 * const ghl = await createConnector()                       // config from the environment
 * const { data } = await ghl.location('LOC_ID').GET('/contacts/{contactId}', { params: { path: { contactId } } })
 * const res = await ghl.location('LOC_ID').get('/contacts/', { query: { locationId: 'LOC_ID', limit: 20 } })
 */
import { EventEmitter } from 'node:events'
import { Agent, type Dispatcher } from 'undici'
import { Redis } from 'ioredis'
import { loadConfig, type Config, type LoadConfigOptions } from './config.js'
import { systemClock, type Clock } from './clock.js'
import { silentLogger, type Logger } from './logger.js'
import { createVault } from './vault/create-vault.js'
import type { Vault, InstallationSummary, InstallationFilter, Installation } from './vault/types.js'
import { TokenService } from './tokens/token-service.js'
import type { TokenEvents } from './tokens/types.js'
import { HighLevelClient, type ResourceClient } from './client/index.js'
import { createRateLimiter, type RateLimiter } from './ratelimit/index.js'
import { InstallFlow } from './oauth/install-flow.js'
import { listInstalledLocations, type InstalledLocation } from './oauth/index.js'
import { WebhookReceiver } from './webhooks/webhook-receiver.js'
import { decryptUserContext, type UserContext } from './sso/decrypt.js'
import { GhlError } from './errors.js'

export interface ConnectorOptions {
  /** A validated config, or options for {@link loadConfig} (default: the environment and `./.env`). */
  config?: Config | LoadConfigOptions
  logger?: Logger
  clock?: Clock
  /** undici dispatcher for every call to HighLevel (default: one keep-alive Agent). */
  dispatcher?: Dispatcher
  /** Use this vault instead of opening `config.databaseUrl`. */
  vault?: Vault
  /** Start the background refresher and the webhook retry loop (default true). */
  background?: boolean
  /** Background refresher settings. */
  refresher?: { intervalMs?: number; concurrency?: number }
  /**
   * Validate mode: typed calls check their params, body and HighLevel's answers against the spec and
   * log each mismatch as a warning (default false; see README "Validate mode").
   */
  validate?: boolean
}

export interface ConnectorEvents extends TokenEvents {
  installed: { installation: InstallationSummary }
}

/** The connector. Stateful: close it when done. */
export class Connector {
  readonly config: Config
  readonly vault: Vault
  readonly tokens: TokenService
  readonly client: HighLevelClient
  readonly webhooks: WebhookReceiver
  readonly installFlow: InstallFlow
  readonly logger: Logger
  readonly #events = new EventEmitter()
  readonly #limiter: RateLimiter | undefined
  readonly #redis: Redis | undefined
  readonly #ownDispatcher: Agent | undefined
  readonly #dispatcher: Dispatcher
  #stopRefresher: (() => Promise<void>) | undefined
  #closed = false

  /** @internal use {@link createConnector} */
  constructor(parts: {
    config: Config
    vault: Vault
    logger: Logger
    clock: Clock
    dispatcher: Dispatcher
    ownDispatcher: Agent | undefined
    redis: Redis | undefined
    validate?: boolean
  }) {
    const { config, vault, logger, clock, dispatcher, redis } = parts
    this.config = config
    this.vault = vault
    this.logger = logger
    this.#redis = redis
    this.#dispatcher = dispatcher
    this.#ownDispatcher = parts.ownDispatcher
    this.tokens = new TokenService({ config, vault, dispatcher, clock, logger, redis })
    this.#limiter = config.rateLimit.enabled
      ? createRateLimiter(config.rateLimit, { clientId: config.clientId, redis, clock })
      : undefined
    this.client = new HighLevelClient({
      baseUrl: config.apiUrl,
      apiVersion: config.apiVersion,
      tokens: this.tokens,
      limiter: this.#limiter,
      dispatcher,
      clock,
      logger,
      timeoutMs: config.requestTimeoutMs,
      validate: parts.validate,
    })
    this.installFlow = new InstallFlow({ config, vault, dispatcher, clock, logger })
    this.webhooks = new WebhookReceiver({ config, vault, tokens: this.tokens, dispatcher, clock, logger })
    for (const name of ['refreshed', 'minted', 'reconnected', 'reauthorizationRequired'] as const) {
      this.tokens.on(name, (payload: unknown) => this.#events.emit(name, payload))
    }
  }

  /** A client for one sub-account (location): its own installation, or a token minted from the agency's. */
  location(locationId: string): ResourceClient {
    return this.client.forTarget({ kind: 'location', id: locationId })
  }

  /** A client for the agency (company) installation. */
  company(companyId: string): ResourceClient {
    return this.client.forTarget({ kind: 'company', id: companyId })
  }

  /** A client for a Private Integration Token (static; never refreshed). `resourceId` keys the rate limit. */
  withToken(token: string, resourceId: string): ResourceClient {
    return this.client.forTarget({ kind: 'static', token, resourceId })
  }

  /** The installations (never tokens). */
  installations(filter?: InstallationFilter): Promise<InstallationSummary[]> {
    return this.vault.listInstallations(filter)
  }

  /** Every location where the app is installed under an agency installation (all pages). */
  async installedLocations(companyId: string): Promise<InstalledLocation[]> {
    const grant = await this.tokens.getAccessToken({ kind: 'company', id: companyId })
    return listInstalledLocations(
      { apiUrl: this.config.apiUrl, dispatcher: this.#dispatcher, timeoutMs: this.config.requestTimeoutMs },
      { agencyAccessToken: grant.accessToken, companyId, appId: this.config.appId, version: this.config.apiVersion },
    )
  }

  /** Starts an install: the URL to send the user to (HighLevel's choose-location page) and its state. */
  startInstall(options?: { returnTo?: string; loginWindowOpenMode?: 'self' }): Promise<{ url: string; state: string }> {
    return this.installFlow.start(options)
  }

  /**
   * Completes an install from the callback's query (`code`, `state`, or `error`): exchanges the code,
   * stores the installation, and completes INSTALL webhooks that arrived before the exchange.
   */
  async completeInstall(query: Record<string, unknown>): Promise<Installation> {
    const installation = await this.installFlow.complete(query)
    this.tokens.invalidate(installation.id)
    const { tokens: _tokens, ...summary } = installation
    try {
      await this.webhooks.onInstallationStored(summary)
    } catch (err) {
      // The installation is stored and usable; waiting INSTALL events stay waiting and the webhook
      // retry loop completes them. The user's install must not fail for it.
      this.logger.warn({ err, installationId: summary.id }, 'completing waiting INSTALL webhooks failed; they will be retried')
    }
    this.#events.emit('installed', { installation: summary })
    return installation
  }

  /** Decrypts the SSO user context a custom page or custom JS got from HighLevel. */
  decryptUserContext(payload: string): UserContext {
    if (!this.config.sharedSecret) {
      throw new GhlError('GHL_CONFIG_INVALID', 'GHL_SHARED_SECRET is not configured: SSO user context cannot be decrypted')
    }
    return decryptUserContext(payload, this.config.sharedSecret)
  }

  /** Subscribes to token and lifecycle events. Returns an unsubscribe function. */
  on<K extends keyof ConnectorEvents>(event: K, listener: (payload: ConnectorEvents[K]) => void): () => void {
    this.#events.on(event, listener)
    return () => this.#events.off(event, listener)
  }

  /** Starts the background refresher and the webhook retry loop (idempotent). */
  startBackground(options: { intervalMs?: number; concurrency?: number } = {}): void {
    if (this.#stopRefresher) return
    const refresher = this.tokens.startBackgroundRefresher({
      intervalMs: options.intervalMs ?? 60_000,
      concurrency: options.concurrency ?? 4,
    })
    this.webhooks.start()
    this.#stopRefresher = async () => {
      await refresher.stop()
      await this.webhooks.stop()
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#stopRefresher?.()
    await this.webhooks.idle()
    await this.client.close()
    await this.#limiter?.close()
    await this.tokens.close()
    await this.vault.close()
    this.#redis?.disconnect()
    await this.#ownDispatcher?.close()
  }
}

/**
 * Creates a connector: validates the config, opens (and migrates) the vault, connects Redis when
 * `REDIS_URL` is set, and wires every part.
 */
export async function createConnector(options: ConnectorOptions = {}): Promise<Connector> {
  const config = isConfig(options.config) ? options.config : loadConfig(options.config)
  const logger = options.logger ?? silentLogger()
  const clock = options.clock ?? systemClock
  const ownDispatcher = options.dispatcher ? undefined : new Agent({ keepAliveTimeout: 30_000, connections: 128 })
  const dispatcher = options.dispatcher ?? ownDispatcher!
  const vault = options.vault ?? (await createVault({ databaseUrl: config.databaseUrl, keys: config.encryptionKeys, logger, clock }))
  const redis = config.redisUrl ? new Redis(config.redisUrl, { lazyConnect: false, maxRetriesPerRequest: 3 }) : undefined
  const connector = new Connector({ config, vault, logger, clock, dispatcher, ownDispatcher, redis, validate: options.validate })
  if (options.background ?? true) connector.startBackground(options.refresher)
  return connector
}

function isConfig(value: unknown): value is Config {
  return typeof value === 'object' && value !== null && 'clientId' in value && 'encryptionKeys' in value
}
