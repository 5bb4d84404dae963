/**
 * Contacts (contacts.json) with their tags, notes, tasks and followers, over the store's contacts
 * (seeded per location). A created contact is found by get, list and search, changed by update,
 * upsert and the tag operations, and gone after delete, with its notes and tasks. Changes send
 * ContactCreate / ContactUpdate / ContactDelete / ContactTagUpdate / ContactDndUpdate, NoteCreate /
 * NoteUpdate / NoteDelete, TaskCreate / TaskComplete / TaskDelete.
 */
import type { ContactRecord } from '../types.js'
import {
  ApiFailure,
  defined,
  isoNow,
  locationOf,
  matches,
  owned,
  page,
  type Handler,
  type HandlerInput,
  type Rec,
  type ResourceEvent,
} from './context.js'

const SEARCH_FIELDS = ['name', 'firstName', 'lastName', 'email', 'phone', 'companyName'] as const
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/

/** The contact of the path's `contactId`, in the token's location. */
export function contactOf(input: HandlerInput, id = input.path.contactId): Rec {
  return owned(input, 'contacts', id, 'Contact')
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []
}

/** Custom field values as HighLevel answers them: `[{id, value}]`, whichever of `value`/`field_value` was sent. */
function customFieldValues(v: unknown): Array<{ id: string; value: unknown }> | undefined {
  if (!Array.isArray(v)) return undefined
  return v
    .filter((x): x is Record<string, unknown> => typeof x === 'object' && x !== null && typeof (x as Record<string, unknown>).id === 'string')
    .map((x) => {
      const value = x.field_value ?? x.value
      return { id: x.id as string, value: typeof value === 'string' ? value : JSON.stringify(value ?? '') }
    })
}

/** A contact's webhook event (ContactCreate.md): the record. */
function contactEvent(type: string, c: Rec): ResourceEvent {
  return { type, locationId: String(c.locationId), payload: c }
}

/** Adds tags to the location's tag list (HighLevel creates a location tag the first time a contact gets it). */
function ensureLocationTags(input: HandlerInput, locationId: string, tags: readonly string[]): void {
  const known = input.data.list('tags')
  for (const name of tags) {
    if (!known.some((t) => t.locationId === locationId && String(t.name).toLowerCase() === name.toLowerCase())) {
      input.data.insert('tags', { name, locationId })
    }
  }
}

function assertEmail(email: unknown): void {
  if (typeof email === 'string' && email !== '' && !EMAIL.test(email)) throw new ApiFailure(422, 'email must be an email')
}

function duplicateOf(input: HandlerInput, locationId: string, email: unknown, phone: unknown, except?: string): Rec | undefined {
  return input.data.list('contacts').find(
    (c) =>
      c.locationId === locationId &&
      c.id !== except &&
      ((typeof email === 'string' && email !== '' && typeof c.email === 'string' && c.email.toLowerCase() === email.toLowerCase()) ||
        (typeof phone === 'string' && phone !== '' && c.phone === phone)),
  )
}

function nameOf(first: unknown, last: unknown): string | null {
  return [first, last].filter((x) => typeof x === 'string' && x !== '').join(' ') || null
}

/** Creates a contact from a create/upsert body. */
function createContact(input: HandlerInput, locationId: string): Rec {
  const b = input.body
  const at = isoNow(input)
  const firstName = (b.firstName as string | null | undefined) ?? null
  const lastName = (b.lastName as string | null | undefined) ?? null
  const tags = strings(b.tags)
  const record: Omit<ContactRecord, 'id'> = {
    ...defined(b, ['customFields']),
    locationId,
    firstName,
    lastName,
    name: (b.name as string | null | undefined) ?? nameOf(firstName, lastName),
    email: (b.email as string | null | undefined) ?? null,
    phone: (b.phone as string | null | undefined) ?? null,
    companyName: (b.companyName as string | null | undefined) ?? null,
    source: (b.source as string | undefined) ?? 'public api',
    tags,
    type: 'lead',
    dnd: b.dnd === true,
    customFields: customFieldValues(b.customFields) ?? [],
    followers: [],
    dateAdded: at,
    dateUpdated: at,
  }
  const rec = input.data.insert('contacts', record)
  ensureLocationTags(input, locationId, tags)
  input.emit(contactEvent('ContactCreate', rec))
  return rec
}

