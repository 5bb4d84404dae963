/**
 * Serves the Next.js-style route handlers of this folder without Next.js (what Next.js does for them
 * in a real app): `/ghl/*` → app/ghl/[...path]/route.mjs, `/contacts` → app/contacts/route.mjs.
 * Under Bun or Deno the same handlers run with `Bun.serve({ fetch })` / `Deno.serve(fetch)`.
 */
import { createServer } from 'node:http'
import { getRequestListener } from '@hono/node-server'
import * as ghlRoute from './app/ghl/[...path]/route.mjs'
import * as contactsRoute from './app/contacts/route.mjs'
import { getConnector } from './lib/ghl.mjs'

/** The App Router's part: pick the route module by path and its export by method. */
async function fetch(request) {
  const { pathname } = new URL(request.url)
  const route = pathname.startsWith('/ghl/') ? ghlRoute : pathname === '/contacts' ? contactsRoute : undefined
  const handler = route?.[request.method]
  if (!handler) return new Response('Not found', { status: 404 })
  return handler(request)
}

const server = createServer(getRequestListener(fetch))
const port = Number(process.env.PORT ?? 4000)
server.listen(port, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${server.address().port}`))
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => server.close(() => getConnector().then((ghl) => ghl.close()).then(() => process.exit(0))))
}
