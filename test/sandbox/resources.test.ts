/**
 * Stateful APIs across each other (a contact created is found by get, list and search, used by
 * opportunities, appointments and conversations, gone after delete) and the webhooks those changes
 * send: signed, in order, shaped as HighLevel's event pages, only to apps installed on the location
 * that have a webhook URL.
 */
import { after, before, beforeEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import { verify } from 'node:crypto'
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js'
import { checkWebhook } from '../../src/sandbox/openapi/validator.js'
import { call, exchange, postJson } from './helpers.js'

const SCOPES = [
  'contacts.readonly', 'contacts.write', 'opportunities.readonly', 'opportunities.write', 'calendars.readonly', 'calendars.write',
  'calendars/events.readonly', 'calendars/events.write', 'conversations.readonly', 'conversations.write', 'conversations/message.readonly',
  'conversations/message.write', 'locations.readonly',
]

interface Hook {
  path: string
  body: Buffer
  payload: Record<string, any>
  signature: string
}

let receiver: Server
let hookBase: string
let hooks: Hook[] = []
let waiters: Array<() => void> = []
let sb: Sandbox
let loc: string[]
let appB: { appId: string; clientId: string; redirectUris: string[] }

/** Resolves once `n` webhooks have arrived at `path` since the last reset. */
function arrived(path: string, n: number): Promise<Hook[]> {
  const at = (): Hook[] => hooks.filter((h) => h.path === path)
  return new Promise((resolve) => {
    const check = (): void => {
      if (at().length >= n) resolve(at())
      else waiters.push(check)
    }
    check()
  })
}

async function authorizeAs(app: { clientId: string; redirectUris: string[] }, locationId: string): Promise<string> {
  const res = await postJson(`${sb.url}/_sandbox/authorize`, { clientId: app.clientId, redirectUri: app.redirectUris[0], scope: SCOPES.join(' '), locationId, webhookTiming: 'none' })
  return new URL(res.body.redirect).searchParams.get('code')!
}

before(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      hooks.push({ path: req.url!, body, payload: JSON.parse(body.toString('utf8')), signature: String(req.headers['x-ghl-signature']) })
      res.end()
      const w = waiters
      waiters = []
      for (const f of w) f()
    })
  })
  receiver.listen(0, '127.0.0.1')
  await once(receiver, 'listening')
  hookBase = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`
  sb = await startSandbox({ seed: { apps: [{ scopes: SCOPES }, { scopes: SCOPES }] }, rateLimit: { burstMax: 10_000, burstWindowMs: 10_000, dailyMax: 1_000_000 } })
  loc = sb.companies[0]!.locations.map((l) => l.locationId)
  appB = (await call(`${sb.url}/_sandbox/apps`)).body[1]
})
after(async () => {
  await sb.close()
  receiver.close()
})
beforeEach(async () => {
  await postJson(`${sb.url}/_sandbox/reset`, {})
  sb.configureApp({ webhookUrl: `${hookBase}/a` })
  await call(`${sb.url}/_sandbox/apps/${appB.appId}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ webhookUrl: `${hookBase}/b` }) })
  hooks = []
})

/** App A installed on the first location; its access token. */
async function installA(): Promise<string> {
  const res = await exchange(sb, await authorizeAs(sb.app, loc[0]!))
  return res.body.access_token
}

function client(token: string) {
  const headers = (version: string) => ({ authorization: `Bearer ${token}`, version, 'content-type': 'application/json' })
  return {
    get: (path: string, version = '2021-07-28') => call(`${sb.url}${path}`, { headers: headers(version) }),
    send: async (method: string, path: string, body?: unknown, version = '2021-07-28') => {
      const res = await call(`${sb.url}${path}`, { method, headers: headers(version), body: body === undefined ? undefined : JSON.stringify(body) })
      assert.ok(res.status >= 200 && res.status < 300, `${method} ${path}: ${res.status} ${res.text}`)
      return res.body
    },
  }
}

