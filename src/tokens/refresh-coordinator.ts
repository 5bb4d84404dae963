/**
 * The refresh coordinator: refreshes an installation's tokens exactly once across every process sharing
 * the vault, stores the rotated refresh token before anyone uses the new access token, and decides what
 * a refused refresh means — a rotation race (use the peer's result), a suspended location (keep the
 * refresh token, fail calls fast, retry slowly), or a dead grant (Reconnect while HighLevel offers it,
 * else re-consent by a user through a re-authorization link).
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-6 (refreshing an access token)
 * @see ../../../shared/reference/highlevel/FACTS.md ("Refresh token … using it invalidates it"; Reconnect; v3)
 */
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { GhlError, InstallationSuspendedError, NotInstalledError, OAuthError, ReauthorizationRequiredError } from '../errors.js'
import { processReconnectResponse, reconnectRequest } from '../oauth/reconnect.js'
import { authorizationCodeGrantRequest, processTokenResponse, refreshTokenGrantRequest, type TokenResponse } from '../oauth/token-endpoint.js'
import type { Installation } from '../vault/types.js'
import { safeEqual } from '../secrets.js'
import { isTransient, type TokenContext, type UsableRow } from './token-context.js'

/** The flag every instance reads before calling Reconnect: `available` / `unavailable` until it expires. */
export const RECONNECT_FLAG = 'reconnect'
/** The lease of the one instance asking HighLevel whether Reconnect still exists. */
const RECONNECT_PROBE_FLAG = 'reconnect.probe'

/** How {@link RefreshCoordinator.refresh} goes about it. */
export interface RefreshOptions {
  /** After a 401: any newer row will do; otherwise only a fresh one. */
  force: boolean
  /** The background refresher and operators retry suspended rows (a success makes them active again). */
  allowSuspended?: boolean
  /** Awaited between HighLevel's answer and storing it (the background refresher's pacing). */
  pace?: () => Promise<void>
}

/** The outcome of one refresh: the row to use, and whether this call (not a peer) asked HighLevel. */
export interface RefreshResult {
  row: Installation
  refreshed: boolean
}

/**
 * A rotated pair HighLevel gave this process that the database would not take (it stopped answering
 * for longer than the store's own retries). HighLevel has used up the refresh token it was given for
 * it, so this pair is the grant: it is kept in memory and stored as soon as the database answers.
 */
interface KeptPair {
  /** The version of the row the pair was asked for. */
  fromVersion: number
  /** The refresh token HighLevel used up for it (null after a Reconnect of a token-less row). */
  usedRefreshToken: string | null
  tokens: TokenResponse
  sentAt: number
  action: 'refreshed' | 'reconnected'
  /** Stores of it tried so far in the background (for the backoff). */
  attempts: number
  timer?: NodeJS.Timeout
}

/** The first background store of a kept pair after this long, doubling up to {@link KEPT_RETRY_MAX_MS}. */
const KEPT_RETRY_MS = 1000
const KEPT_RETRY_MAX_MS = 15_000

/** See the file comment. */
export class RefreshCoordinator {
  readonly #t: TokenContext
  readonly #owner = `refresher:${process.pid}:${randomUUID()}`
  /** Pairs not stored yet, by installation id (see {@link KeptPair}). */
  readonly #kept = new Map<string, KeptPair>()

  constructor(context: TokenContext) {
    this.#t = context
  }

