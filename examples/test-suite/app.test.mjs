/**
 * A complete example of an app's own test suite with ghl-connect's test helpers: the app of
 * ../express-app against a fresh sandbox, in-process, over real HTTP — install through the real OAuth
 * flow, the contacts page, the webhook handler, an expired token. Run: `node --test examples/test-suite/`.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { createConnector, loadConfig } from 'ghl-connect'
import { startSandbox } from 'ghl-connect/sandbox'
import { createApp } from '../express-app/app.mjs'

let sb, ghl, app, server, appUrl, dir, locationId

before(async () => {
  sb = await startSandbox()
  // The app listens first (port 0), so its URL is known when the connector is configured.
  server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  appUrl = `http://127.0.0.1:${server.address().port}`
  dir = mkdtempSync(join(tmpdir(), 'my-app-test-'))
  const env = {
    ...sb.env({ appUrl: `${appUrl}/ghl` }), // registers the app's callback and webhook URL with the sandbox
    GHL_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    DATABASE_URL: join(dir, 'ghl.sqlite'),
  }
  ghl = await createConnector({ config: loadConfig({ env }) })
  app = createApp(ghl)
  server.on('request', app.app)
  locationId = sb.companies[0].locations[0].locationId
})

after(async () => {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
  await ghl.close()
  await sb.close()
  rmSync(dir, { recursive: true, force: true })
})

/** Until every webhook the sandbox sent is answered and the app's handlers ran. */
async function settled() {
  while (sb.events().some((e) => e.status === 'pending')) await new Promise((r) => setTimeout(r, 10))
  await ghl.webhooks.idle()
}

test('installing lands on the contacts page of the location', async () => {
  const installed = await sb.install({ locationId })
  assert.equal(installed.redirectedTo, `/contacts?locationId=${locationId}`)
  assert.deepEqual(installed.webhooks.map((w) => [w.type, w.responseStatus]), [['INSTALL', 200]])

  const page = await fetch(`${appUrl}${installed.redirectedTo}`)
  assert.equal(page.status, 200)
  const html = await page.text()
  assert.equal((html.match(/data-contact-id=/g) ?? []).length, 3, 'the three seeded contacts')
})

test('a contact created in HighLevel reaches the webhook handler', async () => {
  const { data } = await ghl.location(locationId).post('/contacts/', { body: { locationId, email: 'ada@example.com', firstName: 'Ada' } })
  await settled()
  const created = sb.events({ type: 'ContactCreate', locationId })
  assert.equal(created.length, 1)
  assert.equal(created[0].responseStatus, 200)
  const events = await (await fetch(`${appUrl}/events`)).json()
  assert.deepEqual(events.filter((e) => e.type === 'ContactCreate'), [{ type: 'ContactCreate', locationId, id: data.contact.id }])
})

test('an expired access token is refreshed, once, without the page noticing', async () => {
  let refreshed = 0
  const off = ghl.on('refreshed', () => refreshed++)
  assert.equal(sb.expire({ locationId }), 1)
  const pages = await Promise.all([1, 2, 3].map(() => fetch(`${appUrl}/contacts?locationId=${locationId}`)))
  assert.deepEqual(pages.map((p) => p.status), [200, 200, 200])
  assert.equal(refreshed, 1)
  off()
})

test('a location the app is not installed on is a clear error, not a crash', async () => {
  const other = sb.companies[0].locations[1].locationId
  const res = await fetch(`${appUrl}/contacts?locationId=${other}`)
  assert.equal(res.status, 404)
  assert.equal((await res.json()).code, 'GHL_NOT_INSTALLED')
})
