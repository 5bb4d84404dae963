/**
 * Contract suite: for EVERY v2 operation of HighLevel's OpenAPI files, over real HTTP,
 * - a valid request (the operation's token kind, its documented `Version`, required path and query
 *   parameters, a schema-valid body) answers the documented 2xx with a body that validates against
 *   the documented response schema (ajv over the artifact; the sandbox itself never validates its
 *   answers, it builds them valid);
 * - a token of a kind the operation does not admit answers 401 with HighLevel's IAM message;
 * - a token of the right kind without the operation's scopes answers 401 naming the scope.
 * Records the stateful operations need (a contact, an opportunity, an appointment, …) are created
 * fresh through the API before each of them.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js'
import { fits, generate, type GenContext } from '../../src/sandbox/openapi/data.js'
import { AUTH_CLASS_MESSAGE, USER_TYPE_MESSAGE } from '../../src/sandbox/openapi/engine.js'
import { loadSpec, type Operation, type Schema } from '../../src/sandbox/openapi/spec.js'
import { checkBody, checkResponse } from '../../src/sandbox/openapi/validator.js'
import { resourceHandlers } from '../../src/sandbox/resources/index.js'
import { call, exchange, postJson } from './helpers.js'

const spec = loadSpec()
const stateful = new Set(resourceHandlers().keys())
const ALL_SCOPES = [...new Set(['oauth.readonly', 'oauth.write', ...spec.operations.flatMap((o) => o.security.flatMap((s) => s.scopes))])].sort()

type Kind = 'location' | 'location-pit' | 'agency' | 'agency-pit'
const ADMITS: Record<string, Kind[]> = {
  bearer: ['location', 'location-pit'],
  'Location-Access': ['location', 'location-pit'],
  'Location-Access-Only': ['location'],
  'Agency-Access': ['agency', 'agency-pit'],
  'Agency-Access-Only': ['agency'],
}
const admitted = (op: Operation): Kind[] =>
  op.security.length === 0 ? ['location', 'location-pit', 'agency', 'agency-pit'] : [...new Set(op.security.flatMap((s) => ADMITS[s.scheme]!))]

let sb: Sandbox
let loc: string
let companyId: string
const tokens = {} as Record<Kind, string>

async function oauthToken(target: { locationId: string } | { companyId: string }, scopes: string[]): Promise<string> {
  const res = await postJson<{ redirect: string }>(`${sb.url}/_sandbox/authorize`, {
    clientId: sb.app.clientId,
    redirectUri: sb.app.redirectUris[0],
    scope: scopes.join(' '),
    webhookTiming: 'none',
    ...target,
  })
  const code = new URL(res.body.redirect).searchParams.get('code')!
  const token = await exchange(sb, code)
  assert.equal(token.status, 200, token.text)
  return token.body.access_token
}

async function pit(target: { locationId: string } | { companyId: string }, scopes: string[]): Promise<string> {
  const res = await postJson<{ token: string }>(`${sb.url}/_sandbox/pit`, { ...target, scopes })
  return res.body.token
}

/** A token of `kind` holding `scopes`. */
async function tokenOf(kind: Kind, scopes: string[]): Promise<string> {
  const target = kind.startsWith('location') ? { locationId: loc } : { companyId }
  return kind.endsWith('pit') ? pit(target, scopes) : oauthToken(target, scopes)
}

before(async () => {
  sb = await startSandbox({
    seed: { apps: [{ scopes: ALL_SCOPES }], contactsPerLocation: 1 },
    rateLimit: { burstMax: 1_000_000, burstWindowMs: 1000, dailyMax: 1_000_000_000 },
    versionCheck: 'operation',
  })
  loc = sb.companies[0]!.locations[0]!.locationId
  companyId = sb.companies[0]!.companyId
  for (const kind of ['location', 'location-pit', 'agency', 'agency-pit'] as const) tokens[kind] = await tokenOf(kind, ALL_SCOPES)
})
after(() => sb.close())

// --- requests -----------------------------------------------------------------------------------

interface Answer {
  status: number
  body: any
  text: string
  headers: Headers
}

