/**
 * The token manager: hands out access tokens from memory, refreshes them exactly once across every
 * process sharing the vault, recovers from refresh-token rotation races and dead grants (Reconnect),
 * and mints location tokens from agency installations.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-6 (refreshing an access token)
 * @see ../../../shared/reference/highlevel/FACTS.md ("Refresh token … using it invalidates it")
 */
import { EventEmitter } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import type { Dispatcher } from 'undici'
import { systemClock, type Clock } from '../clock.js'
import type { Config } from '../config.js'
import { GhlError, NotInstalledError, OAuthError, ReauthorizationRequiredError } from '../errors.js'
import { silentLogger, type Logger } from '../logger.js'
import type { OAuthHttp } from '../oauth/http.js'
import { locationTokenRequest, processLocationTokenResponse } from '../oauth/location-token.js'
import { processReconnectResponse, reconnectRequest } from '../oauth/reconnect.js'
import {
  authorizationCodeGrantRequest,
  processTokenResponse,
  refreshTokenGrantRequest,
  type TokenResponse,
} from '../oauth/token-endpoint.js'
import type { Installation, InstallationSummary, Vault } from '../vault/types.js'
import type { AccessGrant, Target, TokenEvents, TokenManager, TokenRequestOptions } from './types.js'

/** The Redis channel on which instances tell each other "installation X is now at version N". */
export const INVALIDATION_CHANNEL = 'ghl-connect:invalidate'

/** Test and operations hooks of {@link TokenService}. */
export interface TokenServiceHooks {
  /**
   * Called after HighLevel answered a refresh successfully and before the answer is stored: the
   * window in which a crash loses the rotated refresh token (tests kill a process here).
   */
  afterRefreshResponse?: (installationId: string) => Promise<void>
}

/** Retries of transient token-endpoint failures (5xx, timeout, network, malformed answer). */
export interface RetryOptions {
  /** Attempts in all, including the first (default 3). */
  attempts?: number
  /** First backoff in ms (default 100); doubles per attempt, jittered ×0.5–1.5. */
  baseDelayMs?: number
  /** Longest backoff in ms (default 1000). */
  maxDelayMs?: number
}

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
  /** How long to wait for another process's refresh lock (the vault's default otherwise). */
  lockWaitMs?: number
}

/** Settings of {@link TokenService.startBackgroundRefresher}. */
export interface BackgroundRefresherOptions {
  /** Time between scans (ms). */
  intervalMs: number
  /** Refreshes running at once (default 4). */
  concurrency?: number
  /** Also refresh installations whose refresh token was issued this long ago (default 300 days). */
  idleRefreshAfterMs?: number
}

/** A running background refresher. */
export interface BackgroundRefresher {
  /** Stops scanning; resolves when the scan in progress (if any) has finished. */
  stop(): Promise<void>
  /** Runs one scan now; resolves with the number of installations refreshed. */
  runOnce(): Promise<number>
}

interface CacheEntry {
  grant: AccessGrant
  /** When to stop serving it from memory: expiry − margin − this entry's jitter. */
  refreshAt: number
}

type Resource = { locationId?: string; companyId?: string }

const TRANSIENT = new Set(['GHL_UPSTREAM_UNAVAILABLE', 'GHL_TIMEOUT', 'GHL_NETWORK', 'GHL_OAUTH_INVALID_RESPONSE'])

function isTransient(err: unknown): boolean {
  return err instanceof GhlError && TRANSIENT.has(err.code)
}

