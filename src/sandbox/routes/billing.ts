/**
 * Marketplace billing beyond the wallet-charge API (`resources/billing.ts`): external billing
 * (Billing.md) — HighLevel's redirect of the installer to the app's billing URL, and the app's report
 * `POST /oauth/billing/webhook` — and the test controls of meters, wallets and charges.
 *
 * `POST /oauth/billing/webhook` (Billing.md §3): headers `x-ghl-client-key` (the client id) and
 * `x-ghl-client-secret` (checked in constant time) → else 401; the body `{clientId, authType
 * (company|location), locationId (location), companyId (company), subscriptionId?, paymentId?, amount,
 * status (COMPLETED|FAILED), paymentType (one_time|recurring)}` → else 422 naming each field; a
 * `clientId` other than the header's → 400; an unknown location or company → 400. ASSUMPTION: the
 * answer (undocumented) is 200 `{success: true}`. Each accepted report is recorded
 * (`GET /_sandbox/billing/reports`). Billing faults apply to it as to charges: `error500` refuses it
 * before it is recorded, `drop` records it and closes the connection without an answer.
 */
import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import { badRequest, bodyOf, notFound, unauthorized, unprocessable, zodMessages, validBody, type SandboxContext } from '../http.js'
import { safeEqual, traceIdValue } from '../ids.js'
import { Collections } from '../resources/context.js'
import { chargeView, meterView, metersOf, setMeters, walletOf } from '../resources/billing.js'

const reportSchema = z
  .object({
    clientId: z.string().min(1),
    authType: z.enum(['company', 'location']),
    locationId: z.string().min(1).optional(),
    companyId: z.string().min(1).optional(),
    subscriptionId: z.string().optional(),
    paymentId: z.string().optional(),
    amount: z.number(),
    status: z.enum(['COMPLETED', 'FAILED']),
    paymentType: z.enum(['one_time', 'recurring']),
  })
  .superRefine((b, ctx) => {
    if (b.authType === 'location' && !b.locationId) ctx.addIssue({ code: 'custom', path: ['locationId'], message: 'required' })
    if (b.authType === 'company' && !b.companyId) ctx.addIssue({ code: 'custom', path: ['companyId'], message: 'required' })
  })

const meterSchema = z.object({
  meterId: z.string().min(1).optional(),
  meterName: z.string().default('Sandbox meter'),
  productName: z.string().default('Sandbox product'),
  productType: z.string().default('workflow_action'),
  usageUnit: z.string().default('unit'),
  priceType: z.enum(['fixed', 'dynamic']),
  fixedPricePerUnit: z.number().nonnegative().default(0),
  minPricePerUnit: z.union([z.string(), z.number().transform(String)]).optional(),
  maxPricePerUnit: z.union([z.string(), z.number().transform(String)]).optional(),
  executionLimitPerCycle: z.number().int().positive().default(1_000_000),
})

const externalStartSchema = z
  .object({ appId: z.string().optional(), locationId: z.string().min(1).optional(), companyId: z.string().min(1).optional(), locationIds: z.array(z.string().min(1)).optional() })
  .refine((b) => b.locationId !== undefined || b.companyId !== undefined, { message: 'give locationId or companyId' })

