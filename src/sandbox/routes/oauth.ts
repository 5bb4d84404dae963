/**
 * HighLevel's OAuth side: chooselocation (consent page), token endpoint, location tokens,
 * installed locations, reconnect. Shapes from oauth.json, common-schemas.json and FACTS.md.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'
import { checkAuthorizeRequest, completeConsent, consentPage, errorPage, sendEvents } from '../consent.js'
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
  zodMessages,
  type SandboxContext,
} from '../http.js'
import { safeEqual } from '../ids.js'
import type { AppRecord, InstallRecord, TokenRecord } from '../types.js'

const REFRESH_TTL_MS = 365 * 24 * 3600 * 1000

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
})

/** Client authentication with a constant-time secret comparison. */
function authenticateClient(ctx: SandboxContext, clientId: string, secret: string): AppRecord | undefined {
  const app = ctx.store.appByClientId(clientId)
  // Compare against a dummy when the client is unknown so both paths cost the same.
  const ok = safeEqual(app?.clientSecret ?? 'sandbox-unknown-client', secret)
  return app && ok ? app : undefined
}

/** Whether the target of a credential is still installed. */
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
  }
  const access = store.issue({ ...base, type: 'access', expiresAt: store.now() + store.settings.accessTokenTtlSec * 1000 })
  const refresh = store.issue({ ...base, type: 'refresh', expiresAt: store.now() + REFRESH_TTL_MS })
  return { access, refresh }
}

/** GetAccessCodeSuccessfulResponseDto. */
function tokenBody(ctx: SandboxContext, access: TokenRecord, refresh: TokenRecord, install: InstallRecord | undefined): Record<string, unknown> {
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
  if (app?.planId) body.planId = app.planId
  if (access.userType === 'Company' && install) {
    body.isBulkInstallation = install.isBulkInstallation
    body.approvedLocations = install.approvedLocations.filter((id) => !install.excludedLocations.includes(id))
    body.installToFutureLocations = install.installToFutureLocations
    body.approveAllLocations = install.approveAllLocations
  } else {
    body.isBulkInstallation = false
  }
  return body
}

function userTypeMismatch(reply: FastifyReply, asked: string, actual: string): FastifyReply {
  return badRequest(reply, `user_type ${asked} does not match the grant (${actual})`, { error: 'invalid_request' })
}

async function tokenEndpoint(ctx: SandboxContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const store = ctx.store
  const raw = bodyOf(req)
  const grant = raw.grant_type
  countAs(req, grant === 'authorization_code' || grant === 'refresh_token' ? store.stats.token[grant] : store.stats.token.other)
  if (await applyFault(ctx, 'token', req, reply)) return reply
  const input = raw
  const parsed = tokenRequestSchema.safeParse(input)
  if (!parsed.success) return unprocessable(reply, zodMessages(parsed.error, input))
  const body = parsed.data
  const app = authenticateClient(ctx, body.client_id, body.client_secret)
  if (!app) return unauthorized(reply, 'Invalid client credentials')

  if (body.grant_type === 'client_credentials') {
    return badRequest(reply, 'grant_type client_credentials is not supported', { error: 'unsupported_grant_type' })
  }

  if (body.grant_type === 'authorization_code') {
    if (!body.code) return unprocessable(reply, ['code should not be empty'])
    const code = store.tokens.get(body.code)
    if (!code || code.type !== 'code') return invalidGrant(reply, 'Invalid authorization code')
    if (code.clientId !== app.clientId) return invalidGrant(reply, 'The authorization code was issued to another client')
    const state = store.tokenState(code)
    if (state === 'used') {
      // RFC 6749 §4.1.2: a code used twice SHOULD revoke the tokens issued from it. The sandbox does.
      const family = new Set(store.descendants(code.value))
      const revoked = store.revokeWhere((t) => family.has(t))
      ctx.logger.warn({ revoked }, 'sandbox: authorization code reused; tokens issued from it revoked')
      ctx.persist()
      return invalidGrant(reply, 'The authorization code has already been used')
    }
    if (state === 'revoked') return invalidGrant(reply, 'The authorization code has been revoked')
    if (state === 'expired') return invalidGrant(reply, 'The authorization code has expired')
    if (code.redirectUri && body.redirect_uri !== undefined && body.redirect_uri !== code.redirectUri) {
      return invalidGrant(reply, 'redirect_uri does not match the one used at authorization')
    }
    if (body.user_type && body.user_type !== code.userType) return userTypeMismatch(reply, body.user_type, code.userType)
    const install = targetInstalled(ctx, code)
    if (!install) return invalidGrant(reply, 'The app is no longer installed for this grant')
    code.usedAt = store.now()
    if (code.source === 'reconnect') {
      // Reconnect: the new grant replaces the installation's earlier refresh tokens.
      store.revokeWhere(
        (t) =>
          t.type === 'refresh' &&
          t.appId === code.appId &&
          t.userType === code.userType &&
          t.companyId === code.companyId &&
          t.locationId === code.locationId &&
          t.issuedAt <= code.usedAt!,
      )
    }
    const { access, refresh } = issuePair(ctx, code, code.source === 'reconnect' ? 'reconnect' : 'consent')
    const pending = code.pendingWebhooks ?? []
    code.pendingWebhooks = []
    if (pending.length > 0 && code.appId) {
      const appId = code.appId
      // 'after-exchange': sent once the token answer has been written.
      reply.raw.once('close', () => ctx.webhooks.background(() => sendEvents(ctx, appId, pending)))
    }
    ctx.persist()
    return reply.send(tokenBody(ctx, access, refresh, install))
  }

  // refresh_token
  if (!body.refresh_token) return unprocessable(reply, ['refresh_token should not be empty'])
  const old = store.tokens.get(body.refresh_token)
  if (!old || old.type !== 'refresh') return invalidGrant(reply, 'Invalid refresh token')
  if (old.clientId !== app.clientId) return invalidGrant(reply, 'The refresh token was issued to another client')
  const state = store.tokenState(old)
  if (state === 'used') return invalidGrant(reply, 'The refresh token has already been used')
  if (state === 'revoked') return invalidGrant(reply, 'The refresh token has been revoked')
  if (state === 'expired') return invalidGrant(reply, 'The refresh token has expired')
  if (body.user_type && body.user_type !== old.userType) return userTypeMismatch(reply, body.user_type, old.userType)
  const install = targetInstalled(ctx, old)
  if (!install) return invalidGrant(reply, 'The app is no longer installed for this grant')
  // Rotation: the used refresh token is dead from now on; the access token issued with it stays
  // valid until its own expiry.
  old.usedAt = store.now()
  const { access, refresh } = issuePair(ctx, old, 'refresh')
  ctx.persist()
  return reply.send(tokenBody(ctx, access, refresh, install))
}

