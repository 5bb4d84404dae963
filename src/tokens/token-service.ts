/**
 * The token manager: hands out access tokens from memory, refreshes them exactly once across every
 * process sharing the vault, mints location tokens from agency installations, and keeps tokens fresh
 * in the background. A thin facade over its parts, each in its own file:
 * - `token-cache.ts` — the hot path (bounded, O(1) invalidation);
 * - `single-flight.ts` — one shared attempt per key, bounded in time;
 * - `invalidation-bus.ts` — cross-instance invalidation over Redis;
 * - `refresh-coordinator.ts` — refresh, store, suspended locations, Reconnect and re-consent;
 * - `location-minter.ts` — agency → location tokens;
 * - `background-refresher.ts` — the paged, claimed, adaptive sweep.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-6 (refreshing an access token)
 */
import { EventEmitter } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import type { Dispatcher } from 'undici'
import { systemClock, type Clock } from '../clock.js'
import type { Config } from '../config.js'
import { GhlError, NotInstalledError } from '../errors.js'
import { silentLogger, type Logger } from '../logger.js'
import type { Installation, InstallationSummary, Vault } from '../vault/types.js'
import { BackgroundRefresher, type BackgroundRefresherOptions } from './background-refresher.js'
import { InvalidationBus } from './invalidation-bus.js'
import { LocationMinter } from './location-minter.js'
import { RefreshCoordinator } from './refresh-coordinator.js'
import { SingleFlight, waitFor } from './single-flight.js'
import { TokenCache } from './token-cache.js'
import { createTransport } from '../client/transport.js'
import { isTransient, TokenContext, type RetryOptions, type TokenServiceHooks } from './token-context.js'
import type { AccessGrant, Target, TokenEvents, TokenManager, TokenRequestOptions } from './types.js'

export { INVALIDATION_CHANNEL } from './invalidation-bus.js'
export type { RetryOptions, TokenServiceHooks } from './token-context.js'
export type { BackgroundRefresherOptions } from './background-refresher.js'

/** Dependencies and settings of {@link TokenService}. */
export interface TokenServiceOptions {
  config: Config
  vault: Vault
  dispatcher?: Dispatcher
  clock?: Clock
  logger?: Logger
  /** An ioredis client: invalidations are published on it and received on a duplicate of it. */
  redis?: Redis
  hooks?: TokenServiceHooks
  retry?: RetryOptions
  /** How long to wait for another process's refresh lock (default: covers a holder's whole refresh). */
  lockWaitMs?: number
}

function keyOf(target: { kind: 'location' | 'company'; id: string }): string {
  return `${target.kind}:${target.id}`
}

function summaryOf(row: Installation): InstallationSummary {
  const { tokens: _tokens, ...summary } = row
  return summary
}

/**
 * The token manager of {@link TokenManager}.
 *
 * @example
 * const tokens = new TokenService({ config, vault, redis })
 * const grant = await tokens.getAccessToken({ kind: 'location', id: 'LOC' })
 * // … HighLevel answered 401:
 * const fresh = await tokens.onUnauthorized({ kind: 'location', id: 'LOC' }, grant)
 */
export class TokenService implements TokenManager {
  readonly #t: TokenContext
  readonly #events = new EventEmitter()
  readonly #coordinator: RefreshCoordinator
  readonly #minter: LocationMinter
  readonly #refreshers = new Set<BackgroundRefresher>()
  #closed = false

