/**
 * `parseWebhook()`: everything that decides whether a webhook request is acceptable, with no I/O — the
 * "process" half of the receiver (as oauth4webapi splits each request from the processing of its
 * answer). The receiver then records and queues what this returns.
 *
 * Order of checks — each rejection is a {@link WebhookRejectedError} and nothing is stored:
 * 1. size (`GHL_WEBHOOK_MAX_BYTES`) → 413 `GHL_WEBHOOK_TOO_LARGE`;
 * 2. signature over the raw bytes (see `verify.ts`) → 401 `GHL_WEBHOOK_SIGNATURE_INVALID`. Only when
 *    `GHL_WEBHOOK_ALLOW_UNSIGNED` is on, not in production, **and** no signature header is present is an
 *    unsigned webhook accepted; a present-but-bad signature is always rejected;
 * 3. JSON (and nesting at most {@link MAX_JSON_DEPTH}) → 400 `GHL_WEBHOOK_INVALID`;
 * 4. common fields: `type`; `webhookId` — when absent, a stable id is derived as `sha256:<hex of the raw
 *    body>`, so a byte-identical redelivery is still caught; `timestamp` — required (HighLevel puts it in
 *    every payload, WebhookAuthentication.md; without it no replay window can be enforced) and within
 *    ±`GHL_WEBHOOK_TOLERANCE_MS` of our clock → else 400 `GHL_WEBHOOK_STALE`;
 * 5. the type must be one of {@link WEBHOOK_TYPES} → else 400 `GHL_WEBHOOK_INVALID` "unknown event type";
 * 6. INSTALL / UNINSTALL / PLAN_CHANGE must match AppInstall.md / AppUninstall.md / PlanChange.md and carry
 *    our `appId` → else 400.
 */
import { createHash } from 'node:crypto'
import type { Config } from '../config.js'
import { WebhookRejectedError } from '../errors.js'
import { commonWebhookSchema, installSchema, isWebhookEventType, planChangeSchema, uninstallSchema, type WebhookEventType } from './events.js'
import { WebhookVerifier, type WebhookHeaders } from './verify.js'

/** Deeper JSON is refused (400): no HighLevel event comes close, and it bounds the work of hostile input. */
export const MAX_JSON_DEPTH = 64

/** A webhook that passed every check. */
export interface ParsedWebhook {
  webhookId: string
  type: WebhookEventType
  /** The verified JSON body. */
  payload: Record<string, unknown>
  /** `timestamp` in ms since the epoch. */
  sentAt: number
  /** How it was verified (`unsigned` only in development with GHL_WEBHOOK_ALLOW_UNSIGNED). */
  verification: 'ed25519' | 'rsa-sha256' | 'unsigned'
}

/** The event types whose payloads are checked field by field on receipt. */
const LIFECYCLE_SCHEMAS = { INSTALL: installSchema, UNINSTALL: uninstallSchema, PLAN_CHANGE: planChangeSchema } as const

/**
 * Checks one webhook request (see the file comment for the order).
 *
 * @throws WebhookRejectedError with the status and code of the first check that failed.
 */
export function parseWebhook(
  rawBody: Buffer,
  headers: WebhookHeaders,
  context: { config: Config; verifier: WebhookVerifier; now: number },
): ParsedWebhook {
  const { config, verifier, now } = context
  if (!Buffer.isBuffer(rawBody)) throw new WebhookRejectedError('GHL_WEBHOOK_INVALID', 'Webhook rejected: the body must be the raw request bytes')
  if (rawBody.length > config.webhookMaxBytes) {
    throw new WebhookRejectedError('GHL_WEBHOOK_TOO_LARGE', `Webhook rejected: the body is ${rawBody.length} bytes; at most ${config.webhookMaxBytes} are accepted`)
  }

  let verification: ParsedWebhook['verification']
  if (config.allowUnsignedWebhooks && !config.production && !WebhookVerifier.hasSignatureHeader(headers ?? {})) verification = 'unsigned'
  else verification = verifier.verify(rawBody, headers).algorithm

  const invalid = (message: string): WebhookRejectedError => new WebhookRejectedError('GHL_WEBHOOK_INVALID', `Webhook rejected: ${message}`)
  if (jsonDepth(rawBody) > MAX_JSON_DEPTH) throw invalid(`the JSON is nested deeper than ${MAX_JSON_DEPTH} levels`)
  let json: unknown
  try {
    json = JSON.parse(rawBody.toString('utf8'))
  } catch {
    throw invalid('the body is not valid JSON')
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw invalid('the body is not a JSON object')
  const common = commonWebhookSchema.safeParse(json)
  if (!common.success) throw invalid(`malformed common fields (${describe(common.error.issues)})`)
  const payload = json as Record<string, unknown>
  const { type } = common.data
  const webhookId = common.data.webhookId ?? `sha256:${createHash('sha256').update(rawBody).digest('hex')}`

  const ts = common.data.timestamp
  if (ts === undefined) {
    throw new WebhookRejectedError('GHL_WEBHOOK_STALE', 'Webhook rejected: it has no timestamp, so its age cannot be checked (HighLevel sends one in every webhook)')
  }
  const at = typeof ts === 'number' ? ts : /^\d{4}-\d{2}-\d{2}T/.test(ts) ? Date.parse(ts) : Number.NaN
  if (!Number.isFinite(at)) throw invalid('timestamp is not an ISO 8601 date')
  if (Math.abs(now - at) > config.webhookToleranceMs) {
    const seconds = Math.round((now - at) / 1000)
    throw new WebhookRejectedError(
      'GHL_WEBHOOK_STALE',
      `Webhook rejected: its timestamp is ${Math.abs(seconds)} s ${seconds >= 0 ? 'old' : 'in the future'}; at most ${Math.round(config.webhookToleranceMs / 1000)} s either way is accepted`,
    )
  }

  if (!isWebhookEventType(type)) throw invalid(`unknown event type ${JSON.stringify(type.slice(0, 100))}`)
  if (type === 'INSTALL' || type === 'UNINSTALL' || type === 'PLAN_CHANGE') {
    const result = LIFECYCLE_SCHEMAS[type].safeParse(payload)
    if (!result.success) throw invalid(`malformed ${type} event (${describe(result.error.issues)})`)
    if (result.data.appId !== config.appId) {
      throw invalid(`the ${type} event is for app ${JSON.stringify(result.data.appId.slice(0, 100))}, not this app (${config.appId})`)
    }
  }
  return { webhookId, type, payload, sentAt: at, verification }
}

function describe(issues: readonly { path: readonly PropertyKey[]; message: string }[]): string {
  return issues
    .slice(0, 5)
    .map((i) => `${i.path.map(String).join('.') || 'body'}: ${i.message}`)
    .join('; ')
}

/** The maximum nesting of `{`/`[` outside strings, scanning bytes (no parse, no recursion). */
export function jsonDepth(bytes: Buffer): number {
  let depth = 0
  let max = 0
  let inString = false
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]
    if (inString) {
      if (c === 0x5c) i++ // backslash: skip the escaped byte
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) max = depth
      if (max > MAX_JSON_DEPTH) return max
    } else if (c === 0x7d || c === 0x5d) depth--
  }
  return max
}
