/**
 * HighLevel's OAuth v3 (api-docs/apps/v3/oauth-v3.json, released 2026-06-11), selected by the
 * `Version: v3` header:
 *
 * - `POST /oauth/token` — the same path as v2, camelCase fields (`clientId`, `clientSecret`,
 *   `grantType`, `code`, `refreshToken`, `userType`, `redirectUri`) in and out; 400s are
 *   BadRequestDTO with the spec's messages ("Missing parameter: clientId", "Invalid parameter:
 *   grantType", "Invalid grant: refresh token is invalid", "Location is not active").
 * - `POST /oauth/location-token` — replaces `/oauth/locationToken`; the answer is camelCase and has a
 *   `refreshToken` (GetLocationAccessTokenV3SuccessfulResponseDto).
 * - `GET /oauth/installed-locations` — replaces `/oauth/installedLocations`; cursor paging
 *   (`pageSize`, `pageToken`) and `{items, pagination, metadata}`; its 400 and 404 use the AIP error
 *   envelope `{error: {code, message, details, resolution}}` (AipErrorResponseDto).
 *
 * The v2 paths that v3 replaced answer a `Version: v3` call with a 400 in the AIP envelope
 * ({@link removedInV3}).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'
import {
  authenticateClient,
  countTokenCall,
  mintLocationToken,
  runGrant,
  sendAfterAnswer,
  tokenAnswer,
  type GrantFailure,
} from '../grants.js'
import { applyFault, bodyOf, forbidden, guard, unauthorized, unprocessable, zodMessages, type SandboxContext } from '../http.js'
import { planOf } from '../lifecycle.js'
import type { UserType } from '../types.js'

const V3 = ['v3']

/** AipErrorResponseDto: `{error: {code, message, details, resolution}}`. */
export function aipError(
  reply: FastifyReply,
  status: number,
  code: string,
  message: string,
  details: Record<string, unknown>,
  resolution: string,
): FastifyReply {
  return reply.code(status).send({ error: { code, message, details, resolution } })
}

/**
 * 400 for a v2 path called with `Version: v3`. ASSUMPTION: neither oauth-v3.json nor FACTS.md gives
 * this answer's text; the sandbox uses v3's AIP envelope with the AIP-193 code `INVALID_ARGUMENT`
 * and names the replacement.
 */
export function removedInV3(reply: FastifyReply, operation: string, replacement: string): FastifyReply {
  return aipError(
    reply,
    400,
    'INVALID_ARGUMENT',
    `${operation} is removed in version v3`,
    { header: 'Version', value: 'v3', replacement },
    `Call ${replacement} with Version: v3, or call ${operation} with Version: 2021-07-28.`,
  )
}

/** BadRequestDTO with one of oauth-v3.json's messages. */
function v3BadRequest(reply: FastifyReply, message: string): FastifyReply {
  return reply.code(400).send({ statusCode: 400, message })
}

function v3GrantFailure(reply: FastifyReply, failure: GrantFailure): FastifyReply {
  switch (failure.kind) {
    case 'invalid_grant':
      return v3BadRequest(reply, `Invalid grant: ${failure.subject === 'code' ? 'authorization code' : 'refresh token'} is invalid`)
    case 'redirect_uri':
      return v3BadRequest(reply, 'Invalid parameter: redirectUri')
    case 'user_type':
      return v3BadRequest(reply, `Invalid parameter: userType (${failure.message})`)
    case 'location_inactive':
      return v3BadRequest(reply, failure.message)
  }
}

/** The token answer with v3's camelCase names (GetAccessTokenSuccessfulResponseDto of oauth-v3.json). */
function camelTokenAnswer(v2: Record<string, unknown>): Record<string, unknown> {
  const { access_token, token_type, expires_in, refresh_token, ...rest } = v2
  return { accessToken: access_token, tokenType: token_type, expiresIn: expires_in, refreshToken: refresh_token, ...rest }
}

