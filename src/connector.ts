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
import type { Redis } from 'ioredis'
import { loadConfig, type Config, type LoadConfigOptions } from './config.js'
import { systemClock, type Clock } from './clock.js'
import { silentLogger, type Logger } from './logger.js'
import { createRedisClient, pingRedis } from './redis.js'
import { createVault } from './vault/create-vault.js'
import type { Vault, InstallationSummary, InstallationFilter, Installation, InstallationPage, InstallationQuery } from './vault/types.js'
import { TokenService } from './tokens/token-service.js'
import type { TokenEvents } from './tokens/types.js'
import { HighLevelClient, type ResourceClient } from './client/index.js'
import { createRateLimiter, type RateLimiter } from './ratelimit/index.js'
import { InstallFlow } from './oauth/install-flow.js'
import { listInstalledLocations, type InstalledLocation } from './oauth/index.js'
import { WebhookReceiver } from './webhooks/webhook-receiver.js'
import { decryptUserContext, type UserContext } from './sso/decrypt.js'
import { GhlError, NotInstalledError } from './errors.js'
import { Billing, billingSettings, type BillingOptions, type LocationBilling } from './marketplace/billing/billing-service.js'
import { ExternalBilling } from './marketplace/billing/external-billing.js'
import { CustomMenus } from './marketplace/custom-menus.js'
import { credentialForLocation } from './marketplace/external-auth.js'
import type { LocationClient } from './marketplace/location-client.js'
import { WorkflowTriggers, type WorkflowTriggersOptions } from './marketplace/workflows/workflow-triggers.js'
import type { ExternalCredential } from './vault/marketplace-types.js'
import { CallRecorder } from './operator/call-recorder.js'
import { AuditRetention } from './vault/audit-retention.js'
import { ConnectorMetrics } from './operator/connector-metrics.js'

/** Most location/company clients kept by a connector (each a small object holding its target). */
const CLIENT_CACHE_MAX = 10_000

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
   * Refuse to start when stored rows are encrypted with keys that are not configured (default true):
   * a wrong `GHL_ENCRYPTION_KEY` is reported at start, naming the missing key ids, instead of at the
   * first call of every installation.
   */
  checkKeys?: boolean
  /**
   * Validate mode: typed calls check their params, body and HighLevel's answers against the spec and
   * log each mismatch as a warning (default false; see README "Validate mode").
   */
  validate?: boolean
  /** Marketplace features: wallet-billing settings, the app's trigger keys. */
  marketplace?: { billing?: BillingOptions; triggers?: WorkflowTriggersOptions }
  /**
   * Record every call to HighLevel for the operator's console and the metrics (default true): the last
   * calls of each installation and per-minute counts in memory, per-installation counters written in
   * batches. Never a token.
   */
  recordCalls?: boolean
}

export interface ConnectorEvents extends TokenEvents {
  installed: { installation: InstallationSummary }
  planChanged: { installationId: string; previousPlanId: string | null; planId: string }
  /** HighLevel holds more than one charge for one eventId (see `Billing`): refund all but one. */
  chargeDuplicated: { locationId: string; eventId: string; chargeIds: string[] }
}

