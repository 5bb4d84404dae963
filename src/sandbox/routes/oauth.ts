/**
 * HighLevel's OAuth side, v2: chooselocation (consent page), token endpoint, location tokens,
 * installed locations, reconnect. Shapes from oauth.json, common-schemas.json and FACTS.md. The
 * grant logic is in ../grants.js; the v3 routes (`Version: v3`) in ./v3-oauth.js.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'
import { checkAuthorizeRequest, completeConsent, consentPage, errorPage } from '../consent.js'
import { authenticateClient, countTokenCall, mintLocationToken, runGrant, sendAfterAnswer, tokenAnswer, type GrantFailure } from '../grants.js'
import {
  applyFault,
  badRequest,
  bodyOf,
  countAs,
  forbidden,
  guard,
  invalidGrant,
  notFound,
  unauthorized,
  unprocessable,
  validBody,
  zodMessages,
  type SandboxContext,
} from '../http.js'
import { planOf } from '../lifecycle.js'
import type { InstallRecord } from '../types.js'
import { removedInV3, v3TokenEndpoint } from './v3-oauth.js'

const tokenRequestSchema = z.object({
  client_id: z.string().min(1),
  client_secret: z.string().min(1),
  grant_type: z.enum(['authorization_code', 'refresh_token', 'client_credentials']),
  code: z.string().optional(),
  refresh_token: z.string().optional(),
  user_type: z.enum(['Company', 'Location']).optional(),
  redirect_uri: z.string().optional(),
})

const locationTokenSchema = z.object({ companyId: z.string().min(1), locationId: z.string().min(1) })

const installedLocationsSchema = z.object({
  companyId: z.string().min(1),
  appId: z.string().min(1),
  skip: z.string().regex(/^\d+$/, 'skip must be a non-negative integer').optional(),
  limit: z.string().regex(/^\d+$/, 'limit must be a non-negative integer').optional(),
  query: z.string().optional(),
  isInstalled: z.enum(['true', 'false']).optional(),
  locationId: z.string().optional(),
  versionId: z.string().optional(),
  onTrial: z.string().optional(),
  planId: z.string().optional(),
})

const reconnectSchema = z
  .object({
    clientKey: z.string().min(1),
    clientSecret: z.string().min(1),
    locationId: z.string().min(1).optional(),
    companyId: z.string().min(1).optional(),
  })
  .refine((b) => (b.locationId === undefined) !== (b.companyId === undefined), {
    message: 'exactly one of locationId or companyId is required',
    path: ['locationId'],
  })

const authorizeJsonSchema = z.object({
  clientId: z.string(),
  redirectUri: z.string(),
  scope: z.string(),
  state: z.string().optional(),
  locationId: z.string().optional(),
  companyId: z.string().optional(),
  locationIds: z.array(z.string()).optional(),
  installToFutureLocations: z.boolean().optional(),
  deny: z.boolean().optional(),
  webhookTiming: z.enum(['early', 'after-exchange', 'none']).optional(),
  userId: z.string().optional(),
})

/** The v2 shape of a refused grant (see README "POST /oauth/token"). */
function sendGrantFailure(reply: FastifyReply, failure: GrantFailure): FastifyReply {
  switch (failure.kind) {
    case 'invalid_grant':
    case 'redirect_uri':
      return invalidGrant(reply, failure.message)
    case 'user_type':
      return badRequest(reply, failure.message, { error: 'invalid_request' })
    case 'location_inactive':
      // oauth-v3.json `locationNotActive`; HighLevel answers v2 refreshes the same way (issue #249).
      return reply.code(400).send({ statusCode: 400, message: failure.message })
  }
}

async function tokenEndpoint(ctx: SandboxContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  // oauth-v3.json: the v3 token exchange is this same path with `Version: v3` and camelCase fields.
  if (req.headers.version === 'v3') return v3TokenEndpoint(ctx, req, reply)
  const raw = bodyOf(req)
  countTokenCall(ctx, req, raw.grant_type)
  if (await applyFault(ctx, 'token', req, reply)) return reply
  const parsed = tokenRequestSchema.safeParse(raw)
  if (!parsed.success) return unprocessable(reply, zodMessages(parsed.error, raw))
  const body = parsed.data
  const app = authenticateClient(ctx, body.client_id, body.client_secret)
  if (!app) return unauthorized(reply, 'Invalid client credentials')
  if (body.grant_type === 'client_credentials') {
    return badRequest(reply, 'grant_type client_credentials is not supported', { error: 'unsupported_grant_type' })
  }
  if (body.grant_type === 'authorization_code' && !body.code) return unprocessable(reply, ['code should not be empty'])
  if (body.grant_type === 'refresh_token' && !body.refresh_token) return unprocessable(reply, ['refresh_token should not be empty'])
  const outcome = runGrant(ctx, app, {
    grantType: body.grant_type,
    code: body.code,
    refreshToken: body.refresh_token,
    userType: body.user_type,
    redirectUri: body.redirect_uri,
  })
  if (!outcome.ok) return sendGrantFailure(reply, outcome)
  sendAfterAnswer(ctx, reply, outcome.pending)
  return reply.send(tokenAnswer(ctx, outcome.access, outcome.refresh, outcome.install))
}