function isGrantRejected(err: unknown): err is OAuthError {
  return err instanceof OAuthError && err.code === 'GHL_OAUTH_GRANT_REJECTED'
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
  readonly #config: Config
  readonly #vault: Vault
  readonly #dispatcher: Dispatcher | undefined
  readonly #clock: Clock
  readonly #logger: Logger
  readonly #redis: Redis | undefined
  readonly #hooks: TokenServiceHooks
  readonly #retry: Required<RetryOptions>
  readonly #lockWaitMs: number | undefined
  readonly #events = new EventEmitter()
  /** resource key (`location:ID` / `company:ID`) → cached grant. */
  readonly #cache = new Map<string, CacheEntry>()
  /** In-process single flight: flight key → the one promise every concurrent caller awaits. */
  readonly #flights = new Map<string, Promise<unknown>>()
  readonly #refreshers = new Set<BackgroundRefresher>()
  #subscriber: Redis | undefined
  #ready: Promise<void>
  #closed = false

  constructor(options: TokenServiceOptions) {
    this.#config = options.config
    this.#vault = options.vault
    this.#dispatcher = options.dispatcher
    this.#clock = options.clock ?? systemClock
    this.#logger = options.logger ?? silentLogger()
    this.#redis = options.redis
    this.#hooks = options.hooks ?? {}
    this.#retry = { attempts: 3, baseDelayMs: 100, maxDelayMs: 1000, ...options.retry }
    this.#lockWaitMs = options.lockWaitMs
    this.#ready = this.#subscribe()
    // Redis unreachable at start must not crash the process (an unhandled rejection) nor stop the
    // service: without invalidation messages every instance still re-reads the row's version on a 401.
    this.#ready.catch((err: unknown) => {
      this.#logger.warn({ error: errorText(err) }, 'token invalidation subscription failed; serving tokens without cross-instance invalidation')
    })
  }

  /**
   * Resolves once the Redis invalidation subscription is active (at once without Redis). Rejects with
   * GhlError `GHL_INTERNAL` when the subscription could not be made; the service keeps working then
   * (without invalidation messages), so awaiting this is optional. It is retried when Redis comes back.
   */
  ready(): Promise<void> {
    return this.#ready
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

  /**
   * A valid access token for the target. Hot path: from memory, no database and no decryption. A miss
   * or a token within `refreshMarginMs` (+ jitter) of expiry goes to the vault, and refreshes or mints
   * when needed. The caller's `signal` stops its wait, never the shared refresh (which must finish
   * and be stored, or the rotated refresh token would be lost).
   *
   * @throws NotInstalledError, ReauthorizationRequiredError, GhlError `GHL_LOCK_TIMEOUT` and the
   *   transient token-endpoint errors (`GHL_UPSTREAM_UNAVAILABLE`, `GHL_TIMEOUT`, `GHL_NETWORK`).
   */
  async getAccessToken(target: Target, options: TokenRequestOptions = {}): Promise<AccessGrant> {
    if (target.kind === 'static') return this.#staticGrant(target)
    const key = keyOf(target)
    const hit = this.#cache.get(key)
    if (hit && this.#clock.now() < hit.refreshAt) return hit.grant
    return this.#detach(this.#flight(`get:${key}`, () => this.#obtain(target)), options.signal)
  }

  /**
   * HighLevel answered 401 to a call made with `rejected`. Re-reads the stored row: a newer version
   * (another instance refreshed) is used as is; otherwise the token is refreshed (or re-minted) once.
   */
  async onUnauthorized(target: Target, rejected: AccessGrant, options: TokenRequestOptions = {}): Promise<AccessGrant> {
    if (target.kind === 'static') {
      throw new GhlError('GHL_REAUTHORIZATION_REQUIRED', `HighLevel rejected the private integration token of ${target.resourceId}`)
    }
    const key = keyOf(target)
    const hit = this.#cache.get(key)
    if (hit && hit.grant.version > rejected.version) return hit.grant
    if (hit) this.#cache.delete(key)
    const id = rejected.installationId
    if (!id) return this.getAccessToken(target, options)
    return this.#detach(
      this.#flight(`401:${key}:${rejected.version}`, async () => {
        const row = await this.#vault.getInstallation(id)
        if (!row) throw new NotInstalledError(this.#resourceOf(target))
        this.#assertUsable(row)
        if (row.version > rejected.version && row.tokens?.accessToken !== rejected.accessToken) return this.#remember(row).grant
        const seen = Math.max(row.version, rejected.version)
        const fresh =
          row.source === 'agency'
            ? await this.#mintFlight(row.companyId, row.locationId ?? target.id, { force: true, seenVersion: seen })
            : await this.#refresh(id, seen, { force: true })
        return this.#remember(fresh).grant
      }),
      options.signal,
    )
  }

  /**
   * Drops the cached tokens of an installation (uninstall, re-install) here and, with Redis, on every
   * other instance (a message without a version: they drop whatever they hold for it).
   */
  invalidate(installationId: string): void {
    this.#dropBelow(installationId, Number.POSITIVE_INFINITY)
    this.#publish(installationId)
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
    const row = await this.#detach(this.#mintFlight(companyId, locationId, { force: true }), options.signal)
    this.#remember(row)
    return summaryOf(row)
  }

  /** Refreshes one installation now (an agency-minted one is re-minted), under the refresh lock. */
  async refreshNow(installationId: string, options: TokenRequestOptions = {}): Promise<InstallationSummary> {
    const row = await this.#vault.getInstallation(installationId)
    if (!row) throw new GhlError('GHL_NOT_INSTALLED', `No installation with id ${installationId}`)
    this.#assertUsable(row)
    const fresh =
      row.source === 'agency'
        ? await this.#detach(this.#mintFlight(row.companyId, row.locationId ?? '', { force: true, seenVersion: row.version }), options.signal)
        : await this.#detach(this.#refresh(row.id, row.version, { force: true }), options.signal)
    this.#remember(fresh)
    return summaryOf(fresh)
  }

  /**
   * Refreshes, in the background, OAuth installations whose access token is within the refresh margin
   * or whose refresh token is getting old (it dies a year after issue if unused). Safe to run on every
   * instance at once: each refresh is taken under the installation's lock and skipped when the version
   * moved since the scan (another instance did it). Agency-minted tokens are re-minted on use instead.
   */
  startBackgroundRefresher(options: BackgroundRefresherOptions): BackgroundRefresher {
    const concurrency = Math.max(1, options.concurrency ?? 4)
    const idleAfter = options.idleRefreshAfterMs ?? 300 * 24 * 3600_000
    let timer: NodeJS.Timeout | undefined
    let running: Promise<number> | undefined
    let stopped = false

    const scan = async (): Promise<number> => {
      const now = this.#clock.now()
      const due = (await this.#vault.listInstallations({ clientId: this.#config.clientId, status: 'active', source: 'oauth' })).filter(
        (i) =>
          (i.expiresAt !== null && i.expiresAt.getTime() - now <= this.#config.refreshMarginMs) ||
          (i.refreshTokenIssuedAt !== null && now - i.refreshTokenIssuedAt.getTime() >= idleAfter),
      )
      let refreshed = 0
      let next = 0
      const worker = async (): Promise<void> => {
        while (!stopped && next < due.length) {
          const inst = due[next++]!
          try {
            const { row, refreshed: did } = await this.#refreshTracked(inst.id, inst.version, { force: true })
            this.#remember(row)
            if (did) refreshed++
          } catch (err) {
            this.#logger.warn({ installationId: inst.id, err }, 'background refresh failed')
          }
        }
      }
      await Promise.all(Array.from({ length: Math.min(concurrency, due.length) }, worker))
      return refreshed
    }
    const runOnce = (): Promise<number> => {
      running ??= scan().finally(() => {
        running = undefined
      })
      return running
    }
    const schedule = (): void => {
      if (stopped) return
      timer = setTimeout(() => {
        runOnce()
          .catch((err: unknown) => this.#logger.warn({ err }, 'background refresh scan failed'))
          .finally(schedule)
      }, options.intervalMs)
      timer.unref()
    }
    const refresher: BackgroundRefresher = {
      runOnce,
      stop: async () => {
        stopped = true
        clearTimeout(timer)
        this.#refreshers.delete(refresher)
        await running?.catch(() => {})
      },
    }
    this.#refreshers.add(refresher)
    schedule()
    return refresher
  }

  /** Stops background refreshers and the Redis subscription; clears the cache. Leaves vault and Redis open. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await Promise.all([...this.#refreshers].map((r) => r.stop()))
    await this.#ready.catch(() => {})
    if (this.#subscriber) await this.#subscriber.quit().catch(() => this.#subscriber?.disconnect())
    this.#cache.clear()
    this.#events.removeAllListeners()
  }

  // ---------------------------------------------------------------------------------------------
  // Reading and caching
  // ---------------------------------------------------------------------------------------------

  /** The slow path of getAccessToken: read the row, use it if fresh, else refresh or mint. */
  async #obtain(target: { kind: 'location' | 'company'; id: string }): Promise<AccessGrant> {
    const row =
      target.kind === 'location'
        ? await this.#vault.findByLocation(this.#config.clientId, target.id)
        : await this.#vault.findByCompany(this.#config.clientId, target.id)
    if (!row) {
      if (target.kind === 'company') throw new NotInstalledError({ companyId: target.id })
      return this.#remember(await this.#mintFromAnyAgency(target.id)).grant
    }
    this.#assertUsable(row)
    const entry = this.#entryFor(row)
    if (this.#clock.now() < entry.refreshAt) return this.#store(row, entry).grant
    try {
      const fresh =
        row.source === 'agency'
          ? await this.#mintFlight(row.companyId, target.id, { force: false, seenVersion: row.version })
          : await this.#refresh(row.id, row.version, { force: false })
      return this.#remember(fresh).grant
    } catch (err) {
      // Refresh-ahead failed on a blip while the old token still lives: serve it rather than fail the call.
      const blip = isTransient(err) || (err instanceof GhlError && err.code === 'GHL_LOCK_TIMEOUT')
      if (blip && this.#clock.now() < entry.grant.expiresAt) {
        this.#logger.warn({ installationId: row.id, err }, 'token refresh failed; serving the current token until it expires')
        return entry.grant
      }
      throw err
    }
  }

  #entryFor(row: Installation): CacheEntry {
    const expiresAt = row.tokens!.expiresAt.getTime()
    const jitter = this.#config.refreshJitterMs > 0 ? Math.floor(Math.random() * this.#config.refreshJitterMs) : 0
    return {
      grant: Object.freeze({
        accessToken: row.tokens!.accessToken,
        installationId: row.id,
        version: row.version,
        expiresAt,
        resourceId: row.locationId ?? row.companyId,
        scopes: row.scopes,
      }),
      refreshAt: expiresAt - this.#config.refreshMarginMs - jitter,
    }
  }

  #store(row: Installation, entry: CacheEntry): CacheEntry {
    const key = row.locationId ? `location:${row.locationId}` : `company:${row.companyId}`
    const current = this.#cache.get(key)
    // Never replace a newer entry with an older read (two flights can finish out of order).
    if (!current || current.grant.version <= entry.grant.version) this.#cache.set(key, entry)
    return entry
  }

  #remember(row: Installation): CacheEntry {
    this.#assertUsable(row)
    return this.#store(row, this.#entryFor(row))
  }

  #dropBelow(installationId: string, version: number): void {
    for (const [key, entry] of this.#cache) {
      if (entry.grant.installationId === installationId && entry.grant.version < version) this.#cache.delete(key)
    }
  }

  #assertUsable(row: Installation): asserts row is Installation & { tokens: NonNullable<Installation['tokens']> } {
    const resource: Resource = row.locationId ? { locationId: row.locationId } : { companyId: row.companyId }
    if (row.status === 'uninstalled') {
      this.#dropBelow(row.id, Number.POSITIVE_INFINITY)
      throw new NotInstalledError(resource)
    }
    if (row.status === 'needs_reauthorization') {
      this.#dropBelow(row.id, Number.POSITIVE_INFINITY)
      const what = row.locationId ? `location ${row.locationId}` : `company ${row.companyId}`
      throw new ReauthorizationRequiredError(
        row.id,
        `The installation for ${what} must be authorized again by a HighLevel user${row.statusReason ? ` (${row.statusReason})` : ''}`,
      )
    }
    if (!row.tokens) throw new NotInstalledError(resource)
  }

  #resourceOf(target: { kind: 'location' | 'company'; id: string }): Resource {
    return target.kind === 'location' ? { locationId: target.id } : { companyId: target.id }
  }

  #staticGrant(target: { token: string; resourceId: string }): AccessGrant {
    return { accessToken: target.token, installationId: null, version: 0, expiresAt: Number.MAX_SAFE_INTEGER, resourceId: target.resourceId }
  }

  // ---------------------------------------------------------------------------------------------
  // Refresh (exactly once)
  // ---------------------------------------------------------------------------------------------

  /*
   * Why a refresh happens exactly once. HighLevel rotates refresh tokens: the first use of one kills
   * it and returns its successor, so two refreshes racing on one token leave the loser with
   * `invalid_grant`, and a successor that is not stored is a grant lost. Four things make it hold.
   * (1) In this process, every caller that finds the token stale joins one promise per installation
   * (`#flight`), so 200 concurrent callers make one attempt. (2) Across processes, that attempt runs
   * inside `vault.withRefreshLock` (a PostgreSQL advisory lock, or a SQLite lease), so one process at a
   * time may hold the refresh token. (3) Inside the lock the row is read again: if its version moved
   * since the caller saw it (or, for a plain expiry, its token is fresh again), the previous holder
   * already refreshed and we use its result without calling HighLevel. (4) The answer is stored with
   * `updateTokens(id, version, …)` — a compare-and-swap — before the new access token is returned to
   * anyone, and while the lock is still held; the next holder therefore always reads the successor.
   * The one window left is a crash between HighLevel's answer and the store (the test kills a process
   * exactly there): the rotated token is gone, the next holder's refresh gets `invalid_grant`, finds
   * the version unchanged (so no one else rotated) and recovers the grant through `/oauth/reconnect`
   * instead of asking the user. A caller's abort never cancels the shared attempt for the same reason:
   * abandoning it between answer and store would lose the grant.
   */
  async #refresh(id: string, seenVersion: number, options: { force: boolean }): Promise<Installation> {
    return (await this.#refreshTracked(id, seenVersion, options)).row
  }

  /** {@link TokenService.#refresh}, also telling whether this call (not a peer) asked HighLevel. */
  async #refreshTracked(id: string, seenVersion: number, options: { force: boolean }): Promise<{ row: Installation; refreshed: boolean }> {
    const first = await this.#flight(`refresh:${id}`, () => this.#refreshOnce(id, seenVersion, options.force))
    // A forced refresh (after a 401) that joined a flight which did not move the version got the
    // rejected token back: go once more, now that the in-process flight is over.
    if (options.force && first.row.version <= seenVersion) {
      return this.#flight(`refresh:${id}`, () => this.#refreshOnce(id, seenVersion, true))
    }
    return first
  }

  #refreshOnce(id: string, seenVersion: number, force: boolean): Promise<{ row: Installation; refreshed: boolean }> {
    return this.#vault.withRefreshLock(
      id,
      async () => {
        const row = await this.#vault.getInstallation(id)
        if (!row) throw new GhlError('GHL_NOT_INSTALLED', `No installation with id ${id}`)
        this.#assertUsable(row)
        // The version moved since the caller read the row: the previous lock holder refreshed (or the
        // row was re-installed). After a 401 any newer row will do; after an expiry only a fresh one.
        const moved = row.version !== seenVersion
        if (moved && (force || this.#isFresh(row))) return { row, refreshed: false }
        return { row: await this.#refreshLocked(row), refreshed: true }
      },
      this.#lockWaitMs === undefined ? undefined : { waitMs: this.#lockWaitMs },
    )
  }

  #isFresh(row: Installation): boolean {
    return !!row.tokens && this.#clock.now() < row.tokens.expiresAt.getTime() - this.#config.refreshMarginMs
  }

  /** Runs with the lock held and the row just read. */
  async #refreshLocked(row: Installation & { tokens: NonNullable<Installation['tokens']> }): Promise<Installation> {
    const refreshToken = row.tokens.refreshToken
    if (!refreshToken) return this.#reconnect(row, 'no refresh token is stored')
    let tokens: TokenResponse
    let sentAt = 0
    try {
      tokens = await this.#withRetry('token refresh', row.id, async () => {
        sentAt = this.#clock.now()
        return processTokenResponse(
          await refreshTokenGrantRequest(this.#http(), {
            clientId: this.#config.clientId,
            clientSecret: this.#config.clientSecret,
            refreshToken,
            userType: row.userType,
          }),
        )
      })
    } catch (err) {
      if (!isGrantRejected(err)) throw err
      // Rotation race: a holder whose lock lapsed (or another deployment) may have rotated it first.
      const again = await this.#vault.getInstallation(row.id)
      if (again && again.version !== row.version) {
        this.#logger.info({ installationId: row.id, version: again.version }, 'refresh token already rotated by another worker; using its token')
        this.#assertUsable(again)
        return again
      }
      return this.#reconnect(row, `refresh token rejected: ${err.oauthError ?? 'invalid_grant'}`)
    }
    await this.#hooks.afterRefreshResponse?.(row.id)
    return this.#storeTokens(row, tokens, sentAt, 'refreshed')
  }

  /** Stores a token-endpoint answer by compare-and-swap; on a lost swap, the stored row wins. */
  async #storeTokens(row: Installation, tokens: TokenResponse, sentAt: number, action: 'refreshed' | 'reconnected'): Promise<Installation> {
    const stored = await this.#vault.updateTokens(
      row.id,
      row.version,
      { accessToken: tokens.access_token, refreshToken: tokens.refresh_token, expiresAt: new Date(sentAt + tokens.expires_in * 1000) },
      { scopes: tokens.scope.split(/\s+/).filter(Boolean), status: 'active', statusReason: null },
    )
    if (!stored) {
      // Only possible if our lock lapsed (a SQLite lease outlived by a stalled holder): someone else
      // stored meanwhile; theirs is what every other reader sees, so use it.
      this.#logger.error({ installationId: row.id }, `${action} tokens lost a compare-and-swap; using the stored row`)
      const current = await this.#vault.getInstallation(row.id)
      if (!current) throw new GhlError('GHL_NOT_INSTALLED', `No installation with id ${row.id}`)
      this.#assertUsable(current)
      return current
    }
    await this.#vault.audit({ installationId: row.id, action, detail: { version: stored.version } }).catch((err: unknown) => {
      this.#logger.warn({ installationId: row.id, err }, 'audit write failed')
    })
    this.#logger.info({ installationId: row.id, version: stored.version }, `token ${action}`)
    this.#dropBelow(row.id, stored.version)
    this.#publish(row.id, stored.version)
    if (action === 'refreshed') this.#emit('refreshed', { installationId: row.id, version: stored.version })
    else this.#emit('reconnected', { installationId: row.id })
    return stored
  }

  /**
   * The grant is dead (refresh token rejected and no one else rotated it). `/oauth/reconnect` gives a
   * fresh authorization code for the same install without the user; exchange and store it. If HighLevel
   * refuses, the installation needs a user: mark it (kept, not deleted), tell listeners, throw.
   */
  async #reconnect(row: Installation, why: string): Promise<Installation> {
    let tokens: TokenResponse
    let sentAt = 0
    try {
      tokens = await this.#withRetry('reconnect', row.id, async () => {
        const code = processReconnectResponse(
          await reconnectRequest(this.#http(), {
            clientId: this.#config.clientId,
            clientSecret: this.#config.clientSecret,
            ...(row.locationId ? { locationId: row.locationId } : { companyId: row.companyId }),
          }),
        )
        sentAt = this.#clock.now()
        return processTokenResponse(
          await authorizationCodeGrantRequest(this.#http(), {
            clientId: this.#config.clientId,
            clientSecret: this.#config.clientSecret,
            code: code.authorizationCode,
            userType: row.userType,
          }),
        )
      })
    } catch (err) {
      // Blips, and our own credentials being refused, say nothing about this installation's grant.
      if (isTransient(err) || !(err instanceof OAuthError) || err.code === 'GHL_OAUTH_CLIENT_REJECTED') throw err
      const reason = `${why}; Reconnect refused (${err.oauthError ?? err.code}${err.upstreamStatus ? `, HTTP ${err.upstreamStatus}` : ''})`
      // Compare-and-swap: a re-install (or another writer) that stored a new grant while Reconnect was
      // being refused must not be marked dead. Then the newer row is the answer.
      const marked = await this.#vault.setStatus(row.id, 'needs_reauthorization', { reason, expectedVersion: row.version })
      if (!marked) {
        const current = await this.#vault.getInstallation(row.id)
        if (!current) throw new NotInstalledError(row.locationId ? { locationId: row.locationId } : { companyId: row.companyId })
        this.#logger.info({ installationId: row.id, version: current.version }, 'installation changed while Reconnect was refused; using the stored row')
        this.#assertUsable(current)
        this.#dropBelow(row.id, current.version)
        return current
      }
      await this.#vault.audit({ installationId: row.id, action: 'reauthorization_required', detail: { reason } }).catch(() => {})
      this.#logger.warn({ installationId: row.id, reason }, 'installation needs reauthorization')
      this.invalidate(row.id)
      this.#emit('reauthorizationRequired', { installationId: row.id, reason })
      const what = row.locationId ? `location ${row.locationId}` : `company ${row.companyId}`
      throw new ReauthorizationRequiredError(
        row.id,
        `HighLevel no longer accepts this app's grant for ${what} and Reconnect was refused: a HighLevel user must install the app again`,
        err,
      )
    }
    return this.#storeTokens(row, tokens, sentAt, 'reconnected')
  }

  // ---------------------------------------------------------------------------------------------
  // Agency-minted location tokens
  // ---------------------------------------------------------------------------------------------

  /** No row for the location: try the active agency installations of this app (usually one). */
  async #mintFromAnyAgency(locationId: string): Promise<Installation> {
    const agencies = (await this.#vault.listInstallations({ clientId: this.#config.clientId, status: 'active', source: 'oauth' })).filter(
      (i) => i.userType === 'Company' && i.locationId === null,
    )
    // Agencies that list the location among approvedLocations first; the others by trying.
    agencies.sort((a, b) => Number(b.approvedLocations.includes(locationId)) - Number(a.approvedLocations.includes(locationId)))
    for (const agency of agencies) {
      try {
        return await this.#mintFlight(agency.companyId, locationId, { force: false })
      } catch (err) {
        if (err instanceof NotInstalledError) continue
        throw err
      }
    }
    throw new NotInstalledError({ locationId })
  }

  /**
   * One mint per location in this process. Like {@link TokenService.#refreshTracked}: a forced re-mint
   * after a 401 that joined a flight which did not move past the version the caller saw (a non-forced
   * mint that found the rejected token still "fresh") goes once more, now that that flight is over.
   */
  async #mintFlight(companyId: string, locationId: string, options: { force: boolean; seenVersion?: number }): Promise<Installation> {
    const first = await this.#flight(`mint:${locationId}`, () => this.#mint(companyId, locationId, options))
    const seen = options.seenVersion
    if (options.force && seen !== undefined && first.source === 'agency' && first.version <= seen) {
      return this.#flight(`mint:${locationId}`, () => this.#mint(companyId, locationId, options))
    }
    return first
  }

  /**
   * Mints under the agency row's lock (every process minting for that agency queues there), after
   * re-checking that no one stored a fresh token meanwhile. The agency token itself is obtained
   * before taking the lock, since refreshing it takes the same lock.
   */
  async #mint(companyId: string, locationId: string, options: { force: boolean; seenVersion?: number }): Promise<Installation> {
    const agency = await this.#vault.findByCompany(this.#config.clientId, companyId)
    if (!agency) throw new NotInstalledError({ locationId }, `The app is not installed for location ${locationId} (no agency installation for company ${companyId})`)
    this.#assertUsable(agency)
    for (let attempt = 0; ; attempt++) {
      const agencyGrant = await this.getAccessToken({ kind: 'company', id: companyId })
      try {
        return await this.#vault.withRefreshLock(
          agency.id,
          async () => {
            const existing = await this.#vault.findByLocation(this.#config.clientId, locationId)
            if (existing && existing.status === 'active' && existing.tokens) {
              if (existing.source === 'oauth') return existing // the location has its own install
              // Someone minted since the caller looked: after a 401 any newer row will do; otherwise a
              // fresh one. An explicit mint (force, nothing seen) always mints.
              const moved = options.seenVersion === undefined || existing.version !== options.seenVersion
              if (moved && (options.force ? options.seenVersion !== undefined : this.#isFresh(existing))) return existing
            }
            const sentAt = this.#clock.now()
            const lt = await this.#withRetry('location token', agency.id, async () =>
              processLocationTokenResponse(
                await locationTokenRequest(this.#http(), {
                  agencyAccessToken: agencyGrant.accessToken,
                  companyId,
                  locationId,
                  version: this.#config.apiVersion,
                }),
              ),
            )
            // Only ever replaces an agency-minted row: the location's own OAuth installation may have been
            // stored meanwhile (its callback takes no agency lock), and overwriting it would lose its
            // refresh token. Strict on purpose: an OAuth row is kept even when uninstalled or needing
            // reauthorization (the location then answers NotInstalled / ReauthorizationRequired until
            // it is installed again) — a minted token never silently takes over a location's own grant.
            const stored = await this.#vault.upsertInstallation(
              {
                clientId: this.#config.clientId,
                companyId,
                locationId,
                userType: 'Location',
                userId: lt.userId ?? agency.userId,
                scopes: lt.scope ? lt.scope.split(/\s+/).filter(Boolean) : agency.scopes,
                planId: lt.planId ?? agency.planId,
                source: 'agency',
                parentId: agency.id,
                tokens: { accessToken: lt.access_token, refreshToken: null, expiresAt: new Date(sentAt + lt.expires_in * 1000) },
              },
              { onlyReplaceSource: ['agency'] },
            )
            if (stored.source !== 'agency') {
              this.#logger.info({ installationId: stored.id, locationId }, 'location has its own OAuth installation; minted token discarded')
              this.#assertUsable(stored)
              return stored
            }
            this.#logger.info({ installationId: stored.id, parentId: agency.id, locationId }, 'location token minted')
            this.#dropBelow(stored.id, stored.version)
            this.#publish(stored.id, stored.version)
            this.#emit('minted', { installationId: stored.id, parentId: agency.id, locationId })
            return stored
          },
          this.#lockWaitMs === undefined ? undefined : { waitMs: this.#lockWaitMs },
        )
      } catch (err) {
        if (err instanceof OAuthError && err.upstreamStatus === 401 && attempt === 0) {
          // The agency token was refused: refresh it (outside the lock) and mint again, once.
          await this.onUnauthorized({ kind: 'company', id: companyId }, agencyGrant)
          continue
        }
        if (err instanceof OAuthError && err.upstreamStatus !== undefined && [400, 403, 404, 422].includes(err.upstreamStatus)) {
          throw new NotInstalledError(
            { locationId },
            `The app is not installed for location ${locationId}: HighLevel refused a location token from company ${companyId} (HTTP ${err.upstreamStatus})`,
          )
        }
        throw err
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Plumbing
  // ---------------------------------------------------------------------------------------------

  #http(): OAuthHttp {
    return { apiUrl: this.#config.apiUrl, dispatcher: this.#dispatcher, timeoutMs: this.#config.tokenRequestTimeoutMs }
  }

  /** Retries transient failures with jittered exponential backoff; the grant is untouched by them. */
  async #withRetry<T>(what: string, installationId: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn()
      } catch (err) {
        if (!isTransient(err) || attempt >= this.#retry.attempts || this.#closed) throw err
        const delay = Math.min(this.#retry.maxDelayMs, this.#retry.baseDelayMs * 2 ** (attempt - 1)) * (0.5 + Math.random())
        this.#logger.warn({ installationId, attempt, code: (err as GhlError).code }, `${what} failed; retrying in ${Math.round(delay)} ms`)
        await sleep(delay)
      }
    }
  }

  #flight<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const existing = this.#flights.get(key)
    if (existing) return existing as Promise<T>
    const p: Promise<T> = Promise.resolve()
      .then(fn)
      .finally(() => {
        if (this.#flights.get(key) === p) this.#flights.delete(key)
      })
    this.#flights.set(key, p)
    return p
  }

  /** The caller stops waiting when its signal aborts; the shared work goes on. */
  #detach<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
    if (!signal) return work
    if (signal.aborted) return Promise.reject(new GhlError('GHL_ABORTED', 'The token request was aborted by the caller', { cause: signal.reason }))
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => reject(new GhlError('GHL_ABORTED', 'The token request was aborted by the caller', { cause: signal.reason }))
      signal.addEventListener('abort', onAbort, { once: true })
      work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
    })
  }

  #emit<K extends keyof TokenEvents>(event: K, payload: TokenEvents[K]): void {
    try {
      this.#events.emit(event, payload)
    } catch (err) {
      this.#logger.warn({ err, event }, 'token event listener threw')
    }
  }

  /** Tells the other instances: drop entries of this installation older than `version` (all, without one). */
  #publish(installationId: string, version?: number): void {
    if (!this.#redis) return
    this.#redis.publish(INVALIDATION_CHANNEL, version === undefined ? installationId : `${installationId}:${version}`).catch((err: unknown) => {
      this.#logger.warn({ installationId, err }, 'publishing a token invalidation failed')
    })
  }

  async #subscribe(): Promise<void> {
    if (!this.#redis) return
    const sub = this.#redis.duplicate()
    this.#subscriber = sub
    sub.on('error', (err: unknown) => this.#logger.warn({ error: errorText(err) }, 'token invalidation subscriber error'))
    sub.on('message', (channel: string, message: string) => {
      if (channel !== INVALIDATION_CHANNEL) return
      const at = message.lastIndexOf(':')
      const id = at > 0 ? message.slice(0, at) : message
      const version = at > 0 ? Number(message.slice(at + 1)) : Number.NaN
      // Drop entries older than the announced version (all of them when the message has none).
      this.#dropBelow(id, Number.isFinite(version) ? version : Number.POSITIVE_INFINITY)
    })
    try {
      await sub.subscribe(INVALIDATION_CHANNEL)
    } catch (err) {
      // When the client reconnects later (its retryStrategy allows it), subscribe then.
      const retry = (): void => {
        if (this.#closed) return
        sub.subscribe(INVALIDATION_CHANNEL).then(
          () => this.#logger.info('token invalidation subscription active after reconnecting'),
          (again: unknown) => {
            this.#logger.warn({ error: errorText(again) }, 'token invalidation subscription failed again')
            if (!this.#closed) sub.once('ready', retry)
          },
        )
      }
      sub.once('ready', retry)
      throw new GhlError('GHL_INTERNAL', `The Redis invalidation subscription failed: ${errorText(err)}`, { cause: err })
    }
  }
}

/** An error's message only (ioredis errors carry no credentials, but never log a whole client object). */
function errorText(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).slice(0, 300)
}
