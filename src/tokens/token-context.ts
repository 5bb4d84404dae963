/**
 * What the parts of the token manager share: settings, the vault, the OAuth transport, the cache and
 * the invalidation bus, the event sink, and the checks every part applies to a stored row.
 */
import type { EventEmitter } from 'node:events'
import type { Dispatcher } from 'undici'
import type { Clock } from '../clock.js'
import type { Config } from '../config.js'
import { GhlError, InstallationSuspendedError, NotInstalledError, ReauthorizationRequiredError } from '../errors.js'
import type { Logger } from '../logger.js'
import type { OAuthHttp } from '../oauth/http.js'
import type { Transport } from '../client/transport.js'
import type { Installation, InstallationSummary, Vault } from '../vault/types.js'
import type { InvalidationBus } from './invalidation-bus.js'
import type { CacheEntry, TokenCache } from './token-cache.js'
import type { SingleFlight } from './single-flight.js'
import type { AccessGrant, TokenEvents } from './types.js'

/** Retries of transient token-endpoint failures (5xx, timeout, network, malformed answer). */
export interface RetryOptions {
  /** Attempts in all, including the first (default 3). */
  attempts?: number
  /** First backoff in ms (default 100); doubles per attempt, jittered ×0.5–1.5. */
  baseDelayMs?: number
  /** Longest backoff in ms (default 1000). */
  maxDelayMs?: number
}

/** Test and operations hooks of the token manager. */
export interface TokenServiceHooks {
  /**
   * Called after HighLevel answered a refresh successfully and before the answer is stored: the
   * window in which a crash loses the rotated refresh token (tests kill a process here).
   */
  afterRefreshResponse?: (installationId: string) => Promise<void>
}

/** A stored row that can hand out a token. */
export type UsableRow = Installation & { tokens: NonNullable<Installation['tokens']> }

const TRANSIENT = new Set(['GHL_UPSTREAM_UNAVAILABLE', 'GHL_TIMEOUT', 'GHL_NETWORK', 'GHL_OAUTH_INVALID_RESPONSE'])

/** A failure that says nothing about the grant: HighLevel or the network blinked. */
export function isTransient(err: unknown): boolean {
  return err instanceof GhlError && TRANSIENT.has(err.code)
}

/** The shared state and helpers of the token manager's parts. */
export class TokenContext {
  readonly config: Config
  readonly vault: Vault
  readonly clock: Clock
  readonly logger: Logger
  readonly dispatcher: Dispatcher | undefined
  readonly cache: TokenCache
  readonly bus: InvalidationBus
  readonly flights: SingleFlight
  readonly hooks: TokenServiceHooks
  /** The HTTP path to HighLevel's OAuth endpoints (the client's deadline, retry and send steps). */
  readonly transport: Transport
  /** The longest a whole refresh (every attempt and backoff, Reconnect included) may take. */
  readonly refreshBudgetMs: number
  /** How long to wait for another holder of an installation's refresh lock (covers its whole budget). */
  readonly lockWaitMs: number
  readonly #events: EventEmitter
  #closing = false

  constructor(parts: {
    config: Config
    vault: Vault
    clock: Clock
    logger: Logger
    dispatcher: Dispatcher | undefined
    cache: TokenCache
    bus: InvalidationBus
    flights: SingleFlight
    hooks: TokenServiceHooks
    transport: Transport
    refreshBudgetMs: number
    lockWaitMs: number
    events: EventEmitter
  }) {
    this.config = parts.config
    this.vault = parts.vault
    this.clock = parts.clock
    this.logger = parts.logger
    this.dispatcher = parts.dispatcher
    this.cache = parts.cache
    this.bus = parts.bus
    this.flights = parts.flights
    this.hooks = parts.hooks
    this.transport = parts.transport
    this.refreshBudgetMs = parts.refreshBudgetMs
    this.lockWaitMs = parts.lockWaitMs
    this.#events = parts.events
  }

  get closing(): boolean {
    return this.#closing
  }

  markClosing(): void {
    this.#closing = true
  }

  /**
   * How OAuth requests reach HighLevel: through the shared transport (retries of what is safe to resend,
   * with backoff), each request bounded by what is left of `deadline` (epoch ms) and each attempt by the
   * token timeout.
   */
  http(deadline: number): OAuthHttp {
    return {
      apiUrl: this.config.apiUrl,
      dispatcher: this.dispatcher,
      timeoutMs: Math.max(1, deadline - this.clock.now()),
      attemptTimeoutMs: this.config.tokenRequestTimeoutMs,
      version: this.config.oauthVersion,
      transport: this.transport,
    }
  }