/** `POST /oauth/token` with `Version: v3`. */
export async function v3TokenEndpoint(ctx: SandboxContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const raw = bodyOf(req)
  countTokenCall(ctx, req, raw.grantType)
  if (await applyFault(ctx, 'token', req, reply)) return reply
  const text = (name: string): string | undefined => (typeof raw[name] === 'string' && raw[name] !== '' ? (raw[name] as string) : undefined)
  for (const name of ['clientId', 'clientSecret', 'grantType']) {
    if (text(name) === undefined) return v3BadRequest(reply, `Missing parameter: ${name}`)
  }
  const grantType = text('grantType')!
  if (!['authorization_code', 'refresh_token', 'client_credentials'].includes(grantType)) return v3BadRequest(reply, 'Invalid parameter: grantType')
  const userType = raw.userType
  if (userType !== undefined && userType !== 'Company' && userType !== 'Location') return v3BadRequest(reply, 'Invalid parameter: userType')
  for (const name of ['code', 'refreshToken', 'redirectUri']) {
    if (raw[name] !== undefined && typeof raw[name] !== 'string') return v3BadRequest(reply, `Invalid parameter: ${name}`)
  }
  const app = authenticateClient(ctx, text('clientId')!, text('clientSecret')!)
  if (!app) return unauthorized(reply, 'Invalid client credentials')
  // The enum lists client_credentials, but no HighLevel doc says what it grants: refused like v2 does.
  if (grantType === 'client_credentials') return v3BadRequest(reply, 'Invalid parameter: grantType')
  if (grantType === 'authorization_code' && text('code') === undefined) return v3BadRequest(reply, 'Missing parameter: code')
  if (grantType === 'refresh_token' && text('refreshToken') === undefined) return v3BadRequest(reply, 'Missing parameter: refreshToken')
  const outcome = runGrant(ctx, app, {
    grantType: grantType as 'authorization_code' | 'refresh_token',
    code: text('code'),
    refreshToken: text('refreshToken'),
    userType: userType as UserType | undefined,
    redirectUri: text('redirectUri'),
  })
  if (!outcome.ok) return v3GrantFailure(reply, outcome)
  sendAfterAnswer(ctx, reply, outcome.pending)
  return reply.send(camelTokenAnswer(tokenAnswer(ctx, outcome.access, outcome.refresh, outcome.install)))
}

const locationTokenSchema = z.object({ companyId: z.string().min(1), locationId: z.string().min(1) })

async function locationToken(ctx: SandboxContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const store = ctx.store
  const agency = await guard(ctx, req, reply, { scope: 'oauth.write', access: 'agency-only', counter: store.stats.locationToken, fault: 'locationToken', versions: V3 })
  if (!agency) return reply
  const input = bodyOf(req)
  const parsed = locationTokenSchema.safeParse(input)
  if (!parsed.success) return unprocessable(reply, zodMessages(parsed.error, input))
  const { companyId, locationId } = parsed.data
  const minted = mintLocationToken(ctx, agency, companyId, locationId, true)
  if (!minted.ok) return minted.status === 403 ? forbidden(reply, minted.message) : v3BadRequest(reply, minted.message)
  const plan = planOf(minted.app, minted.install)
  return reply.send({
    accessToken: minted.access.value,
    tokenType: 'Bearer',
    expiresIn: store.settings.accessTokenTtlSec,
    scope: minted.access.scopes.join(' '),
    locationId,
    ...(plan ? { planId: plan } : {}),
    userId: minted.access.userId,
    appId: agency.appId,
    ...(minted.app?.versionId ? { versionId: minted.app.versionId } : {}),
    refreshToken: minted.refresh!.value,
  })
}

const booleanText = z.enum(['true', 'false'])
const installedSchema = z.object({
  companyId: z.string().min(1),
  appId: z.string().min(1),
  pageSize: z.string().optional(),
  pageToken: z.string().optional(),
  query: z.string().optional(),
  isInstalled: z.string().optional(),
  restrictToUserLocations: z.string().optional(),
  versionId: z.string().optional(),
  onTrial: z.string().optional(),
  planId: z.string().optional(),
  locationId: z.string().optional(),
})

/** Cursor tokens: base64url of `{"skip": n}` (the shape of oauth-v3.json's `pageToken` example). */
function pageTokenFor(skip: number): string {
  return Buffer.from(JSON.stringify({ skip }), 'utf8').toString('base64url')
}

