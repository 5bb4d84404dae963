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
  /**
   * The scopes HighLevel granted the installation (its token answer's `scope`). Absent when unknown —
   * a Private Integration Token — and then typed calls make no scope check.
   */
  readonly scopes?: readonly string[]
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
  /** The grant is dead and could not be recovered. */
  reauthorizationRequired: { installationId: string; reason: string }
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
}
