/**
 * Public and internal types of the HighLevel sandbox. The sandbox is the *other side* of the
 * connector: it shares no code with `src/oauth`, `src/tokens`, `src/client`, `src/webhooks` or `src/sso`.
 */
import type { Logger } from '../logger.js'
import type { Clock } from '../clock.js'

/** Rate-limit settings: burst window (sliding log) and daily window (fixed, started by the first call). */
export interface SandboxRateLimit {
  /** Requests allowed per burst window (HighLevel: 100). */
  burstMax: number
  /** Length of the burst window in ms (HighLevel: 10 000). */
  burstWindowMs: number
  /** Requests allowed per daily window (HighLevel: 200 000). */
  dailyMax: number
  /** Length of the daily window in ms (default 86 400 000). */
  dailyWindowMs?: number
}

/** When the INSTALL webhooks of a consent are sent. */
export type WebhookTiming = 'early' | 'after-exchange' | 'none'

/**
 * How the token endpoint treats the `user_type` of a request: `hint` (default) — the answer follows
 * the grant, whatever was asked; `strict` — a `user_type` other than the grant's is refused (400
 * `invalid_request`) and the code or refresh token is not consumed.
 */
export type UserTypeCheck = 'hint' | 'strict'

/**
 * What an agency user's consent on one location yields: `location` (default) — a Location grant;
 * `company` — a Company grant (no `locationId`, no `approvedLocations` in the token answer) under
 * which the app counts as installed on that location (HighLevel API docs issue #294).
 */
export type LocationPickToken = 'location' | 'company'

/**
 * How `POST /oauth/reconnect` answers: `removed` (default) — every call gets HighLevel's
 * "API endpoint has been removed" 400 (since September 2026); `allow` — it works; `refuse` — every
 * installation is refused (400 "Reconnect is not allowed for this installation").
 */
export type ReconnectMode = 'allow' | 'removed' | 'refuse'

/** Which signature headers a webhook carries: Ed25519 `x-ghl-signature`, RSA `x-wh-signature`, or both. */
export type WebhookSignatures = 'ed25519' | 'rsa' | 'both'

/** HTTP status of an API call made with the token of a suspended location (`Location is not active`). */
export type SuspendedApiStatus = 401 | 403

/**
 * Options of {@link startSandbox}.
 *
 * @example
 * const sb = await startSandbox({ accessTokenTtlSec: 60, rateLimit: { burstMax: 5, burstWindowMs: 1000, dailyMax: 100 } })
 */
export interface SandboxOptions {
  /** Port to listen on; default 0 (any free port). The CLI passes 3100. */
  port?: number
  /** Host to bind; default 127.0.0.1. */
  host?: string
  /** Seed object or path to a JSON seed file; random default seed otherwise. */
  seed?: SandboxSeed | string
  /** Persist state (apps, installs, tokens, keys) as JSON here and load it on start. */
  statePath?: string
  /** Logger (silent by default). Tokens and secrets are never logged. */
  logger?: Logger
  /** Injected time for every expiry and rate-limit window. */
  clock?: Clock
  /** Lifetime of access tokens in seconds (default 86 399, as HighLevel). */
  accessTokenTtlSec?: number
  /** Lifetime of authorization codes in seconds (default 600). */
  codeTtlSec?: number
  /** Rate limits (default 100 per 10 s burst, 200 000 per day). */
  rateLimit?: SandboxRateLimit
  /** `user_type` at the token endpoint: a hint (default) or checked strictly. */
  userTypeCheck?: UserTypeCheck
  /** Token kind of an agency user's consent on one location (default `location`). */
  locationPickToken?: LocationPickToken
  /** `POST /oauth/reconnect` behaviour (default `removed`, as HighLevel since September 2026). */
  reconnect?: ReconnectMode
  /** Location or company ids whose installation Reconnect refuses while `reconnect` is `allow`. */
  reconnectRefusedIds?: string[]
  /** Signature headers of webhooks (default `ed25519`, as HighLevel since 2026-07-01). */
  webhookSignatures?: WebhookSignatures
  /** Default timing of INSTALL webhooks (default `after-exchange`). */
  webhookTiming?: WebhookTiming
  /** Status of API answers for a suspended location's token (default 401). */
  suspendedApiStatus?: SuspendedApiStatus
  /** How the APIs check the `Version` header (default `published`, see {@link VersionCheck}). */
  versionCheck?: VersionCheck
}

/**
 * How the resource APIs check the `Version` header. Both require it on operations that declare one.
 * - `published`: any version HighLevel publishes (`2021-04-15`, `2021-07-28`, `2023-02-21`, `v3`) on
 *   any operation — what HighLevel's servers accept (the official SDK sends one version, by default
 *   `2023-02-21`, to every operation).
 * - `operation`: exactly the value the operation's `Version` parameter documents.
 */
export type VersionCheck = 'published' | 'operation'

