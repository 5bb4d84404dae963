/**
 * What `billing.charge()` takes, checked before anything is stored or sent: every problem HighLevel is
 * known to refuse (see `billing-shapes.ts`) is reported at once, naming the field, with what to do.
 */
import { z } from 'zod'
import { ChargeError } from './charge-error.js'
import { describeIssues } from './billing-shapes.js'

/** A wallet charge, as the app asks for it. */
export interface ChargeInput {
  /** The app's billing meter (its pricing page in the developer portal; `rebillingConfig()` lists them). */
  meterId: string
  /** How many units: a number (HighLevel refuses `"1"`), finite and above 0. */
  units: number
  /** Shown to the sub-account, e.g. "10 SMS sent". */
  description: string
  /**
   * The app's idempotency key for this charge (HighLevel's `eventId`): the same eventId is charged
   * once, whatever retries or instances do. Generated (a UUID) when absent and returned in the result —
   * keep it to retry safely.
   */
  eventId?: string
  /** Price per unit, for a dynamic-price meter only (HighLevel refuses a custom price on a fixed-price meter). */
  price?: number
  /** The HighLevel user the charge is for; never an empty string (leave it out instead). */
  userId?: string
  /** When the charged event happened (default: when HighLevel bills it). */
  eventTime?: Date | string
}

const EVENT_ID = /^[\x21-\x7e]{1,200}$/

const chargeInput = z.strictObject({
  meterId: z.string({ error: 'meterId must be a string' }).min(1, 'meterId should not be empty'),
  units: z
    .number({ error: 'units must be a finite number (HighLevel refuses a string such as "1": "units must be a number conforming to the specified constraints")' })
    .refine((n) => n > 0, 'units must be above 0'),
  description: z.string({ error: 'description must be a string' }).min(1, 'description should not be empty'),
  eventId: z.string({ error: 'eventId must be a string' }).regex(EVENT_ID, 'eventId must be 1–200 printable ASCII characters without spaces').optional(),
  price: z
    .number({ error: 'price must be a finite number' })
    .refine((n) => n >= 0, 'price must not be negative')
    .optional(),
  userId: z
    .string({ error: 'userId must be a string' })
    .min(1, 'userId must not be an empty string (HighLevel answers "userId should not be empty"): leave it out instead')
    .optional(),
  eventTime: z
    .union([z.date().refine((d) => Number.isFinite(d.getTime()), 'eventTime must be a valid date'), z.iso.datetime({ offset: true, error: 'eventTime must be an ISO 8601 date-time' })])
    .optional(),
})

/** A checked charge. `eventTime` is ISO 8601. */
export interface ChargeRequest {
  meterId: string
  units: number
  description: string
  eventId?: string
  price?: number
  userId?: string
  eventTime?: string
}

/**
 * Checks a charge.
 * @throws ChargeError `GHL_BILLING_INVALID` listing every problem (values are never quoted).
 */
export function parseChargeInput(input: unknown): ChargeRequest {
  const parsed = chargeInput.safeParse(input)
  if (!parsed.success) throw new ChargeError('GHL_BILLING_INVALID', `Invalid charge, not sent: ${describeIssues(parsed.error)}`, {})
  const c = parsed.data
  return {
    meterId: c.meterId,
    units: c.units,
    description: c.description,
    ...(c.eventId !== undefined ? { eventId: c.eventId } : {}),
    ...(c.price !== undefined ? { price: c.price } : {}),
    ...(c.userId !== undefined ? { userId: c.userId } : {}),
    ...(c.eventTime !== undefined ? { eventTime: c.eventTime instanceof Date ? c.eventTime.toISOString() : c.eventTime } : {}),
  }
}