async function locationToken(ctx: SandboxContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const store = ctx.store
  if (req.headers.version === 'v3') {
    countAs(req, store.stats.locationToken)
    return removedInV3(reply, 'POST /oauth/locationToken', 'POST /oauth/location-token')
  }
  const agency = await guard(ctx, req, reply, { scope: 'oauth.write', access: 'agency-only', counter: store.stats.locationToken, fault: 'locationToken' })
  if (!agency) return reply
  const input = bodyOf(req)
  const parsed = locationTokenSchema.safeParse(input)
  if (!parsed.success) return unprocessable(reply, zodMessages(parsed.error, input))
  const { companyId, locationId } = parsed.data
  const minted = mintLocationToken(ctx, agency, companyId, locationId, false)
  if (!minted.ok) return minted.status === 403 ? forbidden(reply, minted.message) : badRequest(reply, minted.message)
  const plan = planOf(minted.app, minted.install)
  return reply.send({
    access_token: minted.access.value,
    token_type: 'Bearer',
    expires_in: store.settings.accessTokenTtlSec,
    scope: minted.access.scopes.join(' '),
    locationId,
    companyId,
    userType: 'Location',
    userId: minted.access.userId,
    appId: agency.appId,
    ...(plan ? { planId: plan } : {}),
  })
}

async function installedLocations(ctx: SandboxContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const store = ctx.store
  if (req.headers.version === 'v3') {
    countAs(req, store.stats.installedLocations)
    return removedInV3(reply, 'GET /oauth/installedLocations', 'GET /oauth/installed-locations')
  }
  const agency = await guard(ctx, req, reply, {
    scope: 'oauth.readonly',
    access: 'agency-only',
    counter: store.stats.installedLocations,
    fault: 'api',
  })
  if (!agency) return reply
  const input = req.query ?? {}
  const parsed = installedLocationsSchema.safeParse(input)
  if (!parsed.success) return unprocessable(reply, zodMessages(parsed.error, input))
  const q = parsed.data
  if (q.companyId !== agency.companyId) return forbidden(reply, 'The token does not have access to this company')
  if (q.appId !== agency.appId) return badRequest(reply, 'appId does not match the app of the token')
  const company = store.company(q.companyId)!
  const agencyInstall = store.activeInstall(q.appId, 'Company', q.companyId)
  let rows = company.locations.map((l) => {
    const install = store.installForLocation(q.appId, l.locationId)
    return {
      _id: l.locationId,
      name: l.name,
      address: `${l.address}, ${l.city}, ${l.state} ${l.postalCode}, ${l.country}`,
      isInstalled: install !== undefined,
      ...(install ? { installedAt: new Date(install.installedAt).toISOString() } : {}),
    }
  })
  if (q.query) rows = rows.filter((r) => r.name.toLowerCase().includes(q.query!.toLowerCase()))
  if (q.isInstalled) rows = rows.filter((r) => r.isInstalled === (q.isInstalled === 'true'))
  if (q.locationId) rows = rows.filter((r) => r._id === q.locationId)
  const skip = Number(q.skip ?? '0')
  const limit = Number(q.limit ?? '20')
  return reply.send({
    locations: rows.slice(skip, skip + limit),
    count: rows.length,
    installToFutureLocations: agencyInstall?.installToFutureLocations ?? false,
  })
}

