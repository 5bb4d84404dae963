/**
 * Each framework adapter in a real app of that framework, over real HTTP, against the sandbox: the
 * connector's routes mounted under `/ghl` beside the app's own route, then install (the real OAuth
 * flow, `sb.install`) → the callback's redirect to the app's page → webhooks (INSTALL, a signed
 * ContactCreate reaching the app's subscriber, a forged one refused, an oversized one refused) → a
 * call through the connector from the app's page, again after `sb.expire` (exactly one refresh) → a
 * sandbox workflow run calling the app's workflow action through the adapter.
 */
import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http'
import Fastify from 'fastify'
import express from 'express'
import { Hono } from 'hono'
import { getRequestListener } from '@hono/node-server'
import { loadConfig } from '../../src/config.js'
import { createConnector, type Connector } from '../../src/connector.js'
import { ghlConnectFastify } from '../../src/http/fastify-plugin.js'
import { ghlConnectExpress } from '../../src/http/node-middleware.js'
import { createFetchHandler } from '../../src/http/fetch-handler.js'
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js'
import { freshDatabase, testKey } from '../helpers/services.js'
import { randomBytes } from 'node:crypto'
import { z } from 'zod'
import { WorkflowActions } from '../../src/marketplace/workflows/workflow-actions.js'

type Listener = (req: IncomingMessage, res: ServerResponse) => void

interface AppUnderTest {
  sandbox: Sandbox
  connector: Connector
  root: string
  base: string
  contacts: string[]
  close(): Promise<void>
}

/** The app's own page: the location's contacts, read through the connector. */
async function listContacts(connector: Connector, locationId: string): Promise<{ status: number; body: unknown }> {
  const res = await connector.location(locationId).get<{ contacts: Array<{ id: string }> }>('/contacts/', { query: { locationId, limit: 10 } })
  return { status: 200, body: { contacts: res.data.contacts.map((c) => c.id) } }
}

const afterInstall = (i: { locationId: string | null }) => `/app/contacts?locationId=${i.locationId}`

/** A workflow action the apps mount too: HighLevel's workflow calls it with the configured header. */
const ACTION_SECRET = `action-${randomBytes(12).toString('hex')}`
const actions = new WorkflowActions({ headers: { 'x-app-secret': ACTION_SECRET } }).define({
  key: 'greet',
  fields: z.object({ name: z.string().min(1) }),
  handler: async ({ data, extras, ghl }) => {
    const res = await ghl.get<{ location: { name: string } }>(`/locations/${extras.locationId}`)
    return { outputs: { greeting: `Hello ${data.name} from ${res.data.location.name}` } }
  },
})
const routeOptions = { afterInstall, actions }

/** How each framework mounts the connector's routes under /ghl and serves the app's page. */
const FRAMEWORKS: Record<string, (connector: Connector, server: Server) => Promise<{ listener?: Listener; close?: () => Promise<void> }>> = {
  async fastify(connector, server) {
    const app = Fastify({
      serverFactory: (handler) => {
        server.on('request', handler)
        return server
      },
    })
    await app.register(ghlConnectFastify, { connector, prefix: '/ghl', ...routeOptions })
    app.get('/app/contacts', async (req) => (await listContacts(connector, (req.query as { locationId: string }).locationId)).body)
    await app.ready()
    return { close: () => app.close() }
  },
  async express(connector) {
    const app = express()
    app.use('/ghl', ghlConnectExpress(connector, routeOptions))
    app.use(express.json())
    app.get('/app/contacts', async (req, res) => {
      res.json((await listContacts(connector, String(req.query.locationId))).body)
    })
    // A router mounted after a body parser: the webhook route says why it cannot verify.
    app.use('/late', express.json(), ghlConnectExpress(connector, { include: { oauth: false, sso: false } }))
    return { listener: app as unknown as Listener }
  },
  async hono(connector) {
    const handler = createFetchHandler(connector, { basePath: '/ghl', ...routeOptions })
    const app = new Hono()
    app.all('/ghl/*', (c) => handler(c.req.raw))
    app.get('/app/contacts', async (c) => c.json((await listContacts(connector, c.req.query('locationId')!)).body as object))
    return { listener: getRequestListener(app.fetch) as Listener }
  },
}