  /*
   * Why a refresh happens exactly once. HighLevel rotates refresh tokens: the first use of one kills
   * it and returns its successor, so two refreshes racing on one token leave the loser with
   * `invalid_grant`, and a successor that is not stored is a grant lost. Four things make it hold.
   * (1) In this process, every caller that finds the token stale joins one flight per installation,
   * so 200 concurrent callers make one attempt. (2) Across processes, that attempt runs inside
   * `vault.locks.withRefreshLock` (a PostgreSQL advisory lock, or a SQLite lease), so one process at a
   * time may hold the refresh token. (3) Inside the lock the row is read again: if its version moved
   * since the caller saw it (or, for a plain expiry, its token is fresh again), the previous holder
   * already refreshed and we use its result without calling HighLevel. (4) The answer is stored with
   * `updateTokens(id, version, …)` — a compare-and-swap — before the new access token is returned to
   * anyone, and while the lock is still held; the next holder therefore always reads the successor.
   * The one window left is a crash between HighLevel's answer and the store (the tests kill a process
   * exactly there): the rotated token is gone, the next holder's refresh gets `invalid_grant`, finds the
   * version unchanged (so no one else rotated) and recovers through `/oauth/reconnect` while HighLevel
   * offers it — or marks the installation for re-consent. A caller's abort never cancels the shared
   * attempt for the same reason: abandoning it between answer and store would lose the grant.
   *
   * Every wait inside is bounded: the whole attempt (all retries, Reconnect included) by
   * `refreshBudgetMs`, each HTTP request by what is left of it, each database statement by the vault's
   * timeouts, and the lock wait of the others by `lockWaitMs`, which covers a holder's whole budget.
   */

  /**
   * Refreshes the installation unless someone already did since `seenVersion` was read (see
   * {@link RefreshOptions}).
   */
  async refresh(id: string, seenVersion: number, options: RefreshOptions): Promise<RefreshResult> {
    const first = await this.#t.flights.run(`refresh:${id}`, () => this.#refreshOnce(id, seenVersion, options))
    // A forced refresh (after a 401) that joined a flight which did not move the version got the
    // rejected token back: go once more, now that the in-process flight is over.
    if (options.force && first.row.version <= seenVersion) {
      return this.#t.flights.run(`refresh:${id}`, () => this.#refreshOnce(id, seenVersion, options))
    }
    return first
  }

  #refreshOnce(id: string, seenVersion: number, options: RefreshOptions): Promise<RefreshResult> {
    const t: TokenContext = this.#t
    if (t.closing) return Promise.reject(new GhlError('GHL_SHUTTING_DOWN', 'The connector is shutting down: no new refresh is started'))
    return t.vault.locks.withRefreshLock(
      id,
      async (locked) => {
        // The row as read under the lock (PostgreSQL reads it with the lock), else read now.
        let row = locked ?? (await t.vault.installations.get(id))
        if (!row) throw new NotInstalledError({}, `No installation with id ${id}`)
        // A pair this process got from HighLevel and could not store yet is the grant: store it before
        // anything else, never refresh with the refresh token it used up.
        const kept = this.#kept.get(id)
        if (kept) row = await this.#storeKept(row, kept)
        t.assertTokens(row, { allowSuspended: options.allowSuspended })
        // The version moved since the caller read the row: the previous lock holder refreshed (or the
        // row was re-installed). After a 401 any newer row will do; after an expiry only a fresh one.
        const moved = row.version !== seenVersion
        if (moved && row.status === 'active' && (options.force || t.isFresh(row))) return { row, refreshed: false }
        return { row: await this.#refreshLocked(row, options.pace), refreshed: true }
      },
      { waitMs: t.lockWaitMs },
    )
  }