/** A Marketplace app registered in the sandbox. */
export interface SandboxApp {
  appId: string
  clientId: string
  clientSecret: string
  sharedSecret: string
  redirectUris: string[]
  scopes: string[]
  distribution: 'agency' | 'location' | 'both'
  webhookUrl: string | null
}

/** A running sandbox. */
export interface Sandbox {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  readonly url: string
  /** The first seeded app (a fresh copy on each read, reflecting {@link Sandbox.configureApp}). */
  readonly app: SandboxApp
  /** Seeded agencies and their locations. */
  readonly companies: Array<{ companyId: string; name: string; locations: Array<{ locationId: string; name: string }> }>
  /** PEM (SPKI) public keys used to sign webhooks. */
  readonly publicKeys: { ed25519: string; rsa: string }
  /** Changes the first app's redirect URIs, webhook URL or scopes. */
  configureApp(change: { redirectUris?: string[]; webhookUrl?: string | null; scopes?: string[] }): void
  /**
   * The connector settings for this sandbox (`GHL_CLIENT_ID`, `GHL_API_URL`, the webhook keys, …), for
   * `loadConfig({ env })` or a child process. With `appUrl`, the app's callback (`<appUrl>/oauth/callback`)
   * and webhook URL are registered with the sandbox's app and `GHL_REDIRECT_URI` is included.
   */
  env(options?: SandboxEnvOptions): Record<string, string>
  /**
   * A finished install in one call, through the real OAuth flow: the app's `/oauth/install`, the
   * consent for `locationId` (or an agency), the app's callback (the code exchange), and the INSTALL
   * webhooks answered. Throws with the step and the app's answer when one fails.
   */
  install(target: SandboxInstallTarget): Promise<SandboxInstall>
  /** Expires access tokens now (one token, a location's, or an agency's Company tokens); returns how many. */
  expire(target: { locationId?: string; companyId?: string; token?: string }): number
  /** The webhooks the sandbox sent (oldest first), optionally of one type or location. */
  events(filter?: { type?: string; locationId?: string }): SandboxWebhookEvent[]
  /** Releases hung requests, aborts webhook deliveries, closes the server. */
  close(): Promise<void>
}

/** Options of {@link Sandbox.env}. */
export interface SandboxEnvOptions {
  /** The app's base URL (where the connector's routes are mounted), e.g. `http://127.0.0.1:3000/ghl`. */
  appUrl?: string
  /** The webhook path under `appUrl` (default `/webhooks/highlevel`, the connector's default). */
  webhookPath?: string
}

/** What {@link Sandbox.install} installs. */
export interface SandboxInstallTarget {
  /** A sub-account install. */
  locationId?: string
  /** An agency install (with `locationIds`: the locations approved; absent → all). */
  companyId?: string
  locationIds?: string[]
  /** The installing user (default: the first seeded user of the agency). */
  userId?: string
  /** The app's install URL (default: the registered redirect URI with `/oauth/install` for `/oauth/callback`). */
  installUrl?: string
  /** How long to wait for the INSTALL webhooks to be answered (default 10 000 ms). */
  timeoutMs?: number
}

/** The outcome of {@link Sandbox.install}. */
export interface SandboxInstall {
  locationId: string | null
  companyId: string | null
  /** The status the app's callback answered (200 for its page, 302 when it redirects). */
  callbackStatus: number
  /** Where the callback redirected the browser, if it did. */
  redirectedTo: string | null
  /** The webhooks the install sent (INSTALL…), with the app's answers. */
  webhooks: SandboxWebhookEvent[]
}

/** A webhook the sandbox sent, and how the app answered. */
export interface SandboxWebhookEvent {
  webhookId: string
  type: string
  /** `skipped`: the app has no webhook URL. */
  status: 'pending' | 'delivered' | 'failed' | 'skipped'
  responseStatus: number | null
  attempts: number
  url: string | null
  error: string | null
  payload: Record<string, unknown>
}

/** An app in a seed: every field optional (generated when absent). */
export interface SandboxSeedApp {
  appId?: string
  clientId?: string
  clientSecret?: string
  sharedSecret?: string
  redirectUris?: string[]
  scopes?: string[]
  distribution?: 'agency' | 'location' | 'both'
  webhookUrl?: string | null
  planId?: string
  /** Version of the app (`versionId` of INSTALL webhooks and v3 answers); generated when absent. */
  versionId?: string
  /** Free trial of the plan in days (`trial` of INSTALL webhooks); 0 or absent: no trial. */
  trialDays?: number
}

/** A location in a seed. */
export interface SandboxSeedLocation {
  locationId?: string
  name: string
  address?: string
  city?: string
  state?: string
  country?: string
  postalCode?: string
  timezone?: string
  email?: string
  phone?: string
}

