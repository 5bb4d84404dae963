/**
 * Opportunities and pipelines (opportunities.json). Each location has a "Sales Pipeline" (created on
 * first use) with four stages. Opportunities belong to a pipeline stage and a contact of the same
 * location; changes send OpportunityCreate / OpportunityUpdate / OpportunityDelete and, for what
 * changed, OpportunityStageUpdate / OpportunityStatusUpdate / OpportunityMonetaryValueUpdate /
 * OpportunityAssignedToUpdate.
 */
import { randomUUID } from 'node:crypto'
import { contactOf } from './contacts.js'
import { ApiFailure, defined, isoNow, locationOf, matches, owned, page, type Handler, type HandlerInput, type Rec } from './context.js'

const STAGES = ['New Lead', 'Contacted', 'Proposal Sent', 'Closed']

/** The location's pipelines, creating the default one on first use. */
export function pipelinesOf(input: HandlerInput, locationId: string): Rec[] {
  if (!input.data.once(`pipelines:${locationId}`)) {
    input.data.insert('pipelines', {
      name: 'Sales Pipeline',
      locationId,
      stages: STAGES.map((name, position) => ({ id: randomUUID(), name, position, showInFunnel: true, showInPieChart: true })),
      showInFunnel: true,
      showInPieChart: true,
    })
  }
  return input.data.list('pipelines').filter((p) => p.locationId === locationId)
}

function stagesOf(p: Rec): Array<{ id: string }> {
  return Array.isArray(p.stages) ? (p.stages as Array<{ id: string }>) : []
}

function pipelineFor(input: HandlerInput, locationId: string, pipelineId: unknown): Rec {
  const p = pipelinesOf(input, locationId).find((x) => x.id === pipelineId)
  if (!p) throw new ApiFailure(400, 'Pipeline not found')
  return p
}

function stageFor(p: Rec, stageId: unknown): string {
  const stages = stagesOf(p)
  if (stageId === undefined) return stages[0]!.id
  if (!stages.some((s) => s.id === stageId)) throw new ApiFailure(400, 'Pipeline stage not found')
  return String(stageId)
}

/** An opportunity as HighLevel answers it, with its contact's summary. */
function view(input: HandlerInput, o: Rec): Record<string, unknown> {
  const c = typeof o.contactId === 'string' ? input.data.find('contacts', o.contactId) : undefined
  const contact = c ? { id: c.id, name: c.name, companyName: c.companyName, email: c.email, phone: c.phone, tags: c.tags } : undefined
  return { ...o, ...(contact ? { contact } : {}) }
}

function emit(input: HandlerInput, type: string, o: Rec): void {
  input.emit({ type, locationId: String(o.locationId), payload: { ...o, dateAdded: o.createdAt } })
}

function opportunityOf(input: HandlerInput): Rec {
  return owned(input, 'opportunities', input.path.id, 'Opportunity')
}

/** Applies changes and emits the events of what changed. */
function update(input: HandlerInput, o: Rec, changes: Record<string, unknown>): void {
  const before = { ...o }
  const at = isoNow(input)
  if (changes.pipelineId !== undefined || changes.pipelineStageId !== undefined) {
    const p = pipelineFor(input, String(o.locationId), changes.pipelineId ?? o.pipelineId)
    const keepStage = changes.pipelineStageId === undefined && (changes.pipelineId === undefined || changes.pipelineId === o.pipelineId)
    changes.pipelineStageId = stageFor(p, keepStage ? o.pipelineStageId : changes.pipelineStageId)
  }
  Object.assign(o, changes, { updatedAt: at, lastActionDate: at })
  if (o.pipelineStageId !== before.pipelineStageId) o.lastStageChangeAt = at
  if (o.status !== before.status) o.lastStatusChangeAt = at
  emit(input, 'OpportunityUpdate', o)
  if (o.pipelineStageId !== before.pipelineStageId || o.pipelineId !== before.pipelineId) emit(input, 'OpportunityStageUpdate', o)
  if (o.status !== before.status) emit(input, 'OpportunityStatusUpdate', o)
  if (o.monetaryValue !== before.monetaryValue) emit(input, 'OpportunityMonetaryValueUpdate', o)
  if (o.assignedTo !== before.assignedTo) emit(input, 'OpportunityAssignedToUpdate', o)
}

function create(input: HandlerInput, fields: Record<string, unknown>, requireContact: boolean): Rec {
  const locationId = String(fields.locationId)
  const p = pipelineFor(input, locationId, fields.pipelineId)
  // Create names a contact (required there); upsert documents none, so it may create without one.
  const contact = fields.contactId === undefined && !requireContact ? undefined : contactOf(input, typeof fields.contactId === 'string' ? fields.contactId : undefined)
  if (contact && contact.locationId !== locationId) throw new ApiFailure(400, 'Contact not found')
  const at = isoNow(input)
  const o = input.data.insert('opportunities', {
    ...defined(fields, ['id', 'followersActionType', 'isRemoveAllFollowers']),
    name: fields.name ?? contact?.name ?? 'Opportunity',
    status: fields.status === 'all' || fields.status === undefined ? 'open' : fields.status,
    monetaryValue: typeof fields.monetaryValue === 'number' ? fields.monetaryValue : 0,
    pipelineId: p.id,
    pipelineStageId: stageFor(p, fields.pipelineStageId),
    ...(contact ? { contactId: contact.id } : {}),
    locationId,
    source: fields.source ?? 'api',
    followers: Array.isArray(fields.followers) ? fields.followers : [],
    createdAt: at,
    updatedAt: at,
    lastStatusChangeAt: at,
    lastStageChangeAt: at,
  })
  emit(input, 'OpportunityCreate', o)
  return o
}