describe('state across the APIs', () => {
  test('a created contact is found by get, list and search, used elsewhere, and gone after delete with its notes and tasks', async () => {
    const api = client(await installA())
    const { contact } = await api.send('POST', '/contacts/', { locationId: loc[0], firstName: 'Mary', lastName: 'Somerville', email: 'mary@example.org', tags: ['astronomy'] })
    assert.equal((await api.get(`/contacts/${contact.id}`)).body.contact.email, 'mary@example.org')
    assert.deepEqual((await api.get(`/contacts/?locationId=${loc[0]}&query=somerville`)).body.contacts.map((c: any) => c.id), [contact.id])
    const search = await api.send('POST', '/contacts/search', { locationId: loc[0], filters: [{ field: 'tags', operator: 'eq', value: 'astronomy' }] })
    assert.deepEqual(search.contacts.map((c: any) => c.id), [contact.id])
    const note = (await api.send('POST', `/contacts/${contact.id}/notes`, { body: 'On the Connexion of the Physical Sciences' })).note
    const task = (await api.send('POST', `/contacts/${contact.id}/tasks`, { title: 'Send the proofs', dueDate: '2026-06-01T09:00:00Z', completed: false })).task
    const pipeline = (await api.get(`/opportunities/pipelines?locationId=${loc[0]}`)).body.pipelines[0]
    const opp = (await api.send('POST', '/opportunities/', { pipelineId: pipeline.id, locationId: loc[0], name: 'Translation', status: 'open', contactId: contact.id })).opportunity
    assert.equal(opp.contact.email, 'mary@example.org', 'an opportunity carries its contact')
    assert.equal(opp.pipelineStageId, pipeline.stages[0].id, 'the first stage by default')
    const calendar = (await api.get(`/calendars/?locationId=${loc[0]}`, '2021-04-15')).body.calendars[0]
    const appt = await api.send('POST', '/calendars/events/appointments', { calendarId: calendar.id, locationId: loc[0], contactId: contact.id, startTime: '2026-06-02T10:00:00Z' }, '2021-04-15')
    assert.equal(appt.endTime, '2026-06-02T10:30:00.000Z', "the calendar's slot length")
    assert.deepEqual((await api.get(`/contacts/${contact.id}/appointments`)).body.events.map((e: any) => e.id), [appt.id])
    const sent = await api.send('POST', '/conversations/messages', { type: 'SMS', subType: {}, status: 'pending', contactId: contact.id, message: 'Proofs attached' }, '2021-04-15')
    const conv = (await api.get(`/conversations/search?locationId=${loc[0]}&contactId=${contact.id}`, '2021-04-15')).body.conversations[0]
    assert.equal(conv.id, sent.conversationId)
    assert.equal(conv.lastMessageBody, 'Proofs attached')

    await api.send('DELETE', `/contacts/${contact.id}`)
    for (const path of [`/contacts/${contact.id}`, `/contacts/${contact.id}/notes/${note.id}`, `/contacts/${contact.id}/tasks/${task.id}`]) {
      const res = await api.get(path)
      assert.equal(res.status, 400, path)
      assert.equal(res.body.message, 'Contact not found')
    }
    assert.equal((await api.get(`/contacts/?locationId=${loc[0]}&query=somerville`)).body.count, 0)
    assert.equal((await api.send('POST', '/contacts/search', { locationId: loc[0], query: 'mary' })).total, 0)
    // Another location never sees it.
    const pit = (await postJson(`${sb.url}/_sandbox/pit`, { locationId: loc[1] })).body.token
    assert.equal((await client(pit).get(`/opportunities/${opp.id}`)).status, 403)
  })

  test('state survives a restart from the state file and is gone after reset', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs')
    const { join } = await import('node:path')
    const { tmpdir } = await import('node:os')
    const dir = mkdtempSync(join(tmpdir(), 'sandbox-state-'))
    try {
      const statePath = join(dir, 'state.json')
      let box = await startSandbox({ statePath })
      const where = box.companies[0]!.locations[0]!.locationId
      const pit = (await postJson(`${box.url}/_sandbox/pit`, { locationId: where, scopes: ['locations/tags.write', 'locations/tags.readonly'] })).body.token
      const url = box.url
      const res = await call(`${url}/locations/${where}/tags`, { method: 'POST', headers: { authorization: `Bearer ${pit}`, version: '2021-07-28', 'content-type': 'application/json' }, body: JSON.stringify({ name: 'kept' }) })
      assert.equal(res.status, 200, res.text)
      await box.close()
      box = await startSandbox({ statePath })
      const tags = await call(`${box.url}/locations/${where}/tags`, { headers: { authorization: `Bearer ${pit}`, version: '2021-07-28' } })
      assert.deepEqual(tags.body.tags.map((t: any) => t.name), ['kept'])
      await postJson(`${box.url}/_sandbox/reset`, {})
      const pit2 = (await postJson(`${box.url}/_sandbox/pit`, { locationId: where, scopes: ['locations/tags.readonly'] })).body.token
      assert.deepEqual((await call(`${box.url}/locations/${where}/tags`, { headers: { authorization: `Bearer ${pit2}`, version: '2021-07-28' } })).body.tags, [])
      await box.close()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('webhooks of changes', () => {
  test('each change sends its events, signed, in order, shaped as the event pages', async () => {
    const api = client(await installA())
    const { contact } = await api.send('POST', '/contacts/', { locationId: loc[0], firstName: 'Emmy', email: 'emmy@example.org' })
    await api.send('PUT', `/contacts/${contact.id}`, { lastName: 'Noether', tags: ['algebra'] })
    await api.send('POST', `/contacts/${contact.id}/notes`, { body: 'Idealtheorie' })
    await api.send('POST', `/contacts/${contact.id}/tasks`, { title: 'Referee', dueDate: '2026-07-01T09:00:00Z', completed: false })
    const pipeline = (await api.get(`/opportunities/pipelines?locationId=${loc[0]}`)).body.pipelines[0]
    const { opportunity } = await api.send('POST', '/opportunities/', { pipelineId: pipeline.id, locationId: loc[0], name: 'Lectures', status: 'open', contactId: contact.id, monetaryValue: 100 })
    await api.send('PUT', `/opportunities/${opportunity.id}`, { pipelineStageId: pipeline.stages[2].id })
    await api.send('PUT', `/opportunities/${opportunity.id}/status`, { status: 'won' })
    await api.send('DELETE', `/opportunities/${opportunity.id}`)
    const calendar = (await api.get(`/calendars/?locationId=${loc[0]}`, '2021-04-15')).body.calendars[0]
    const appt = await api.send('POST', '/calendars/events/appointments', { calendarId: calendar.id, locationId: loc[0], contactId: contact.id, startTime: '2026-07-02T10:00:00Z' }, '2021-04-15')
    await api.send('PUT', `/calendars/events/appointments/${appt.id}`, { title: 'Seminar' }, '2021-04-15')
    await api.send('DELETE', `/calendars/events/${appt.id}`, {}, '2021-04-15')
    const sent = await api.send('POST', '/conversations/messages', { type: 'SMS', subType: {}, status: 'pending', contactId: contact.id, message: 'See you Tuesday' }, '2021-04-15')
    await api.send('POST', '/conversations/messages/inbound', { type: 'SMS', conversationId: sent.conversationId, contactId: contact.id, conversationProviderId: 'sms', message: 'Thanks' }, '2021-04-15')
    await api.send('DELETE', `/contacts/${contact.id}`)

    const expected = [
      'ContactCreate', 'ContactUpdate', 'ContactTagUpdate', 'NoteCreate', 'TaskCreate', 'OpportunityCreate', 'OpportunityUpdate',
      'OpportunityStageUpdate', 'OpportunityUpdate', 'OpportunityStatusUpdate', 'OpportunityDelete', 'AppointmentCreate',
      'AppointmentUpdate', 'AppointmentDelete', 'OutboundMessage', 'InboundMessage', 'ContactDelete',
    ]
    const got = await arrived('/a', expected.length)
    assert.deepEqual(got.map((h) => h.payload.type), expected)
    const key = sb.publicKeys.ed25519
    for (const h of got) {
      assert.ok(verify(null, h.body, key, Buffer.from(h.signature, 'base64')), `${h.payload.type} is signed`)
      assert.equal(h.payload.locationId, loc[0])
      assert.equal(typeof h.payload.webhookId, 'string')
      const page = h.payload.type.startsWith('Appointment') ? 'AppointmentCreate' : h.payload.type
      const checked = checkWebhook(page, h.payload)
      assert.ok(checked.ok, `${h.payload.type}: ${checked.ok ? '' : checked.messages.join('; ')}`)
    }
    const byType = (t: string) => got.find((h) => h.payload.type === t)!.payload
    assert.equal(byType('ContactCreate').id, contact.id)
    assert.equal(byType('ContactCreate').email, 'emmy@example.org')
    assert.deepEqual(byType('ContactTagUpdate').tags, ['algebra'])
    assert.equal(byType('NoteCreate').contactId, contact.id)
    assert.equal(byType('OpportunityStageUpdate').pipelineStageId, pipeline.stages[2].id)
    assert.equal(byType('OpportunityStatusUpdate').status, 'won')
    assert.equal(byType('AppointmentUpdate').appointment.title, 'Seminar')
    assert.equal(byType('OutboundMessage').messageId, sent.messageId)
    assert.equal(byType('InboundMessage').direction, 'inbound')
    assert.equal(byType('InboundMessage').messageType, 'SMS')
  })

  test('only apps installed on the location receive them, and only with a webhook URL', async () => {
    const api = client(await installA())
    // App B has a URL but is not installed; location 2 has no install of A; changes there send nothing.
    const other = client((await postJson(`${sb.url}/_sandbox/pit`, { locationId: loc[1] })).body.token)
    await other.send('POST', '/contacts/', { locationId: loc[1], firstName: 'Elsewhere' })
    await api.send('POST', '/contacts/', { locationId: loc[0], firstName: 'First' })
    // Deliveries go out in order: once this one has arrived, an earlier one would have too.
    assert.deepEqual((await arrived('/a', 1)).map((h) => h.payload.firstName), ['First'])

    const code = await authorizeAs(appB, loc[0]!)
    assert.ok(code)
    sb.configureApp({ webhookUrl: null })
    await api.send('POST', '/contacts/', { locationId: loc[0], firstName: 'Second' })
    sb.configureApp({ webhookUrl: `${hookBase}/a` })
    await api.send('POST', '/contacts/', { locationId: loc[0], firstName: 'Third' })
    assert.deepEqual((await arrived('/a', 2)).map((h) => h.payload.firstName), ['First', 'Third'], 'nothing while A had no URL')
    assert.deepEqual((await arrived('/b', 2)).map((h) => h.payload.firstName), ['Second', 'Third'], 'B receives from its install on')
    assert.ok(!hooks.some((h) => h.payload.firstName === 'Elsewhere'))
  })
})
