/** Next.js route handler (app/contacts/route): the location's contacts as JSON, read through the connector. */
import { getConnector } from '../../lib/ghl.mjs'

export async function GET(request) {
  const locationId = new URL(request.url).searchParams.get('locationId') ?? ''
  const ghl = await getConnector()
  try {
    const { data } = await ghl.location(locationId).get('/contacts/', { query: { locationId, limit: 20 } })
    return Response.json({ locationId, contacts: data.contacts.map((c) => ({ id: c.id, email: c.email })) })
  } catch (err) {
    return Response.json({ code: err.code, message: err.message }, { status: err.status ?? 500 })
  }
}