/** Applies an update/upsert body to a contact and emits what changed. */
function updateContact(input: HandlerInput, c: Rec): Rec {
  const b = input.body
  const beforeTags = JSON.stringify(c.tags ?? [])
  const beforeDnd = JSON.stringify([c.dnd, c.dndSettings])
  Object.assign(c, defined(b, ['customFields', 'locationId', 'id']))
  const cf = customFieldValues(b.customFields)
  if (cf) {
    const current = (Array.isArray(c.customFields) ? c.customFields : []) as Array<{ id: string; value: unknown }>
    for (const f of cf) {
      const i = current.findIndex((x) => x.id === f.id)
      if (i >= 0) current[i] = f
      else current.push(f)
    }
    c.customFields = current
  }
  if (b.name === undefined && (b.firstName !== undefined || b.lastName !== undefined)) c.name = nameOf(c.firstName, c.lastName)
  c.dateUpdated = isoNow(input)
  ensureLocationTags(input, String(c.locationId), strings(c.tags))
  input.emit(contactEvent('ContactUpdate', c))
  if (JSON.stringify(c.tags ?? []) !== beforeTags) input.emit(contactEvent('ContactTagUpdate', c))
  if (JSON.stringify([c.dnd, c.dndSettings]) !== beforeDnd) input.emit(contactEvent('ContactDndUpdate', c))
  return c
}

function deleteContact(input: HandlerInput, c: Rec): void {
  input.data.remove('contacts', c.id)
  input.data.removeWhere('notes', (n) => n.contactId === c.id)
  input.data.removeWhere('tasks', (t) => t.contactId === c.id)
  input.emit(contactEvent('ContactDelete', c))
}

function setTags(input: HandlerInput, c: Rec, tags: string[]): void {
  const before = JSON.stringify(c.tags ?? [])
  c.tags = tags
  if (JSON.stringify(tags) === before) return
  c.dateUpdated = isoNow(input)
  ensureLocationTags(input, String(c.locationId), tags)
  input.emit(contactEvent('ContactTagUpdate', c))
}

function unionTags(current: unknown, add: readonly string[]): string[] {
  const out = strings(current)
  for (const t of add) if (!out.some((x) => x.toLowerCase() === t.toLowerCase())) out.push(t)
  return out
}

function withoutTags(current: unknown, remove: readonly string[]): string[] {
  const gone = new Set(remove.map((t) => t.toLowerCase()))
  return strings(current).filter((t) => !gone.has(t.toLowerCase()))
}

function inLocation(input: HandlerInput, locationId: string): Rec[] {
  return input.data.list('contacts').filter((c) => c.locationId === locationId)
}

/** `filters` of the advanced search: `{field, operator, value}` with eq / not_eq / contains / exists. */
function filterMatches(c: Rec, filters: unknown): boolean {
  if (!Array.isArray(filters)) return true
  return filters.every((f) => {
    if (typeof f !== 'object' || f === null) return true
    const { field, operator, value } = f as { field?: unknown; operator?: unknown; value?: unknown }
    if (typeof field !== 'string') return true
    const v = c[field]
    const eq = (x: unknown): boolean => (Array.isArray(x) ? x.some(eq) : typeof x === 'string' && typeof value === 'string' ? x.toLowerCase() === value.toLowerCase() : x === value)
    switch (operator) {
      case 'eq':
        return eq(v)
      case 'not_eq':
        return !eq(v)
      case 'contains':
        return matches(c, value, [field])
      case 'exists':
        return v !== undefined && v !== null && v !== ''
      case 'not_exists':
        return v === undefined || v === null || v === ''
      default:
        return true
    }
  })
}

