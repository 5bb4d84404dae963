/**
 * HighLevel's official SDK (@gohighlevel/api-client) against the sandbox, configured as for
 * production except its base URL (a private static, `HighLevel.BASE_URL`, read when a client is
 * made): a sample of operations across services, each answer checked against the operation's
 * documented schema, and the state they share checked as they go (a created contact is read back,
 * tagged, found, deleted).
 *
 * The SDK sends one `Version` for every call (by default `2023-02-21`), as HighLevel's servers
 * accept; with `versionCheck: 'operation'` the sandbox refuses it, as the last test shows.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js'
import { loadSpec } from '../../src/sandbox/openapi/spec.js'
import { checkResponse } from '../../src/sandbox/openapi/validator.js'
import { postJson } from './helpers.js'

// Loaded without its type declarations (thousands of generated types; the test checks answers at run time).
const { HighLevel } = createRequire(import.meta.url)('@gohighlevel/api-client') as { HighLevel: any }

const spec = loadSpec()
const SCOPES = [...new Set(spec.operations.flatMap((o) => o.security.flatMap((s) => s.scopes)))]

let sb: Sandbox
let loc: string
let companyId: string
let ghl: any
let agency: any

/** An SDK client for a PIT, with nothing changed but the base URL. */
function sdkFor(token: string): any {
  const original = HighLevel.BASE_URL
  HighLevel.BASE_URL = sb.url
  try {
    return new HighLevel({ privateIntegrationToken: token, logLevel: 'none' })
  } finally {
    HighLevel.BASE_URL = original
  }
}

before(async () => {
  sb = await startSandbox({ seed: { apps: [{ scopes: SCOPES }] }, rateLimit: { burstMax: 10_000, burstWindowMs: 10_000, dailyMax: 1_000_000 } })
  loc = sb.companies[0]!.locations[0]!.locationId
  companyId = sb.companies[0]!.companyId
  ghl = sdkFor((await postJson(`${sb.url}/_sandbox/pit`, { locationId: loc, scopes: SCOPES })).body.token)
  agency = sdkFor((await postJson(`${sb.url}/_sandbox/pit`, { companyId, scopes: SCOPES })).body.token)
})
after(() => sb.close())

