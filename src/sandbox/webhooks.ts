/**
 * Signed webhook delivery, as HighLevel sends it (WebhookAuthentication.md): a JSON POST with
 * `timestamp` and `webhookId` in the body, signed over the exact body bytes with `x-ghl-signature`
 * (Ed25519, base64) and/or `x-wh-signature` (RSA-SHA256 PKCS#1 v1.5, base64). Since 2026-07-01
 * HighLevel sends `x-ghl-signature` only (FACTS.md, "Webhooks"), so that is the default; the RSA
 * header is added when the `webhookSignatures` setting asks for it.
 *
 * A failed delivery is recorded and never retried automatically; `redeliver` re-sends the same bytes
 * and headers.
 */
import { createPrivateKey, createPublicKey, generateKeyPair, randomUUID, sign, type KeyObject } from 'node:crypto'
import { promisify } from 'node:util'
import type { Clock } from '../clock.js'
import type { Logger } from '../logger.js'
import type { WebhookSignatures } from './types.js'

const generateKeyPairAsync = promisify(generateKeyPair)

/** The signing keys (private halves stay inside the sandbox). */
export interface WebhookKeys {
  ed25519Private: KeyObject
  rsaPrivate: KeyObject
}

/** Serialised keys (PKCS#8 PEM) for the state file. */
export interface WebhookKeysPem {
  ed25519Private: string
  rsaPrivate: string
}

/** Generates a fresh Ed25519 and RSA-2048 key pair. */
export async function generateWebhookKeys(): Promise<WebhookKeys> {
  const [ed, rsa] = await Promise.all([
    generateKeyPairAsync('ed25519'),
    generateKeyPairAsync('rsa', { modulusLength: 2048 }),
  ])
  return { ed25519Private: ed.privateKey, rsaPrivate: rsa.privateKey }
}

/** Keys to PEM (PKCS#8). */
export function keysToPem(keys: WebhookKeys): WebhookKeysPem {
  return {
    ed25519Private: keys.ed25519Private.export({ type: 'pkcs8', format: 'pem' }).toString(),
    rsaPrivate: keys.rsaPrivate.export({ type: 'pkcs8', format: 'pem' }).toString(),
  }
}

/** PEM (PKCS#8) to keys. */
export function keysFromPem(pem: WebhookKeysPem): WebhookKeys {
  return { ed25519Private: createPrivateKey(pem.ed25519Private), rsaPrivate: createPrivateKey(pem.rsaPrivate) }
}

/** One recorded delivery. */
export interface WebhookDelivery {
  webhookId: string
  type: string
  url: string | null
  /** `skipped`: the app has no webhook URL. */
  status: 'pending' | 'delivered' | 'failed' | 'skipped'
  responseStatus: number | null
  attempts: number
  error: string | null
  payload: Record<string, unknown>
  body: Buffer
  headers: Record<string, string>
}

/** @internal */
export class WebhookSender {
  readonly #keys: WebhookKeys
  readonly #clock: Clock
  readonly #logger: Logger
  readonly #signatures: () => WebhookSignatures
  readonly #abort = new AbortController()
  #deliveries: WebhookDelivery[] = []
  #inFlight = new Set<Promise<unknown>>()

  /** `signatures` is read at each send, so a settings change applies to the next event. */
  constructor(keys: WebhookKeys, clock: Clock, logger: Logger, signatures: () => WebhookSignatures = () => 'ed25519') {
    this.#keys = keys
    this.#clock = clock
    this.#logger = logger
    this.#signatures = signatures
  }

  /** Public halves as SPKI PEM. */
  publicKeys(): { ed25519: string; rsa: string } {
    return {
      ed25519: createPublicKey(this.#keys.ed25519Private).export({ type: 'spki', format: 'pem' }).toString(),
      rsa: createPublicKey(this.#keys.rsaPrivate).export({ type: 'spki', format: 'pem' }).toString(),
    }
  }

  /** The signature headers the current setting asks for, over the exact bytes. */
  sign(body: Buffer): Record<string, string> {
    const which = this.#signatures()
    const headers: Record<string, string> = {}
    if (which !== 'rsa') headers['x-ghl-signature'] = sign(null, body, this.#keys.ed25519Private).toString('base64')
    if (which !== 'ed25519') headers['x-wh-signature'] = sign('sha256', body, this.#keys.rsaPrivate).toString('base64')
    return headers
  }

  /** Builds, signs, records and POSTs an event (`timestamp` and `webhookId` are added). */
  async send(url: string | null, event: Record<string, unknown>): Promise<WebhookDelivery> {
    const webhookId = randomUUID()
    const payload = { ...event, timestamp: new Date(this.#clock.now()).toISOString(), webhookId }
    const body = Buffer.from(JSON.stringify(payload), 'utf8')
    const headers = { 'content-type': 'application/json', ...this.sign(body) }
    const delivery: WebhookDelivery = {
      webhookId,
      type: String(event.type ?? 'unknown'),
      url,
      status: url ? 'pending' : 'skipped',
      responseStatus: null,
      attempts: 0,
      error: null,
      payload,
      body,
      headers,
    }
    this.#deliveries.push(delivery)
    if (url) await this.#post(delivery)
    return delivery
  }

  /** Re-sends a recorded delivery: the same bytes and headers. */
  async redeliver(webhookId: string): Promise<WebhookDelivery | undefined> {
    const delivery = this.#deliveries.find((d) => d.webhookId === webhookId)
    if (!delivery) return undefined
    if (delivery.url) await this.#post(delivery)
    return delivery
  }

  list(): WebhookDelivery[] {
    return this.#deliveries
  }

  clear(): void {
    this.#deliveries = []
  }

  /** Runs a delivery in the background; {@link close} waits for (or aborts) it. */
  background(task: () => Promise<unknown>): void {
    const p = task()
      .catch((err: unknown) => this.#logger.warn({ err }, 'sandbox webhook task failed'))
      .finally(() => this.#inFlight.delete(p))
    this.#inFlight.add(p)
  }

  /** Aborts in-flight deliveries and waits for background tasks. */
  async close(): Promise<void> {
    this.#abort.abort()
    await Promise.allSettled([...this.#inFlight])
  }

  async #post(delivery: WebhookDelivery): Promise<void> {
    delivery.attempts++
    const p = (async () => {
      try {
        const res = await fetch(delivery.url!, {
          method: 'POST',
          headers: delivery.headers,
          body: delivery.body,
          redirect: 'manual',
          signal: AbortSignal.any([this.#abort.signal, AbortSignal.timeout(10_000)]),
        })
        await res.arrayBuffer().catch(() => undefined)
        delivery.responseStatus = res.status
        delivery.status = res.status >= 200 && res.status < 300 ? 'delivered' : 'failed'
        delivery.error = delivery.status === 'failed' ? `HTTP ${res.status}` : null
      } catch (err) {
        delivery.status = 'failed'
        delivery.responseStatus = null
        delivery.error = (err as Error).message
      }
      this.#logger.info(
        { webhookId: delivery.webhookId, type: delivery.type, status: delivery.status, responseStatus: delivery.responseStatus },
        'sandbox webhook delivery',
      )
    })()
    this.#inFlight.add(p)
    try {
      await p
    } finally {
      this.#inFlight.delete(p)
    }
  }
}