  constructor(options: TokenServiceOptions) {
    const config = options.config
    const logger = options.logger ?? silentLogger()
    const retry = { attempts: 3, baseDelayMs: 100, maxDelayMs: 1000, ...options.retry }
    // One refresh — every attempt, backoff and Reconnect — fits in this; the others wait for the lock
    // at least that long (+ a margin for the database work around it), so no one gives up on a holder
    // that is still within its bound.
    const refreshBudgetMs = config.tokenRequestTimeoutMs * retry.attempts + retry.maxDelayMs * (retry.attempts - 1)
    const lockWaitMs = options.lockWaitMs ?? refreshBudgetMs + 2 * config.database.statementTimeoutMs + 1000
    const cache = new TokenCache(config.tokenCacheMax)
    const clock = options.clock ?? systemClock
    // The one HTTP path to HighLevel (the client's steps): a transient failure of a request that is safe
    // to resend is retried there, with backoff, inside the refresh's budget.
    const transport = createTransport({
      baseUrl: config.apiUrl,
      dispatcher: options.dispatcher,
      clock,
      logger,
      retry: { maxRetries: retry.attempts - 1, baseDelayMs: retry.baseDelayMs, maxDelayMs: retry.maxDelayMs },
    })
    const bus = new InvalidationBus(options.redis, logger, (id, version) => {
      cache.dropBelow(id, version)
      // A message without a version is an install, re-install or uninstall elsewhere: what this
      // instance remembers of unknown locations and agencies may be stale now.
      if (version === Number.POSITIVE_INFINITY) this.#minter.forget()
    })
    this.#t = new TokenContext({
      config,
      vault: options.vault,
      clock,
      logger,
      dispatcher: options.dispatcher,
      cache,
      bus,
      flights: new SingleFlight(lockWaitMs + refreshBudgetMs + 4 * config.database.statementTimeoutMs),
      hooks: options.hooks ?? {},
      transport,
      refreshBudgetMs,
      lockWaitMs,
      events: this.#events,
    })
    this.#coordinator = new RefreshCoordinator(this.#t)
    this.#minter = new LocationMinter(this.#t, {
      company: (companyId) => this.getAccessToken({ kind: 'company', id: companyId }),
      companyUnauthorized: (companyId, rejected) => this.onUnauthorized({ kind: 'company', id: companyId }, rejected as AccessGrant),
    })
  }

  /**
   * Resolves once the Redis invalidation subscription is active (at once without Redis). Rejects with
   * GhlError `GHL_REDIS_UNAVAILABLE` when the subscription could not be made; the service keeps working
   * then (without invalidation messages), so awaiting this is optional. It is retried when Redis comes back.
   */
  ready(): Promise<void> {
    return this.#t.bus.ready()
  }

  /** Listens to a {@link TokenEvents} event. Payloads never carry a token. */
  on<K extends keyof TokenEvents>(event: K, listener: (payload: TokenEvents[K]) => void): this {
    this.#events.on(event, listener)
    return this
  }

  /** Removes a listener added with {@link TokenService.on}. */
  off<K extends keyof TokenEvents>(event: K, listener: (payload: TokenEvents[K]) => void): this {
    this.#events.off(event, listener)
    return this
  }

  /** Cached installations in this process. */
  get cacheSize(): number {
    return this.#t.cache.size
  }

  /**
   * A valid access token for the target. Hot path: from memory, no database and no decryption. A miss
   * or a token within `refreshMarginMs` (+ jitter) of expiry goes to the vault, and refreshes or mints
   * when needed. The caller's `signal` stops its wait, never the shared refresh (which must finish
   * and be stored, or the rotated refresh token would be lost).
   *
   * @throws NotInstalledError, ReauthorizationRequiredError, InstallationSuspendedError, GhlError
   *   `GHL_LOCK_TIMEOUT` / `GHL_DATABASE_UNAVAILABLE` (503) and the transient token-endpoint errors
   *   (`GHL_UPSTREAM_UNAVAILABLE`, `GHL_TIMEOUT`, `GHL_NETWORK`).
   */
  async getAccessToken(target: Target, options: TokenRequestOptions = {}): Promise<AccessGrant> {
    if (target.kind === 'static') return staticGrant(target)
    const key = keyOf(target)
    const hit = this.#t.cache.get(key)
    if (hit !== undefined && this.#t.clock.now() < hit.refreshAt) return hit.grant
    return waitFor(this.#t.flights.run(`get:${key}`, () => this.#obtain(target)), options.signal)
  }

  /**
   * HighLevel answered 401 to a call made with `rejected`. Re-reads the stored row: a newer version
   * (another instance refreshed) is used as is; otherwise the token is refreshed (or re-minted) once.
   */
  async onUnauthorized(target: Target, rejected: AccessGrant, options: TokenRequestOptions = {}): Promise<AccessGrant> {
    if (target.kind === 'static') {
      throw new GhlError('GHL_REAUTHORIZATION_REQUIRED', `HighLevel rejected the private integration token of ${target.resourceId}`)
    }
    const t: TokenContext = this.#t
    const key = keyOf(target)
    const hit = t.cache.get(key)
    if (hit && hit.grant.version > rejected.version) return hit.grant
    if (hit) t.cache.delete(key)
    const id = rejected.installationId
    if (!id) return this.getAccessToken(target, options)
    return waitFor(
      t.flights.run(`401:${key}:${rejected.version}`, async () => {
        const row = await t.vault.installations.get(id)
        if (!row) throw new NotInstalledError(target.kind === 'location' ? { locationId: target.id } : { companyId: target.id })
        t.assertUsable(row)
        if (row.tokens && row.version > rejected.version && row.tokens.accessToken !== rejected.accessToken) return t.remember(row).grant
        const seen = Math.max(row.version, rejected.version)
        const fresh =
          row.source === 'agency'
            ? await this.#minter.mint(row.companyId, row.locationId ?? target.id, { force: true, seenVersion: seen })
            : (await this.#coordinator.refresh(id, seen, { force: true })).row
        return t.remember(fresh).grant
      }),
      options.signal,
    )
  }

  /**
   * Drops the cached tokens of an installation (uninstall, re-install) here and, with Redis, on every
   * other instance (a message without a version: they drop whatever they hold for it).
   */
  invalidate(installationId: string): void {
    this.#t.announce(installationId)
    this.#minter.forget()
  }

  /**
   * Mints a location token from the company's agency installation (`POST /oauth/locationToken`) and
   * stores it (`source: 'agency'`), even when a fresh one is stored. Concurrent calls share one mint.
   * When the location has its own active OAuth installation, that one is returned unchanged.
   *
   * @throws NotInstalledError when the company has no agency installation or HighLevel refuses the
   *   location (400/403/404/422); ReauthorizationRequiredError when the agency installation needs it.
   */
  async mintLocationToken(companyId: string, locationId: string, options: TokenRequestOptions = {}): Promise<InstallationSummary> {
    const row = await waitFor(this.#minter.mint(companyId, locationId, { force: true }), options.signal)
    this.#t.remember(row)
    return summaryOf(row)
  }

  /**
   * Records that an agency installation covers these locations (approved at install, listed by
   * `/oauth/installedLocations`, or announced by INSTALL webhooks): their first call mints from it.
   */
  async coverLocations(agency: InstallationSummary, locationIds: readonly string[]): Promise<number> {
    const added = await this.#t.vault.installations.coverLocations(agency, locationIds)
    this.#minter.forget()
    return added
  }

  /**
   * Refreshes one installation now (an agency-minted one is re-minted), under the refresh lock — also a
   * suspended one (a success makes it active again).
   */
  async refreshNow(installationId: string, options: TokenRequestOptions = {}): Promise<InstallationSummary> {
    const t: TokenContext = this.#t
    const row = await t.vault.installations.get(installationId)
    if (!row) throw new NotInstalledError({}, `No installation with id ${installationId}`)
    t.assertUsable(row, { allowSuspended: true })
    const fresh =
      row.source === 'agency'
        ? await waitFor(this.#minter.mint(row.companyId, row.locationId ?? '', { force: true, seenVersion: row.version }), options.signal)
        : (await waitFor(this.#coordinator.refresh(row.id, row.version, { force: true, allowSuspended: true }), options.signal)).row
    t.remember(fresh)
    return summaryOf(fresh)
  }

  /**
   * Starts a background refresher (see `background-refresher.ts`). Safe to run on every instance at
   * once. `stop()` it, or close the service.
   */
  startBackgroundRefresher(options: BackgroundRefresherOptions): BackgroundRefresher {
    const refresher = new BackgroundRefresher(this.#t, this.#coordinator, options)
    const stop = refresher.stop.bind(refresher)
    refresher.stop = async () => {
      this.#refreshers.delete(refresher)
      await stop()
    }
    this.#refreshers.add(refresher)
    refresher.start()
    return refresher
  }

  /**
   * Stops taking new refreshes and waits — at most `timeoutMs` — for the refreshes and mints in flight
   * to store their rows (a deploy in the middle of a rotation must not lose the grant), and for rotated
   * pairs kept in memory while the database did not answer to be stored. Resolves with how many were
   * still running or not stored when it gave up (0 = drained).
   */
  async drain(timeoutMs: number): Promise<number> {
    const t: TokenContext = this.#t
    t.markClosing()
    await Promise.all([...this.#refreshers].map((r) => r.stop()))
    const deadline = Date.now() + timeoutMs
    while (t.flights.size > 0 && Date.now() < deadline) {
      await Promise.race([Promise.allSettled(t.flights.pending()), sleep(Math.max(1, deadline - Date.now()))])
    }
    if (t.flights.size > 0) t.logger.warn({ inFlight: t.flights.size }, 'shutdown: refreshes still in flight after the shutdown timeout')
    // Rotated pairs the database did not take yet: a last attempt, or they are lost with this process.
    const lost = await this.#coordinator.storeKeptBeforeExit(deadline)
    return t.flights.size + lost
  }

  /** Drains (briefly), stops the Redis subscription and clears the cache. Leaves vault and Redis open. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.drain(this.#t.config.shutdownTimeoutMs)
    await this.#t.bus.close()
    this.#t.cache.clear()
    this.#events.removeAllListeners()
  }

  /** The slow path of getAccessToken: read the row, use it if fresh, else refresh or mint. */
  async #obtain(target: { kind: 'location' | 'company'; id: string }): Promise<AccessGrant> {
    const t: TokenContext = this.#t
    // Remembered as not installed (briefly): a stream of calls for unknown ids costs no query.
    if (target.kind === 'location' && this.#minter.knownUnknown(target.id)) throw new NotInstalledError({ locationId: target.id })
    const row =
      target.kind === 'location'
        ? await t.vault.installations.findByLocation(t.config.clientId, target.id)
        : await t.vault.installations.findByCompany(t.config.clientId, target.id)
    if (!row) {
      if (target.kind === 'company') throw new NotInstalledError({ companyId: target.id })
      return t.remember(await this.#minter.mintUncovered(target.id)).grant
    }
    t.assertUsable(row)
    // A covered location not minted yet.
    if (!row.tokens && row.source === 'agency') return t.remember(await this.#minter.mint(row.companyId, target.id, { force: false })).grant
    t.assertTokens(row)
    const entry = t.entryFor(row)
    if (t.clock.now() < entry.refreshAt) return t.cache.set(keyOf(target), entry).grant
    try {
      const fresh =
        row.source === 'agency'
          ? await this.#minter.mint(row.companyId, target.id, { force: false, seenVersion: row.version })
          : (await this.#coordinator.refresh(row.id, row.version, { force: false })).row
      return t.remember(fresh).grant
    } catch (err) {
      // Refresh-ahead failed on a blip while the old token still lives: serve it rather than fail the call.
      const blip = isTransient(err) || (err instanceof GhlError && ['GHL_LOCK_TIMEOUT', 'GHL_DATABASE_UNAVAILABLE', 'GHL_SHUTTING_DOWN'].includes(err.code))
      if (blip && t.clock.now() < entry.grant.expiresAt) {
        t.logger.warn({ installationId: row.id, code: (err as GhlError).code }, 'token refresh failed; serving the current token until it expires')
        return entry.grant
      }
      throw err
    }
  }
}

function staticGrant(target: { token: string; resourceId: string }): AccessGrant {
  return {
    accessToken: target.token,
    installationId: null,
    version: 0,
    expiresAt: Number.MAX_SAFE_INTEGER,
    resourceId: target.resourceId,
    scopes: [],
    userType: undefined,
  }
}
