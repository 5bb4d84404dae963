/**
 * Sub-account (location) tokens from agency (company) installations: `POST /oauth/locationToken` (v3
 * `/oauth/location-token`) with the agency's token, stored as a `source: 'agency'` row and minted again
 * when it expires (its answer has no refresh token in v2).
 *
 * Which agency covers a location is known from the vault in one indexed read — the location's own row,
 * which is a token-less `agency` row when an install approved or listed the location but nothing was
 * minted yet. A location the vault knows nothing of is tried against the app's agency installations
 * only while there are few (HighLevel decides: an agency user who picked one location can get a Company
 * token with no location ids, HighLevel API docs issue #294); the answer "not installed" is remembered
 * briefly — the next calls for that id send no query — so a stream of unknown ids costs at most one
 * indexed query each and never slows the other calls.
 */
import { GhlError, NotInstalledError, OAuthError } from '../errors.js'
import { locationTokenRequest, processLocationTokenResponse } from '../oauth/location-token.js'
import type { Installation, InstallationSummary } from '../vault/types.js'
import type { TokenContext } from './token-context.js'

/** Agency installations tried for a location the vault does not know (more: the location must be covered). */
export const MAX_AGENCIES_TRIED = 3
/**
 * How long "not installed" is remembered for an unknown location id: calls for it then send no query at
 * all. Short, because an install on another instance is heard of only through Redis (a message without
 * a version makes every instance forget); without Redis a location probed just before its install
 * answers "not installed" on the other instances for at most this long.
 */
export const NEGATIVE_TTL_MS = 10_000
const NEGATIVE_MAX = 10_000
/** How long the list of the app's agency installations is reused. */
const AGENCIES_TTL_MS = 10_000

/** Obtains the company's token (refreshing it when needed) — the token service's own entry point. */
export type CompanyTokenSource = {
  company(companyId: string): Promise<{ accessToken: string; version: number }>
  companyUnauthorized(companyId: string, rejected: { accessToken: string; version: number }): Promise<unknown>
}

/** See the file comment. */
export class LocationMinter {
  readonly #t: TokenContext
  readonly #tokens: CompanyTokenSource
  /** locationId → until when "not installed" stands. */
  readonly #unknown = new Map<string, number>()
  #agencies: { at: number; list: Promise<InstallationSummary[]> } | undefined

  constructor(context: TokenContext, tokens: CompanyTokenSource) {
    this.#t = context
    this.#tokens = tokens
  }

  /** Forgets what was learned of agencies and unknown locations (an agency was installed or removed). */
  forget(): void {
    this.#unknown.clear()
    this.#agencies = undefined
  }