  emit<K extends keyof TokenEvents>(event: K, payload: TokenEvents[K]): void {
    try {
      this.#events.emit(event, payload)
    } catch (err) {
      this.logger.warn({ err, event }, 'token event listener threw')
    }
  }

  /** Audits, never failing the caller (the row is what matters; the audit trail is best effort). */
  async audit(installationId: string | null, action: string, detail: Record<string, unknown>): Promise<void> {
    await this.vault.audit.append({ installationId, action, detail }).catch((err: unknown) => {
      this.logger.warn({ installationId, err }, 'audit write failed')
    })
  }

  /** This instance and (with Redis) every other one: entries of `id` older than `version` are stale. */
  announce(installationId: string, version?: number): void {
    this.cache.dropBelow(installationId, version ?? Number.POSITIVE_INFINITY)
    this.bus.publish(installationId, version)
  }

  /** The connector's re-authorization link of an installation (completing it restores the same row). */
  reauthorizationUrl(installationId: string): string {
    return `${this.config.publicUrl}/oauth/reauthorize/${encodeURIComponent(installationId)}`
  }

  /**
   * Throws the error a call should get for a row that cannot hand out a token: not installed,
   * suspended, or needing a user. A token-less `agency` row (a covered location not minted yet) is
   * usable: the caller mints.
   */
  assertUsable(row: InstallationSummary, options: { allowSuspended?: boolean } = {}): void {
    const what = row.locationId ? `location ${row.locationId}` : `company ${row.companyId}`
    const resource = row.locationId ? { locationId: row.locationId } : { companyId: row.companyId }
    if (row.status === 'uninstalled') {
      this.cache.dropBelow(row.id, Number.POSITIVE_INFINITY)
      throw new NotInstalledError(resource)
    }
    if (row.status === 'needs_reauthorization') {
      this.cache.dropBelow(row.id, Number.POSITIVE_INFINITY)
      throw new ReauthorizationRequiredError(
        row.id,
        `The installation for ${what} must be authorized again by a HighLevel user${row.statusReason ? ` (${row.statusReason})` : ''}; re-authorization link: ${this.reauthorizationUrl(row.id)}`,
        undefined,
        this.reauthorizationUrl(row.id),
      )
    }
    if (row.status === 'suspended' && !options.allowSuspended) {
      this.cache.dropBelow(row.id, Number.POSITIVE_INFINITY)
      throw new InstallationSuspendedError(
        row.id,
        `HighLevel reports ${what} as not active (suspended, e.g. a paused or unpaid sub-account): calls resume by themselves once it is reactivated${row.retryAt ? ` (next check ${row.retryAt.toISOString()})` : ''}`,
      )
    }
  }

  /** A row with tokens, or NotInstalledError. */
  assertTokens(row: Installation, options: { allowSuspended?: boolean } = {}): asserts row is UsableRow {
    this.assertUsable(row, options)
    if (!row.tokens) throw new NotInstalledError(row.locationId ? { locationId: row.locationId } : { companyId: row.companyId })
  }

  /** Whether a row's token is good for longer than the refresh margin. */
  isFresh(row: Installation): boolean {
    return !!row.tokens && this.clock.now() < row.tokens.expiresAt.getTime() - this.config.refreshMarginMs
  }

  /** The cache entry for a stored row (the jitter spreads the instances' refresh-ahead). */
  entryFor(row: UsableRow): CacheEntry {
    const expiresAt = row.tokens.expiresAt.getTime()
    const jitter = this.config.refreshJitterMs > 0 ? Math.floor(Math.random() * this.config.refreshJitterMs) : 0
    const grant: AccessGrant = Object.freeze({
      accessToken: row.tokens.accessToken,
      installationId: row.id,
      version: row.version,
      expiresAt,
      resourceId: row.locationId ?? row.companyId,
      scopes: Object.freeze([...row.scopes]),
      userType: row.userType,
    })
    return { grant, refreshAt: expiresAt - this.config.refreshMarginMs - jitter, used: true }
  }

  /** Caches a stored row (never over a newer one) and returns its entry. */
  remember(row: Installation): CacheEntry {
    this.assertTokens(row)
    const key = row.locationId ? `location:${row.locationId}` : `company:${row.companyId}`
    return this.cache.set(key, this.entryFor(row))
  }
}
