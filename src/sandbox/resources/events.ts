/**
 * Webhooks caused by API changes (ContactCreate, OpportunityStageUpdate, InboundMessage, …), sent
 * signed by the sandbox's {@link WebhookSender} to every app that is installed on the location and has
 * a webhook URL. Payloads follow the event pages of HighLevel's docs (`docs/webhook events/*.md`):
 * built from the record, then conformed to the page's schema (kept in the spec artifact).
 *
 * Events go out after the API answer, one at a time in the order of the changes (a ContactCreate is
 * never overtaken by the ContactUpdate that followed it), and `close()` waits for them.
 */
import type { SandboxContext } from '../http.js'
import { conform } from '../openapi/data.js'
import { loadSpec } from '../openapi/spec.js'
import type { ResourceEvent } from './context.js'

/** Event types whose page is named differently. */
const PAGE_OF: Record<string, string> = { ConversationUnreadUpdate: 'ConversationUnreadWebhook' }

/** The payload HighLevel sends for an event: `type`, then the record's fields (`locationId` and `id` first), shaped by the event's schema. */
export function eventPayload(event: ResourceEvent, now: number): Record<string, unknown> {
  // The record's own `type` (a contact's "lead") gives way to the event's.
  const { type: _recordType, ...p } = event.payload
  const raw = { type: event.type, locationId: p.locationId, id: p.id, ...p }
  if (raw.locationId === undefined) delete raw.locationId
  if (raw.id === undefined) delete raw.id
  const schema = loadSpec().webhooks[PAGE_OF[event.type] ?? event.type]
  if (schema === undefined) return raw
  return conform(schema, raw, { seed: `${event.type}|${String(event.payload.id ?? '')}`, hints: new Map(), now, page: { limit: 1, offset: 0, total: 1 } }) as Record<string, unknown>
}

/** @internal Sends the webhooks of resource changes, in order. */
export class ResourceEvents {
  readonly #ctx: SandboxContext
  #chain: Promise<void> = Promise.resolve()

  constructor(ctx: SandboxContext) {
    this.#ctx = ctx
  }

  /**
   * Queues the events of one request. Recipients are the apps installed on the event's location (or
   * agency) at the time of the change that have a webhook URL; apps without one receive nothing.
   */
  dispatch(events: readonly ResourceEvent[]): void {
    const store = this.#ctx.store
    const deliveries: Array<{ url: string; payload: Record<string, unknown> }> = []
    for (const event of events) {
      const payload = eventPayload(event, store.now())
      for (const app of store.apps) {
        const installed = event.locationId
          ? store.installForLocation(app.appId, event.locationId)
          : event.companyId
            ? store.activeInstall(app.appId, 'Company', event.companyId)
            : undefined
        if (app.webhookUrl && installed) deliveries.push({ url: app.webhookUrl, payload })
      }
    }
    if (deliveries.length === 0) return
    const run = this.#chain.then(async () => {
      for (const d of deliveries) await this.#ctx.webhooks.send(d.url, d.payload)
    })
    this.#chain = run.catch(() => undefined)
    this.#ctx.webhooks.background(() => run)
  }
}
