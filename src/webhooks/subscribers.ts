/**
 * Typed subscriptions to verified webhook events: `on('ContactCreate', handler)` or `on('*', …)`.
 * Every handler of an event runs (one failing does not skip the others); failures are thrown together.
 */
import { GhlError } from '../errors.js'
import { isWebhookEventType, type WebhookEvent, type WebhookEventMap, type WebhookType } from './events.js'

type Handler = (event: WebhookEvent) => void | Promise<void>

/** See the file comment. */
export class Subscribers {
  readonly #handlers = new Map<WebhookType, Set<Handler>>()

  /** Subscribes to one type (or `'*'`). Returns the unsubscribe function. */
  on<T extends WebhookType>(type: T, handler: (event: WebhookEventMap[T]) => void | Promise<void>): () => void {
    if (type !== '*' && !isWebhookEventType(type)) throw new GhlError('GHL_BAD_REQUEST', `Unknown webhook event type ${JSON.stringify(type)}`)
    if (typeof handler !== 'function') throw new GhlError('GHL_BAD_REQUEST', 'expected a webhook handler function')
    let set = this.#handlers.get(type)
    if (!set) this.#handlers.set(type, (set = new Set()))
    const h = handler as Handler
    set.add(h)
    return () => {
      set.delete(h)
    }
  }

  /** Runs every handler of the event's type and of `'*'`. @throws the failure (an AggregateError for several). */
  async dispatch(event: WebhookEvent): Promise<void> {
    const handlers = [...(this.#handlers.get(event.type) ?? []), ...(this.#handlers.get('*') ?? [])]
    const errors: unknown[] = []
    for (const handler of handlers) {
      try {
        await handler(event)
      } catch (err) {
        errors.push(err)
      }
    }
    if (errors.length === 1) throw errors[0]
    if (errors.length > 1) throw new AggregateError(errors, `${errors.length} webhook handlers failed`)
  }
}
