/**
 * Every error ghl-connect throws is a {@link GhlError}: a stable `code` from {@link ERROR_CODES},
 * an HTTP `status` a server can answer with, a message a person understands, and an optional `cause`.
 *
 * Nothing secret is ever put on an enumerable property: logging or JSON-serialising an error dumps
 * no token (the approach of panva/oauth4webapi, which keeps `response` non-enumerable).
 *
 * @example
 * try { await ghl.location('LOC').get('/contacts/') }
 * catch (err) { if (err instanceof GhlError && err.code === 'GHL_NOT_INSTALLED') … }
 */

/** The table of error codes: code → [HTTP status, what it means]. Documented in README ("Error codes"). */
export const ERROR_CODES = {
  GHL_CONFIG_INVALID: [500, 'A setting is missing or malformed.'],
  GHL_OAUTH_STATE_INVALID: [400, 'The install request is forged, expired or already used.'],
  GHL_OAUTH_CODE_REUSED: [400, 'This authorization code was already exchanged; it is never sent to HighLevel twice.'],
  GHL_OAUTH_DENIED: [400, 'The user declined the installation on HighLevel.'],
  GHL_OAUTH_CODE_MISSING: [400, 'HighLevel redirected back without an authorization code.'],
  GHL_OAUTH_GRANT_REJECTED: [400, 'HighLevel rejected the authorization code or refresh token.'],
  GHL_OAUTH_CLIENT_REJECTED: [401, 'HighLevel rejected the app credentials (client id or secret).'],
  GHL_OAUTH_INVALID_RESPONSE: [502, 'HighLevel answered with a body that does not match its documented shape.'],
  GHL_UPSTREAM_UNAVAILABLE: [502, 'HighLevel answered with a server error.'],
  GHL_API_ERROR: [502, 'HighLevel answered the API call with an error.'],
  GHL_RATE_LIMITED: [429, 'The HighLevel rate limit for this location or company is spent.'],
  GHL_REAUTHORIZATION_REQUIRED: [401, 'The installation must be authorized again by a HighLevel user.'],
  GHL_NOT_INSTALLED: [404, 'The app is not installed for this location or company.'],
  GHL_INSTALLATION_SUSPENDED: [403, 'HighLevel reports the location as not active (suspended); calls resume once it is reactivated.'],
  GHL_WRONG_TOKEN_KIND: [400, 'The operation takes another kind of token (location, company or OAuth-only): call it through the other client.'],
  GHL_SCOPE_MISSING: [403, 'The installation was not granted a scope the operation needs.'],
  GHL_TIMEOUT: [504, 'HighLevel did not answer in time.'],
  GHL_NETWORK: [502, 'HighLevel could not be reached.'],
  GHL_ABORTED: [499, 'The call was aborted by the caller.'],
  GHL_UNAUTHORIZED: [401, 'The request to the connector lacks a valid API key.'],
  GHL_BAD_REQUEST: [400, 'The request is malformed.'],
  GHL_NOT_FOUND: [404, 'No such route or resource on the connector.'],
  GHL_FORBIDDEN: [403, 'The connector refuses this request (e.g. an OAuth credential endpoint through the proxy).'],
  GHL_WEBHOOK_SIGNATURE_INVALID: [401, 'The webhook signature is missing or does not verify.'],
  GHL_WEBHOOK_STALE: [400, 'The webhook timestamp is outside the accepted window.'],
  GHL_WEBHOOK_INVALID: [400, 'The webhook body is malformed or of an unknown type.'],
  GHL_WEBHOOK_TOO_LARGE: [413, 'The webhook body is larger than allowed.'],
  GHL_WEBHOOK_FORWARD_FAILED: [502, "The app's endpoint (GHL_WEBHOOK_FORWARD_URL) did not acknowledge a forwarded event with a 2xx answer in time; it is retried."],
  GHL_SSO_INVALID: [400, 'The SSO payload could not be decrypted or is not a user context.'],
  GHL_VAULT_KEY_MISSING: [500, 'A stored row was encrypted with a key that is not configured.'],
  GHL_VAULT_DECRYPT_FAILED: [500, 'A stored secret failed authentication on decryption.'],
  GHL_VAULT_CONFLICT: [409, 'The installation was changed concurrently.'],
  GHL_LOCK_TIMEOUT: [503, 'Timed out waiting for another worker to refresh the token.'],
  GHL_DATABASE_UNAVAILABLE: [503, "The connector's database did not answer in time."],
  GHL_REDIS_UNAVAILABLE: [503, "The connector's Redis did not answer in time."],
  GHL_SHUTTING_DOWN: [503, 'The connector is shutting down; retry on another instance.'],
  GHL_BILLING_INVALID: [400, 'The charge was refused before it was sent: HighLevel rejects it (units not a number, an empty userId, a custom price on a fixed-price meter, …).'],
  GHL_BILLING_REJECTED: [422, 'HighLevel refused the charge; nothing was charged.'],
  GHL_BILLING_CONFLICT: [409, 'This eventId was already used for a different charge.'],
  GHL_BILLING_UNCONFIRMED: [503, 'The outcome of the charge is not known yet (its answer was lost, or another instance is charging it); retry with the same eventId.'],
  GHL_MARKETPLACE_UNAUTHORIZED: [401, "The call lacks the headers configured for the app's workflow actions, triggers, external authentication or billing."],
  GHL_EXTERNAL_AUTH_REJECTED: [401, 'The third-party credential did not validate.'],
  GHL_TRIGGER_TARGET_INVALID: [400, "A trigger subscription's target URL is not on HighLevel's API host: no token is ever sent there."],
  GHL_INTERNAL: [500, 'An unexpected error occurred.'],
} as const satisfies Record<string, readonly [number, string]>

