/**
 * The grant logic behind HighLevel's token endpoint, shared by v2 (`POST /oauth/token`, snake_case
 * fields, oauth.json) and v3 (the same path with `Version: v3`, camelCase fields, oauth-v3.json):
 * client authentication, authorization codes, refresh rotation, the token answer, and location
 * tokens minted from an agency token. Each version checks its own request shape and writes its own
 * error shapes; what is decided here carries no HTTP shape.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { countAs, type SandboxContext } from './http.js'
import { safeEqual } from './ids.js'
import { planOf, sendEvents } from './lifecycle.js'
import type { AppRecord, InstallRecord, TokenRecord, UserType } from './types.js'

/** Refresh tokens live a year (Authorization.md, "How long are the refresh tokens valid?"). */
export const REFRESH_TTL_MS = 365 * 24 * 3600 * 1000

/** HighLevel's message for a refresh (or exchange) of a suspended location's grant (oauth-v3.json, `locationNotActive`). */
export const LOCATION_NOT_ACTIVE = 'Location is not active'

/** Client authentication with a constant-time secret comparison. */
export function authenticateClient(ctx: SandboxContext, clientId: string, secret: string): AppRecord | undefined {
  const app = ctx.store.appByClientId(clientId)
  // Compare against a dummy when the client is unknown so both paths cost the same.
  const ok = safeEqual(app?.clientSecret ?? 'sandbox-unknown-client', secret)
  return app && ok ? app : undefined
}

/** Counts a token call under its grant type (`token.other` for a missing or unknown one). */
export function countTokenCall(ctx: SandboxContext, req: FastifyRequest, grantType: unknown): void {
  const token = ctx.store.stats.token
  countAs(req, grantType === 'authorization_code' || grantType === 'refresh_token' ? token[grantType] : token.other)
}

/** The install that keeps a credential alive, if its target is still installed. */
function targetInstalled(ctx: SandboxContext, t: TokenRecord): InstallRecord | undefined {
  if (!t.appId) return undefined
  return t.userType === 'Location'
    ? ctx.store.installForLocation(t.appId, t.locationId!)
    : ctx.store.activeInstall(t.appId, 'Company', t.companyId)
}

/** Issues an access + refresh pair from `parent` (a code or a refresh token). */
function issuePair(ctx: SandboxContext, parent: TokenRecord, source: 'consent' | 'reconnect' | 'refresh'): { access: TokenRecord; refresh: TokenRecord } {
  const store = ctx.store
  const base = {
    clientId: parent.clientId,
    appId: parent.appId,
    companyId: parent.companyId,
    locationId: parent.locationId,
    userType: parent.userType,
    userId: parent.userId,
    scopes: parent.scopes,
    installId: parent.installId,
    source,
    parent: parent.value,
    locationPick: parent.locationPick ?? null,
  }
  const access = store.issue({ ...base, type: 'access', expiresAt: store.now() + store.settings.accessTokenTtlSec * 1000 })
  const refresh = store.issue({ ...base, type: 'refresh', expiresAt: store.now() + REFRESH_TTL_MS })
  return { access, refresh }
}

/** A grant request once its version's shape has been checked and the client authenticated. */
export interface GrantInput {
  grantType: 'authorization_code' | 'refresh_token'
  code?: string | undefined
  refreshToken?: string | undefined
  userType?: UserType | undefined
  redirectUri?: string | undefined
}

/** Why a grant was refused. None of these consumes the code or refresh token. */
export type GrantFailure =
  /** Unknown, used, expired or revoked credential, another client's, or the app is uninstalled. */
  | { ok: false; kind: 'invalid_grant'; subject: 'code' | 'refresh_token'; message: string }
  /** `redirect_uri` differs from the one used at authorize. */
  | { ok: false; kind: 'redirect_uri'; message: string }
  /** `userTypeCheck: 'strict'` and the asked user type is not the grant's. */
  | { ok: false; kind: 'user_type'; asked: UserType; actual: UserType; message: string }
  /** The grant's location is suspended. */
  | { ok: false; kind: 'location_inactive'; message: string }