function skipOf(token: string): number | undefined {
  try {
    const value = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { skip?: unknown }
    return typeof value?.skip === 'number' && Number.isInteger(value.skip) && value.skip >= 0 ? value.skip : undefined
  } catch {
    return undefined
  }
}

async function installedLocations(ctx: SandboxContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const store = ctx.store
  const agency = await guard(ctx, req, reply, { scope: 'oauth.readonly', access: 'agency-only', counter: store.stats.installedLocations, fault: 'api', versions: V3 })
  if (!agency) return reply
  const input = req.query ?? {}
  const parsed = installedSchema.safeParse(input)
  if (!parsed.success) return unprocessable(reply, zodMessages(parsed.error, input))
  const q = parsed.data
  const invalid = (field: string, message: string): FastifyReply =>
    aipError(reply, 400, 'INVALID_ARGUMENT', message, { field, value: (q as Record<string, unknown>)[field] }, `Send a valid ${field}.`)
  const pageSize = q.pageSize === undefined ? 20 : Number(q.pageSize)
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 100) return invalid('pageSize', 'pageSize must be an integer from 1 to 100')
  const skip = q.pageToken === undefined ? 0 : skipOf(q.pageToken)
  if (skip === undefined) return invalid('pageToken', 'pageToken is not a token this API returned')
  for (const field of ['isInstalled', 'restrictToUserLocations', 'onTrial'] as const) {
    if (q[field] !== undefined && !booleanText.safeParse(q[field]).success) return invalid(field, `${field} must be true or false`)
  }
  if (q.companyId !== agency.companyId) return forbidden(reply, 'The token does not have access to this company')
  if (q.appId !== agency.appId) {
    // An app other than the token's is as good as unknown to the caller.
    return aipError(reply, 404, 'RESOURCE_NOT_FOUND', `The requested App '${q.appId}' was not found.`, { resource: 'App', identifier: q.appId }, 'Verify the App exists and you have permission to access it.')
  }
  const app = store.appById(q.appId)
  const company = store.company(q.companyId)!
  const agencyInstall = store.activeInstall(q.appId, 'Company', q.companyId)
  let rows = company.locations.map((l) => {
    const install = store.installForLocation(q.appId, l.locationId)
    return {
      _id: l.locationId,
      name: l.name,
      address: `${l.address}, ${l.city}, ${l.state} ${l.postalCode}, ${l.country}`,
      isInstalled: install !== undefined,
      ...(install && app?.versionId ? { versionId: app.versionId } : {}),
      ...(install ? { installedAt: new Date(install.installedAt).toISOString() } : {}),
    }
  })
  const filterApplied: Record<string, unknown> = { companyId: q.companyId, appId: q.appId }
  if (q.query) {
    const needle = q.query.toLowerCase()
    rows = rows.filter((r) => r.name.toLowerCase().includes(needle))
    filterApplied.query = q.query
  }
  if (q.isInstalled) {
    rows = rows.filter((r) => r.isInstalled === (q.isInstalled === 'true'))
    filterApplied.isInstalled = q.isInstalled === 'true'
  }
  if (q.locationId) {
    rows = rows.filter((r) => r._id === q.locationId)
    filterApplied.locationId = q.locationId
  }
  const items = rows.slice(skip, skip + pageSize)
  const hasNextPage = skip + pageSize < rows.length
  const hasPrevPage = skip > 0
  return reply.send({
    items,
    pagination: {
      totalRecords: rows.length,
      hasNextPage,
      hasPrevPage,
      ...(hasNextPage ? { nextPageToken: pageTokenFor(skip + pageSize) } : {}),
      ...(hasPrevPage ? { prevPageToken: pageTokenFor(Math.max(0, skip - pageSize)) } : {}),
      currentPageSize: items.length,
    },
    metadata: { filterApplied, sortApplied: {} },
    installToFutureLocations: agencyInstall?.installToFutureLocations ?? false,
  })
}

/** Registers the v3-only OAuth routes (the v3 token exchange shares `POST /oauth/token` with v2). */
export function registerV3OAuthRoutes(app: FastifyInstance, ctx: SandboxContext): void {
  app.post('/oauth/location-token', (req, reply) => locationToken(ctx, req, reply))
  app.get('/oauth/installed-locations', (req, reply) => installedLocations(ctx, req, reply))
}
