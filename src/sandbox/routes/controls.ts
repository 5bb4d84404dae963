/**
 * Test controls under `/_sandbox/` (documented in ../README.md). JSON in, JSON out.
 */
import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import { badRequest, bodyOf, notFound, zodMessages, validBody, type SandboxContext } from '../http.js'
import { appIdValue } from '../ids.js'
import { planChangeEvent, planOf, sendEvents, uninstallEvent } from '../lifecycle.js'
import { encryptWithPassphrase, type SsoUserContext } from '../sso.js'
import type { TokenRecord } from '../types.js'

const appChangeSchema = z.object({
  redirectUris: z.array(z.url()).optional(),
  webhookUrl: z.url().nullable().optional(),
  scopes: z.array(z.string().min(1)).optional(),
})

const settingsSchema = z.object({
  accessTokenTtlSec: z.number().positive().optional(),
  codeTtlSec: z.number().positive().optional(),
  rateLimit: z
    .object({
      burstMax: z.number().int().positive().optional(),
      burstWindowMs: z.number().int().positive().optional(),
      dailyMax: z.number().int().positive().optional(),
      dailyWindowMs: z.number().int().positive().optional(),
    })
    .optional(),
  reconnect: z.enum(['allow', 'removed', 'refuse']).optional(),
  reconnectRefusedIds: z.array(z.string().min(1)).optional(),
  webhookTiming: z.enum(['early', 'after-exchange', 'none']).optional(),
  userTypeCheck: z.enum(['hint', 'strict']).optional(),
  locationPickToken: z.enum(['location', 'company']).optional(),
  webhookSignatures: z.enum(['ed25519', 'rsa', 'both']).optional(),
  suspendedApiStatus: z.union([z.literal(401), z.literal(403)]).optional(),
  versionCheck: z.enum(['published', 'operation']).optional(),
})

const planChangeSchema = z
  .object({
    appId: z.string().optional(),
    locationId: z.string().min(1).optional(),
    companyId: z.string().min(1).optional(),
    newPlanId: z.string().min(1).optional(),
  })
  .refine((b) => (b.locationId === undefined) !== (b.companyId === undefined), { message: 'give exactly one of locationId or companyId' })

const faultSchema = z.object({
  endpoint: z.enum(['token', 'locationToken', 'reconnect', 'api', 'billing']),
  kind: z.enum(['error500', 'hang', 'malformed', 'drop']),
  count: z.number().int().positive().default(1),
  hangMs: z.number().int().positive().optional(),
})

const targetSchema = z
  .object({ token: z.string().min(1).optional(), locationId: z.string().min(1).optional(), companyId: z.string().min(1).optional() })
  .refine((b) => [b.token, b.locationId, b.companyId].filter((x) => x !== undefined).length === 1, {
    message: 'give exactly one of token, locationId or companyId',
  })

const uninstallSchema = z
  .object({ appId: z.string().optional(), locationId: z.string().min(1).optional(), companyId: z.string().min(1).optional() })
  .refine((b) => (b.locationId === undefined) !== (b.companyId === undefined), { message: 'give exactly one of locationId or companyId' })

const ssoSchema = z.object({
  appId: z.string().optional(),
  userId: z.string().optional(),
  companyId: z.string().optional(),
  locationId: z.string().optional(),
  role: z.string().optional(),
  type: z.string().optional(),
})

const pitSchema = z
  .object({ locationId: z.string().min(1).optional(), companyId: z.string().min(1).optional(), scopes: z.array(z.string().min(1)).optional() })
  .refine((b) => (b.locationId === undefined) !== (b.companyId === undefined), { message: 'give exactly one of locationId or companyId' })

/** Public view of a credential (`GET /_sandbox/tokens`). */
function tokenView(ctx: SandboxContext, t: TokenRecord): Record<string, unknown> {
  return {
    type: t.type,
    value: t.value,
    state: ctx.store.tokenState(t),
    clientId: t.clientId,
    companyId: t.companyId,
    locationId: t.locationId,
    userType: t.userType,
    scopes: t.scopes,
    source: t.source,
    issuedAt: new Date(t.issuedAt).toISOString(),
    expiresAt: t.expiresAt === null ? null : new Date(t.expiresAt).toISOString(),
  }
}