/** A new token pair, the install it belongs to, and INSTALL webhooks waiting for the answer. */
export interface GrantSuccess {
  ok: true
  access: TokenRecord
  refresh: TokenRecord
  install: InstallRecord
  pending: { appId: string; events: Array<Record<string, unknown>> } | undefined
}

const refused = (subject: 'code' | 'refresh_token', message: string): GrantFailure => ({ ok: false, kind: 'invalid_grant', subject, message })

/**
 * Runs an `authorization_code` or `refresh_token` grant for an authenticated app. A code is
 * single-use; its second use revokes what the first issued (RFC 6749 §4.1.2). A refresh rotates: the
 * used refresh token dies, the access token issued with it lives on until its own expiry. A Reconnect
 * code replaces the installation's earlier refresh tokens.
 */
export function runGrant(ctx: SandboxContext, app: AppRecord, input: GrantInput): GrantSuccess | GrantFailure {
  const store = ctx.store
  const subject = input.grantType === 'authorization_code' ? 'code' : 'refresh_token'
  const value = input.grantType === 'authorization_code' ? input.code! : input.refreshToken!
  const what = subject === 'code' ? 'authorization code' : 'refresh token'
  const t = store.tokens.get(value)
  if (!t || t.type !== (subject === 'code' ? 'code' : 'refresh')) return refused(subject, `Invalid ${what}`)
  if (t.clientId !== app.clientId) return refused(subject, `The ${what} was issued to another client`)
  const state = store.tokenState(t)
  if (state === 'used') {
    if (subject === 'code') {
      const family = new Set(store.descendants(t.value))
      const revoked = store.revokeWhere((x) => family.has(x))
      ctx.logger.warn({ revoked }, 'sandbox: authorization code reused; tokens issued from it revoked')
      ctx.persist()
    }
    return refused(subject, `The ${what} has already been used`)
  }
  if (state === 'revoked') return refused(subject, `The ${what} has been revoked`)
  if (state === 'expired') return refused(subject, `The ${what} has expired`)
  if (subject === 'code' && t.redirectUri && input.redirectUri !== undefined && input.redirectUri !== t.redirectUri) {
    return { ok: false, kind: 'redirect_uri', message: 'redirect_uri does not match the one used at authorization' }
  }
  // `user_type` is a hint by default: the grant (what the installer chose) decides the token kind.
  if (store.settings.userTypeCheck === 'strict' && input.userType && input.userType !== t.userType) {
    return { ok: false, kind: 'user_type', asked: input.userType, actual: t.userType, message: `user_type ${input.userType} does not match the grant (${t.userType})` }
  }
  const install = targetInstalled(ctx, t)
  if (!install) return refused(subject, 'The app is no longer installed for this grant')
  // oauth-v3.json: the same refresh token works again once the location is active again.
  if (t.userType === 'Location' && t.locationId !== null && store.location(t.locationId)?.suspended) {
    return { ok: false, kind: 'location_inactive', message: LOCATION_NOT_ACTIVE }
  }
  t.usedAt = store.now()
  if (subject === 'code' && t.source === 'reconnect') {
    store.revokeWhere(
      (x) =>
        x.type === 'refresh' &&
        x.appId === t.appId &&
        x.userType === t.userType &&
        x.companyId === t.companyId &&
        x.locationId === t.locationId &&
        x.issuedAt <= t.usedAt!,
    )
  }
  const { access, refresh } = issuePair(ctx, t, subject === 'refresh_token' ? 'refresh' : t.source === 'reconnect' ? 'reconnect' : 'consent')
  let pending: GrantSuccess['pending']
  if (subject === 'code' && (t.pendingWebhooks?.length ?? 0) > 0 && t.appId) {
    pending = { appId: t.appId, events: t.pendingWebhooks! }
    t.pendingWebhooks = []
  }
  ctx.persist()
  return { ok: true, access, refresh, install, pending }
}