  /** Whether "not installed" is remembered for this location (then no query is needed). */
  knownUnknown(locationId: string): boolean {
    const until = this.#unknown.get(locationId)
    if (until === undefined) return false
    if (this.#t.clock.now() < until) return true
    this.#unknown.delete(locationId)
    return false
  }

  /**
   * A location with no row at all: mint from one of the app's (few) agency installations, or
   * NotInstalledError — remembered for a while.
   */
  async mintUncovered(locationId: string): Promise<Installation> {
    const t: TokenContext = this.#t
    if (this.knownUnknown(locationId)) throw new NotInstalledError({ locationId })
    const agencies = await this.#agencyList()
    if (agencies.length <= MAX_AGENCIES_TRIED) {
      // Agencies that list the location among approvedLocations first; the others by trying.
      const ordered = [...agencies].sort((a, b) => Number(b.approvedLocations.includes(locationId)) - Number(a.approvedLocations.includes(locationId)))
      for (const agency of ordered) {
        try {
          return await this.mint(agency.companyId, locationId, { force: false })
        } catch (err) {
          if (err instanceof NotInstalledError) continue
          throw err
        }
      }
    }
    if (this.#unknown.size >= NEGATIVE_MAX) this.#unknown.delete(this.#unknown.keys().next().value!)
    this.#unknown.set(locationId, t.clock.now() + NEGATIVE_TTL_MS)
    throw new NotInstalledError(
      { locationId },
      agencies.length > MAX_AGENCIES_TRIED
        ? `The app is not installed for location ${locationId} (no installation covers it; with ${agencies.length} agency installations the location becomes known through its INSTALL webhook or ghl.installedLocations(companyId))`
        : undefined,
    )
  }

  /**
   * One mint per location in this process. A forced re-mint after a 401 that joined a flight which did
   * not move past the version the caller saw (a non-forced mint that found the rejected token still
   * "fresh") goes once more, now that that flight is over.
   */
  async mint(companyId: string, locationId: string, options: { force: boolean; seenVersion?: number }): Promise<Installation> {
    const first = await this.#t.flights.run(`mint:${locationId}`, () => this.#mint(companyId, locationId, options))
    const seen = options.seenVersion
    if (options.force && seen !== undefined && first.source === 'agency' && first.version <= seen) {
      return this.#t.flights.run(`mint:${locationId}`, () => this.#mint(companyId, locationId, options))
    }
    return first
  }

  /**
   * Mints under the agency row's lock (every process minting for that agency queues there), after
   * re-checking that no one stored a fresh token meanwhile. The agency token itself is obtained
   * before taking the lock, since refreshing it takes the same lock.
   */
  async #mint(companyId: string, locationId: string, options: { force: boolean; seenVersion?: number }): Promise<Installation> {
    const t: TokenContext = this.#t
    if (t.closing) throw new GhlError('GHL_SHUTTING_DOWN', 'The connector is shutting down: no new location token is minted')
    const agency = await t.vault.installations.findByCompany(t.config.clientId, companyId)
    if (!agency) throw new NotInstalledError({ locationId }, `The app is not installed for location ${locationId} (no agency installation for company ${companyId})`)
    t.assertTokens(agency)
    for (let attempt = 0; ; attempt++) {
      const agencyGrant = await this.#tokens.company(companyId)
      try {
        return await t.vault.locks.withRefreshLock(
          agency.id,
          async () => {
            const existing = await t.vault.installations.findByLocation(t.config.clientId, locationId)
            if (existing && existing.status === 'active' && existing.tokens) {
              if (existing.source === 'oauth') return existing // the location has its own install
              // Someone minted since the caller looked: after a 401 any newer row will do; otherwise a
              // fresh one. An explicit mint (force, nothing seen) always mints.
              const moved = options.seenVersion === undefined || existing.version !== options.seenVersion
              if (moved && (options.force ? options.seenVersion !== undefined : t.isFresh(existing))) return existing
            }
            const deadline = t.clock.now() + t.refreshBudgetMs
            const sentAt = t.clock.now()
            const lt = processLocationTokenResponse(
              await locationTokenRequest(t.http(deadline), {
                agencyAccessToken: agencyGrant.accessToken,
                companyId,
                locationId,
                version: t.config.apiVersion,
              }),
            )
            // Only ever replaces an agency-minted row: the location's own OAuth installation may have been
            // stored meanwhile (its callback takes no agency lock), and overwriting it would lose its
            // refresh token. Strict on purpose: an OAuth row is kept even when uninstalled or needing
            // reauthorization (the location then answers NotInstalled / ReauthorizationRequired until
            // it is installed again) — a minted token never silently takes over a location's own grant.
            const stored = await t.vault.installations.upsert(
              {
                clientId: t.config.clientId,
                companyId,
                locationId,
                userType: 'Location',
                userId: lt.userId ?? agency.userId,
                scopes: lt.scope ? lt.scope.split(/\s+/).filter(Boolean) : agency.scopes,
                planId: lt.planId ?? agency.planId,
                source: 'agency',
                parentId: agency.id,
                companyName: agency.companyName,
                tokens: { accessToken: lt.access_token, refreshToken: null, expiresAt: new Date(sentAt + lt.expires_in * 1000) },
              },
              // The entry is written with the row (one statement / transaction), only if the row was.
              { onlyReplaceSource: ['agency'], audit: { action: 'minted', detail: { parentId: agency.id } } },
            )
            if (stored.source !== 'agency') {
              t.logger.info({ installationId: stored.id, locationId }, 'location has its own OAuth installation; minted token discarded')
              t.assertTokens(stored)
              return stored
            }
            t.logger.info({ installationId: stored.id, parentId: agency.id, locationId }, 'location token minted')
            this.#unknown.delete(locationId)
            t.announce(stored.id, stored.version)
            t.emit('minted', { installationId: stored.id, parentId: agency.id, locationId })
            return stored
          },
          { waitMs: t.lockWaitMs },
        )
      } catch (err) {
        if (err instanceof OAuthError && err.upstreamStatus === 401 && attempt === 0) {
          // The agency token was refused: refresh it (outside the lock) and mint again, once.
          await this.#tokens.companyUnauthorized(companyId, agencyGrant)
          continue
        }
        if (err instanceof OAuthError && err.code === 'GHL_OAUTH_GRANT_REJECTED' && err.upstreamStatus !== undefined && [400, 403, 404, 422].includes(err.upstreamStatus)) {
          throw new NotInstalledError(
            { locationId },
            `The app is not installed for location ${locationId}: HighLevel refused a location token from company ${companyId} (HTTP ${err.upstreamStatus})`,
          )
        }
        throw err
      }
    }
  }

  /** The app's active agency installations (at most MAX_AGENCIES_TRIED + 1), reused for a few seconds. */
  #agencyList(): Promise<InstallationSummary[]> {
    const t: TokenContext = this.#t
    const now = t.clock.now()
    if (!this.#agencies || now - this.#agencies.at > AGENCIES_TTL_MS) {
      const list = t.vault.installations.agencies(t.config.clientId, MAX_AGENCIES_TRIED + 1)
      this.#agencies = { at: now, list }
      list.catch(() => {
        if (this.#agencies?.list === list) this.#agencies = undefined
      })
    }
    return this.#agencies.list
  }
}