async function locationToken(ctx: SandboxContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const store = ctx.store
  const agency = await guard(ctx, req, reply, { scope: 'oauth.write', access: 'agency-only', counter: store.stats.locationToken, fault: 'locationToken' })
  if (!agency) return reply
  const input = bodyOf(req)
  const parsed = locationTokenSchema.safeParse(input)
  if (!parsed.success) return unprocessable(reply, zodMessages(parsed.error, input))
  const { companyId, locationId } = parsed.data
  if (companyId !== agency.companyId) return forbidden(reply, 'The token does not have access to this company')
  const location = store.location(locationId)
  if (!location || location.companyId !== companyId) return badRequest(reply, 'Location not found in this company')
  if (!agency.appId || !store.installForLocation(agency.appId, locationId)) {
    return badRequest(reply, 'The app is not installed on this location')
  }
  const token = store.issue({
    type: 'access',
    clientId: agency.clientId,
    appId: agency.appId,
    companyId,
    locationId,
    userType: 'Location',
    userId: agency.userId,
    scopes: agency.scopes,
    expiresAt: store.now() + store.settings.accessTokenTtlSec * 1000,
    installId: agency.installId,
    source: 'locationToken',
    parent: agency.value,
  })
  ctx.persist()
  const app = store.appById(agency.appId)
  return reply.send({
    access_token: token.value,
    token_type: 'Bearer',
    expires_in: store.settings.accessTokenTtlSec,
    scope: token.scopes.join(' '),
    locationId,
    companyId,
    userType: 'Location',
    userId: token.userId,
    appId: agency.appId,
    ...(app?.planId ? { planId: app.planId } : {}),
  })
}

async function installedLocations(ctx: SandboxContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const store = ctx.store
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
  const input = bodyOf(req)
  const parsed = reconnectSchema.safeParse(input)
  if (!parsed.success) return unprocessable(reply, zodMessages(parsed.error, input))
  const body = parsed.data
  const app = authenticateClient(ctx, body.clientKey, body.clientSecret)
  if (!app) return unauthorized(reply, 'Invalid client credentials')
  if (store.settings.reconnect === 'refuse') return badRequest(reply, 'Reconnect is not allowed for this installation')
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
    const input = bodyOf(req)
    const parsed = authorizeJsonSchema.safeParse(input)
    if (!parsed.success) return badRequest(reply, zodMessages(parsed.error, input).join('; '))
    const b = parsed.data
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