let unique = 0

async function api(method: string, path: string, token: string, opts: { query?: Record<string, unknown>; body?: unknown; version?: string; form?: 'multipart' | 'urlencoded' } = {}): Promise<Answer> {
  const url = new URL(`${sb.url}${path}`)
  for (const [k, v] of Object.entries(opts.query ?? {})) {
    if (v === undefined) continue
    for (const x of Array.isArray(v) ? v : [v]) url.searchParams.append(k, typeof x === 'object' ? JSON.stringify(x) : String(x))
  }
  const headers: Record<string, string> = { authorization: `Bearer ${token}` }
  if (opts.version) headers.version = opts.version
  let body: RequestInit['body']
  if (opts.body !== undefined) {
    if (opts.form === 'multipart') {
      const fd = new FormData()
      for (const [k, v] of Object.entries(opts.body as Record<string, unknown>)) {
        for (const x of Array.isArray(v) ? v : [v]) fd.append(k, typeof x === 'object' ? JSON.stringify(x) : String(x))
      }
      body = fd
    } else if (opts.form === 'urlencoded') {
      body = new URLSearchParams(Object.fromEntries(Object.entries(opts.body as Record<string, unknown>).map(([k, v]) => [k, String(v)])))
    } else {
      headers['content-type'] = 'application/json'
      body = JSON.stringify(opts.body)
    }
  }
  const res = await call(url.toString(), { method, headers, body })
  return { status: res.status, body: res.body, text: res.text, headers: res.headers }
}

const V = '2021-07-28'
const V15 = '2021-04-15'

type FixtureName =
  | 'contactId' | 'noteId' | 'taskId' | 'tagId' | 'customFieldId' | 'customValueId' | 'folderId' | 'pipelineId' | 'opportunityId'
  | 'calendarId' | 'groupId' | 'appointmentId' | 'appointmentNoteId' | 'conversationId' | 'messageId' | 'userId' | 'userEmail'
  | 'spareContactId' | 'spareLocationId' | 'appId' | 'meterId' | 'chargeId' | 'customMenuId'

/**
 * Records stateful operations work on, created through the API on first use (so each set makes only
 * what its operations need). One set serves every operation that keeps what it is given; each
 * stateful DELETE gets a fresh set.
 */
class Fixtures {
  readonly #made = new Map<FixtureName, Promise<string>>()
  readonly #n = ++unique

  get(name: FixtureName): Promise<string> {
    let p = this.#made.get(name)
    if (!p) {
      p = this.#make(name)
      this.#made.set(name, p)
    }
    return p
  }