/** Registers external billing and the billing controls. */
export function registerBillingRoutes(app: FastifyInstance, ctx: SandboxContext): void {
  const store = ctx.store
  const data = new Collections(store)
  const appOf = (appId: unknown) => (typeof appId === 'string' ? store.appById(appId) : store.apps[0])

  app.post('/oauth/billing/webhook', async (req, reply) => {
    const key = req.headers['x-ghl-client-key']
    const secret = req.headers['x-ghl-client-secret']
    const theApp = typeof key === 'string' ? store.appByClientId(key) : undefined
    if (!theApp || typeof secret !== 'string' || !safeEqual(secret, theApp.clientSecret)) return unauthorized(reply, 'Invalid client credentials')
    const input = bodyOf(req)
    const parsed = reportSchema.safeParse(input)
    if (!parsed.success) return unprocessable(reply, zodMessages(parsed.error, input))
    const b = parsed.data
    if (b.clientId !== theApp.clientId) return badRequest(reply, 'clientId does not match x-ghl-client-key')
    if (b.authType === 'location' && !store.location(b.locationId!)) return badRequest(reply, 'Location not found')
    if (b.authType === 'company' && !store.company(b.companyId!)) return badRequest(reply, 'Company not found')
    // Billing faults apply here too: error500 before the report is recorded, drop after.
    const fault = ctx.faults.take('billing')
    if (fault) store.stats.faults.billing++
    if (fault && fault.kind !== 'drop') return reply.code(500).send({ statusCode: 500, message: 'Internal Server Error (sandbox fault)' })
    data.insert('billingReports', { id: traceIdValue(), appId: theApp.appId, ...b, receivedAt: new Date(store.now()).toISOString() })
    ctx.persist()
    if (fault?.kind === 'drop') {
      reply.hijack()
      req.raw.socket.destroy()
      return reply
    }
    return { success: true }
  })

  app.get('/_sandbox/billing/reports', async () => data.list('billingReports'))

  // HighLevel's redirect of an installer to the app's billing URL (Billing.md §2): what the browser would open.
  app.post('/_sandbox/billing/external/start', async (req, reply) => {
    const b = validBody(req, reply, externalStartSchema)
    if (b === undefined) return reply
    const theApp = appOf(b.appId)
    if (!theApp) return notFound(reply, 'Unknown app')
    const config = data.find('marketplaceApps', theApp.appId)
    if (typeof config?.billingUrl !== 'string') return badRequest(reply, 'The app has no billing URL (PUT /_sandbox/marketplace/:appId {billingUrl})')
    const locations = b.locationIds ?? (b.locationId ? [b.locationId] : [])
    for (const id of locations) if (!store.location(id)) return notFound(reply, `Unknown location ${id}`)
    if (b.companyId && !store.company(b.companyId)) return notFound(reply, 'Unknown company')
    const url = new URL(config.billingUrl)
    url.searchParams.set('clientId', theApp.clientId)
    url.searchParams.set('installType', b.companyId ? (locations.length > 0 ? 'agency,location' : 'agency') : 'location')
    if (locations.length > 0) url.searchParams.set('locationId', locations.join(','))
    if (b.companyId) url.searchParams.set('companyId', b.companyId)
    return { url: url.toString() }
  })

  app.get('/_sandbox/billing/meters', async (req, reply) => {
    const theApp = appOf((req.query as Record<string, unknown>).appId)
    if (!theApp) return notFound(reply, 'Unknown app')
    return metersOf(data, theApp.appId).map(meterView)
  })

  app.put('/_sandbox/billing/meters', async (req, reply) => {
    const input = bodyOf(req)
    const theApp = appOf(input.appId)
    if (!theApp) return notFound(reply, 'Unknown app')
    const parsed = z.array(meterSchema).safeParse(input.meters)
    if (!parsed.success) return badRequest(reply, zodMessages(parsed.error, input.meters).join('; '))
    // A fixed meter's range is its price (as HighLevel's example shows); a dynamic one needs its own.
    const meters = setMeters(
      data,
      theApp.appId,
      parsed.data.map((m) => ({
        ...m,
        minPricePerUnit: m.minPricePerUnit ?? String(m.priceType === 'fixed' ? m.fixedPricePerUnit : 0),
        maxPricePerUnit: m.maxPricePerUnit ?? String(m.priceType === 'fixed' ? m.fixedPricePerUnit : 1),
        ...(m.meterId === undefined ? {} : { meterId: m.meterId }),
      })),
    )
    ctx.persist()
    return meters.map(meterView)
  })

  app.get('/_sandbox/billing/wallets/:locationId', async (req, reply) => {
    const { locationId } = req.params as { locationId: string }
    if (!store.location(locationId)) return notFound(reply, 'Unknown location')
    return { locationId, balance: walletOf(data, locationId).balance }
  })

  app.put('/_sandbox/billing/wallets/:locationId', async (req, reply) => {
    const { locationId } = req.params as { locationId: string }
    if (!store.location(locationId)) return notFound(reply, 'Unknown location')
    const balance = bodyOf(req).balance
    if (typeof balance !== 'number' || !Number.isFinite(balance) || balance < 0) return badRequest(reply, 'balance must be a non-negative number')
    walletOf(data, locationId).balance = balance
    ctx.persist()
    return { locationId, balance }
  })

  // Every charge made (refunded ones too), oldest first, with its location: what a test counts.
  app.get('/_sandbox/billing/charges', async (req) => {
    const q = req.query as Record<string, unknown>
    return data
      .list('charges')
      .filter((c) => (q.locationId === undefined || c.locationId === q.locationId) && (q.appId === undefined || c.appId === q.appId))
      .map((c) => ({ ...chargeView(c), locationId: c.locationId, companyId: c.companyId }))
  })
}
