/**
 * Forwarding of verified events to the app's own endpoint (`GHL_WEBHOOK_FORWARD_URL`), for apps in any
 * language: every event (INSTALL, UNINSTALL and PLAN_CHANGE included) as a JSON POST signed per
 * Standard Webhooks (https://www.standardwebhooks.com, "Signature scheme"):
 *
 * - `webhook-id`: the event's webhookId (the same on every retry: the receiver's idempotency key);
 * - `webhook-timestamp`: the attempt's time, in seconds;
 * - `webhook-signature`: `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">` with the secret
 *   `GHL_WEBHOOK_FORWARD_SECRET` (`whsec_<base64>`, the key being the decoded bytes).
 *
 * So the app verifies them with any Standard Webhooks library (`new Webhook(secret).verify(body, headers)`).
 * `x-ghl-connect-event` and `x-ghl-connect-webhook-id` name the type and id too. The body is the same
 * bytes on every attempt. Only a 2xx answer acknowledges: anything else, a timeout or a network error
 * throws `GHL_WEBHOOK_FORWARD_FAILED`, and the event is retried (see `event-queue.ts`).
 */
import { createHmac } from 'node:crypto'
import { request, type Dispatcher } from 'undici'
import { systemClock, type Clock } from '../clock.js'
import { GhlError } from '../errors.js'

/** Options of {@link forwardWebhook}. */
export interface ForwardOptions {
  /** The signing key: the bytes of `whsec_<base64>` (see `GHL_WEBHOOK_FORWARD_SECRET`). */
  secret: Buffer
  dispatcher?: Dispatcher
  /** The whole exchange must finish within this many milliseconds. */
  timeoutMs: number
  clock?: Clock
}

/**
 * The Standard Webhooks signature of one message: `v1,<base64 HMAC-SHA256(secret, "id.timestamp.body")>`.
 * @example
 * signStandardWebhook(key, 'wh_1', 1767225600, '{"type":"INSTALL"}') // 'v1,K5oZ…='
 */
export function signStandardWebhook(secret: Buffer, id: string, timestampSec: number, body: string): string {
  return `v1,${createHmac('sha256', secret).update(`${id}.${timestampSec}.${body}`).digest('base64')}`
}

/** The body forwarded for an event: its verified payload with `type` and `webhookId`. */
export function forwardBody(event: { type: string; webhookId: string }): string {
  return JSON.stringify(event)
}

/**
 * POSTs a verified event to `url`, signed (see the file comment).
 * @throws GhlError `GHL_WEBHOOK_FORWARD_FAILED` (no 2xx answer, timeout, network), naming what happened.
 * @example
 * await forwardWebhook(config.webhookForwardUrl, event, { secret: config.webhookForwardSecret, timeoutMs: 10_000 })
 */
export async function forwardWebhook(url: string, event: { type: string; webhookId: string }, options: ForwardOptions): Promise<void> {
  const body = forwardBody(event)
  const timestamp = Math.floor((options.clock ?? systemClock).now() / 1000)
  const controller = new AbortController()
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    controller.abort()
  }, options.timeoutMs)
  let status: number
  try {
    const res = await request(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'webhook-id': event.webhookId,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signStandardWebhook(options.secret, event.webhookId, timestamp, body),
        'x-ghl-connect-event': event.type,
        'x-ghl-connect-webhook-id': event.webhookId,
      },
      body,
      dispatcher: options.dispatcher,
      signal: controller.signal,
    })
    status = res.statusCode
    await res.body.dump()
  } catch (err) {
    if (timedOut) throw new GhlError('GHL_WEBHOOK_FORWARD_FAILED', `Forwarding webhook ${event.webhookId} to the app timed out after ${options.timeoutMs} ms`, { cause: err })
    throw new GhlError('GHL_WEBHOOK_FORWARD_FAILED', `Forwarding webhook ${event.webhookId} to the app failed: ${(err as Error).message}`, { cause: err })
  } finally {
    clearTimeout(timer)
  }
  if (status < 200 || status >= 300) {
    throw new GhlError('GHL_WEBHOOK_FORWARD_FAILED', `Forwarding webhook ${event.webhookId} to the app was answered ${status}`)
  }
}