  async #make(name: FixtureName): Promise<string> {
    const t = tokens.location
    const n = this.#n
    const ok = (res: Answer): any => {
      assert.ok(res.status >= 200 && res.status < 300, `fixture ${name}: ${res.status} ${res.text}`)
      return res.body
    }
    switch (name) {
      case 'contactId':
        return ok(await api('POST', '/contacts/', t, { version: V, body: { locationId: loc, firstName: 'Fix', lastName: `Ture${n}`, email: `fixture${n}@contract.example` } })).contact.id
      case 'spareContactId':
        return ok(await api('POST', '/contacts/', t, { version: V, body: { locationId: loc, firstName: 'Spare', email: `spare${n}@contract.example` } })).contact.id
      case 'noteId':
        return ok(await api('POST', `/contacts/${await this.get('contactId')}/notes`, t, { version: V, body: { body: 'a note' } })).note.id
      case 'taskId':
        return ok(await api('POST', `/contacts/${await this.get('contactId')}/tasks`, t, { version: V, body: { title: 'a task', dueDate: '2026-02-01T10:00:00Z', completed: false } })).task.id
      case 'tagId':
        return ok(await api('POST', `/locations/${loc}/tags`, t, { version: V, body: { name: `tag-${n}` } })).tag.id
      case 'customFieldId':
        return ok(await api('POST', `/locations/${loc}/customFields`, t, { version: V, body: { name: `Field ${n}`, dataType: 'TEXT' } })).customField.id
      case 'customValueId':
        return ok(await api('POST', `/locations/${loc}/customValues`, t, { version: V, body: { name: `Value ${n}`, value: 'v' } })).customValue.id
      case 'folderId':
        return ok(await api('POST', '/custom-fields/folder', t, { version: V, body: { objectKey: 'custom_objects.pet', name: `Folder ${n}`, locationId: loc } })).id
      case 'pipelineId':
        return ok(await api('GET', '/opportunities/pipelines', t, { version: V, query: { locationId: loc } })).pipelines[0].id
      case 'opportunityId': {
        const body = { pipelineId: await this.get('pipelineId'), locationId: loc, name: `Deal ${n}`, status: 'open', contactId: await this.get('contactId') }
        return ok(await api('POST', '/opportunities/', t, { version: V, body })).opportunity.id
      }
      case 'calendarId':
        return ok(await api('POST', '/calendars/', t, { version: V15, body: { locationId: loc, name: `Calendar ${n}` } })).calendar.id
      case 'groupId':
        return ok(await api('POST', '/calendars/groups', t, { version: V15, body: { locationId: loc, name: `Group ${n}`, description: 'g', slug: `group-${n}` } })).group.id
      case 'appointmentId': {
        const body = { calendarId: await this.get('calendarId'), locationId: loc, contactId: await this.get('contactId'), startTime: '2026-03-02T15:00:00Z' }
        return ok(await api('POST', '/calendars/events/appointments', t, { version: V15, body })).id
      }
      case 'appointmentNoteId':
        return ok(await api('POST', `/calendars/appointments/${await this.get('appointmentId')}/notes`, t, { version: V15, body: { body: 'n' } })).note.id
      case 'conversationId':
        return ok(await api('POST', '/conversations/', t, { version: V15, body: { locationId: loc, contactId: await this.get('contactId') } })).conversation.id
      case 'messageId': {
        const body = { type: 'SMS', conversationId: await this.get('conversationId'), contactId: await this.get('contactId'), conversationProviderId: 'provider-1', message: 'hi' }
        return ok(await api('POST', '/conversations/messages/inbound', t, { version: V15, body })).messageId
      }
      case 'userEmail':
        return `user${n}@contract.example`
      case 'userId': {
        const body = { companyId, firstName: 'Fix', lastName: `User${n}`, email: await this.get('userEmail'), password: 'x', type: 'account', role: 'user', locationIds: [loc] }
        return ok(await api('POST', '/users/', t, { version: V, body })).id
      }
      case 'spareLocationId':
        return ok(await api('POST', '/locations/', tokens.agency, { version: V, body: { name: `Spare ${n}`, companyId } })).id
      case 'appId':
        return sb.app.appId
      case 'meterId':
        return ((await call(`${sb.url}/_sandbox/billing/meters`)).body as Array<{ meterId: string; priceType: string }>).find((m) => m.priceType === 'fixed')!.meterId
      case 'chargeId': {
        const body = { appId: sb.app.appId, meterId: await this.get('meterId'), eventId: `evt-${n}`, locationId: loc, companyId, description: 'a charge', units: 1 }
        return ok(await api('POST', '/marketplace/billing/charges', t, { body })).chargeId
      }
      case 'customMenuId': {
        const body = { title: `Menu ${n}`, url: `https://app.example.com/${n}`, icon: { name: 'link', fontFamily: 'fas' }, showOnCompany: true, showOnLocation: true, showToAllLocations: true, openMode: 'iframe', locations: [], userRole: 'all' }
        return ok(await api('POST', '/custom-menus/', tokens.agency, { version: V, body })).customMenu.id
      }
    }
  }
}

