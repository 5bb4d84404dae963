/**
 * `POST /oauth/locationToken`: a sub-account (location) access token minted from an agency token.
 * The answer has no refresh token: when it expires, mint another (FACTS.md).
 *
 * @see https://highlevel.stoplight.io/docs/integrations/ (oauth.json `get-location-access-token`)
 */
import { z } from 'zod'
import { snakeTokenFields } from './token-endpoint.js'
import { describeIssues, errorFromResponse, formBody, invalidResponse, parseJson, send, type OAuthHttp, type RawResponse } from './http.js'

/** Parameters of {@link locationTokenRequest}. */
export interface LocationTokenParams {
  /** The agency (Company) installation's access token. */
  agencyAccessToken: string
  companyId: string
  locationId: string
  /** The `Version` header; `2021-07-28`. */
  version: string
}

/**
 * Asks for a location token (form body `companyId`, `locationId`; agency Bearer token; `Version` header).
 * Returns the raw answer; pass it to {@link processLocationTokenResponse}.
 */
export function locationTokenRequest(http: OAuthHttp, params: LocationTokenParams): Promise<RawResponse> {
  const v3 = http.version === 'v3'
  return send(http, 'location token', {
    method: 'POST',
    path: v3 ? '/oauth/location-token' : '/oauth/locationToken',
    headers: {
      authorization: `Bearer ${params.agencyAccessToken}`,
      version: v3 ? 'v3' : params.version,
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    },
    body: formBody({ companyId: params.companyId, locationId: params.locationId }),
  })
}

const optionalString = z.string().nullish().transform((v) => v ?? undefined)

/** Our schema of `GetLocationAccessTokenSuccessfulResponseDto` (oauth.json). */
export const LocationTokenResponseSchema = z.object({
  access_token: z.string().min(1),
  token_type: z.string().regex(/^bearer$/i, 'expected "Bearer"').nullish(),
  expires_in: z.number().positive(),
  scope: z.string().nullish().transform((v) => v ?? ''),
  locationId: z.string().min(1),
  userId: optionalString,
  planId: optionalString,
  appId: optionalString,
  versionId: optionalString,
})

/** A validated location-token answer. Holds a secret: never log it. */
export type LocationTokenResponse = z.infer<typeof LocationTokenResponseSchema>

/**
 * Validates an answer of `/oauth/locationToken`.
 *
 * @throws OAuthError — 401: `GHL_OAUTH_GRANT_REJECTED` with `oauthError: 'invalid_token'` (the agency
 *   token was refused: refresh it and retry); 400/403/404/422: `GHL_OAUTH_GRANT_REJECTED` (the location is
 *   not reachable from this agency install); 5xx: `GHL_UPSTREAM_UNAVAILABLE`; bad body: `GHL_OAUTH_INVALID_RESPONSE`.
 */
export function processLocationTokenResponse(raw: RawResponse): LocationTokenResponse {
  const what = 'location token'
  if (raw.status < 200 || raw.status >= 300) throw errorFromResponse(raw, what, { bearer: true })
  // v3 answers in camelCase (GetLocationAccessTokenV3SuccessfulResponseDto); its refreshToken is not
  // used: a minted token is minted again from the agency token when it expires, as in v2.
  const json = snakeTokenFields(parseJson(raw.body))
  if (json === undefined) throw invalidResponse(raw, what, 'is not JSON')
  const result = LocationTokenResponseSchema.safeParse(json)
  if (!result.success) throw invalidResponse(raw, what, `does not match its documented shape (${describeIssues(result.error.issues)})`)
  return result.data
}