export type ErrorCode = keyof typeof ERROR_CODES

/** Retry-After of a 503 when nothing more precise is known. */
export const DEFAULT_RETRY_AFTER_MS = 5_000

/** Whether a value is a GhlError (of one of these codes, when given). */
export function isGhlError(err: unknown, ...codes: ErrorCode[]): err is GhlError {
  return err instanceof GhlError && (codes.length === 0 || codes.includes(err.code))
}

export interface GhlErrorOptions {
  cause?: unknown
  /** Overrides the status from the code table. */
  status?: number
  /** When a retry may succeed (a dependency is back, a window passes): servers send it as Retry-After. */
  retryAfterMs?: number
}

/** The one base class. `code` is stable; `message` is for people. */
export class GhlError extends Error {
  readonly code: ErrorCode
  readonly status: number
  /** When to try again, if the failure is temporary (503s default to a few seconds). */
  readonly retryAfterMs: number | undefined

  constructor(code: ErrorCode, message?: string, options: GhlErrorOptions = {}) {
    super(message ?? ERROR_CODES[code][1], options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'GhlError'
    this.code = code
    this.status = options.status ?? ERROR_CODES[code][0]
    this.retryAfterMs = options.retryAfterMs ?? (this.status === 503 ? DEFAULT_RETRY_AFTER_MS : undefined)
  }

  /** A body safe to send to a client: never includes `cause`. */
  toJSON(): { code: ErrorCode; message: string; status: number } {
    return { code: this.code, message: this.message, status: this.status }
  }
}

/** HighLevel answered an API call with an error status. `body` is HighLevel's (never our request). */
export class HighLevelApiError extends GhlError {
  readonly upstreamStatus: number
  readonly body: unknown
  readonly traceId: string | undefined

  constructor(upstreamStatus: number, body: unknown, traceId: string | undefined, message?: string) {
    super('GHL_API_ERROR', message ?? `HighLevel answered ${upstreamStatus}${describeBody(body)}`)
    this.name = 'HighLevelApiError'
    this.upstreamStatus = upstreamStatus
    this.body = body
    this.traceId = traceId
  }
}

/** The token endpoint (or another OAuth endpoint) refused the request. `oauthError` is e.g. `invalid_grant`. */
export class OAuthError extends GhlError {
  readonly upstreamStatus: number | undefined
  readonly oauthError: string | undefined
  readonly traceId: string | undefined