/** The fixture a path parameter names, or undefined for a free value. */
function pathFixture(op: Operation, name: string): FixtureName | undefined {
  const p = op.path
  if (name === 'locationId' && op.id === 'locations/delete-location') return 'spareLocationId'
  if (name === 'contactId' || name === 'taskId' || name === 'tagId' || name === 'conversationId' || name === 'messageId' || name === 'calendarId') return name
  if (name === 'eventId' || name === 'appointmentId') return 'appointmentId'
  if (name === 'noteId') return 'appointmentNoteId'
  if (name === 'groupId' && p.startsWith('/calendars/groups')) return 'groupId'
  if (name === 'userId' && p.startsWith('/users/')) return 'userId'
  if (name === 'chargeId' || name === 'customMenuId') return name
  if (name === 'appId' && p.startsWith('/marketplace/app/')) return 'appId'
  if (name === 'id') {
    if (p.startsWith('/contacts/{contactId}/notes/')) return 'noteId'
    if (p.includes('/customFields/') || p === '/custom-fields/{id}') return 'customFieldId'
    if (p.startsWith('/custom-fields/folder/')) return 'folderId'
    if (p.includes('/customValues/')) return 'customValueId'
    if (p.startsWith('/opportunities/')) return 'opportunityId'
    if (p === '/conversations/messages/{id}') return 'messageId'
  }
  return undefined
}

/** Fixtures a stateful operation's top-level body and query fields take, when the schema has them. */
const FIELD_FIXTURES: Record<string, FixtureName> = {
  contactId: 'contactId',
  pipelineId: 'pipelineId',
  calendarId: 'calendarId',
  conversationId: 'conversationId',
  emails: 'userEmail',
  appId: 'appId',
  meterId: 'meterId',
}

function gen(seed: string): GenContext {
  return { seed, hints: new Map(), now: Date.UTC(2026, 0, 15), page: { limit: 1, offset: 0, total: 1 }, requiredOnly: true }
}

/** A valid request for `op`: path, required query, a schema-valid body with the fixtures' ids. */
async function request(op: Operation, f: Fixtures | undefined): Promise<{ path: string; query: Record<string, unknown>; body?: unknown; form?: 'multipart' | 'urlencoded' }> {
  const n = ++unique
  const over: Record<string, unknown> = { locationId: loc, location_id: loc, companyId, altId: loc, altType: 'location', email: `op${n}@contract.example`, locationIds: [loc] }
  if (f) {
    Object.assign(over, { startTime: '2026-04-01T15:00:00Z', endTime: '2026-04-01T15:30:00Z', slug: `slug-${n}` })
    // Resolved (and so created) only when the request has the field.
    for (const [field, fixture] of Object.entries(FIELD_FIXTURES)) over[field] = (): Promise<string> => f.get(fixture)
    over.contacts = async (): Promise<string[]> => [await f.get('contactId')]
    over.ids = async (): Promise<string[]> => [await f.get('contactId')]
  }
  const value = async (k: string): Promise<unknown> => {
    const v = over[k]
    return typeof v === 'function' ? await (v as () => Promise<unknown>)() : v
  }
  const pathValue = async (name: string, schema: Schema): Promise<string> => {
    const fixture = f ? pathFixture(op, name) : undefined
    if (fixture) return f!.get(fixture)
    if (name === 'locationId') return loc
    if (name === 'companyId') return companyId
    return String(generate(schema, gen(`${op.id}|${name}`), name))
  }
  let path = op.path
  for (const p of op.params.filter((x) => x.in === 'path')) path = path.replace(`{${p.name}}`, encodeURIComponent(await pathValue(p.name, p.schema)))
  // Path parameters the template has but the parameters do not declare.
  for (const m of [...path.matchAll(/\{([^}]+)\}/g)]) path = path.replace(m[0], encodeURIComponent(await pathValue(m[1]!, { type: 'string' })))
  const query: Record<string, unknown> = {}
  for (const p of op.params.filter((x) => x.in === 'query' && x.required)) {
    const v = p.name in over ? await value(p.name) : undefined
    query[p.name] = v !== undefined && fits(p.schema, v) ? v : generate(p.schema, gen(`${op.id}|q|${p.name}`), p.name)
  }
  if (!op.body) return { path, query }
  let body = generate(op.body.schema, gen(`${op.id}|body`), '')
  if (body && typeof body === 'object' && !Array.isArray(body)) {
    const b = body as Record<string, unknown>
    for (const k of Object.keys(over)) {
      if (!(k in b)) continue
      const v = await value(k)
      if (checkBody(op, { ...b, [k]: v }).ok) b[k] = v
    }
    // One conversation per contact: opening one needs a contact that has none yet.
    if (op.id === 'conversations/create-conversation' && f) b.contactId = await f.get('spareContactId')
    body = b
  }
  const form = op.body.contentTypes.includes('application/json') ? undefined : op.body.contentTypes.includes('multipart/form-data') ? 'multipart' : 'urlencoded'
  return { path, query, body, form }
}

