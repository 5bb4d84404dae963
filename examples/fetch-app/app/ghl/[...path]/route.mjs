/**
 * Next.js App Router route handler (app/ghl/[...path]/route): every connector route under /ghl —
 * install, callback, webhooks, SSO — served by one standard fetch handler.
 */
import { createFetchHandler } from 'ghl-connect/fetch'
import { getConnector } from '../../../lib/ghl.mjs'

let handler
async function handle(request) {
  handler ??= createFetchHandler(await getConnector(), {
    basePath: '/ghl',
    afterInstall: (i) => `/contacts?locationId=${encodeURIComponent(i.locationId ?? '')}`,
  })
  return handler(request)
}

export { handle as GET, handle as POST, handle as PUT, handle as PATCH }
