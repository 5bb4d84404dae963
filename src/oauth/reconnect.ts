/**
 * `POST /oauth/reconnect`: recovers an installation whose tokens were lost or whose refresh token was
 * invalidated, without the user. The answer's `authorizationCode` is exchanged at `/oauth/token`
 * (authorization-code grant) for a new token pair (FACTS.md, "Reconnect").
 */
import { z } from 'zod'
import { describeIssues, errorFromResponse, invalidResponse, parseJson, send, type OAuthHttp, type RawResponse } from './http.js'

/** Parameters of {@link reconnectRequest}: `locationId` for a sub-account install, `companyId` for an agency one. */
export interface ReconnectParams {
  clientId: string
  clientSecret: string
  locationId?: string
  companyId?: string
}

/** Sends JSON `{clientKey, clientSecret, locationId | companyId}`. Returns the raw answer. */
export function reconnectRequest(http: OAuthHttp, params: ReconnectParams): Promise<RawResponse> {
  const body: Record<string, string> = { clientKey: params.clientId, clientSecret: params.clientSecret }
  if (params.locationId) body.locationId = params.locationId
  else if (params.companyId) body.companyId = params.companyId
  return send(http, 'reconnect', {
    method: 'POST',
    path: '/oauth/reconnect',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify(body),
  })
}

const ReconnectResponseSchema = z.object({
  authorizationCode: z.string().min(1),
  expiresAt: z.union([z.string().min(1), z.number()]).nullish(),
  traceId: z.string().nullish(),
})

/** A validated Reconnect answer. `authorizationCode` is a secret: never log it. */
export interface ReconnectResponse {
  authorizationCode: string
  /** When the code expires, if HighLevel said. */
  expiresAt: Date | undefined
  traceId: string | undefined
}

/**
 * Validates an answer of `/oauth/reconnect`.
 *
 * @throws OAuthError — a refusal (4xx) as `GHL_OAUTH_GRANT_REJECTED`/`GHL_OAUTH_CLIENT_REJECTED`; 5xx as
 *   `GHL_UPSTREAM_UNAVAILABLE`; a bad body as `GHL_OAUTH_INVALID_RESPONSE`.
 */
export function processReconnectResponse(raw: RawResponse): ReconnectResponse {
  const what = 'reconnect'
  if (raw.status < 200 || raw.status >= 300) throw errorFromResponse(raw, what)
  const json = parseJson(raw.body)
  if (json === undefined) throw invalidResponse(raw, what, 'is not JSON')
  const result = ReconnectResponseSchema.safeParse(json)
  if (!result.success) throw invalidResponse(raw, what, `does not match its documented shape (${describeIssues(result.error.issues)})`)
  const at = result.data.expiresAt == null ? undefined : new Date(result.data.expiresAt)
  return {
    authorizationCode: result.data.authorizationCode,
    expiresAt: at && !Number.isNaN(at.getTime()) ? at : undefined,
    traceId: result.data.traceId ?? undefined,
  }
}
