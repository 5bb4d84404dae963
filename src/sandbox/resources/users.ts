/**
 * Users (users.json). An agency's users start as the seeded users of that agency (agency users with
 * every location); users created through the API are sub-account or agency users of the locations
 * they are given. Creating a user sends UserCreate (UserCreate.md) to the apps installed on its first
 * location, or on the agency for an agency user without locations.
 */
import { ApiFailure, defined, matches, page, type Handler, type HandlerInput, type Rec } from './context.js'

/** The users of a company, starting from the seeded ones on first use. */
function usersOf(input: HandlerInput, companyId: string): Rec[] {
  if (!input.data.once(`users:${companyId}`)) {
    const locations = input.store.company(companyId)?.locations.map((l) => l.locationId) ?? []
    for (const u of input.store.users.filter((x) => x.companyId === companyId)) {
      const [firstName, ...rest] = u.name.split(' ')
      input.data.insert('users', {
        id: u.userId,
        companyId,
        name: u.name,
        firstName: firstName ?? u.name,
        lastName: rest.join(' '),
        email: u.email,
        phone: '',
        extension: '',
        roles: { type: u.type, role: u.role, locationIds: locations },
        permissions: {},
        deleted: false,
      })
    }
  }
  return input.data.list('users').filter((u) => u.companyId === companyId && u.deleted !== true)
}

function locationIdsOf(u: Rec): string[] {
  const roles = u.roles as { locationIds?: unknown } | undefined
  return Array.isArray(roles?.locationIds) ? (roles.locationIds as string[]) : []
}

/** The user of an id, visible to the token (same agency; for a sub-account token, a user of its location). */
function userOf(input: HandlerInput): Rec {
  const t = input.token
  const u = usersOf(input, t.companyId).find((x) => x.id === input.path.userId)
  if (!u || (t.userType === 'Location' && !locationIdsOf(u).includes(t.locationId!))) throw new ApiFailure(400, 'User not found')
  return u
}

function apply(u: Rec, b: Record<string, unknown>): void {
  Object.assign(u, defined(b, ['password', 'type', 'role', 'locationIds', 'companyId', 'id']))
  const roles = { ...(u.roles as Record<string, unknown> | undefined) }
  if (b.type !== undefined) roles.type = b.type
  if (b.role !== undefined) roles.role = b.role
  if (b.locationIds !== undefined) roles.locationIds = b.locationIds
  u.roles = roles
  u.name = [u.firstName, u.lastName].filter((x) => typeof x === 'string' && x !== '').join(' ')
}

export const userHandlers: Record<string, Handler> = {
  'users/get-user-by-location': (input) => {
    const locationId = String(input.query.locationId)
    return { body: { users: usersOf(input, input.token.companyId).filter((u) => locationIdsOf(u).includes(locationId)) } }
  },
  'users/search-users': (input) => {
    const q = input.query
    const ids = typeof q.ids === 'string' ? q.ids.split(',') : undefined
    const roles = (u: Rec): Record<string, unknown> => (u.roles as Record<string, unknown> | undefined) ?? {}
    const rows = usersOf(input, input.token.companyId).filter(
      (u) =>
        (input.token.userType !== 'Location' || locationIdsOf(u).includes(input.token.locationId!)) &&
        (q.locationId === undefined || locationIdsOf(u).includes(String(q.locationId))) &&
        (q.type === undefined || roles(u).type === q.type) &&
        (q.role === undefined || roles(u).role === q.role) &&
        (ids === undefined || ids.includes(u.id)) &&
        matches(u, q.query, ['name', 'firstName', 'lastName', 'email']),
    )
    const p = page(rows, { ...q, limit: q.limit ?? 25 })
    return { body: { users: p.items, count: p.total } }
  },
  'users/filter-users-by-email': (input) => {
    const b = input.body
    const emails = String(b.emails)
      .split(',')
      .map((e) => e.trim().toLowerCase())
    const rows = usersOf(input, input.token.companyId).filter((u) => emails.includes(String(u.email).toLowerCase()))
    const p = page(rows, { skip: b.skip, limit: b.limit ?? 25 })
    return { body: { users: p.items, count: p.total } }
  },
  'users/get-user': (input) => ({ body: userOf(input) }),
  'users/create-user': (input) => {
    const b = input.body
    const companyId = input.token.companyId
    const existing = usersOf(input, companyId).find((u) => String(u.email).toLowerCase() === String(b.email).toLowerCase())
    if (existing) throw new ApiFailure(400, 'User already exists with this email')
    const locationIds = Array.isArray(b.locationIds) ? (b.locationIds as string[]) : []
    for (const id of locationIds) {
      if (input.store.location(id)?.companyId !== companyId) throw new ApiFailure(400, `Location ${id} not found`)
    }
    const u = input.data.insert('users', { companyId, phone: '', extension: '', permissions: {}, deleted: false })
    apply(u, b)
    const first = locationIds[0]
    const roles = u.roles as Record<string, unknown>
    const payload = { ...(first ? { locationId: first } : { companyId }), id: u.id, firstName: u.firstName, lastName: u.lastName, email: u.email, phone: u.phone, extension: u.extension, role: roles.role, permissions: u.permissions, ...(locationIds.length > 0 ? { locations: locationIds } : {}) }
    input.emit(first ? { type: 'UserCreate', locationId: first, payload } : { type: 'UserCreate', companyId, payload })
    return { body: u }
  },
  'users/update-user': (input) => {
    const u = userOf(input)
    apply(u, input.body)
    return { body: u }
  },
  'users/delete-user': (input) => {
    const u = userOf(input)
    u.deleted = true
    return { body: { succeded: true, message: `User ${u.id} deleted` } }
  },
}