  /** Runs with the lock held and the row just read. */
  async #refreshLocked(row: UsableRow, pace?: () => Promise<void>): Promise<Installation> {
    const t: TokenContext = this.#t
    const deadline = t.clock.now() + t.refreshBudgetMs
    const refreshToken = row.tokens.refreshToken
    if (!refreshToken) return this.#recover(row, 'no refresh token is stored', deadline)
    let tokens: TokenResponse
    // Expiry counts from the first send: a slow or resent answer never makes a token look longer-lived.
    const sentAt = t.clock.now()
    try {
      tokens = processTokenResponse(
        await refreshTokenGrantRequest(t.http(deadline), {
          clientId: t.config.clientId,
          clientSecret: t.config.clientSecret,
          refreshToken,
          userType: row.userType,
        }),
      )
    } catch (err) {
      if (err instanceof GhlError && err.code === 'GHL_INSTALLATION_SUSPENDED') throw await this.#suspend(row, err)
      if (isTransient(err)) throw await this.#transientFailure(row, err as GhlError)
      if (!(err instanceof OAuthError) || err.code !== 'GHL_OAUTH_GRANT_REJECTED') throw err
      // Rotation race: a holder whose lock lapsed (or another deployment) may have rotated it first.
      const again = await t.vault.installations.get(row.id)
      if (again && again.version !== row.version) {
        t.logger.info({ installationId: row.id, version: again.version }, 'refresh token already rotated by another worker; using its token')
        t.assertTokens(again)
        return again
      }
      return this.#recover(row, `refresh token rejected: ${err.oauthError ?? 'invalid_grant'}`, deadline)
    }
    await t.hooks.afterRefreshResponse?.(row.id)
    // The background refresher stores its answers one per turn of the event loop (see TurnPacer).
    await pace?.()
    return this.#storeTokens(row, tokens, sentAt, 'refreshed')
  }

  /** Stores a token-endpoint answer by compare-and-swap; on a lost swap, the stored row wins. */
  async #storeTokens(row: Installation, tokens: TokenResponse, sentAt: number, action: 'refreshed' | 'reconnected'): Promise<Installation> {
    const t: TokenContext = this.#t
    let stored: Installation | undefined
    try {
      stored = await this.#storePersistently(row, tokens, sentAt, action)
    } catch (err) {
      if (err instanceof GhlError && err.code === 'GHL_DATABASE_UNAVAILABLE') this.#keep(row, tokens, sentAt, action)
      throw err
    }
    if (!stored) {
      // Only possible if our lock lapsed (a SQLite lease outlived by a stalled holder): someone else
      // stored meanwhile; theirs is what every other reader sees, so use it.
      t.logger.error({ installationId: row.id }, `${action} tokens lost a compare-and-swap; using the stored row`)
      const current = await t.vault.installations.get(row.id)
      if (!current) throw new NotInstalledError({}, `No installation with id ${row.id}`)
      t.assertTokens(current)
      return current
    }
    t.logger.info({ installationId: row.id, version: stored.version }, `token ${action}`)
    t.announce(row.id, stored.version)
    if (row.status === 'suspended') {
      t.logger.info({ installationId: row.id }, 'suspended installation refreshed: active again')
      await t.audit(row.id, 'reactivated', {})
      t.emit('reactivated', { installationId: row.id })
    }
    if (action === 'refreshed') t.emit('refreshed', { installationId: row.id, version: stored.version })
    else t.emit('reconnected', { installationId: row.id })
    return stored
  }

  /**
   * The compare-and-swap store of a rotated pair, retried while the database does not answer: HighLevel
   * has already used up the old refresh token, so giving up here would lose the grant (and, with
   * Reconnect removed, need a user). Bounded by the refresh budget plus the lock wait of the others;
   * the lock is held meanwhile, so no other holder can refresh with the dead token.
   */
  async #storePersistently(row: Installation, tokens: TokenResponse, sentAt: number, action: 'refreshed' | 'reconnected'): Promise<Installation | undefined> {
    const t: TokenContext = this.#t
    const until = t.clock.now() + Math.max(t.refreshBudgetMs, t.config.database.statementTimeoutMs * 3)
    for (let attempt = 1; ; attempt++) {
      try {
        return await t.vault.installations.updateTokens(
          row.id,
          row.version,
          { accessToken: tokens.access_token, refreshToken: tokens.refresh_token, expiresAt: new Date(sentAt + tokens.expires_in * 1000) },
          // The audit entry is written with the tokens (one statement on PostgreSQL, one transaction on SQLite).
          { scopes: tokens.scope.split(/\s+/).filter(Boolean), status: 'active', statusReason: null, audit: { action } },
        )
      } catch (err) {
        if (!(err instanceof GhlError && err.code === 'GHL_DATABASE_UNAVAILABLE') || t.clock.now() >= until) {
          t.logger.error({ installationId: row.id, code: (err as GhlError).code, attempt }, `${action} tokens could not be stored yet`)
          throw err
        }
        t.logger.warn({ installationId: row.id, attempt }, `${action} tokens not stored yet (the database did not answer); trying again`)
        await sleep(Math.min(2000, 100 * 2 ** Math.min(attempt, 5)))
      }
    }
  }

  /**
   * Keeps a pair the database would not take, and stores it in the background as soon as it answers
   * (retried with backoff, under the refresh lock). Until then this process's refreshes of the row
   * store it instead of refreshing (see {@link RefreshCoordinator.#refreshOnce}). Another process may
   * meanwhile refresh with the used-up token, get `invalid_grant` and mark the row for re-consent: the
   * kept pair still wins then, since the row holds the token it used up (see {@link RefreshCoordinator.#storeKept}).
   * What is kept is lost only if this process ends before the database answers (logged at shutdown).
   */
  #keep(row: Installation, tokens: TokenResponse, sentAt: number, action: 'refreshed' | 'reconnected'): void {
    const t: TokenContext = this.#t
    const previous = this.#kept.get(row.id)
    clearTimeout(previous?.timer)
    const kept: KeptPair = { fromVersion: row.version, usedRefreshToken: row.tokens?.refreshToken ?? null, tokens, sentAt, action, attempts: 0 }
    this.#kept.set(row.id, kept)
    t.logger.error({ installationId: row.id }, `${action} tokens kept in memory until the database answers: this process holds the grant`)
    this.#scheduleKept(row.id, kept)
  }

  #scheduleKept(id: string, kept: KeptPair): void {
    const delay = Math.min(KEPT_RETRY_MAX_MS, KEPT_RETRY_MS * 2 ** Math.min(kept.attempts, 4))
    kept.timer = setTimeout(() => void this.#retryKept(id, kept), delay)
    kept.timer.unref()
  }

  /** One background attempt to store a kept pair, under the refresh lock. */
  async #retryKept(id: string, kept: KeptPair, waitMs = this.#t.lockWaitMs): Promise<void> {
    const t: TokenContext = this.#t
    if (this.#kept.get(id) !== kept) return
    kept.attempts++
    try {
      await t.flights.run(`refresh:${id}`, () =>
        t.vault.locks.withRefreshLock(
          id,
          async (locked) => {
            const row = locked ?? (await t.vault.installations.get(id))
            if (!row) {
              this.#forgetKept(id)
              return
            }
            if (this.#kept.get(id) === kept) await this.#storeKept(row, kept)
          },
          { waitMs },
        ),
      )
    } catch (err) {
      t.logger.warn({ installationId: id, attempt: kept.attempts, code: (err as GhlError).code }, 'kept tokens not stored yet; trying again')
    }
    if (this.#kept.get(id) === kept) this.#scheduleKept(id, kept)
  }

  /**
   * Stores a kept pair with the refresh lock held and `row` just read; returns the row to go on with.
   * The pair is the grant while the row is the one it was asked for, or still holds the refresh token
   * it used up (another process found that token dead meanwhile and marked the row for re-consent, or
   * was refused): it is stored, and the row is active again. A row holding any other token has a newer
   * grant (a re-install, another instance's Reconnect): the kept pair is dropped.
   */
  async #storeKept(row: Installation, kept: KeptPair): Promise<Installation> {
    const t: TokenContext = this.#t
    // An uninstalled row stays uninstalled: its grant was revoked by the uninstall, whatever is kept.
    const holdsUsed = row.status !== 'uninstalled' && sameToken(row.tokens?.refreshToken ?? null, kept.usedRefreshToken)
    if (row.status === 'uninstalled' || (row.version !== kept.fromVersion && !holdsUsed)) {
      this.#forgetKept(row.id)
      t.logger.info({ installationId: row.id, version: row.version }, 'kept tokens dropped: a newer grant was stored meanwhile, or the app was uninstalled')
      return row
    }
    const stored = await t.vault.installations.updateTokens(
      row.id,
      row.version,
      { accessToken: kept.tokens.access_token, refreshToken: kept.tokens.refresh_token, expiresAt: new Date(kept.sentAt + kept.tokens.expires_in * 1000) },
      { scopes: kept.tokens.scope.split(/\s+/).filter(Boolean), status: 'active', statusReason: null, audit: { action: kept.action, detail: { kept: true } } },
    )
    if (!stored) return (await t.vault.installations.get(row.id)) ?? row
    this.#forgetKept(row.id)
    t.logger.warn({ installationId: row.id, version: stored.version }, `kept ${kept.action} tokens stored: the grant is safe again`)
    t.announce(row.id, stored.version)
    if (row.status !== 'active') {
      await t.audit(row.id, 'reactivated', { from: row.status })
      t.emit('reactivated', { installationId: row.id })
    }
    if (kept.action === 'refreshed') t.emit('refreshed', { installationId: row.id, version: stored.version })
    else t.emit('reconnected', { installationId: row.id })
    return stored
  }

  #forgetKept(id: string): void {
    clearTimeout(this.#kept.get(id)?.timer)
    this.#kept.delete(id)
  }

  /**
   * At shutdown: one last attempt to store what is kept, within `deadline` (`Date.now()` ms); what still is
   * not stored is logged — those grants are lost with this process (Reconnect, else re-consent).
   */
  async storeKeptBeforeExit(deadline: number): Promise<number> {
    const t: TokenContext = this.#t
    for (const [id, kept] of [...this.#kept]) {
      const left = deadline - Date.now()
      if (left <= 0) break
      clearTimeout(kept.timer)
      kept.timer = undefined
      await this.#retryKept(id, kept, left).catch(() => {})
      clearTimeout(this.#kept.get(id)?.timer)
    }
    const lost = [...this.#kept.keys()]
    for (const id of lost) this.#forgetKept(id)
    if (lost.length > 0) t.logger.error({ installationIds: lost }, 'shutdown: tokens kept in memory were never stored; these grants are lost (Reconnect, else re-authorization)')
    return lost.length
  }

  /**
   * HighLevel said "Location is not active": a suspended sub-account. The refresh token was not used
   * up (oauth-v3.json `locationNotActive`: the same token works once the location is active again), so
   * it is kept; the row is marked `suspended` (calls fail fast) and retried on a slow schedule.
   */
  async #suspend(row: UsableRow, err: GhlError): Promise<GhlError> {
    const t: TokenContext = this.#t
    const reason = `HighLevel: location is not active (${err.message.slice(0, 160)})`
    const retryAt = new Date(t.clock.now() + t.config.suspendedRetryMs)
    const marked = await t.vault.installations.setStatus(row.id, 'suspended', { reason, expectedVersion: row.version, retryAt })
    if (!marked) return err
    t.announce(row.id)
    if (row.status !== 'suspended') {
      await t.audit(row.id, 'suspended', { reason })
      t.logger.warn({ installationId: row.id, retryAt }, 'installation suspended: HighLevel reports the location as not active')
      t.emit('suspended', { installationId: row.id, reason })
    }
    return new InstallationSuspendedError(
      row.id,
      `HighLevel reports location ${row.locationId ?? row.companyId} as not active (suspended): calls resume by themselves once it is reactivated (next check ${retryAt.toISOString()})`,
    )
  }

  /**
   * A blip (5xx, timeout, network, malformed answer) after every retry: the grant is untouched. The
   * failure is counted; after `refreshFailureWarn` in a row the installation is reported before it is
   * lost (its access token keeps working until it expires; the refresher tries again with backoff).
   */
  async #transientFailure(row: Installation, err: GhlError): Promise<GhlError> {
    const t: TokenContext = this.#t
    const failures = row.refreshFailures + 1
    const backoff = Math.min(30 * 60_000, 30_000 * 2 ** Math.min(10, failures - 1))
    const lastError = `${err.code}: ${err.message}`.slice(0, 300)
    try {
      const count = await t.vault.installations.recordFailure(row.id, { error: lastError, retryAt: new Date(t.clock.now() + backoff) })
      if (count >= t.config.refreshFailureWarn) {
        t.logger.warn({ installationId: row.id, failures: count, code: err.code }, 'token refresh keeps failing; the installation is at risk')
        if (count === t.config.refreshFailureWarn) await t.audit(row.id, 'refresh_failing', { failures: count, lastError })
        t.emit('refreshFailing', { installationId: row.id, failures: count, lastError })
      }
    } catch (recordErr) {
      t.logger.warn({ installationId: row.id, err: recordErr }, 'could not record the refresh failure')
    }
    return err
  }

  /**
   * The grant is dead (no one else rotated it). While HighLevel offers `/oauth/reconnect` it gives a
   * fresh authorization code for the same install without a user; since September 2026 it answers
   * "API endpoint has been removed" (FACTS.md) — remembered for every instance, so no installation pays
   * a call to learn it again — and the installation is marked for re-consent.
   */
  async #recover(row: UsableRow, why: string, deadline: number): Promise<Installation> {
    const t: TokenContext = this.#t
    const availability = await this.#reconnectAvailability()
    if (availability !== 'unavailable') {
      try {
        const { tokens, sentAt } = await this.#reconnect(row, deadline)
        if (availability === 'probing') await this.#settleProbe('available')
        return this.#storeTokens(row, tokens, sentAt, 'reconnected')
      } catch (err) {
        if (err instanceof OAuthError && err.oauthError === 'endpoint_removed') {
          await this.#settleProbe('unavailable')
          t.logger.warn(
            { until: new Date(t.clock.now() + t.config.reconnectUnavailableMs) },
            "HighLevel's Reconnect endpoint is unavailable for this app; installations that lose their grant need a user to re-authorize",
          )
          return this.#needsUser(row, `${why}; Reconnect is unavailable (HighLevel: endpoint removed)`)
        }
        if (availability === 'probing') await this.#settleProbe(isTransient(err) ? undefined : 'available')
        // Blips, and our own credentials being refused, say nothing about this installation's grant.
        if (isTransient(err) || !(err instanceof OAuthError) || err.code === 'GHL_OAUTH_CLIENT_REJECTED') throw err
        return this.#needsUser(row, `${why}; Reconnect refused (${err.oauthError ?? err.code}${err.upstreamStatus ? `, HTTP ${err.upstreamStatus}` : ''})`, err)
      }
    }
    return this.#needsUser(row, `${why}; Reconnect is unavailable for this app`)
  }

  async #reconnect(row: UsableRow, deadline: number): Promise<{ tokens: TokenResponse; sentAt: number }> {
    const t: TokenContext = this.#t
    const code = processReconnectResponse(
      await reconnectRequest(t.http(deadline), {
        clientId: t.config.clientId,
        clientSecret: t.config.clientSecret,
        ...(row.locationId ? { locationId: row.locationId } : { companyId: row.companyId }),
      }),
    )
    const sentAt = t.clock.now()
    const tokens = processTokenResponse(
      await authorizationCodeGrantRequest(t.http(deadline), {
        clientId: t.config.clientId,
        clientSecret: t.config.clientSecret,
        code: code.authorizationCode,
        userType: row.userType,
      }),
    )
    return { tokens, sentAt }
  }

  /**
   * What every instance knows of Reconnect: `unavailable` (skip it), `available`, or `probing` — no one
   * knows, and this instance holds the lease to ask (the others wait for its answer, so one call
   * settles it for the whole app however many grants die at once).
   */
  async #reconnectAvailability(): Promise<'available' | 'unavailable' | 'probing'> {
    const t: TokenContext = this.#t
    const waitUntil = t.clock.now() + t.config.tokenRequestTimeoutMs * 2
    for (;;) {
      const flag = await t.vault.flags.get(RECONNECT_FLAG)
      if (flag) return flag.value === 'unavailable' ? 'unavailable' : 'available'
      const lease = new Date(t.clock.now() + t.config.tokenRequestTimeoutMs * 2)
      if (await t.vault.flags.claim(RECONNECT_PROBE_FLAG, this.#owner, lease)) {
        // A prober records its answer before it gives up the lease: the lease free again may mean the
        // answer is in — read it once more rather than ask HighLevel a second time.
        const answered = await t.vault.flags.get(RECONNECT_FLAG)
        if (!answered) return 'probing'
        await t.vault.flags.delete(RECONNECT_PROBE_FLAG)
        return answered.value === 'unavailable' ? 'unavailable' : 'available'
      }
      // Another instance is asking HighLevel; its answer lands in the flag.
      if (t.clock.now() >= waitUntil) return 'available'
      await sleep(50 + Math.random() * 50)
    }
  }

  /** Records what the probe learned (for every instance) and releases the probe lease. */
  async #settleProbe(result: 'available' | 'unavailable' | undefined): Promise<void> {
    const t: TokenContext = this.#t
    try {
      if (result) await t.vault.flags.set(RECONNECT_FLAG, result, new Date(t.clock.now() + t.config.reconnectUnavailableMs))
      await t.vault.flags.delete(RECONNECT_PROBE_FLAG)
    } catch (err) {
      t.logger.warn({ err }, 'could not record whether Reconnect is available')
    }
  }

  /**
   * The grant cannot be recovered without a user: mark it (kept, not deleted), tell listeners with the
   * re-authorization link, throw. Compare-and-swap: a re-install (or another writer) that stored a new
   * grant meanwhile must not be marked dead; then the newer row is the answer.
   */
  async #needsUser(row: UsableRow, reason: string, cause?: unknown): Promise<Installation> {
    const t: TokenContext = this.#t
    const marked = await t.vault.installations.setStatus(row.id, 'needs_reauthorization', { reason, expectedVersion: row.version })
    if (!marked) {
      const current = await t.vault.installations.get(row.id)
      if (!current) throw new NotInstalledError(row.locationId ? { locationId: row.locationId } : { companyId: row.companyId })
      t.logger.info({ installationId: row.id, version: current.version }, 'installation changed while its grant was found dead; using the stored row')
      t.assertTokens(current)
      t.cache.dropBelow(row.id, current.version)
      return current
    }
    const url = t.reauthorizationUrl(row.id)
    await t.audit(row.id, 'reauthorization_required', { reason })
    t.logger.warn({ installationId: row.id, reason }, 'installation needs reauthorization')
    t.announce(row.id)
    t.emit('reauthorizationRequired', { installationId: row.id, reason, reauthorizationUrl: url })
    const what = row.locationId ? `location ${row.locationId}` : `company ${row.companyId}`
    throw new ReauthorizationRequiredError(
      row.id,
      `HighLevel no longer accepts this app's grant for ${what} (${reason}): a HighLevel user of that account must authorize the app again — re-authorization link: ${url}`,
      cause,
      url,
    )
  }
}

/** Whether a row holds the refresh token a kept pair used up (constant time; no token is never a match). */
function sameToken(a: string | null, b: string | null): boolean {
  return a !== null && b !== null && safeEqual(a, b)
}