/** Sends INSTALL webhooks of timing `after-exchange` once the token answer has been written. */
export function sendAfterAnswer(ctx: SandboxContext, reply: FastifyReply, pending: GrantSuccess['pending']): void {
  if (!pending) return
  reply.raw.once('close', () => ctx.webhooks.background(() => sendEvents(ctx, pending.appId, pending.events)))
}

/**
 * The token answer (oauth.json GetAccessCodeSuccessfulResponseDto), snake_case as v2 sends it. A
 * Company grant from an agency user's pick of one location carries no `approvedLocations`
 * (HighLevel API docs issue #294: "Get Access token Gives Company Token. No Locationid is shown").
 */
export function tokenAnswer(ctx: SandboxContext, access: TokenRecord, refresh: TokenRecord, install: InstallRecord): Record<string, unknown> {
  const app = access.appId ? ctx.store.appById(access.appId) : undefined
  const body: Record<string, unknown> = {
    access_token: access.value,
    token_type: 'Bearer',
    expires_in: ctx.store.settings.accessTokenTtlSec,
    refresh_token: refresh.value,
    scope: access.scopes.join(' '),
    userType: access.userType,
    companyId: access.companyId,
  }
  if (access.userType === 'Location') body.locationId = access.locationId
  body.userId = access.userId
  const plan = planOf(app, install)
  if (plan) body.planId = plan
  if (access.userType === 'Company') {
    body.isBulkInstallation = install.isBulkInstallation
    if (!access.locationPick) body.approvedLocations = install.approvedLocations.filter((id) => !install.excludedLocations.includes(id))
    body.installToFutureLocations = install.installToFutureLocations
    body.approveAllLocations = install.approveAllLocations
  } else {
    body.isBulkInstallation = false
  }
  return body
}

/** A location token minted from an agency token, or why not. */
export type MintOutcome =
  | { ok: true; access: TokenRecord; refresh: TokenRecord | undefined; app: AppRecord | undefined; install: InstallRecord }
  | { ok: false; status: 400 | 403; message: string }

/**
 * Mints a Location access token from an agency token (`/oauth/locationToken`, `/oauth/location-token`).
 * `withRefresh`: also a refresh token for that location (v3's answer has `refreshToken`). Minted
 * tokens belong to the agency install and die with it.
 */
export function mintLocationToken(ctx: SandboxContext, agency: TokenRecord, companyId: string, locationId: string, withRefresh: boolean): MintOutcome {
  const store = ctx.store
  if (companyId !== agency.companyId) return { ok: false, status: 403, message: 'The token does not have access to this company' }
  const location = store.location(locationId)
  if (!location || location.companyId !== companyId) return { ok: false, status: 400, message: 'Location not found in this company' }
  const install = agency.appId ? store.installForLocation(agency.appId, locationId) : undefined
  if (!install) return { ok: false, status: 400, message: 'The app is not installed on this location' }
  if (location.suspended) return { ok: false, status: 400, message: LOCATION_NOT_ACTIVE }
  const base = {
    clientId: agency.clientId,
    appId: agency.appId,
    companyId,
    locationId,
    userType: 'Location' as const,
    userId: agency.userId,
    scopes: agency.scopes,
    installId: agency.installId,
    source: 'locationToken' as const,
    parent: agency.value,
  }
  const access = store.issue({ ...base, type: 'access', expiresAt: store.now() + store.settings.accessTokenTtlSec * 1000 })
  const refresh = withRefresh ? store.issue({ ...base, type: 'refresh', expiresAt: store.now() + REFRESH_TTL_MS }) : undefined
  ctx.persist()
  return { ok: true, access, refresh, app: store.appById(agency.appId!), install }
}
