/**
 * Marketplace wallet billing (marketplace.json): each app's meters, a wallet per location, and the
 * charges made on it. Stateful — charges take money out of the wallet, deleting one refunds it,
 * `has-funds` is false once the wallet is empty — so a test sees exactly what was charged.
 *
 * From HighLevel's docs: the operations, their bodies and answers; from HighLevel's issue tracker
 * (api-docs #244, #237): `userId` "" → 400 `userId should not be empty`, a custom price on a fixed-price
 * meter → 400 `Custom price is not allowed for fixed price meters` (a string `units` is refused by the
 * spec validation: 422 `units must be a number conforming to the specified constraints`), the list's
 * `count` and `pagination`. ASSUMPTIONS (undocumented): an unknown meter → 400 `Meter not found`; a
 * dynamic meter's price outside its min/max → 400; a dynamic meter charged without a price uses its
 * minimum; a charge larger than the wallet → 400 `Insufficient funds in the wallet`; another app's
 * `appId` → 403; deleting a refunded charge → 400. HighLevel does not document refusing a second charge
 * with the same `eventId`, and the sandbox does not refuse it: the connector's idempotency is what
 * keeps it from happening.
 *
 * Meters: two per app, made on first use (`Sandbox fixed meter` at 0.01 per unit, `Sandbox dynamic
 * meter` 0.001–1), or set by `PUT /_sandbox/billing/meters`. Wallets start at 100 (USD), or are set by
 * `PUT /_sandbox/billing/wallets/:locationId`. Faults (`POST /_sandbox/faults {endpoint: 'billing'}`)
 * apply to charges: `error500` refuses one before anything is charged; `drop` charges, then closes the
 * connection without an answer.
 */
import { appIdValue } from '../ids.js'
import { planOf } from '../lifecycle.js'
import { ApiFailure, isoNow, type Collections, type Handler, type HandlerInput, type Rec } from './context.js'

/** A wallet's balance when a location is first charged or asked about (USD). */
export const DEFAULT_WALLET_BALANCE = 100

/** The public fields of a meter (UsagePlanDTO). */
const METER_FIELDS = ['productType', 'productName', 'usageUnit', 'meterId', 'meterName', 'fixedPricePerUnit', 'priceType', 'minPricePerUnit', 'maxPricePerUnit', 'executionLimitPerCycle'] as const

/** The meters of an app: two defaults made on first use, unless set by the control. */
export function metersOf(data: Collections, appId: string): Rec[] {
  if (!data.once(`meters:${appId}`)) {
    const fixedId = appIdValue()
    const dynamicId = appIdValue()
    data.insert('meters', {
      id: fixedId,
      appId,
      meterId: fixedId,
      productType: 'workflow_action',
      productName: 'Sandbox action',
      usageUnit: 'action',
      meterName: 'Sandbox fixed meter',
      priceType: 'fixed',
      fixedPricePerUnit: 0.01,
      minPricePerUnit: '0.01',
      maxPricePerUnit: '0.01',
      executionLimitPerCycle: 1_000_000,
    })
    data.insert('meters', {
      id: dynamicId,
      appId,
      meterId: dynamicId,
      productType: 'workflow_action',
      productName: 'Sandbox message',
      usageUnit: 'message',
      meterName: 'Sandbox dynamic meter',
      priceType: 'dynamic',
      fixedPricePerUnit: 0,
      minPricePerUnit: '0.001',
      maxPricePerUnit: '1',
      executionLimitPerCycle: 1_000_000,
    })
  }
  return data.list('meters').filter((m) => m.appId === appId)
}

/** Replaces an app's meters (the control). */
export function setMeters(data: Collections, appId: string, meters: ReadonlyArray<Record<string, unknown>>): Rec[] {
  metersOf(data, appId)
  data.removeWhere('meters', (m) => m.appId === appId)
  for (const m of meters) {
    const meterId = typeof m.meterId === 'string' && m.meterId !== '' ? m.meterId : appIdValue()
    data.insert('meters', { ...m, appId, meterId, id: meterId })
  }
  return metersOf(data, appId)
}

/** A meter as HighLevel lists it. */
export function meterView(m: Rec): Record<string, unknown> {
  return Object.fromEntries(METER_FIELDS.filter((k) => m[k] !== undefined).map((k) => [k, m[k]]))
}

/** The wallet of a location (made with the default balance on first use). */
export function walletOf(data: Collections, locationId: string): Rec {
  return data.find('wallets', locationId) ?? data.insert('wallets', { id: locationId, balance: DEFAULT_WALLET_BALANCE })
}

/** A charge as HighLevel answers it (without the sandbox's own fields). */
export function chargeView(c: Rec): Record<string, unknown> {
  const { id: _id, locationId: _l, companyId: _c, ...view } = c
  return view
}

const round = (n: number): number => Math.round(n * 1e6) / 1e6
const price = (v: unknown): number | undefined => (typeof v === 'number' ? v : typeof v === 'string' && v !== '' && Number.isFinite(Number(v)) ? Number(v) : undefined)

function chargeOf(input: HandlerInput): Rec {
  const c = input.data.find('charges', String(input.path.chargeId))
  if (!c || c.appId !== input.token.appId || c.locationId !== input.token.locationId) throw new ApiFailure(404, 'Charge not found')
  return c
}