async function startApp(framework: keyof typeof FRAMEWORKS): Promise<AppUnderTest> {
  const sandbox = await startSandbox()
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const root = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  const base = `${root}/ghl`
  const db = await freshDatabase('sqlite')
  const config = loadConfig({ env: { ...sandbox.env({ appUrl: base }), GHL_ENCRYPTION_KEY: testKey(), DATABASE_URL: db.url, GHL_REFRESH_JITTER_MS: '0' } })
  const connector = await createConnector({ config, background: false })
  const contacts: string[] = []
  connector.webhooks.on('ContactCreate', (event) => {
    contacts.push(String(event.id))
  })
  const mounted = await FRAMEWORKS[framework]!(connector, server)
  if (mounted.listener) server.on('request', mounted.listener)
  return {
    sandbox,
    connector,
    root,
    base,
    contacts,
    close: async () => {
      await mounted.close?.()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await connector.close()
      await sandbox.close()
      await db.cleanup()
    },
  }
}

for (const framework of Object.keys(FRAMEWORKS) as Array<keyof typeof FRAMEWORKS>) {
  describe(`${framework} adapter over HTTP`, () => {
    let app: AppUnderTest
    let locationId: string
    before(async () => {
      app = await startApp(framework)
      locationId = app.sandbox.companies[0]!.locations[0]!.locationId
    })
    after(async () => app?.close())

    test('install → callback redirects to the app → INSTALL webhook acknowledged → installation stored', async () => {
      const installed = await app.sandbox.install({ locationId })
      assert.equal(installed.callbackStatus, 302)
      assert.equal(installed.redirectedTo, `/app/contacts?locationId=${locationId}`)
      const install = installed.webhooks.filter((w) => w.type === 'INSTALL')
      assert.equal(install.length, 1, 'the sandbox sent one INSTALL')
      assert.equal(install[0]!.responseStatus, 200, JSON.stringify(install[0]))
      await app.connector.webhooks.idle()
      const rows = await app.connector.installations()
      assert.deepEqual(rows.map((r) => [r.locationId, r.status]), [[locationId, 'active']])
      assert.equal((await app.connector.webhooks.list({ type: 'INSTALL' }))[0]?.status, 'processed')
    })

    test("a signed webhook reaches the app's subscriber; a forged one and an oversized one are refused", async () => {
      const res = await fetch(`${app.sandbox.url}/_sandbox/webhooks/send`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'ContactCreate', locationId, id: `contact-${framework}` }),
      })
      assert.equal(((await res.json()) as { responseStatus: number }).responseStatus, 200)
      await app.connector.webhooks.idle()
      assert.deepEqual(app.contacts, [`contact-${framework}`])

      const forged = await fetch(`${app.base}/webhooks/highlevel`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-ghl-signature': 'AAAA' },
        body: JSON.stringify({ type: 'ContactCreate', locationId, id: 'forged', webhookId: 'forged-1', timestamp: new Date().toISOString() }),
      })
      assert.equal(forged.status, 401)
      assert.equal(((await forged.json()) as { code: string }).code, 'GHL_WEBHOOK_SIGNATURE_INVALID')
      const huge = await fetch(`${app.base}/webhooks/highlevel`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(app.connector.config.webhookMaxBytes * 2 + 1) })
      assert.equal(huge.status, 413)
      assert.equal(((await huge.json()) as { code: string }).code, 'GHL_WEBHOOK_TOO_LARGE')
      assert.deepEqual(app.contacts, [`contact-${framework}`], 'neither reached the subscriber')
    })

    test("the app's page calls HighLevel through the connector; after sb.expire, exactly one refresh", async () => {
      let refreshes = 0
      const off = app.connector.on('refreshed', () => refreshes++)
      try {
        const page = await fetch(`${app.root}/app/contacts?locationId=${locationId}`)
        assert.equal(page.status, 200)
        const first = (await page.json()) as { contacts: string[] }
        assert.ok(first.contacts.length > 0, 'the seeded contacts are listed')
        assert.equal(app.sandbox.expire({ locationId }), 1)
        const pages = await Promise.all([1, 2, 3].map(() => fetch(`${app.root}/app/contacts?locationId=${locationId}`)))
        assert.deepEqual(pages.map((p) => p.status), [200, 200, 200])
        assert.deepEqual(((await pages[0]!.json()) as { contacts: string[] }).contacts, first.contacts)
        assert.equal(refreshes, 1)
      } finally {
        off()
      }
    })

    test("a HighLevel workflow run calls the app's action through the adapter; a wrong header is refused", async () => {
      const json = async (method: string, path: string, body: unknown) => {
        const res = await fetch(`${app.sandbox.url}${path}`, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
        assert.ok(res.ok, `${path}: ${res.status}`)
        return res.json() as Promise<any>
      }
      await json('PUT', `/_sandbox/marketplace/${app.sandbox.app.appId}`, {
        actions: [
          { key: 'greet', url: `${app.base}/actions/greet`, headers: { 'x-app-secret': ACTION_SECRET } },
          { key: 'greet_forged', url: `${app.base}/actions/greet`, headers: { 'x-app-secret': `wrong-${ACTION_SECRET}` } },
        ],
      })
      const wf = await json('POST', '/_sandbox/workflows', { locationId, actions: [{ key: 'greet', data: { name: 'Ann' } }] })
      const run = await json('POST', `/_sandbox/workflows/${wf.workflowId}/run`, { payload: {} })
      assert.equal(run.status, 'completed', JSON.stringify(run))
      assert.deepEqual(run.steps[0].outputs, { greeting: `Hello Ann from ${app.sandbox.companies[0]!.locations[0]!.name}` })
      const forged = await json('POST', '/_sandbox/workflows', { locationId, actions: [{ key: 'greet_forged', data: { name: 'Eve' } }] })
      const refused = await json('POST', `/_sandbox/workflows/${forged.workflowId}/run`, { payload: {} })
      assert.equal(refused.steps[0].response.status, 401)
      assert.equal(refused.steps[0].response.body.code, 'GHL_MARKETPLACE_UNAUTHORIZED')
    })

    test('SSO and unknown paths answer in the one error body', async () => {
      const sso = await fetch(`${app.base}/sso/decrypt`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"encryptedData":"bm90IGEgcGF5bG9hZA=="}' })
      assert.equal(sso.status, 400)
      assert.equal(((await sso.json()) as { code: string }).code, 'GHL_SSO_INVALID')
      const control = await (await fetch(`${app.sandbox.url}/_sandbox/sso`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).json() as { payload: string }
      const ok = await fetch(`${app.base}/sso/decrypt`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ encryptedData: control.payload }) })
      assert.equal(ok.status, 200)
      assert.equal(typeof ((await ok.json()) as { userId: string }).userId, 'string')
      const bad = await fetch(`${app.base}/sso/decrypt`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"encryptedData":' })
      assert.equal(bad.status, 400)
      assert.equal(((await bad.json()) as { code: string }).code, 'GHL_BAD_REQUEST')
      const missing = await fetch(`${app.base}/oauth/nothing-here`)
      assert.equal(missing.status, 404)
    })

    if (framework === 'express') {
      test('mounted after express.json(), the webhook route refuses with the reason instead of verifying parsed JSON', async () => {
        const late = await fetch(`${app.root}/late/webhooks/highlevel`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"type":"ContactCreate"}' })
        assert.equal(late.status, 400)
        assert.match(((await late.json()) as { message: string }).message, /mount ghl-connect's routes before body parsers/)
      })
    }
  })
}
