/**
 * The contract between the API client and the token manager: the client asks for a token for a
 * target, and reports a 401. Everything about refresh, rotation, locks and agency minting sits behind it.
 */
import type { InstallationSummary } from '../vault/types.js'

/** Who a call is made for. */
export type Target =
  | { kind: 'location'; id: string }
  | { kind: 'company'; id: string }
  /** A Private Integration Token: static, never refreshed. */
  | { kind: 'static'; token: string; resourceId: string }

/** A token handed to one call. `version` is the installation row's version it came from. */
export interface AccessGrant {
  readonly accessToken: string
  readonly installationId: string | null
  readonly version: number
  readonly expiresAt: number
  /** The rate-limit resource: the location id or company id. */
  readonly resourceId: string
  /** The scopes granted to the installation (empty and unknown for a static token). */
  readonly scopes: readonly string[]
  /** Which kind of token: a sub-account (Location) or agency (Company) one; `undefined` for a static token. */
  readonly userType: 'Location' | 'Company' | undefined
}

export interface TokenRequestOptions {
  signal?: AbortSignal
}

/** Events the token manager emits (also forwarded to `connector.on(...)`). */
export interface TokenEvents {
  /** A token was refreshed (by this process). */
  refreshed: { installationId: string; version: number }
  /** A location token was minted from an agency installation. */
  minted: { installationId: string; parentId: string; locationId: string }
  /** A dead grant was recovered through `POST /oauth/reconnect`. */
  reconnected: { installationId: string }
  /**
   * The grant is dead and could not be recovered without a user: send `reauthorizationUrl` to a user of
   * that sub-account or agency (completing it restores the same installation).
   */
  reauthorizationRequired: { installationId: string; reason: string; reauthorizationUrl: string }
  /** HighLevel reports the location as not active: calls fail fast until it is reactivated. */
  suspended: { installationId: string; reason: string }
  /** A suspended installation refreshed again: it is active. */
  reactivated: { installationId: string }
  /**
   * The last `failures` refreshes of an installation failed transiently (HighLevel or the network):
   * not lost yet, but it will be if this goes on until the access token expires.
   */
  refreshFailing: { installationId: string; failures: number; lastError: string }
  /** A refresh the background refresher started failed (`code`: the GhlError code, e.g. GHL_DATABASE_UNAVAILABLE). */
  backgroundRefreshFailed: { installationId: string; code: string }
}

export interface TokenProvider {
  /** A valid access token for the target: from memory on the hot path; refreshed/minted as needed. */
  getAccessToken(target: Target, options?: TokenRequestOptions): Promise<AccessGrant>
  /**
   * HighLevel answered 401 to a call made with `rejected`. Re-reads the stored row: when another
   * instance already refreshed (newer version) returns that token; otherwise refreshes once.
   * Throws ReauthorizationRequiredError / NotInstalledError when no token can be had.
   */
  onUnauthorized(target: Target, rejected: AccessGrant, options?: TokenRequestOptions): Promise<AccessGrant>
  /** Drops cached tokens of an installation (uninstall, or a peer's invalidation message). */
  invalidate(installationId: string): void
}

/** What lifecycle code (webhooks) needs beyond the provider. */
export interface TokenManager extends TokenProvider {
  /** Mints and stores a location token from the company's agency installation; returns the stored row. */
  mintLocationToken(companyId: string, locationId: string, options?: TokenRequestOptions): Promise<InstallationSummary>
  /** Forces a refresh of one installation now (used by the background refresher and operators). */
  refreshNow(installationId: string, options?: TokenRequestOptions): Promise<InstallationSummary>
  /** Records that an agency installation covers these locations; their first call mints. Returns how many were new. */
  coverLocations(agency: InstallationSummary, locationIds: readonly string[]): Promise<number>
}