test('the official SDK calls 62 operations of 18 services; every answer matches its documented schema', async () => {
  const s: Record<string, any> = {}
  const when = '2026-05-04T15:00:00.000Z'
  // [operation id, the SDK call]: run in order, later calls use what earlier ones created.
  const calls: Array<[string, () => Promise<any>]> = [
    ['contacts/create-contact', async () => (s.contact = await ghl.contacts.createContact({ locationId: loc, firstName: 'Ada', lastName: 'Byron', email: 'ada@sdk.example', tags: ['vip'] }))],
    ['contacts/get-contact', () => ghl.contacts.getContact({ contactId: s.contact.contact.id })],
    ['contacts/update-contact', () => ghl.contacts.updateContact({ contactId: s.contact.contact.id }, { companyName: 'Analytical Engines' })],
    ['contacts/add-tags', () => ghl.contacts.addTags({ contactId: s.contact.contact.id }, { tags: ['engine'] })],
    ['contacts/remove-tags', () => ghl.contacts.removeTags({ contactId: s.contact.contact.id }, { tags: ['vip'] })],
    ['contacts/create-note', () => ghl.contacts.createNote({ contactId: s.contact.contact.id }, { body: 'Met at the conference' })],
    ['contacts/get-all-notes', async () => (s.notes = await ghl.contacts.getAllNotes({ contactId: s.contact.contact.id }))],
    ['contacts/create-task', async () => (s.task = await ghl.contacts.createTask({ contactId: s.contact.contact.id }, { title: 'Call back', dueDate: when, completed: false }))],
    ['contacts/update-task-completed', () => ghl.contacts.updateTaskCompleted({ contactId: s.contact.contact.id, taskId: s.task.task.id }, { completed: true })],
    ['contacts/get-all-tasks', () => ghl.contacts.getAllTasks({ contactId: s.contact.contact.id })],
    ['contacts/search-contacts-advanced', async () => (s.search = await ghl.contacts.searchContactsAdvanced({ locationId: loc, query: 'byron', pageLimit: 10 }))],
    ['contacts/upsert-contact', async () => (s.upsert = await ghl.contacts.upsertContact({ locationId: loc, email: 'ada@sdk.example', phone: '+15550000001' }))],
    ['contacts/get-contacts', () => ghl.contacts.getContacts({ locationId: loc, limit: 5 })],
    ['contacts/get-duplicate-contact', () => ghl.contacts.getDuplicateContact({ locationId: loc, email: 'ada@sdk.example' })],
    ['locations/get-location', () => ghl.locations.getLocation({ locationId: loc })],
    ['locations/get-location-tags', async () => (s.tags = await ghl.locations.getLocationTags({ locationId: loc }))],
    ['locations/create-tag', () => ghl.locations.createTag({ locationId: loc }, { name: 'newsletter' })],
    ['locations/create-custom-field', async () => (s.field = await ghl.locations.createCustomField({ locationId: loc }, { name: 'Favourite number', dataType: 'NUMERICAL' }))],
    ['locations/get-custom-fields', () => ghl.locations.getCustomFields({ locationId: loc })],
    ['locations/create-custom-value', () => ghl.locations.createCustomValue({ locationId: loc }, { name: 'Support line', value: '+15550000002' })],
    ['locations/get-custom-values', () => ghl.locations.getCustomValues({ locationId: loc })],
    ['locations/search-locations', () => agency.locations.searchLocations({ companyId, limit: 10 })],
    ['custom-fields/create-custom-field-folder', () => ghl.customFields.createCustomFieldFolder({ objectKey: 'custom_objects.pet', name: 'Pet details', locationId: loc })],
    ['custom-fields/get-custom-fields-by-object-key', () => ghl.customFields.getCustomFieldsByObjectKey({ objectKey: 'contact', locationId: loc })],
    ['opportunities/get-pipelines', async () => (s.pipelines = await ghl.opportunities.getPipelines({ locationId: loc }))],
    ['opportunities/create-opportunity', async () => (s.opp = await ghl.opportunities.createOpportunity({ pipelineId: s.pipelines.pipelines[0].id, locationId: loc, name: 'Engine order', status: 'open', contactId: s.contact.contact.id, monetaryValue: 1200 }))],
    ['opportunities/get-opportunity', () => ghl.opportunities.getOpportunity({ id: s.opp.opportunity.id })],
    ['opportunities/update-opportunity', () => ghl.opportunities.updateOpportunity({ id: s.opp.opportunity.id }, { pipelineStageId: s.pipelines.pipelines[0].stages[1].id })],
    ['opportunities/update-opportunity-status', () => ghl.opportunities.updateOpportunityStatus({ id: s.opp.opportunity.id }, { status: 'won' })],
    ['opportunities/search-opportunity', async () => (s.opps = await ghl.opportunities.searchOpportunity({ locationId: loc, status: 'won' }))],
    ['calendars/get-calendars', async () => (s.calendars = await ghl.calendars.getCalendars({ locationId: loc }))],
    ['calendars/create-appointment', async () => (s.appt = await ghl.calendars.createAppointment({ calendarId: s.calendars.calendars[0].id, locationId: loc, contactId: s.contact.contact.id, startTime: when }))],
    ['calendars/get-appointment', () => ghl.calendars.getAppointment({ eventId: s.appt.id })],
    ['calendars/edit-appointment', () => ghl.calendars.editAppointment({ eventId: s.appt.id }, { title: 'Engine demo' })],
    ['calendars/get-calendar-events', async () => (s.events = await ghl.calendars.getCalendarEvents({ locationId: loc, startTime: String(Date.parse(when) - 3_600_000), endTime: String(Date.parse(when) + 3_600_000) }))],
    ['calendars/get-slots', async () => (s.slots = await ghl.calendars.getSlots({ calendarId: s.calendars.calendars[0].id, startDate: Date.parse('2026-05-04T00:00:00Z'), endDate: Date.parse('2026-05-04T23:59:59Z') }))],
    ['calendars/create-appointment-note', () => ghl.calendars.createAppointmentNote({ appointmentId: s.appt.id }, { body: 'Bring the punched cards' })],
    ['calendars/get-appointment-notes', () => ghl.calendars.getAppointmentNotes({ appointmentId: s.appt.id, limit: 10, offset: 0 })],
    ['conversations/create-conversation', async () => (s.conv = await ghl.conversations.createConversation({ locationId: loc, contactId: s.contact.contact.id }))],
    ['conversations/send-a-new-message', async () => (s.sent = await ghl.conversations.sendANewMessage({ type: 'SMS', subType: {}, status: 'pending', contactId: s.contact.contact.id, message: 'Your engine ships Monday' }))],
    ['conversations/add-an-inbound-message', () => ghl.conversations.addAnInboundMessage({ type: 'SMS', conversationId: s.conv.conversation.id, contactId: s.contact.contact.id, conversationProviderId: 'sms-provider', message: 'Thank you!' })],
    ['conversations/get-messages', async () => (s.messages = await ghl.conversations.getMessages({ conversationId: s.conv.conversation.id }))],
    ['conversations/get-conversation', () => ghl.conversations.getConversation({ conversationId: s.conv.conversation.id })],
    ['conversations/search-conversation', () => ghl.conversations.searchConversation({ locationId: loc, contactId: s.contact.contact.id })],
    ['conversations/get-message', () => ghl.conversations.getMessage({ id: s.sent.messageId })],
    ['users/get-user-by-location', () => ghl.users.getUserByLocation({ locationId: loc })],
    ['users/create-user', async () => (s.user = await agency.users.createUser({ companyId, firstName: 'Grace', lastName: 'Hopper', email: 'grace@sdk.example', password: 'x', type: 'account', role: 'user', locationIds: [loc] }))],
    ['users/get-user', () => ghl.users.getUser({ userId: s.user.id })],
    ['businesses/get-businesses-by-location', () => ghl.businesses.getBusinessesByLocation({ locationId: loc })],
    ['campaigns/get-campaigns', () => ghl.campaigns.getCampaigns({ locationId: loc })],
    ['forms/get-forms', () => ghl.forms.getForms({ locationId: loc })],
    ['surveys/get-surveys', () => ghl.surveys.getSurveys({ locationId: loc })],
    ['links/get-links', () => ghl.links.getLinks({ locationId: loc })],
    ['invoices/generate-invoice-number', () => ghl.invoices.generateInvoiceNumber({ altId: loc, altType: 'location' })],
    ['payments/list-orders', () => ghl.payments.listOrders({ altId: loc, altType: 'location' })],
    ['products/get-list-inventory', () => ghl.products.getListInventory({ altId: loc, altType: 'location' })],
    ['workflows/get-workflow', () => ghl.workflows.getWorkflow({ locationId: loc })],
    ['objects/get-object-by-location-id', () => ghl.objects.getObjectByLocationId({ locationId: loc })],
    ['social-media-posting/get-account', () => ghl.socialMediaPosting.getAccount({ locationId: loc })],
    ['opportunities/delete-opportunity', () => ghl.opportunities.deleteOpportunity({ id: s.opp.opportunity.id })],
    ['calendars/delete-event', () => ghl.calendars.deleteEvent({ eventId: s.appt.id }, {})],
    ['contacts/delete-contact', () => ghl.contacts.deleteContact({ contactId: s.contact.contact.id })],
  ]
  const byId = new Map(spec.operations.map((o) => [o.id, o]))
  const failures: string[] = []
  for (const [id, run] of calls) {
    const op = byId.get(id)
    assert.ok(op, `unknown operation ${id}`)
    try {
      const answer = await run()
      const checked = checkResponse(op, answer)
      if (!checked.ok) failures.push(`${id}: ${checked.messages.join('; ')}`)
    } catch (err) {
      const e = err as { message?: string; statusCode?: number; response?: unknown }
      failures.push(`${id}: ${e.statusCode ?? ''} ${e.message ?? String(err)} ${JSON.stringify(e.response ?? '')}`.slice(0, 400))
    }
  }
  assert.deepEqual(failures, [])
  const services = new Set(calls.map(([id]) => id.split('/')[0]))
  assert.deepEqual([calls.length, services.size], [62, 18], 'operations, services')

  // What the calls share: one contact, seen through every API that touches it.
  assert.equal(s.upsert.new, false, 'upsert found the contact by email')
  assert.equal(s.upsert.contact.id, s.contact.contact.id)
  assert.deepEqual(s.search.contacts.map((c: any) => c.id), [s.contact.contact.id])
  assert.equal(s.notes.notes[0].body, 'Met at the conference')
  assert.ok(s.tags.tags.some((t: any) => t.name === 'engine'), 'a tag given to a contact is a location tag')
  assert.deepEqual(s.opps.opportunities.map((o: any) => o.id), [s.opp.opportunity.id])
  assert.equal(s.opps.opportunities[0].pipelineStageId, s.pipelines.pipelines[0].stages[1].id)
  assert.deepEqual(s.events.events.map((e: any) => e.id), [s.appt.id])
  assert.ok(!s.slots['2026-05-04'].slots.includes(when), 'the booked slot is not free')
  assert.deepEqual(s.messages.messages.map((m: any) => m.direction), ['inbound', 'outbound'])
  const gone = await ghl.contacts.getContact({ contactId: s.contact.contact.id }).catch((e: any) => e)
  assert.equal(gone.statusCode, 400, 'a deleted contact is gone')
})

test("with versionCheck 'operation' the SDK's default Version is refused, naming the operation's", async () => {
  await sb.close()
  sb = await startSandbox({ versionCheck: 'operation' })
  const token = (await postJson(`${sb.url}/_sandbox/pit`, { locationId: sb.companies[0]!.locations[0]!.locationId })).body.token
  const client = sdkFor(token)
  const err = await client.contacts.getContacts({ locationId: sb.companies[0]!.locations[0]!.locationId }).catch((e: any) => e)
  assert.equal(err.statusCode, 400)
  assert.match(err.message, /2023-02-21 is not supported \(expected 2021-07-28\)/)
})
