/**
 * The error of a wallet charge: a {@link GhlError} that names the charge's `eventId` (to retry with)
 * and, when HighLevel refused it, HighLevel's status and answer.
 */
import { GhlError, type ErrorCode } from '../../errors.js'

/** Codes a charge fails with (besides the client's: not installed, rate limited, network…). */
export type ChargeErrorCode = Extract<ErrorCode, `GHL_BILLING_${string}`>

/**
 * A charge that failed. `eventId` is absent only when the input was refused before one was chosen.
 * - `GHL_BILLING_INVALID`: refused before it was sent; nothing stored.
 * - `GHL_BILLING_REJECTED`: HighLevel refused it (`upstreamStatus`, `body`); nothing charged.
 * - `GHL_BILLING_CONFLICT`: the eventId belongs to another charge (meter, units, price or user differ).
 * - `GHL_BILLING_UNCONFIRMED`: not known yet whether it was charged; call again with the same eventId.
 */
export class ChargeError extends GhlError {
  readonly eventId: string | undefined
  readonly upstreamStatus: number | undefined
  readonly body: unknown
  readonly traceId: string | undefined

  constructor(
    code: ChargeErrorCode,
    message: string,
    details: { eventId?: string; upstreamStatus?: number; body?: unknown; traceId?: string; cause?: unknown },
  ) {
    super(code, message, { cause: details.cause })
    this.name = 'ChargeError'
    this.eventId = details.eventId
    this.upstreamStatus = details.upstreamStatus
    this.body = details.body
    this.traceId = details.traceId
  }
}
