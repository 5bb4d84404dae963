/**
 * Forwarding of verified events to the app's own endpoint (`GHL_WEBHOOK_FORWARD_URL`): a JSON POST of the
 * event with `x-ghl-connect-event: <type>` and `x-ghl-connect-webhook-id: <webhookId>`. Any answer other
 * than 2xx, a timeout or a network error throws, and the receiver retries the event like a handler failure.
 */
import { request, type Dispatcher } from 'undici'
import { GhlError } from '../errors.js'

/** Options of {@link forwardWebhook}. */
export interface ForwardOptions {
  dispatcher?: Dispatcher
  /** The whole exchange must finish within this many milliseconds. */
  timeoutMs: number
}

/**
 * POSTs a verified event to `url`.
 * @throws GhlError `GHL_TIMEOUT`, `GHL_NETWORK` or `GHL_INTERNAL` (non-2xx answer), naming the status.
 * @example
 * await forwardWebhook(config.webhookForwardUrl, event, { timeoutMs: 10_000 })
 */
export async function forwardWebhook(url: string, event: { type: string; webhookId: string }, options: ForwardOptions): Promise<void> {
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
        'x-ghl-connect-event': event.type,
        'x-ghl-connect-webhook-id': event.webhookId,
      },
      body: JSON.stringify(event),
      dispatcher: options.dispatcher,
      signal: controller.signal,
    })
    status = res.statusCode
    await res.body.dump()
  } catch (err) {
    if (timedOut) throw new GhlError('GHL_TIMEOUT', `Forwarding webhook ${event.webhookId} timed out after ${options.timeoutMs} ms`, { cause: err })
    throw new GhlError('GHL_NETWORK', `Forwarding webhook ${event.webhookId} failed: ${(err as Error).message}`, { cause: err })
  } finally {
    clearTimeout(timer)
  }
  if (status < 200 || status >= 300) {
    throw new GhlError('GHL_INTERNAL', `Forwarding webhook ${event.webhookId} was answered ${status}`)
  }
}