/** Filters of both searches (GET snake_case query, POST body). */
function search(input: HandlerInput, f: { locationId: string; pipelineId?: unknown; stageId?: unknown; contactId?: unknown; status?: unknown; assignedTo?: unknown; q?: unknown; id?: unknown }): Rec[] {
  return input.data
    .list('opportunities')
    .filter(
      (o) =>
        o.locationId === f.locationId &&
        (f.pipelineId === undefined || o.pipelineId === f.pipelineId) &&
        (f.stageId === undefined || o.pipelineStageId === f.stageId) &&
        (f.contactId === undefined || o.contactId === f.contactId) &&
        (f.status === undefined || f.status === 'all' || o.status === f.status) &&
        (f.assignedTo === undefined || o.assignedTo === f.assignedTo) &&
        (f.id === undefined || o.id === f.id) &&
        matches(o, f.q, ['name']),
    )
}

export const opportunityHandlers: Record<string, Handler> = {
  'opportunities/get-pipelines': (input) => ({ body: { pipelines: pipelinesOf(input, locationOf(input)) } }),

  'opportunities/create-opportunity': (input) => ({ body: { opportunity: view(input, create(input, input.body, true)) } }),

  'opportunities/get-opportunity': (input) => ({ body: { opportunity: view(input, opportunityOf(input)) } }),

  'opportunities/update-opportunity': (input) => {
    const o = opportunityOf(input)
    update(input, o, defined(input.body, ['id', 'locationId', 'contactId']))
    return { body: { opportunity: view(input, o) } }
  },

  'opportunities/update-opportunity-status': (input) => {
    const o = opportunityOf(input)
    const changes: Record<string, unknown> = { status: input.body.status }
    if (input.body.lostReasonId !== undefined) changes.lostReasonId = input.body.lostReasonId
    update(input, o, changes)
    return { body: { succeded: true } }
  },

  'opportunities/delete-opportunity': (input) => {
    const o = opportunityOf(input)
    input.data.remove('opportunities', o.id)
    emit(input, 'OpportunityDelete', o)
    return { body: { succeded: true } }
  },

  'opportunities/Upsert-opportunity': (input) => {
    const b = input.body
    const existing =
      typeof b.id === 'string'
        ? owned(input, 'opportunities', b.id, 'Opportunity')
        : input.data.list('opportunities').find((o) => o.locationId === b.locationId && o.pipelineId === b.pipelineId && b.contactId !== undefined && o.contactId === b.contactId)
    if (existing) {
      const changes = defined(b, ['id', 'locationId', 'contactId', 'followers', 'followersActionType', 'isRemoveAllFollowers'])
      const followers = Array.isArray(existing.followers) ? (existing.followers as string[]) : []
      const given = Array.isArray(b.followers) ? (b.followers as string[]) : []
      changes.followers = b.isRemoveAllFollowers === true ? [] : b.followersActionType === 'remove' ? followers.filter((f) => !given.includes(f)) : [...new Set([...followers, ...given])]
      update(input, existing, changes)
      return { body: { opportunity: view(input, existing), new: false } }
    }
    return { body: { opportunity: view(input, create(input, b, false)), new: true } }
  },

  'opportunities/search-opportunity': (input) => {
    const q = input.query
    const rows = search(input, {
      locationId: String(q.location_id),
      pipelineId: q.pipeline_id,
      stageId: q.pipeline_stage_id,
      contactId: q.contact_id,
      status: q.status,
      assignedTo: q.assigned_to,
      q: q.q,
      id: q.id,
    })
    if (q.order === 'added_desc') rows.reverse()
    let start = rows
    if (typeof q.startAfterId === 'string') {
      const i = rows.findIndex((o) => o.id === q.startAfterId)
      start = i >= 0 ? rows.slice(i + 1) : rows
    }
    const p = page(start, { limit: q.limit, page: q.page })
    const last = p.items[p.items.length - 1]
    const current = typeof q.page === 'number' ? q.page : 1
    return {
      body: {
        opportunities: p.items.map((o) => view(input, o)),
        meta: {
          total: rows.length,
          currentPage: current,
          nextPage: p.offset + p.items.length < start.length ? current + 1 : null,
          prevPage: current > 1 ? current - 1 : null,
          startAfterId: last?.id ?? null,
          startAfter: last ? Date.parse(String(last.createdAt)) : null,
          nextPageUrl: null,
        },
        aggregations: {},
      },
    }
  },

  'opportunities/search-opportunities-advanced': (input) => {
    const b = input.body
    const rows = search(input, { locationId: String(b.locationId), q: b.query })
    const p = page(rows, { limit: b.limit, page: b.page })
    return { body: { opportunities: p.items.map((o) => view(input, o)), total: p.total, aggregations: {} } }
  },

  'opportunities/add-followers-opportunity': (input) => {
    const o = opportunityOf(input)
    const before = Array.isArray(o.followers) ? (o.followers as string[]) : []
    const added = (input.body.followers as string[]).filter((f) => !before.includes(f))
    o.followers = [...before, ...added]
    return { body: { followers: o.followers, followersAdded: added } }
  },

  'opportunities/remove-followers-opportunity': (input) => {
    const o = opportunityOf(input)
    const before = Array.isArray(o.followers) ? (o.followers as string[]) : []
    const remove = input.query.isRemoveAllFollowers === true ? before : (input.body.followers as string[])
    o.followers = before.filter((f) => !remove.includes(f))
    return { body: { followers: o.followers, followersRemoved: before.filter((f) => remove.includes(f)) } }
  },
}