/** The charges of the token's app and location, newest first. */
export function chargesOf(data: Collections, appId: string | null, locationId: string | null): Rec[] {
  return data
    .list('charges')
    .filter((c) => c.appId === appId && c.locationId === locationId)
    .sort((a, b) => String(b.createdAt).localeCompare(String(a.createdAt)))
}

export const billingHandlers: Record<string, Handler> = {
  'marketplace/charge': (input) => {
    const fault = input.fault('billing')
    if (fault?.kind === 'error500' || fault?.kind === 'malformed' || fault?.kind === 'hang') {
      throw new ApiFailure(500, 'Internal Server Error (sandbox fault)')
    }
    const b = input.body
    const t = input.token
    if (b.appId !== t.appId) throw new ApiFailure(403, 'The token does not belong to this app')
    if (b.userId === '') throw new ApiFailure(400, 'userId should not be empty')
    const meter = metersOf(input.data, t.appId!).find((m) => m.meterId === b.meterId)
    if (!meter) throw new ApiFailure(400, 'Meter not found')
    let perUnit: number
    if (meter.priceType === 'fixed') {
      if (b.price !== undefined) throw new ApiFailure(400, 'Custom price is not allowed for fixed price meters')
      perUnit = price(meter.fixedPricePerUnit) ?? 0
    } else {
      const min = price(meter.minPricePerUnit) ?? 0
      const max = price(meter.maxPricePerUnit) ?? Number.POSITIVE_INFINITY
      perUnit = typeof b.price === 'number' ? b.price : min
      if (perUnit < min || perUnit > max) throw new ApiFailure(400, `Price per unit must be between ${min} and ${max}`)
    }
    const units = b.units as number
    const amount = round(units * perUnit)
    const wallet = walletOf(input.data, t.locationId!)
    if (Number(wallet.balance) < amount) throw new ApiFailure(400, 'Insufficient funds in the wallet')
    wallet.balance = round(Number(wallet.balance) - amount)
    const now = isoNow(input)
    const chargeId = appIdValue()
    input.data.insert('charges', {
      id: chargeId,
      locationId: t.locationId,
      companyId: t.companyId,
      refunded: false,
      currency: 'USD',
      appId: t.appId,
      meterId: meter.meterId,
      chargeId,
      entityType: 'location',
      entityId: t.locationId,
      amountCharged: amount,
      pricePerUnit: perUnit,
      transactionType: 'charge',
      units,
      meta: {
        eventId: b.eventId,
        description: b.description,
        ...(b.eventTime !== undefined ? { eventTime: b.eventTime } : {}),
        ...(b.userId !== undefined ? { userId: b.userId } : {}),
      },
      createdAt: now,
      updatedAt: now,
    })
    return { status: 201, body: { success: true, chargeId }, drop: fault?.kind === 'drop' }
  },
  'marketplace/getCharges': (input) => {
    const q = input.query
    const day = (iso: unknown) => String(iso).slice(0, 10)
    const rows = chargesOf(input.data, input.token.appId, input.token.locationId).filter((c) => {
      const meta = (c.meta ?? {}) as Record<string, unknown>
      return (
        (q.meterId === undefined || c.meterId === q.meterId) &&
        (q.eventId === undefined || meta.eventId === q.eventId) &&
        (q.userId === undefined || meta.userId === q.userId) &&
        (q.startDate === undefined || day(c.createdAt) >= String(q.startDate)) &&
        (q.endDate === undefined || day(c.createdAt) <= String(q.endDate))
      )
    })
    const skip = Math.max(0, Math.floor(Number(q.skip ?? 0)))
    const limit = Math.max(0, Math.floor(Number(q.limit ?? 10)))
    return { body: { charges: rows.slice(skip, skip + limit).map(chargeView), count: rows.length, pagination: { total: rows.length, skip, limit } } }
  },
  'marketplace/getSpecificCharge': (input) => ({ body: chargeView(chargeOf(input)) }),
  'marketplace/deleteCharge': (input) => {
    const c = chargeOf(input)
    if (c.refunded === true) throw new ApiFailure(400, 'Charge is already refunded')
    c.refunded = true
    c.updatedAt = isoNow(input)
    const wallet = walletOf(input.data, String(c.locationId))
    wallet.balance = round(Number(wallet.balance) + Number(c.amountCharged))
    return { body: { success: true } }
  },
  'marketplace/hasFunds': (input) => ({ body: { hasFunds: Number(walletOf(input.data, input.token.locationId!).balance) > 0 } }),
  'marketplace/get-rebilling-config-for-app': (input) => {
    const appId = input.path.appId
    if (appId !== input.token.appId) throw new ApiFailure(403, 'The token does not belong to this app')
    const app = input.store.appById(appId)
    const planId = planOf(app, input.store.installForLocation(appId, String(input.path.locationId)))
    return { body: { plans: { subscription: planId ? [subscriptionPlan(planId)] : [], usage: metersOf(input.data, appId).map(meterView) } } }
  },
}

/** The subscription plan of a paid app, as the rebilling configuration lists it. */
function subscriptionPlan(planId: string): Record<string, unknown> {
  return { resellingAmount: 0, baseAmount: 10, planId, features: [], paymentType: 'month', name: `Sandbox plan ${planId}`, paymentTime: 'month' }
}
