/**
 * What a stateful operation handler gets and gives back, and the helpers they share: collections of
 * records in the store, HighLevel's error answers, pagination.
 */
import { hlId } from '../ids.js'
import type { Operation } from '../openapi/spec.js'
import type { SandboxStore } from '../store.js'
import type { Fault, FaultEndpoint } from '../faults.js'
import type { TokenRecord } from '../types.js'

/** A stored record: plain JSON with an `id`. */
export type Rec = Record<string, unknown> & { id: string }

/**
 * A webhook event a change causes (`type` is the event name, e.g. `ContactCreate`). The apps
 * installed on `locationId` receive it; for agency-level events (a user of the agency), the apps
 * installed on `companyId`.
 */
export interface ResourceEvent {
  type: string
  locationId?: string
  companyId?: string
  /** The event's fields as the event page shows them (`type` is added). */
  payload: Record<string, unknown>
}

/** A validated request, as a handler sees it. */
export interface HandlerInput {
  op: Operation
  token: TokenRecord
  /** Decoded path parameters. */
  path: Record<string, string>
  /** Query parameters, coerced to their documented types. */
  query: Record<string, unknown>
  /** The body (an object unless the operation documents another shape). */
  body: Record<string, unknown>
  store: SandboxStore
  data: Collections
  /** Queues a webhook event; events are sent after the answer, in order. */
  emit(event: ResourceEvent): void
  /** Takes the next queued fault of an endpoint a handler applies itself (`billing`), counted in stats. */
  fault(endpoint: FaultEndpoint): Fault | undefined
}

/** A handler's answer; `status` defaults to the operation's documented 2xx. */
export interface HandlerResult {
  status?: number
  body: unknown
  /** The change is made, then the connection is closed without an answer (a `drop` fault). */
  drop?: boolean
}

/** A stateful operation. Throws {@link ApiFailure} for an error answer. */
export type Handler = (input: HandlerInput) => HandlerResult

/** An error answer in HighLevel's shapes (common-schemas.json). */
export class ApiFailure extends Error {
  readonly status: number
  readonly body: Record<string, unknown>
  constructor(status: number, message: string, extra: Record<string, unknown> = {}) {
    super(message)
    this.status = status
    const error = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 422: 'Unprocessable Entity' }[status]
    this.body =
      status === 422
        ? { statusCode: 422, message: [message], error: 'Unprocessable Entity' }
        : { statusCode: status, message, ...(status !== 400 && error ? { error } : {}), ...extra }
  }
}

/** 400 `{statusCode, message}`: HighLevel's answer for an unknown id (e.g. `Contact not found`). */
export function notFound(what: string): ApiFailure {
  return new ApiFailure(400, `${what} not found`)
}

/** 403: the record belongs to another location. */
export function otherLocation(): ApiFailure {
  return new ApiFailure(403, 'The token does not have access to this location')
}

/**
 * Named collections of records inside the store (`store.resources`), created on first use. The
 * contacts collection is the store's own (`store.contacts`, seeded per location).
 */
export class Collections {
  readonly #store: SandboxStore

  constructor(store: SandboxStore) {
    this.#store = store
  }

  /** The records of a collection (a live array). */
  list(name: string): Rec[] {
    if (name === 'contacts') return this.#store.contacts as unknown as Rec[]
    const all = this.#store.resources
    all[name] ??= []
    return all[name] as Rec[]
  }

  find(name: string, id: string): Rec | undefined {
    return this.list(name).find((r) => r.id === id)
  }

  /** Adds a record with a fresh id (unless it has one) and returns it. */
  insert(name: string, record: Record<string, unknown>): Rec {
    const rec = { ...record, id: typeof record.id === 'string' ? record.id : hlId() } as Rec
    this.list(name).push(rec)
    return rec
  }

  remove(name: string, id: string): Rec | undefined {
    const list = this.list(name)
    const i = list.findIndex((r) => r.id === id)
    return i >= 0 ? list.splice(i, 1)[0] : undefined
  }

  /** Removes every record matching; returns them. */
  removeWhere(name: string, predicate: (r: Rec) => boolean): Rec[] {
    const list = this.list(name)
    const gone = list.filter(predicate)
    if (name === 'contacts') this.#store.contacts = this.#store.contacts.filter((r) => !predicate(r as unknown as Rec))
    else this.#store.resources[name] = list.filter((r) => !predicate(r))
    return gone
  }

  /** Whether a one-time step (seeding a location's pipeline, say) already ran. */
  once(key: string): boolean {
    const done = this.list('_once')
    if (done.some((r) => r.id === key)) return true
    done.push({ id: key })
    return false
  }
}

/** The record of a collection in the token's location, or the 400/403 HighLevel answers. */
export function owned(input: HandlerInput, collection: string, id: string | undefined, what: string): Rec {
  const rec = id ? input.data.find(collection, id) : undefined
  if (!rec) throw notFound(what)
  assertLocation(input, rec.locationId)
  return rec
}

/** 403 unless the token may act on `locationId` (its own location; for an agency token, its company's). */
export function assertLocation(input: HandlerInput, locationId: unknown): void {
  if (typeof locationId !== 'string') return
  const t = input.token
  const ok = t.userType === 'Location' ? t.locationId === locationId : input.store.location(locationId)?.companyId === t.companyId
  if (!ok) throw otherLocation()
}

/** The location the request is about: the token's, else a `locationId` the request names. */
export function locationOf(input: HandlerInput): string {
  const named = [input.path.locationId, input.query.locationId, input.query.location_id, input.body.locationId].find(
    (v): v is string => typeof v === 'string' && v !== '',
  )
  const id = input.token.locationId ?? named
  if (!id) throw new ApiFailure(422, 'locationId should not be empty')
  return id
}

/** Now as ISO 8601. */
export function isoNow(input: HandlerInput): string {
  return new Date(input.store.now()).toISOString()
}

/** Copies the fields of `body` that are defined (a PUT changes only what it sends). */
export function defined(body: Record<string, unknown>, skip: readonly string[] = []): Record<string, unknown> {
  return Object.fromEntries(Object.entries(body).filter(([k, v]) => v !== undefined && !skip.includes(k)))
}

/** A page of `rows` from `limit` and `skip`/`offset`/`page` (1-based), as the request gives them. */
export function page<T>(rows: T[], params: Record<string, unknown>, defaultLimit = 20): { items: T[]; total: number; limit: number; offset: number } {
  const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'string' && v !== '' && Number.isFinite(Number(v)) ? Number(v) : undefined)
  const limit = Math.max(0, Math.floor(num(params.limit) ?? num(params.pageLimit) ?? num(params.pageSize) ?? defaultLimit))
  const pageNo = num(params.page)
  const offset = Math.max(0, Math.floor(num(params.skip) ?? num(params.offset) ?? (pageNo !== undefined ? (Math.max(1, pageNo) - 1) * limit : 0)))
  return { items: rows.slice(offset, offset + limit), total: rows.length, limit, offset }
}

/** Case-insensitive substring match over some fields of a record. */
export function matches(rec: Record<string, unknown>, needle: unknown, fields: readonly string[]): boolean {
  if (typeof needle !== 'string' || needle === '') return true
  const n = needle.toLowerCase()
  return fields.some((f) => {
    const v = rec[f]
    return typeof v === 'string' ? v.toLowerCase().includes(n) : Array.isArray(v) && v.some((x) => typeof x === 'string' && x.toLowerCase().includes(n))
  })
}