/** The readiness of the connector's own dependencies (`GET /readyz`). */
export interface Readiness {
  ok: boolean
  checks: Record<string, { ok: boolean; reason?: string }>
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
  /** Wallet billing of every location (`billing(locationId)` for one); `reconcile()` settles lost answers. */
  readonly walletBilling: Billing
  /** Workflow triggers: subscriptions from HighLevel, and `fire(key, locationId, payload)`. */
  readonly triggers: WorkflowTriggers
  /** External billing: the billing-URL redirect and the reports to HighLevel. */
  readonly externalBilling: ExternalBilling
  /** Custom menu links of the app's agencies. */
  readonly customMenus: CustomMenus
  /** The last calls and call counters (the operator's console); `undefined` with `recordCalls: false`. */
  readonly calls: CallRecorder | undefined
  /** The numbers of `GET /metrics` (prom-client registry of this connector). */
  readonly metrics: ConnectorMetrics
  readonly #events = new EventEmitter()
  readonly #limiter: RateLimiter | undefined
  readonly #redis: Redis | undefined
  readonly #ownDispatcher: Agent | undefined
  readonly #dispatcher: Dispatcher
  readonly #background = new Set<Promise<unknown>>()
  /**
   * The clients `location(id)` / `company(id)` handed out, kept (they hold nothing but their target) so
   * the usual `ghl.location(id).get(…)` per call allocates nothing; the oldest is dropped past the bound.
   */
  readonly #clients = new Map<string, ResourceClient>()
  #stopBackground: (() => Promise<void>) | undefined
  #closing: Promise<void> | undefined
  readonly #clock: Clock

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
    marketplace?: ConnectorOptions['marketplace']
    recordCalls?: boolean
  }) {
    const { config, vault, logger, clock, dispatcher, redis } = parts
    this.#clock = clock
    this.config = config
    this.vault = vault
    this.logger = logger
    this.#redis = redis
    this.#dispatcher = dispatcher
    this.#ownDispatcher = parts.ownDispatcher
    this.tokens = new TokenService({ config, vault, dispatcher, clock, logger, redis })
    this.metrics = new ConnectorMetrics({
      installationsByStatus: () => vault.console.countByStatus(config.clientId),
      webhookEvents: async () => (await vault.console.webhookCounts(new Date(clock.now() - 86_400_000), 86_400_000)).map((r) => ({ type: r.key, status: r.state, n: r.n })),
      readiness: () => this.readiness(Math.min(2000, config.database.statementTimeoutMs)),
    })
    this.calls = parts.recordCalls === false ? undefined : new CallRecorder({ store: vault.console, clock, logger, listeners: [(call) => this.metrics.observeCall(call)] })
    this.#limiter = config.rateLimit.enabled
      ? this.metrics.instrument(createRateLimiter(config.rateLimit, { clientId: config.clientId, redis, clock }), (at) => this.calls?.noteQueued(at))
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
      observer: this.calls,
    })
    this.installFlow = new InstallFlow({ config, vault, dispatcher, clock, logger })
    this.webhooks = new WebhookReceiver({
      config,
      vault,
      tokens: this.tokens,
      dispatcher,
      clock,
      logger,
      onPlanChanged: (change) => {
        // The plans (and so the meters' prices) may differ now: the next read fetches them again.
        this.walletBilling.planChanged()
        this.#emit('planChanged', change)
      },
    })
    const locationApi = (id: string) => this.client.forTarget({ kind: 'location', id })
    this.walletBilling = new Billing(
      {
        clientId: config.clientId,
        appId: config.appId,
        requestTimeoutMs: config.requestTimeoutMs,
        vault,
        client: locationApi,
        clock,
        logger,
        onDuplicate: (duplicate) => this.#emit('chargeDuplicated', duplicate),
      },
      parts.marketplace?.billing,
    )
    this.triggers = new WorkflowTriggers({ clientId: config.clientId, apiUrl: config.apiUrl, vault, client: locationApi, logger }, parts.marketplace?.triggers)
    this.externalBilling = new ExternalBilling({
      clientId: config.clientId,
      clientSecret: config.clientSecret,
      apiUrl: config.apiUrl,
      dispatcher,
      vault,
      clock,
      logger,
      timeoutMs: config.requestTimeoutMs,
    })
    this.customMenus = new CustomMenus((id) => this.company(id))
    for (const name of ['refreshed', 'minted', 'reconnected', 'reauthorizationRequired', 'suspended', 'reactivated', 'refreshFailing'] as const) {
      this.tokens.on(name, (payload: unknown) => this.#emit(name, payload as never))
    }
    const m = this.metrics
    this.tokens
      .on('refreshed', () => m.token('refresh', 'ok'))
      .on('minted', () => m.token('mint', 'ok'))
      .on('reconnected', () => m.token('reconnect', 'ok'))
      .on('reauthorizationRequired', () => m.token('refresh', 'reauthorization_required'))
      .on('suspended', () => m.token('refresh', 'suspended'))
      .on('reactivated', () => m.token('refresh', 'reactivated'))
      .on('refreshFailing', () => m.token('refresh', 'failing'))
      // Failures outside any request or call (the database or Redis failing under the refresher) count too.
      .on('backgroundRefreshFailed', ({ code }: { code: string }) => m.error(code))
  }

  /**
   * A client for one sub-account (location): its own installation, or a token minted from the agency's.
   * `.billing` holds the location's wallet calls (`ghl.location(id).billing.charge(…)`).
   */
  location(locationId: string): LocationClient {
    return this.#cachedClient(`l:${locationId}`, () => {
      const client = this.client.forTarget({ kind: 'location', id: locationId })
      const billing = this.walletBilling
      return Object.defineProperty(client, 'billing', { get: () => billing.forLocation(locationId), enumerable: false })
    }) as LocationClient
  }

  #cachedClient(key: string, make: () => ResourceClient): ResourceClient {
    let client = this.#clients.get(key)
    if (client === undefined) {
      client = make()
      if (this.#clients.size >= CLIENT_CACHE_MAX) this.#clients.delete(this.#clients.keys().next().value!)
      this.#clients.set(key, client)
    }
    return client
  }

  /** The wallet-billing calls of one location (the same as `location(id).billing`). */
  billing(locationId: string): LocationBilling {
    return this.walletBilling.forLocation(locationId)
  }

  /**
   * The third-party credential external authentication stored for a location (its own, or its
   * agency's when that covers it), decrypted; `undefined` when there is none.
   */
  externalCredential(locationId: string): Promise<ExternalCredential | undefined> {
    return credentialForLocation({ clientId: this.config.clientId, vault: this.vault }, locationId)
  }

  /** A client for the agency (company) installation. */
  company(companyId: string): ResourceClient {
    return this.#cachedClient(`c:${companyId}`, () => this.client.forTarget({ kind: 'company', id: companyId }))
  }

  /** A client for a Private Integration Token (static; never refreshed). `resourceId` keys the rate limit. */
  withToken(token: string, resourceId: string): ResourceClient {
    return this.client.forTarget({ kind: 'static', token, resourceId })
  }

  /** Installations matching a filter (never tokens). Meant for bounded sets; pages: {@link installationsPage}. */
  installations(filter: InstallationFilter = {}): Promise<InstallationSummary[]> {
    return this.vault.installations.list({ clientId: this.config.clientId, ...filter })
  }

  /** A page of installations for people (search, filters, keyset paging). */
  installationsPage(query: InstallationQuery = {}): Promise<InstallationPage> {
    return this.vault.installations.page({ clientId: this.config.clientId, ...query })
  }

  /**
   * Every location where the app is installed under an agency installation (all pages); each is recorded
   * as covered by that agency, so its first call mints a location token.
   */
  async installedLocations(companyId: string): Promise<InstalledLocation[]> {
    const agency = await this.vault.installations.findByCompany(this.config.clientId, companyId)
    if (!agency) throw new NotInstalledError({ companyId })
    const grant = await this.tokens.getAccessToken({ kind: 'company', id: companyId })
    const locations = await listInstalledLocations(
      { apiUrl: this.config.apiUrl, dispatcher: this.#dispatcher, timeoutMs: this.config.requestTimeoutMs, version: this.config.oauthVersion },
      { agencyAccessToken: grant.accessToken, companyId, appId: this.config.appId, version: this.config.apiVersion },
    )
    await this.tokens.coverLocations(agency, locations.filter((l) => l.isInstalled !== false).map((l) => l._id))
    return locations
  }

  /** Starts an install: the URL to send the user to (HighLevel's choose-location page) and its state. */
  startInstall(options?: { returnTo?: string; loginWindowOpenMode?: 'self' }): Promise<{ url: string; state: string }> {
    return this.installFlow.start(options)
  }

  /**
   * A re-authorization for an installation that needs a user (its grant is dead and Reconnect is
   * unavailable): the install URL to send a user of that account to. Completing it restores the same
   * installation (same id, history kept).
   *
   * @throws NotInstalledError when there is no such installation.
   */
  async startReauthorization(installationId: string): Promise<{ url: string; state: string }> {
    const row = await this.vault.installations.get(installationId)
    if (!row) throw new NotInstalledError({}, `No installation with id ${installationId}`)
    return this.installFlow.start({ installationId: row.id })
  }

  /**
   * Completes an install from the callback's query (`code`, `state`, or `error`): exchanges the code,
   * stores the installation, and completes INSTALL webhooks that arrived before the exchange. Returns the
   * installation without its tokens.
   */
  async completeInstall(query: Record<string, unknown>): Promise<InstallationSummary> {
    if (this.#closing) throw new GhlError('GHL_SHUTTING_DOWN')
    const installation = await this.installFlow.complete(query)
    const { tokens: _tokens, ...summary } = installation
    this.tokens.invalidate(installation.id)
    if (summary.userType === 'Company') this.#afterAgencyInstall(summary)
    try {
      await this.webhooks.onInstallationStored(summary)
    } catch (err) {
      // The installation is stored and usable; waiting INSTALL events stay waiting and the webhook
      // retry loop completes them. The user's install must not fail for it.
      this.logger.warn({ err, installationId: summary.id }, 'completing waiting INSTALL webhooks failed; they will be retried')
    }
    this.#emit('installed', { installation: summary })
    return summary
  }

  /**
   * An agency install: the locations it approved are covered at once; the ones HighLevel lists are
   * learned in the background (HighLevel may answer a single-location pick with a Company token and no
   * location ids — API docs issue #294), so their first call mints a token.
   */
  #afterAgencyInstall(agency: InstallationSummary): void {
    const task = (async () => {
      if (agency.approvedLocations.length > 0) await this.tokens.coverLocations(agency, agency.approvedLocations)
      await this.installedLocations(agency.companyId)
    })()
      .catch((err: unknown) => this.logger.warn({ installationId: agency.id, code: err instanceof GhlError ? err.code : undefined, err }, 'listing the installed locations of an agency install failed; they become known through their INSTALL webhooks'))
      .finally(() => this.#background.delete(task))
    this.#background.add(task)
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

  #emit<K extends keyof ConnectorEvents>(event: K, payload: ConnectorEvents[K]): void {
    try {
      this.#events.emit(event, payload)
    } catch (err) {
      this.logger.warn({ err, event }, 'connector event listener threw')
    }
  }

  /**
   * Whether the connector's own dependencies answer within `timeoutMs`: the database (and its
   * migrations), Redis when configured. Never throws.
   */
  async readiness(timeoutMs = 2000): Promise<Readiness> {
    const [database, redis] = await Promise.all([
      this.vault.check(timeoutMs),
      this.#redis ? pingRedis(this.#redis, timeoutMs) : Promise.resolve(undefined),
    ])
    const checks: Readiness['checks'] = { database }
    if (redis) checks.redis = redis
    checks.webhookSignatures = this.webhooks.ed25519Configured
      ? { ok: true }
      : { ok: !this.config.production, reason: 'GHL_WEBHOOK_ED25519_PUBLIC_KEY is not set: HighLevel signs webhooks with Ed25519 only since 2026-07-01' }
    if (this.#closing) checks.shutdown = { ok: false, reason: 'shutting down' }
    return { ok: Object.values(checks).every((c) => c.ok), checks }
  }

  /** Starts the background refresher and the webhook retry loop (idempotent). */
  startBackground(options: { intervalMs?: number; concurrency?: number } = {}): void {
    if (this.#stopBackground || this.#closing) return
    const refresher = this.tokens.startBackgroundRefresher({
      intervalMs: options.intervalMs ?? this.config.refresher.intervalMs,
      ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
    })
    this.webhooks.start()
    // Wallet charges a crashed process left `pending` are settled against HighLevel's list (never charged again).
    let reconciling: Promise<unknown> | undefined
    const reconcile = setInterval(() => {
      reconciling ??= this.walletBilling
        .reconcile()
        .catch((err: unknown) => this.logger.warn({ err }, 'reconciling pending wallet charges failed; will try again'))
        .finally(() => (reconciling = undefined))
    }, options.intervalMs ?? this.config.refresher.intervalMs)
    reconcile.unref()
    // The audit log's retention (GHL_AUDIT_RETENTION_DAYS; 0 keeps everything).
    const retention = new AuditRetention(this.vault.audit, {
      days: this.config.auditRetentionDays,
      intervalMs: options.intervalMs ?? this.config.refresher.intervalMs,
      clock: this.#clock,
      logger: this.logger,
    })
    retention.start()
    this.#stopBackground = async () => {
      clearInterval(reconcile)
      await refresher.stop()
      await this.webhooks.stop()
      await reconciling
      await retention.stop()
    }
  }

  /** Whether {@link close} has begun. */
  get closing(): boolean {
    return this.#closing !== undefined
  }

  /**
   * Shuts down without losing anything: stops the background loops, lets refreshes and mints in flight
   * store their rows (bounded by `GHL_SHUTDOWN_TIMEOUT_MS`), lets webhook processing under way finish,
   * and only then closes the client, the limiter, the vault and Redis.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#stopBackground?.()
      await Promise.allSettled([...this.#background])
      await this.tokens.close()
      await this.webhooks.idle()
      await this.calls?.close()
      await this.client.close()
      await this.#limiter?.close()
      await this.vault.close()
      if (this.#redis) await this.#redis.quit().catch(() => this.#redis?.disconnect())
      await this.#ownDispatcher?.close()
    })()
    return this.#closing
  }
}

/**
 * Creates a connector: validates the config, opens (and migrates) the vault, checks the encryption keys
 * against the stored rows, connects Redis when `REDIS_URL` is set, and wires every part.
 *
 * @throws ConfigError for bad settings; GhlError `GHL_VAULT_KEY_MISSING` naming the key ids stored rows
 *   need that are not configured; `GHL_DATABASE_UNAVAILABLE` when the database cannot be reached.
 */
export async function createConnector(options: ConnectorOptions = {}): Promise<Connector> {
  const config = isConfig(options.config) ? options.config : loadConfig(options.config)
  billingSettings(options.marketplace?.billing)
  const logger = options.logger ?? silentLogger()
  const clock = options.clock ?? systemClock
  const ownDispatcher = options.dispatcher ? undefined : new Agent({ keepAliveTimeout: 30_000, connections: 128 })
  const dispatcher = options.dispatcher ?? ownDispatcher!
  const vault =
    options.vault ??
    (await createVault({
      databaseUrl: config.databaseUrl,
      keys: config.encryptionKeys,
      logger,
      clock,
      timeouts: { connectMs: config.database.connectTimeoutMs, statementMs: config.database.statementTimeoutMs },
      // A refresh holds its lock connection throughout (PostgreSQL): room for the refresher's ceiling and calls.
      lockPoolSize: Math.max(10, config.refresher.maxConcurrency + 4),
    }))
  if (options.checkKeys ?? true) {
    const missing = await vault.keys.missing()
    if (missing.length > 0) {
      await vault.close().catch(() => {})
      await ownDispatcher?.close()
      throw new GhlError(
        'GHL_VAULT_KEY_MISSING',
        `Stored tokens are encrypted with key id${missing.length === 1 ? '' : 's'} ${missing.join(', ')}, which GHL_ENCRYPTION_KEY does not contain: configure ${missing.length === 1 ? 'that key' : 'those keys'} (as "id:base64", after the current one) — refusing to start rather than treat every installation as broken`,
      )
    }
  }
  const redis = config.redisUrl ? createRedisClient(config.redisUrl, { logger, timeoutMs: config.redisTimeoutMs }) : undefined
  const connector = new Connector({ config, vault, logger, clock, dispatcher, ownDispatcher, redis, validate: options.validate, marketplace: options.marketplace, recordCalls: options.recordCalls })
  if (options.background ?? true) connector.startBackground(options.refresher)
  return connector
}

function isConfig(value: unknown): value is Config {
  return typeof value === 'object' && value !== null && 'clientId' in value && 'encryptionKeys' in value
}

export type { Installation }
