/**
 * HighLevel's Marketplace billing shapes, each in one zod schema: the wallet-charge API
 * (`api-docs/apps/marketplace.json`) and external billing (`api-docs/docs/oauth/Billing.md`).
 *
 * Verified against HighLevel's documentation: every field name and type below, except where a comment
 * says otherwise. From HighLevel's public issue tracker (api-docs issues #237, #244), not the OpenAPI
 * file: `units` must be a JSON number ("units must be a number conforming to the specified
 * constraints" for `"1"`), `userId` must not be an empty string ("userId should not be empty"), a
 * custom `price` on a fixed-price meter is refused ("Custom price is not allowed for fixed price
 * meters"), and the charge list carries `count` (deprecated) and `pagination`. Answers are parsed
 * leniently (unknown fields kept), requiring only what the connector relies on.
 */
import { z } from 'zod'

/** `POST /marketplace/billing/charges` body (RaiseChargeBodyDTO). */
export const raiseChargeBody = z.object({
  appId: z.string().min(1),
  meterId: z.string().min(1),
  eventId: z.string().min(1),
  locationId: z.string().min(1),
  companyId: z.string().min(1),
  description: z.string().min(1),
  units: z.number(),
  price: z.number().optional(),
  userId: z.string().min(1).optional(),
  eventTime: z.string().optional(),
})
export type RaiseChargeBody = z.infer<typeof raiseChargeBody>

/** Its 201 answer: `{success, chargeId}`. */
export const chargeCreated = z.looseObject({ success: z.boolean().optional(), chargeId: z.string().min(1) })

/** A wallet charge as `GET /marketplace/billing/charges[/{chargeId}]` answers it. */
export const walletCharge = z.looseObject({
  chargeId: z.string().min(1),
  appId: z.string().optional(),
  meterId: z.string().optional(),
  entityType: z.string().optional(),
  entityId: z.string().optional(),
  units: z.number().optional(),
  pricePerUnit: z.number().optional(),
  amountCharged: z.number().optional(),
  currency: z.string().optional(),
  transactionType: z.string().optional(),
  refunded: z.boolean().optional(),
  /** What the charge was created with: eventId, description, eventTime, userId. */
  meta: z.looseObject({ eventId: z.string().optional(), description: z.string().optional(), eventTime: z.string().optional(), userId: z.string().optional() }).optional(),
  createdAt: z.string().optional(),
  updatedAt: z.string().optional(),
})
export type WalletCharge = z.infer<typeof walletCharge>

/** `GET /marketplace/billing/charges`: `{charges, count (deprecated), pagination: {total, skip, limit}}`. */
export const chargeList = z.looseObject({
  charges: z.array(walletCharge),
  count: z.number().optional(),
  pagination: z.looseObject({ total: z.number().optional(), skip: z.number().optional(), limit: z.number().optional() }).optional(),
})
export type ChargeList = z.infer<typeof chargeList>

/** Query of `GET /marketplace/billing/charges`. */
export interface ChargeQuery {
  meterId?: string
  eventId?: string
  userId?: string
  /** `YYYY-MM-DD`: charges after it. */
  startDate?: string
  /** `YYYY-MM-DD`: charges before it. */
  endDate?: string
  skip?: number
  limit?: number
}

/** `GET /marketplace/billing/charges/has-funds`. */
export const hasFundsAnswer = z.looseObject({ hasFunds: z.boolean() })

/**
 * A price per unit as HighLevel documents it: a number (`fixedPricePerUnit`) or a decimal string
 * (`min`/`maxPricePerUnit`). Anything else reads as unknown (`null`) rather than failing the whole
 * configuration.
 */
const price = z
  .unknown()
  .transform((v) => (typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v.trim()) ? Number(v) : null))