/**
 * Expires access tokens now: one token, or every active access token of a location (or of an agency's
 * Company grant). Returns how many; `undefined` for an unknown token.
 */
export function expireTokens(ctx: SandboxContext, target: { token?: string; locationId?: string; companyId?: string }): number | undefined {
  const { store } = ctx
  const now = store.now()
  let expired = 0
  if (target.token) {
    const t = store.tokens.get(target.token)
    if (!t) return undefined
    t.expiresAt = now
    expired = 1
  } else {
    for (const t of store.tokens.values()) {
      const hit = target.locationId ? t.locationId === target.locationId : t.userType === 'Company' && t.companyId === target.companyId
      if (t.type === 'access' && hit && store.tokenState(t) === 'active') {
        t.expiresAt = now
        expired++
      }
    }
  }
  ctx.persist()
  return expired
}

/** Registers the `/_sandbox/*` controls. */
export function registerControlRoutes(app: FastifyInstance, ctx: SandboxContext, reset: () => void): void {
  const store = ctx.store

  app.get('/_sandbox/apps', async () =>
    store.apps.map((a) => ({
      appId: a.appId,
      clientId: a.clientId,
      clientSecret: a.clientSecret,
      sharedSecret: a.sharedSecret,
      redirectUris: a.redirectUris,
      scopes: a.scopes,
      distribution: a.distribution,
      webhookUrl: a.webhookUrl,
    })),
  )

  app.put('/_sandbox/apps/:appId', async (req, reply) => {
    const target = store.appById((req.params as { appId: string }).appId)
    if (!target) return notFound(reply, 'Unknown app')
    const b = validBody(req, reply, appChangeSchema)
    if (b === undefined) return reply
    const c = b
    if (c.redirectUris) target.redirectUris = c.redirectUris
    if (c.webhookUrl !== undefined) target.webhookUrl = c.webhookUrl
    if (c.scopes) target.scopes = c.scopes
    ctx.persist()
    return { appId: target.appId, redirectUris: target.redirectUris, webhookUrl: target.webhookUrl, scopes: target.scopes }
  })

  app.get('/_sandbox/companies', async () =>
    store.companies.map((c) => ({ companyId: c.companyId, name: c.name, locations: c.locations.map((l) => ({ locationId: l.locationId, name: l.name })) })),
  )

  app.get('/_sandbox/users', async () => store.users)
  app.get('/_sandbox/installs', async () => store.installs)
  app.get('/_sandbox/stats', async () => store.stats)
  app.get('/_sandbox/tokens', async () => [...store.tokens.values()].map((t) => tokenView(ctx, t)))

  app.post('/_sandbox/tokens/expire', async (req, reply) => {
    const b = validBody(req, reply, targetSchema)
    if (b === undefined) return reply
    const expired = expireTokens(ctx, b)
    if (expired === undefined) return notFound(reply, 'Unknown token')
    return { expired }
  })

  app.post('/_sandbox/tokens/revoke', async (req, reply) => {
    const token = bodyOf(req).token
    if (typeof token !== 'string') return badRequest(reply, 'token is required')
    const t = store.tokens.get(token)
    if (!t) return notFound(reply, 'Unknown token')
    const revoked = store.revokeWhere((x) => x === t)
    ctx.persist()
    return { revoked }
  })

  app.get('/_sandbox/settings', async () => store.settings)
  app.put('/_sandbox/settings', async (req, reply) => {
    const b = validBody(req, reply, settingsSchema)
    if (b === undefined) return reply
    const s = b
    if (s.accessTokenTtlSec !== undefined) store.settings.accessTokenTtlSec = s.accessTokenTtlSec
    if (s.codeTtlSec !== undefined) store.settings.codeTtlSec = s.codeTtlSec
    if (s.rateLimit) Object.assign(store.settings.rateLimit, Object.fromEntries(Object.entries(s.rateLimit).filter(([, v]) => v !== undefined)))
    if (s.reconnect) store.settings.reconnect = s.reconnect
    if (s.reconnectRefusedIds) store.settings.reconnectRefusedIds = [...s.reconnectRefusedIds]
    if (s.webhookTiming) store.settings.webhookTiming = s.webhookTiming
    if (s.userTypeCheck) store.settings.userTypeCheck = s.userTypeCheck
    if (s.locationPickToken) store.settings.locationPickToken = s.locationPickToken
    if (s.webhookSignatures) store.settings.webhookSignatures = s.webhookSignatures
    if (s.suspendedApiStatus) store.settings.suspendedApiStatus = s.suspendedApiStatus
    if (s.versionCheck) store.settings.versionCheck = s.versionCheck
    return store.settings
  })

  app.post('/_sandbox/faults', async (req, reply) => {
    const b = validBody(req, reply, faultSchema)
    if (b === undefined) return reply
    const f = b
    ctx.faults.add(f.endpoint, f.kind, f.count, f.hangMs)
    return { pending: ctx.faults.pending() }
  })

  app.post('/_sandbox/reset', async () => {
    reset()
    return { reset: true }
  })

  app.get('/_sandbox/keys', async () => ctx.webhooks.publicKeys())

  app.post('/_sandbox/uninstall', async (req, reply) => {
    const b = validBody(req, reply, uninstallSchema)
    if (b === undefined) return reply
    const theApp = b.appId ? store.appById(b.appId) : store.apps[0]
    if (!theApp) return notFound(reply, 'Unknown app')
    const appId = theApp.appId
    const now = store.now()
    const events: Array<Record<string, unknown>> = []
    let revoked = 0
    if (b.locationId) {
      const locationId = b.locationId
      const own = store.activeInstall(appId, 'Location', locationId)
      const location = store.location(locationId)
      const agency = location ? store.activeInstall(appId, 'Company', location.companyId) : undefined
      const covered = agency ? store.agencyCovers(agency, locationId) : false
      if (!own && !covered) return notFound(reply, `The app is not installed for location ${locationId}`)
      if (own) own.uninstalledAt = now
      if (agency && covered) agency.excludedLocations.push(locationId)
      revoked = store.revokeWhere((t) => t.appId === appId && t.locationId === locationId)
      events.push(uninstallEvent(appId, { locationId }))
    } else {
      const companyId = b.companyId!
      const agency = store.activeInstall(appId, 'Company', companyId)
      if (!agency) return notFound(reply, `The app is not installed for company ${companyId}`)
      const covered = (store.company(companyId)?.locations ?? [])
        .map((l) => l.locationId)
        .filter((id) => store.agencyCovers(agency, id) && !store.activeInstall(appId, 'Location', id))
      agency.uninstalledAt = now
      // The agency's tokens and every location token minted from them.
      revoked = store.revokeWhere(
        (t) => t.appId === appId && (t.installId === agency.installId || (t.userType === 'Company' && t.companyId === companyId)),
      )
      events.push(uninstallEvent(appId, { companyId }), ...covered.map((locationId) => uninstallEvent(appId, { locationId })))
    }
    ctx.persist()
    const before = ctx.webhooks.list().length
    await sendEvents(ctx, appId, events)
    const webhookIds = ctx.webhooks.list().slice(before).map((d) => d.webhookId)
    return { uninstalled: true, revoked, webhookIds }
  })

  // Suspend / reactivate a location (SaaS billing paused it, or the agency did): its refresh tokens
  // answer 400 "Location is not active" and are not consumed; its API calls are refused.
  for (const [action, suspended] of [['suspend', true], ['reactivate', false]] as const) {
    app.post(`/_sandbox/locations/:locationId/${action}`, async (req, reply) => {
      const location = store.location((req.params as { locationId: string }).locationId)
      if (!location) return notFound(reply, 'Unknown location')
      location.suspended = suspended
      ctx.persist()
      return { locationId: location.locationId, suspended }
    })
  }

  app.post('/_sandbox/plan-change', async (req, reply) => {
    const b = validBody(req, reply, planChangeSchema)
    if (b === undefined) return reply
    const theApp = b.appId ? store.appById(b.appId) : store.apps[0]
    if (!theApp) return notFound(reply, 'Unknown app')
    // A location's plan lives on the install that makes the app installed there (its own, or the
    // agency install covering it).
    const install = b.locationId ? store.installForLocation(theApp.appId, b.locationId) : store.activeInstall(theApp.appId, 'Company', b.companyId!)
    if (!install) return notFound(reply, `The app is not installed for ${b.locationId ? `location ${b.locationId}` : `company ${b.companyId}`}`)
    const currentPlanId = planOf(theApp, install)
    if (!currentPlanId) return badRequest(reply, 'The app has no plan: PLAN_CHANGE is sent for paid apps (seed apps[].planId)')
    const newPlanId = b.newPlanId ?? appIdValue()
    install.planId = newPlanId
    ctx.persist()
    const delivery = await ctx.webhooks.send(theApp.webhookUrl, planChangeEvent(theApp.appId, install, b.locationId ?? null, currentPlanId, newPlanId))
    return { webhookId: delivery.webhookId, status: delivery.status, currentPlanId, newPlanId }
  })

  app.get('/_sandbox/webhooks', async () =>
    ctx.webhooks.list().map((d) => ({
      webhookId: d.webhookId,
      type: d.type,
      status: d.status,
      responseStatus: d.responseStatus,
      attempts: d.attempts,
      url: d.url,
      error: d.error,
      payload: d.payload,
    })),
  )

  app.post('/_sandbox/webhooks/redeliver', async (req, reply) => {
    const webhookId = bodyOf(req).webhookId
    if (typeof webhookId !== 'string') return badRequest(reply, 'webhookId is required')
    const d = await ctx.webhooks.redeliver(webhookId)
    if (!d) return notFound(reply, 'Unknown webhookId')
    return { webhookId: d.webhookId, type: d.type, status: d.status, responseStatus: d.responseStatus, attempts: d.attempts }
  })

  app.post('/_sandbox/webhooks/send', async (req, reply) => {
    const { appId, ...event } = bodyOf(req)
    if (typeof event.type !== 'string' || event.type === '') return badRequest(reply, 'type is required')
    const theApp = typeof appId === 'string' ? store.appById(appId) : store.apps[0]
    if (!theApp) return notFound(reply, 'Unknown app')
    // HighLevel's app lifecycle events name the app they concern (AppInstall.md, AppUninstall.md, PlanChange.md).
    const payload = ['INSTALL', 'UNINSTALL', 'PLAN_CHANGE'].includes(event.type) ? { appId: theApp.appId, ...event } : event
    const d = await ctx.webhooks.send(theApp.webhookUrl, payload)
    return { webhookId: d.webhookId, type: d.type, status: d.status, responseStatus: d.responseStatus }
  })

  app.post('/_sandbox/sso', async (req, reply) => {
    const b = validBody(req, reply, ssoSchema)
    if (b === undefined) return reply
    const theApp = b.appId ? store.appById(b.appId) : store.apps[0]
    if (!theApp) return notFound(reply, 'Unknown app')
    const user = b.userId ? store.users.find((u) => u.userId === b.userId) : store.userOf(b.companyId ?? store.companies[0]!.companyId)
    if (!user) return notFound(reply, 'Unknown user')
    const companyId = b.companyId ?? user.companyId
    if (!store.company(companyId)) return notFound(reply, 'Unknown company')
    if (b.locationId) {
      const l = store.location(b.locationId)
      if (!l || l.companyId !== companyId) return notFound(reply, 'Unknown location in this company')
    }
    const context: SsoUserContext = {
      userId: user.userId,
      companyId,
      role: b.role ?? user.role,
      type: b.type ?? user.type,
      ...(b.locationId ? { activeLocation: b.locationId } : {}),
      userName: user.name,
      email: user.email,
    }
    return { payload: encryptWithPassphrase(JSON.stringify(context), theApp.sharedSecret) }
  })

  app.post('/_sandbox/pit', async (req, reply) => {
    const b = validBody(req, reply, pitSchema)
    if (b === undefined) return reply
    let companyId: string
    if (b.locationId) {
      const l = store.location(b.locationId)
      if (!l) return notFound(reply, 'Unknown location')
      companyId = l.companyId
    } else {
      if (!store.company(b.companyId!)) return notFound(reply, 'Unknown company')
      companyId = b.companyId!
    }
    const t = store.issue({
      type: 'pit',
      clientId: null,
      appId: null,
      companyId,
      locationId: b.locationId ?? null,
      userType: b.locationId ? 'Location' : 'Company',
      userId: store.userOf(companyId).userId,
      scopes: b.scopes ?? [...store.apps[0]!.scopes],
      expiresAt: null,
      installId: null,
      source: 'pit',
      parent: null,
    })
    ctx.persist()
    return { token: t.value }
  })
}