export const contactHandlers: Record<string, Handler> = {
  'contacts/get-contacts': (input) => {
    const q = input.query
    const limit = typeof q.limit === 'number' ? q.limit : 20
    if (limit < 1 || limit > 100) throw new ApiFailure(422, 'limit must not be greater than 100 and not less than 1')
    let rows = inLocation(input, locationOf(input)).filter((c) => matches(c, q.query, SEARCH_FIELDS))
    const total = rows.length
    if (typeof q.startAfterId === 'string') {
      const i = rows.findIndex((c) => c.id === q.startAfterId)
      rows = i >= 0 ? rows.slice(i + 1) : rows
    }
    const items = rows.slice(0, limit)
    const last = items[items.length - 1]
    return {
      body: {
        contacts: items,
        count: total,
        meta: { total, nextPageUrl: null, startAfterId: last?.id ?? null, startAfter: last ? Date.parse(String(last.dateAdded)) : null },
      },
    }
  },

  'contacts/search-contacts-advanced': (input) => {
    const b = input.body
    const locationId = locationOf(input)
    const rows = inLocation(input, locationId).filter((c) => matches(c, b.query, SEARCH_FIELDS) && filterMatches(c, b.filters))
    const p = page(rows, { limit: b.pageLimit ?? b.limit, page: b.page })
    return { body: { contacts: p.items, total: p.total } }
  },

  'contacts/get-duplicate-contact': (input) => {
    const q = input.query
    const dup = duplicateOf(input, locationOf(input), q.email, q.number)
    return { body: { contact: dup ?? null } }
  },

  'contacts/get-contact': (input) => ({ body: { contact: contactOf(input) } }),

  'contacts/create-contact': (input) => {
    const b = input.body
    const locationId = String(b.locationId)
    assertEmail(b.email)
    const dup = typeof b.email === 'string' && b.email !== '' ? duplicateOf(input, locationId, b.email, undefined) : undefined
    // HighLevel's answer for a duplicate, naming the existing contact.
    if (dup) throw new ApiFailure(400, 'This location does not allow duplicated contacts.', { meta: { contactId: dup.id, matchingField: 'email' } })
    return { body: { contact: createContact(input, locationId) } }
  },

  'contacts/update-contact': (input) => {
    const c = contactOf(input)
    assertEmail(input.body.email)
    return { body: { succeded: true, contact: updateContact(input, c) } }
  },

  'contacts/upsert-contact': (input) => {
    const b = input.body
    const locationId = String(b.locationId)
    assertEmail(b.email)
    const existing = duplicateOf(input, locationId, b.email, b.phone)
    if (existing) return { body: { new: false, contact: updateContact(input, existing) } }
    return { body: { new: true, contact: createContact(input, locationId) } }
  },

  'contacts/delete-contact': (input) => {
    deleteContact(input, contactOf(input))
    return { body: { succeded: true } }
  },

  'contacts/get-contacts-by-businessId': (input) => {
    const rows = inLocation(input, locationOf(input)).filter((c) => c.businessId === input.path.businessId && matches(c, input.query.query, SEARCH_FIELDS))
    const p = page(rows, input.query)
    return { body: { contacts: p.items, count: p.total } }
  },

  'contacts/add-remove-contact-from-business': (input) => {
    const ids = strings(input.body.ids)
    const businessId = input.body.businessId
    const changed: string[] = []
    for (const id of ids) {
      const c = contactOf(input, id)
      if (businessId === null) delete c.businessId
      else c.businessId = businessId
      c.dateUpdated = isoNow(input)
      input.emit(contactEvent('ContactUpdate', c))
      changed.push(id)
    }
    return { body: { success: true, ids: changed } }
  },

  'contacts/add-tags': (input) => {
    const c = contactOf(input)
    setTags(input, c, unionTags(c.tags, strings(input.body.tags)))
    return { body: { tags: c.tags } }
  },

  'contacts/remove-tags': (input) => {
    const c = contactOf(input)
    setTags(input, c, withoutTags(c.tags, strings(input.body.tags)))
    return { body: { tags: c.tags } }
  },

  'contacts/create-association': (input) => {
    const b = input.body
    const add = input.path.type !== 'remove'
    const responses: string[] = []
    let errorCount = 0
    for (const id of strings(b.contacts)) {
      const c = input.data.find('contacts', id)
      if (!c || c.locationId !== b.locationId) {
        errorCount++
        responses.push(`${id}: Contact not found`)
        continue
      }
      const tags = add ? unionTags(c.tags, strings(b.tags)) : b.removeAllTags === true ? [] : withoutTags(c.tags, strings(b.tags))
      setTags(input, c, tags)
      responses.push(id)
    }
    return { body: { succeded: errorCount === 0, errorCount, responses } }
  },

  'contacts/add-followers-contact': (input) => {
    const c = contactOf(input)
    const before = strings(c.followers)
    const added = strings(input.body.followers).filter((f) => !before.includes(f))
    c.followers = [...before, ...added]
    return { body: { followers: c.followers, followersAdded: added } }
  },

  'contacts/remove-followers-contact': (input) => {
    const c = contactOf(input)
    const remove = strings(input.body.followers)
    const before = strings(c.followers)
    c.followers = before.filter((f) => !remove.includes(f))
    return { body: { followers: c.followers, followersRemoved: before.filter((f) => remove.includes(f)) } }
  },

  // --- notes ---
  'contacts/get-all-notes': (input) => {
    const c = contactOf(input)
    return { body: { notes: input.data.list('notes').filter((n) => n.contactId === c.id) } }
  },
  'contacts/create-note': (input) => {
    const c = contactOf(input)
    const note = input.data.insert('notes', {
      ...defined(input.body),
      contactId: c.id,
      locationId: c.locationId,
      userId: input.body.userId ?? input.token.userId ?? undefined,
      dateAdded: isoNow(input),
    })
    input.emit({ type: 'NoteCreate', locationId: String(c.locationId), payload: note })
    return { body: { note } }
  },
  'contacts/get-note': (input) => ({ body: { note: noteOf(input) } }),
  'contacts/update-note': (input) => {
    const note = noteOf(input)
    Object.assign(note, defined(input.body, ['id', 'contactId', 'locationId']))
    input.emit({ type: 'NoteUpdate', locationId: String(note.locationId), payload: note })
    return { body: { note } }
  },
  'contacts/delete-note': (input) => {
    const note = noteOf(input)
    input.data.remove('notes', note.id)
    input.emit({ type: 'NoteDelete', locationId: String(note.locationId), payload: note })
    return { body: { succeded: true } }
  },

  // --- tasks ---
  'contacts/get-all-tasks': (input) => {
    const c = contactOf(input)
    return { body: { tasks: input.data.list('tasks').filter((t) => t.contactId === c.id) } }
  },
  'contacts/create-task': (input) => {
    const c = contactOf(input)
    const task = input.data.insert('tasks', { ...defined(input.body), contactId: c.id, locationId: c.locationId, dateAdded: isoNow(input) })
    input.emit({ type: 'TaskCreate', locationId: String(c.locationId), payload: task })
    if (task.completed === true) input.emit({ type: 'TaskComplete', locationId: String(c.locationId), payload: task })
    return { body: { task } }
  },
  'contacts/get-task': (input) => ({ body: { task: taskOf(input) } }),
  'contacts/update-task': (input) => {
    const task = taskOf(input)
    const wasDone = task.completed === true
    Object.assign(task, defined(input.body, ['id', 'contactId', 'locationId']))
    if (!wasDone && task.completed === true) input.emit({ type: 'TaskComplete', locationId: String(task.locationId), payload: task })
    return { body: { task } }
  },
  'contacts/update-task-completed': (input) => {
    const task = taskOf(input)
    const wasDone = task.completed === true
    task.completed = input.body.completed === true
    if (!wasDone && task.completed) input.emit({ type: 'TaskComplete', locationId: String(task.locationId), payload: task })
    return { body: { task } }
  },
  'contacts/delete-task': (input) => {
    const task = taskOf(input)
    input.data.remove('tasks', task.id)
    input.emit({ type: 'TaskDelete', locationId: String(task.locationId), payload: task })
    return { body: { succeded: true } }
  },

  'locations/task-search': (input) => {
    const b = input.body
    const contactIds = strings(b.contactId)
    const assigned = strings(b.assignedTo)
    const rows = input.data
      .list('tasks')
      .filter(
        (t) =>
          t.locationId === input.path.locationId &&
          (contactIds.length === 0 || contactIds.includes(String(t.contactId))) &&
          (assigned.length === 0 || assigned.includes(String(t.assignedTo))) &&
          (typeof b.completed !== 'boolean' || (t.completed === true) === b.completed) &&
          matches(t, b.query, ['title', 'body']),
      )
    return { body: { tasks: page(rows, b).items } }
  },

  'contacts/get-appointments-for-contact': (input) => {
    const c = contactOf(input)
    return { body: { events: input.data.list('appointments').filter((e) => e.contactId === c.id) } }
  },
}

function noteOf(input: HandlerInput): Rec {
  const c = contactOf(input)
  const note = input.data.find('notes', input.path.id!)
  if (!note || note.contactId !== c.id) throw new ApiFailure(400, 'Note not found')
  return note
}

function taskOf(input: HandlerInput): Rec {
  const c = contactOf(input)
  const task = input.data.find('tasks', input.path.taskId!)
  if (!task || task.contactId !== c.id) throw new ApiFailure(400, 'Task not found')
  return task
}