/** A usage meter of the app (UsagePlanDTO). */
export const usagePlan = z.looseObject({
  meterId: z.string().min(1),
  meterName: z.string().optional(),
  productName: z.string().optional(),
  productType: z.string().optional(),
  usageUnit: z.string().optional(),
  priceType: z.enum(['fixed', 'dynamic']),
  fixedPricePerUnit: price,
  minPricePerUnit: price,
  maxPricePerUnit: price,
  executionLimitPerCycle: z.number().nullable().optional(),
})
export type UsagePlan = z.infer<typeof usagePlan>

/** A subscription plan (SubscriptionPlanDTO). */
export const subscriptionPlan = z.looseObject({
  planId: z.string(),
  name: z.string().optional(),
  baseAmount: z.number().optional(),
  resellingAmount: z.number().optional(),
  features: z.array(z.string()).optional(),
  paymentType: z.string().optional(),
  paymentTime: z.string().optional(),
})

/** `GET /marketplace/app/{appId}/rebilling-config/location/{locationId}` (GetRebillingConfigResponseDTO). */
export const rebillingConfig = z.looseObject({
  plans: z.looseObject({
    subscription: z.array(subscriptionPlan).default([]),
    usage: z.array(usagePlan).default([]),
  }),
})
export type RebillingConfig = z.infer<typeof rebillingConfig>

/**
 * The query HighLevel sends the installer to the app's billing URL with (Billing.md §2): `clientId`,
 * `installType` (`location`, `agency`, or `agency,location`), `locationId` (comma-separated when
 * several), `companyId`.
 */
export const billingRedirectQuery = z
  .object({
    clientId: z.string().min(1, 'clientId should not be empty'),
    installType: z
      .string()
      .min(1, 'installType should not be empty')
      .transform((v, ctx) => {
        const parts = v.split(',').map((p) => p.trim().toLowerCase()).filter(Boolean)
        if (parts.length === 0 || parts.some((p) => p !== 'location' && p !== 'agency')) {
          ctx.addIssue({ code: 'custom', message: `installType must be location, agency or agency,location, got ${JSON.stringify(v.slice(0, 40))}` })
          return z.NEVER
        }
        return { agency: parts.includes('agency'), location: parts.includes('location') }
      }),
    locationId: z
      .string()
      .optional()
      .transform((v) => (v ?? '').split(',').map((id) => id.trim()).filter(Boolean)),
    companyId: z.string().min(1).optional(),
  })
  .superRefine((q, ctx) => {
    if (q.installType.location && q.locationId.length === 0) ctx.addIssue({ code: 'custom', path: ['locationId'], message: 'locationId should not be empty for a location install' })
    if (q.installType.agency && !q.companyId) ctx.addIssue({ code: 'custom', path: ['companyId'], message: 'companyId should not be empty for an agency install' })
  })
export type BillingRedirect = z.infer<typeof billingRedirectQuery>

/**
 * `POST /oauth/billing/webhook` body (Billing.md §3). Headers `x-ghl-client-key` and
 * `x-ghl-client-secret` carry the app's credentials; one call per location or agency ("FAQs").
 * The answer's shape is not documented: any 2xx is success.
 */
export const billingWebhookBody = z
  .object({
    clientId: z.string().min(1),
    authType: z.enum(['company', 'location']),
    locationId: z.string().min(1).optional(),
    companyId: z.string().min(1).optional(),
    subscriptionId: z.string().min(1).optional(),
    paymentId: z.string().min(1).optional(),
    amount: z.number().finite().nonnegative(),
    status: z.enum(['COMPLETED', 'FAILED']),
    paymentType: z.enum(['one_time', 'recurring']),
  })
  .superRefine((b, ctx) => {
    if (b.authType === 'location' && !b.locationId) ctx.addIssue({ code: 'custom', path: ['locationId'], message: 'locationId is required when authType is location' })
    if (b.authType === 'company' && !b.companyId) ctx.addIssue({ code: 'custom', path: ['companyId'], message: 'companyId is required when authType is company' })
  })
export type BillingWebhookBody = z.infer<typeof billingWebhookBody>

/** Zod issues as one line: `path: message; …` (never the input values). */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => (i.path.length > 0 ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ')
}