/** An agency (company) in a seed. */
export interface SandboxSeedCompany {
  companyId?: string
  name: string
  locations: SandboxSeedLocation[]
  /** A white-label agency: `isWhitelabelCompany` and `whitelabelDetails` of INSTALL webhooks. */
  whitelabel?: { domain: string; logoUrl: string }
}

/** A HighLevel user in a seed. */
export interface SandboxSeedUser {
  userId?: string
  name: string
  email: string
  role?: string
  type?: 'agency' | 'account'
  /** Defaults to the first company. */
  companyId?: string
}

/** Seed of a sandbox: apps, agencies with locations, users. Missing ids are generated at start. */
export interface SandboxSeed {
  apps?: SandboxSeedApp[]
  companies?: SandboxSeedCompany[]
  users?: SandboxSeedUser[]
  /** Contacts generated per location (default 3). */
  contactsPerLocation?: number
}

// ---------------------------------------------------------------------------------------------
// Internal records (not exported from index.ts)
// ---------------------------------------------------------------------------------------------

/** @internal An app with every field resolved. */
export interface AppRecord extends SandboxApp {
  planId: string | null
  /** Optional only for state files written before it existed. */
  versionId?: string
  trialDays?: number
}

/** @internal */
export interface LocationRecord {
  locationId: string
  companyId: string
  name: string
  address: string
  city: string
  state: string
  country: string
  postalCode: string
  timezone: string
  email: string
  phone: string
  /** Suspended (paused) by the agency or SaaS billing: refreshes and API calls answer "Location is not active". */
  suspended?: boolean
}

/** @internal */
export interface CompanyRecord {
  companyId: string
  name: string
  locations: LocationRecord[]
  whitelabel?: { domain: string; logoUrl: string } | null
}

/** @internal */
export interface UserRecord {
  userId: string
  name: string
  email: string
  role: string
  type: 'agency' | 'account'
  companyId: string
}

/** @internal */
export interface ContactRecord {
  id: string
  locationId: string
  firstName: string | null
  lastName: string | null
  name: string | null
  email: string | null
  phone: string | null
  companyName: string | null
  source: string | null
  tags: string[]
  dateAdded: string
  dateUpdated: string
  [extra: string]: unknown
}

/** @internal Everything fixed by the seed: what `reset` goes back to. */
export interface ResolvedSeed {
  apps: AppRecord[]
  companies: CompanyRecord[]
  users: UserRecord[]
  contacts: ContactRecord[]
}

/** @internal User type of a token, as HighLevel spells it. */
export type UserType = 'Location' | 'Company'

/** @internal An installation of an app on a location or an agency. */
export interface InstallRecord {
  installId: string
  appId: string
  userType: UserType
  companyId: string
  locationId: string | null
  userId: string
  scopes: string[]
  /** Agency installs: locations approved in bulk. */
  approvedLocations: string[]
  /** Agency installs: locations uninstalled one by one after the agency install. */
  excludedLocations: string[]
  installToFutureLocations: boolean
  approveAllLocations: boolean
  isBulkInstallation: boolean
  installedAt: number
  uninstalledAt: number | null
  /** Plan of a paid app (starts as the app's; `POST /_sandbox/plan-change` changes it). */
  planId?: string | null
}

/** @internal */
export type TokenType = 'access' | 'refresh' | 'code' | 'pit'

/** @internal Every credential the sandbox issued. */
export interface TokenRecord {
  type: TokenType
  value: string
  /** App client id; `null` for Private Integration Tokens. */
  clientId: string | null
  appId: string | null
  companyId: string
  locationId: string | null
  userType: UserType
  userId: string | null
  scopes: string[]
  issuedAt: number
  expiresAt: number | null
  usedAt: number | null
  revokedAt: number | null
  /** Install the credential belongs to (agency install for location tokens minted from it). */
  installId: string | null
  /** Codes: where it came from. Access/refresh: the code or refresh token that produced it. */
  source: 'consent' | 'reconnect' | 'refresh' | 'locationToken' | 'pit'
  parent: string | null
  /** Codes only. */
  redirectUri?: string | null
  webhookTiming?: WebhookTiming
  pendingWebhooks?: Array<Record<string, unknown>>
  /**
   * A Company grant that came from an agency user's consent on this one location
   * (`locationPickToken: 'company'`): its token answers carry no `approvedLocations`.
   */
  locationPick?: string | null
}

/** @internal Mutable settings (`PUT /_sandbox/settings`). */
export interface SandboxSettings {
  accessTokenTtlSec: number
  codeTtlSec: number
  rateLimit: Required<SandboxRateLimit>
  reconnect: ReconnectMode
  reconnectRefusedIds: string[]
  webhookTiming: WebhookTiming
  userTypeCheck: UserTypeCheck
  locationPickToken: LocationPickToken
  webhookSignatures: WebhookSignatures
  suspendedApiStatus: SuspendedApiStatus
  versionCheck: VersionCheck
}
