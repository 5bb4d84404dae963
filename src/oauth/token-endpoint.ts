/**
 * `POST /oauth/token`: the authorization-code and refresh-token grants, each as a request (the HTTP
 * call, returning the raw answer) and a shared {@link processTokenResponse} (the validation).
 *
 * @see https://highlevel.stoplight.io/docs/integrations/00d0c0ecaa369-get-access-token (oauth.json `get-access-token`)
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.3
 */
import { z } from 'zod'
import type { UserType } from '../vault/types.js'
import {
  describeIssues,
  errorFromResponse,
  formBody,
  invalidResponse,
  parseJson,
  send,
  type OAuthHttp,
  type RawResponse,
} from './http.js'

/** Parameters of the authorization-code grant. */
export interface AuthorizationCodeGrantParams {
  clientId: string
  clientSecret: string
  code: string
  /** The redirect URI the code was issued for; left out for codes from `/oauth/reconnect`. */
  redirectUri?: string
  userType: UserType
}

/** Parameters of the refresh-token grant. */
export interface RefreshTokenGrantParams {
  clientId: string
  clientSecret: string
  refreshToken: string
  userType: UserType
}

/**
 * Exchanges an authorization code at `POST <apiUrl>/oauth/token` (form body, `Accept: application/json`).
 * Returns the raw answer; pass it to {@link processTokenResponse}.
 *
 * @example
 * const raw = await authorizationCodeGrantRequest({ apiUrl, timeoutMs: 10_000 },
 *   { clientId, clientSecret, code, redirectUri, userType: 'Location' })
 * const tokens = processTokenResponse(raw)
 */
export function authorizationCodeGrantRequest(http: OAuthHttp, params: AuthorizationCodeGrantParams): Promise<RawResponse> {
  // Never sent twice (only a request that provably never left is resent): HighLevel may revoke every
  // token issued from a code used twice (RFC 6749 §4.1.2).
  return tokenRequest(http, 'authorization code exchange', false, {
    client_id: params.clientId,
    client_secret: params.clientSecret,
    grant_type: 'authorization_code',
    code: params.code,
    user_type: params.userType,
    redirect_uri: params.redirectUri,
  })
}

/**
 * Uses a refresh token at `POST <apiUrl>/oauth/token`. HighLevel rotates refresh tokens: the one sent
 * dies, and the answer carries its successor (FACTS.md) — so the answer must be stored before anything else.
 */
export function refreshTokenGrantRequest(http: OAuthHttp, params: RefreshTokenGrantParams): Promise<RawResponse> {
  // Resent on a 5xx or a timeout: if HighLevel did rotate, the resend is refused (invalid_grant) and
  // the caller re-reads the row; if it did not, the resend succeeds.
  return tokenRequest(http, 'token refresh', true, {
    client_id: params.clientId,
    client_secret: params.clientSecret,
    grant_type: 'refresh_token',
    refresh_token: params.refreshToken,
    user_type: params.userType,
  })
}

/** v3 spells the request fields in camelCase (oauth-v3.json `GetAccessTokenBodyDto`). */
const V3_FIELDS: Record<string, string> = {
  client_id: 'clientId',
  client_secret: 'clientSecret',
  grant_type: 'grantType',
  code: 'code',
  refresh_token: 'refreshToken',
  user_type: 'userType',
  redirect_uri: 'redirectUri',
}

function tokenRequest(http: OAuthHttp, what: string, idempotent: boolean, fields: Record<string, string | undefined>): Promise<RawResponse> {
  if (http.version === 'v3') {
    const body: Record<string, string> = {}
    for (const [k, v] of Object.entries(fields)) if (v !== undefined) body[V3_FIELDS[k] ?? k] = v
    return send(http, what, {
      method: 'POST',
      path: '/oauth/token',
      headers: { 'content-type': 'application/json', accept: 'application/json', version: 'v3' },
      body: JSON.stringify(body),
      idempotent,
    })
  }
  return send(http, what, {
    method: 'POST',
    path: '/oauth/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: formBody(fields),
    idempotent,
  })
}

/**
 * @internal v3 answers in camelCase (`accessToken`, `tokenType`, `expiresIn`, `refreshToken`): the same
 * fields under v2's names, so one schema validates both.
 */
export function snakeTokenFields(json: unknown): unknown {
  if (!json || typeof json !== 'object' || Array.isArray(json)) return json
  const o = { ...(json as Record<string, unknown>) }
  for (const [camel, snake] of [
    ['accessToken', 'access_token'],
    ['tokenType', 'token_type'],
    ['expiresIn', 'expires_in'],
    ['refreshToken', 'refresh_token'],
  ] as const) {
    if (o[snake] === undefined && o[camel] !== undefined) o[snake] = o[camel]
    delete o[camel]
  }
  return o
}

const optionalString = z.string().nullish().transform((v) => v ?? undefined)
const optionalBoolean = z.boolean().nullish().transform((v) => v ?? undefined)

/** Our schema of `GetAccessCodeSuccessfulResponseDto` (oauth.json), with what we rely on required. */
export const TokenResponseSchema = z.object({
  access_token: z.string().min(1),
  token_type: z.string().regex(/^bearer$/i, 'expected "Bearer"'),
  expires_in: z.number().positive(),
  refresh_token: z.string().min(1),
  scope: z.string().nullish().transform((v) => v ?? ''),
  userType: z.enum(['Location', 'Company']),
  companyId: z.string().min(1),
  locationId: optionalString,
  userId: z.string().min(1),
  planId: optionalString,
  isBulkInstallation: optionalBoolean,
  approvedLocations: z.array(z.string()).nullish().transform((v) => v ?? undefined),
  installToFutureLocations: optionalBoolean,
  approveAllLocations: optionalBoolean,
})

/** A validated token-endpoint answer. Holds secrets: never log it. */
export type TokenResponse = z.infer<typeof TokenResponseSchema>

/**
 * Validates an answer of `/oauth/token`.
 *
 * @throws OAuthError `GHL_OAUTH_GRANT_REJECTED` (code/refresh token invalid, expired or used — `oauthError`
 *   tells which RFC 6749 error), `GHL_OAUTH_CLIENT_REJECTED` (client id/secret), `GHL_UPSTREAM_UNAVAILABLE`
 *   (5xx), `GHL_OAUTH_INVALID_RESPONSE` (a 2xx that is not JSON or not the documented shape; a `Location`
 *   token without `locationId`). Messages never contain a token.
 */
export function processTokenResponse(raw: RawResponse): TokenResponse {
  const what = 'token'
  if (raw.status < 200 || raw.status >= 300) throw errorFromResponse(raw, what)
  const json = snakeTokenFields(parseJson(raw.body))
  if (json === undefined) throw invalidResponse(raw, what, 'is not JSON')
  const result = TokenResponseSchema.safeParse(json)
  if (!result.success) throw invalidResponse(raw, what, `does not match its documented shape (${describeIssues(result.error.issues)})`)
  if (result.data.userType === 'Location' && !result.data.locationId) {
    throw invalidResponse(raw, what, 'is a Location token without a locationId')
  }
  return result.data
}