  constructor(
    code: ErrorCode,
    message: string,
    details: { upstreamStatus?: number; oauthError?: string; traceId?: string; cause?: unknown } = {},
  ) {
    super(code, message, { cause: details.cause })
    this.name = 'OAuthError'
    this.upstreamStatus = details.upstreamStatus
    this.oauthError = details.oauthError
    this.traceId = details.traceId
  }
}

/** The rate limit is spent and the call's deadline does not allow waiting for the next window. */
export class RateLimitedError extends GhlError {
  override readonly retryAfterMs: number

  constructor(retryAfterMs: number, message?: string) {
    super('GHL_RATE_LIMITED', message ?? `Rate limit reached; retry in ${Math.ceil(retryAfterMs)} ms`, { retryAfterMs })
    this.name = 'RateLimitedError'
    this.retryAfterMs = retryAfterMs
  }
}

/** The grant is dead and Reconnect could not recover it: a HighLevel user must install the app again. */
export class ReauthorizationRequiredError extends GhlError {
  readonly installationId: string
  /** The connector's re-authorization link for this installation (send it to a user of that account). */
  readonly reauthorizationUrl: string | undefined

  constructor(installationId: string, message?: string, cause?: unknown, reauthorizationUrl?: string) {
    super(
      'GHL_REAUTHORIZATION_REQUIRED',
      message ?? `Installation ${installationId} needs to be authorized again by a HighLevel user`,
      { cause },
    )
    this.name = 'ReauthorizationRequiredError'
    this.installationId = installationId
    this.reauthorizationUrl = reauthorizationUrl
  }
}

/**
 * HighLevel refused the refresh with "Location is not active": the sub-account is suspended (e.g. a
 * failed SaaS payment). The refresh token is kept; the installation becomes active again by itself.
 */
export class InstallationSuspendedError extends GhlError {
  readonly installationId: string

  constructor(installationId: string, message?: string) {
    super('GHL_INSTALLATION_SUSPENDED', message ?? `Installation ${installationId} is suspended: HighLevel reports the location as not active`)
    this.name = 'InstallationSuspendedError'
    this.installationId = installationId
  }
}

/** No usable installation for that location or company (never installed, or uninstalled). */
export class NotInstalledError extends GhlError {
  readonly resource: { locationId?: string; companyId?: string }

  constructor(resource: { locationId?: string; companyId?: string }, message?: string) {
    const what = resource.locationId ? `location ${resource.locationId}` : `company ${resource.companyId}`
    super('GHL_NOT_INSTALLED', message ?? `The app is not installed for ${what}`)
    this.name = 'NotInstalledError'
    this.resource = resource
  }
}

/**
 * The operation needs a scope the installation was not granted: nothing was sent. The remedy is a new
 * install with the scope added (`GHL_SCOPES`); `needed` lists the scopes any one of which suffices.
 */
export class ScopeMissingError extends GhlError {
  readonly operationId: string
  readonly needed: readonly string[]
  readonly granted: readonly string[]

  constructor(operationId: string, needed: readonly string[], granted: readonly string[], message?: string) {
    super('GHL_SCOPE_MISSING', message ?? `${operationId} needs the scope ${needed.join(' or ')}, which was not granted`)
    this.name = 'ScopeMissingError'
    this.operationId = operationId
    this.needed = needed
    this.granted = granted
  }
}

/** A webhook failed verification: bad signature, replay, stale timestamp. */
export class WebhookRejectedError extends GhlError {
  constructor(code: Extract<ErrorCode, `GHL_WEBHOOK_${string}`>, message?: string) {
    super(code, message)
    this.name = 'WebhookRejectedError'
  }
}

function describeBody(body: unknown): string {
  if (body && typeof body === 'object' && 'message' in body) {
    const m = (body as { message: unknown }).message
    const text = Array.isArray(m) ? m.join('; ') : String(m)
    return `: ${text.slice(0, 200)}`
  }
  return ''
}
