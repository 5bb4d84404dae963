/**
 * A few HighLevel resource APIs over in-memory data: GET /locations/{id} (locations.json),
 * GET/POST /contacts/ and GET /contacts/{id} (contacts.json). Every answer passes the Bearer guard
 * (rate-limit headers, token, Version, scope, token kind).
 */
import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import { badRequest, bodyOf, forbidden, guard, unprocessable, zodMessages, type SandboxContext } from '../http.js'
import { hlId } from '../ids.js'
import type { ContactRecord } from '../types.js'

const listSchema = z.object({
  locationId: z.string().min(1),
  limit: z.string().regex(/^\d+$/, 'limit must be an integer').optional(),
  query: z.string().optional(),
  startAfterId: z.string().optional(),
  startAfter: z.string().optional(),
})

const nullableString = z.string().nullable().optional()
const createSchema = z
  .object({
    locationId: z.string().min(1),
    firstName: nullableString,
    lastName: nullableString,
    name: nullableString,
    email: z.email().nullable().optional(),
    phone: nullableString,
    companyName: nullableString,
    source: z.string().optional(),
    tags: z.array(z.string()).optional(),
    address1: nullableString,
    city: nullableString,
    state: nullableString,
    postalCode: z.string().optional(),
    website: nullableString,
    timezone: nullableString,
    country: z.string().optional(),
    gender: z.string().optional(),
    dnd: z.boolean().optional(),
    assignedTo: z.string().optional(),
  })
  .loose()

/** Registers the resource APIs. */
export function registerApiRoutes(app: FastifyInstance, ctx: SandboxContext): void {
  const store = ctx.store
  const counter = (): typeof store.stats.api => store.stats.api

  // Security: Location-Access or Agency-Access (locations.readonly). An agency token may read any
  // location of its own company.
  app.get('/locations/:locationId', async (req, reply) => {
    const token = await guard(ctx, req, reply, { scope: 'locations.readonly', access: 'location-or-agency', counter: counter(), fault: 'api' })
    if (!token) return reply
    const { locationId } = req.params as { locationId: string }
    const location = store.location(locationId)
    const allowed =
      token.userType === 'Location' ? token.locationId === locationId : location !== undefined && location.companyId === token.companyId
    if (!allowed || !location) return forbidden(reply, 'The token does not have access to this location')
    return {
      location: {
        id: location.locationId,
        companyId: location.companyId,
        name: location.name,
        address: location.address,
        city: location.city,
        state: location.state,
        country: location.country,
        postalCode: location.postalCode,
        timezone: location.timezone,
        email: location.email,
        phone: location.phone,
        website: '',
        domain: '',
        business: { name: location.name, address: location.address, city: location.city, state: location.state, country: location.country },
        social: {},
        settings: {},
      },
    }
  })

  // Security: `bearer` (contacts.json) = a Sub-Account token or a Sub-Account PIT.
  app.get('/contacts/', async (req, reply) => {
    const token = await guard(ctx, req, reply, { scope: 'contacts.readonly', access: 'location', counter: counter(), fault: 'api' })
    if (!token) return reply
    const input = req.query ?? {}
    const parsed = listSchema.safeParse(input)
    if (!parsed.success) return unprocessable(reply, zodMessages(parsed.error, input))
    const q = parsed.data
    if (q.locationId !== token.locationId) return forbidden(reply, 'The token does not have access to this location')
    const limit = Number(q.limit ?? '20')
    if (limit < 1 || limit > 100) return unprocessable(reply, ['limit must not be greater than 100 and not less than 1'])
    let rows = store.contacts.filter((c) => c.locationId === q.locationId)
    if (q.query) {
      const needle = q.query.toLowerCase()
      rows = rows.filter((c) => [c.name, c.email, c.phone, c.firstName, c.lastName].some((v) => typeof v === 'string' && v.toLowerCase().includes(needle)))
    }
    const total = rows.length
    if (q.startAfterId) {
      const i = rows.findIndex((c) => c.id === q.startAfterId)
      rows = i >= 0 ? rows.slice(i + 1) : rows
    }
    const page = rows.slice(0, limit)
    const last = page[page.length - 1]
    return {
      contacts: page,
      count: total,
      meta: { total, nextPageUrl: null, startAfterId: last?.id ?? null, startAfter: last ? Date.parse(last.dateAdded) : null },
    }
  })

  app.get('/contacts/:contactId', async (req, reply) => {
    const token = await guard(ctx, req, reply, { scope: 'contacts.readonly', access: 'location', counter: counter(), fault: 'api' })
    if (!token) return reply
    const { contactId } = req.params as { contactId: string }
    const contact = store.contacts.find((c) => c.id === contactId)
    if (!contact) return badRequest(reply, 'Contact not found')
    if (contact.locationId !== token.locationId) return forbidden(reply, 'The token does not have access to this location')
    return { contact }
  })

  app.post('/contacts/', async (req, reply) => {
    const token = await guard(ctx, req, reply, { scope: 'contacts.write', access: 'location', counter: counter(), fault: 'api' })
    if (!token) return reply
    const input = bodyOf(req)
    const parsed = createSchema.safeParse(input)
    if (!parsed.success) return unprocessable(reply, zodMessages(parsed.error, input))
    const b = parsed.data
    if (b.locationId !== token.locationId) return forbidden(reply, 'The token does not have access to this location')
    const email = b.email ?? null
    if (email) {
      const dup = store.contacts.find((c) => c.locationId === b.locationId && c.email?.toLowerCase() === email.toLowerCase())
      // HighLevel's answer for a duplicate, with the existing contact in `meta`.
      if (dup) return badRequest(reply, 'This location does not allow duplicated contacts.', { meta: { contactId: dup.id, matchingField: 'email' } })
    }
    const at = new Date(store.now()).toISOString()
    const firstName = b.firstName ?? null
    const lastName = b.lastName ?? null
    const contact: ContactRecord = {
      ...b,
      id: hlId(),
      locationId: b.locationId,
      firstName,
      lastName,
      name: b.name ?? ([firstName, lastName].filter(Boolean).join(' ') || null),
      email,
      phone: b.phone ?? null,
      companyName: b.companyName ?? null,
      source: b.source ?? 'public api',
      tags: b.tags ?? [],
      dateAdded: at,
      dateUpdated: at,
    }
    store.contacts.push(contact)
    ctx.persist()
    return reply.code(201).send({ contact })
  })
}