async function reconnect(ctx: SandboxContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const store = ctx.store
  countAs(req, store.stats.reconnect)
  if (await applyFault(ctx, 'reconnect', req, reply)) return reply
  if (store.settings.reconnect === 'removed') {
    // HighLevel since September 2026, for every call whatever its body or Version header (FACTS.md,
    // "Reconnect"; HighLevel API docs issue #333). Key order as HighLevel writes it.
    return reply.code(400).send({ message: 'API endpoint has been removed', error: 'Bad Request', statusCode: 400 })
  }
  const input = bodyOf(req)
  const parsed = reconnectSchema.safeParse(input)
  if (!parsed.success) return unprocessable(reply, zodMessages(parsed.error, input))
  const body = parsed.data
  const app = authenticateClient(ctx, body.clientKey, body.clientSecret)
  if (!app) return unauthorized(reply, 'Invalid client credentials')
  const target = body.locationId ?? body.companyId!
  if (store.settings.reconnect === 'refuse' || store.settings.reconnectRefusedIds.includes(target)) {
    return badRequest(reply, 'Reconnect is not allowed for this installation')
  }
  let install: InstallRecord | undefined
  if (body.locationId) install = store.installForLocation(app.appId, body.locationId)
  else install = store.activeInstall(app.appId, 'Company', body.companyId!)
  if (!install) {
    return notFound(reply, `The app is not installed for ${body.locationId ? `location ${body.locationId}` : `company ${body.companyId}`}`)
  }
  const code = store.issue({
    type: 'code',
    clientId: app.clientId,
    appId: app.appId,
    companyId: install.companyId,
    locationId: body.locationId ?? null,
    userType: body.locationId ? 'Location' : 'Company',
    userId: install.userId,
    scopes: install.scopes,
    expiresAt: store.now() + store.settings.codeTtlSec * 1000,
    installId: install.installId,
    source: 'reconnect',
    parent: null,
    redirectUri: null,
    webhookTiming: 'none',
    pendingWebhooks: [],
  })
  ctx.persist()
  return reply.send({ authorizationCode: code.value, expiresAt: new Date(code.expiresAt!).toISOString(), traceId: req.id })
}

function formList(v: unknown): string[] {
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string')
  return typeof v === 'string' ? [v] : []
}

/** Registers the OAuth routes. */
export function registerOAuthRoutes(app: FastifyInstance, ctx: SandboxContext): void {
  const page = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const q = (req.query ?? {}) as Record<string, unknown>
    const check = checkAuthorizeRequest(ctx, { clientId: q.client_id, redirectUri: q.redirect_uri, responseType: q.response_type, scope: q.scope })
    reply.header('content-type', 'text/html; charset=utf-8')
    if (!check.ok) return reply.code(400).send(errorPage(check.message))
    return reply.send(consentPage(ctx, check, typeof q.state === 'string' ? q.state : undefined))
  }
  app.get('/oauth/chooselocation', page)
  app.get('/v2/oauth/chooselocation', page)

  app.post('/oauth/chooselocation/decision', async (req, reply) => {
    const b = bodyOf(req)
    const check = checkAuthorizeRequest(ctx, { clientId: b.client_id, redirectUri: b.redirect_uri, responseType: b.response_type, scope: b.scope })
    if (!check.ok) return reply.code(400).header('content-type', 'text/html; charset=utf-8').send(errorPage(check.message))
    const target = typeof b.target === 'string' ? b.target : ''
    const [kind, id] = [target.slice(0, target.indexOf(':')), target.slice(target.indexOf(':') + 1)]
    const company = kind === 'company' ? ctx.store.company(id) : undefined
    const result = await completeConsent(ctx, check, {
      deny: b.action === 'deny',
      state: typeof b.state === 'string' ? b.state : undefined,
      locationId: kind === 'location' ? id : undefined,
      companyId: kind === 'company' ? id : undefined,
      locationIds: company ? formList(b.locationIds).filter((l) => company.locations.some((x) => x.locationId === l)) : undefined,
      installToFutureLocations: company ? formList(b.installToFutureLocations).includes(company.companyId) : undefined,
    })
    if ('error' in result) return reply.code(400).header('content-type', 'text/html; charset=utf-8').send(errorPage(result.error))
    return reply.redirect(result.redirect, 302)
  })

  app.post('/_sandbox/authorize', async (req, reply) => {
    const b = validBody(req, reply, authorizeJsonSchema)
    if (b === undefined) return reply
    const check = checkAuthorizeRequest(ctx, { clientId: b.clientId, redirectUri: b.redirectUri, responseType: 'code', scope: b.scope })
    if (!check.ok) return badRequest(reply, check.message)
    const result = await completeConsent(ctx, check, b)
    if ('error' in result) return badRequest(reply, result.error)
    return reply.send(result)
  })

  app.post('/oauth/token', (req, reply) => tokenEndpoint(ctx, req, reply))
  app.post('/oauth/locationToken', (req, reply) => locationToken(ctx, req, reply))
  app.get('/oauth/installedLocations', (req, reply) => installedLocations(ctx, req, reply))
  app.post('/oauth/reconnect', (req, reply) => reconnect(ctx, req, reply))
}
