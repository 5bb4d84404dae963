/**
 * {@link TriggerSubscriptionStore} on SQL: the workflows subscribed to the app's triggers, one row per
 * trigger instance (HighLevel's `triggerData.id`). CREATED and UPDATED are one upsert; DELETED removes
 * the row; `fire` reads one location's subscriptions of a key through an index.
 */
import { toTriggerSubscription } from './marketplace-schema.js'
import { badInput, clampLimit, nonEmpty, type SqlContext } from './sql-helpers.js'
import type { TriggerSubscription, TriggerSubscriptionStore } from './marketplace-types.js'

/** The SQL {@link TriggerSubscriptionStore}. */
export class SqlTriggerStore implements TriggerSubscriptionStore {
  readonly #ctx: SqlContext

  constructor(ctx: SqlContext) {
    this.#ctx = ctx
  }

  async upsert(s: Omit<TriggerSubscription, 'createdAt' | 'updatedAt'>): Promise<TriggerSubscription> {
    const problems: string[] = []
    for (const name of ['clientId', 'triggerId', 'key', 'locationId', 'workflowId', 'targetUrl'] as const) {
      if (!nonEmpty(s?.[name])) problems.push(`expected ${name} to be a non-empty string`)
    }
    if (s?.companyId !== null && s?.companyId !== undefined && typeof s.companyId !== 'string') problems.push('expected companyId to be a string or null')
    if (!Array.isArray(s?.filters)) problems.push('expected filters to be an array')
    if (problems.length > 0) throw badInput(problems)
    const now = this.#ctx.clock.now()
    const row = await this.#ctx.db
      .insertInto('trigger_subscriptions')
      .values({
        client_id: s.clientId,
        trigger_id: s.triggerId,
        trigger_key: s.key,
        location_id: s.locationId,
        company_id: s.companyId ?? null,
        workflow_id: s.workflowId,
        target_url: s.targetUrl,
        filters: JSON.stringify(s.filters),
        version: s.version ?? null,
        created_at: now,
        updated_at: now,
      })
      .onConflict((oc) =>
        oc.columns(['client_id', 'trigger_id']).doUpdateSet((eb) => ({
          trigger_key: eb.ref('excluded.trigger_key'),
          location_id: eb.ref('excluded.location_id'),
          company_id: eb.ref('excluded.company_id'),
          workflow_id: eb.ref('excluded.workflow_id'),
          target_url: eb.ref('excluded.target_url'),
          filters: eb.ref('excluded.filters'),
          version: eb.ref('excluded.version'),
          updated_at: eb.ref('excluded.updated_at'),
        })),
      )
      .returningAll()
      .executeTakeFirstOrThrow()
    return toTriggerSubscription(row)
  }

  async remove(clientId: string, triggerId: string): Promise<boolean> {
    if (!nonEmpty(clientId) || !nonEmpty(triggerId)) throw badInput(['expected clientId and triggerId to be non-empty strings'])
    const result = await this.#ctx.db.deleteFrom('trigger_subscriptions').where('client_id', '=', clientId).where('trigger_id', '=', triggerId).executeTakeFirst()
    return Number(result.numDeletedRows) === 1
  }

  async get(clientId: string, triggerId: string): Promise<TriggerSubscription | undefined> {
    if (!nonEmpty(clientId) || !nonEmpty(triggerId)) throw badInput(['expected clientId and triggerId to be non-empty strings'])
    const row = await this.#ctx.db
      .selectFrom('trigger_subscriptions')
      .selectAll()
      .where('client_id', '=', clientId)
      .where('trigger_id', '=', triggerId)
      .executeTakeFirst()
    return row && toTriggerSubscription(row)
  }

  async list(filter: { clientId: string; locationId: string; key?: string; limit?: number }): Promise<TriggerSubscription[]> {
    if (!nonEmpty(filter?.clientId) || !nonEmpty(filter?.locationId)) throw badInput(['expected clientId and locationId to be non-empty strings'])
    let query = this.#ctx.db
      .selectFrom('trigger_subscriptions')
      .selectAll()
      .where('client_id', '=', filter.clientId)
      .where('location_id', '=', filter.locationId)
    if (filter.key !== undefined) query = query.where('trigger_key', '=', filter.key)
    const rows = await query.orderBy('created_at').orderBy('trigger_id').limit(clampLimit(filter.limit, 1000, 10_000)).execute()
    return rows.map(toTriggerSubscription)
  }

  async removeLocation(clientId: string, locationId: string): Promise<number> {
    if (!nonEmpty(clientId) || !nonEmpty(locationId)) throw badInput(['expected clientId and locationId to be non-empty strings'])
    const result = await this.#ctx.db.deleteFrom('trigger_subscriptions').where('client_id', '=', clientId).where('location_id', '=', locationId).executeTakeFirst()
    return Number(result.numDeletedRows)
  }
}