function kindFor(op: Operation): Kind {
  return admitted(op)[0]!
}

// Operations served by the sandbox's OAuth routes (their own suite covers them).
const OAUTH_ROUTES = new Set(['oauth/get-access-token', 'oauth/get-location-access-token', 'oauth/get-installed-location'])

let shared: Fixtures | undefined
const lackingTokens = new Map<string, string>()

async function checkOperation(op: Operation): Promise<string[]> {
  const failures: string[] = []
  const fail = (what: string): void => {
    failures.push(`${op.id} (${op.method} ${op.path}): ${what}`)
  }
  const f = stateful.has(op.id) ? (op.method === 'DELETE' ? new Fixtures() : (shared ??= new Fixtures())) : undefined
  const kind = kindFor(op)
  const version = op.versions[0]
  const req = await request(op, f)
  if (req.body !== undefined && !req.form) {
    const built = checkBody(op, req.body)
    if (!built.ok) fail(`the test built an invalid body: ${built.messages.join('; ')}`)
  }

  // 1. valid request → documented 2xx, schema-valid body
  const ok = await api(op.method, req.path, tokens[kind], { query: req.query, body: req.body, version, form: req.form })
  if (ok.status !== op.response.status) fail(`valid request answered ${ok.status} (expected ${op.response.status}): ${ok.text.slice(0, 300)}`)
  else {
    const answer = checkResponse(op, ok.body)
    if (!answer.ok) fail(`answer does not match the response schema: ${answer.messages.join('; ').slice(0, 300)}`)
  }
  if (ok.headers.get('x-ratelimit-remaining') === null) fail('no X-RateLimit-Remaining header')

  if (op.security.length === 0) return failures
  // 2. a token kind the operation does not admit → 401 with HighLevel's IAM message
  const wrong = (['location', 'agency', 'location-pit', 'agency-pit'] as const).find((k) => !admitted(op).includes(k))
  if (wrong) {
    const res = await api(op.method, req.path, tokens[wrong], { query: req.query, body: req.body, version, form: req.form })
    if (res.status !== 401 || ![AUTH_CLASS_MESSAGE, USER_TYPE_MESSAGE].includes(res.body?.message)) fail(`${wrong} token answered ${res.status} ${res.text.slice(0, 200)}`)
  }
  // 3. the right kind without the operation's scopes → 401 naming the scope
  const needed = new Set(op.security.flatMap((s) => s.scopes))
  if (needed.size > 0) {
    const key = `${kind}|${[...needed].sort().join(' ')}`
    let lacking = lackingTokens.get(key)
    if (!lacking) {
      lacking = await tokenOf(kind, ALL_SCOPES.filter((s) => !needed.has(s)))
      lackingTokens.set(key, lacking)
    }
    const res = await api(op.method, req.path, lacking, { query: req.query, body: req.body, version, form: req.form })
    const named = [...needed].some((s) => String(res.body?.message).includes(s))
    if (res.status !== 401 || !named || !String(res.body?.message).startsWith('The token is not authorized for this scope')) fail(`token without ${[...needed].join(', ')} answered ${res.status} ${res.text.slice(0, 200)}`)
  }
  return failures
}

describe('every operation answers as documented', () => {
  const services = [...new Set(spec.operations.map((o) => o.service))]
  for (const service of services) {
    const ops = spec.operations.filter((o) => o.service === service && !OAUTH_ROUTES.has(o.id))
    if (ops.length === 0) continue
    test(`${service}: ${ops.length} operations`, async () => {
      const failures: string[] = []
      for (const op of ops) failures.push(...(await checkOperation(op)))
      assert.deepEqual(failures, [])
    })
  }
})
