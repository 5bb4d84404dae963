/**
 * The sandbox's helpers for an app's own tests, on their own: `sb.env()` is a configuration the
 * connector accepts; each misuse of `sb.install`, `sb.expire` and `sb.env` is a clear error that
 * changes nothing; `sb.events` filters. (The helpers against real apps: test/http/adapters.test.ts,
 * examples/test-suite.)
 */
import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import { loadConfig } from '../../src/config.js'
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js'
import { testKey } from '../helpers/services.js'

describe('sandbox test helpers', () => {
  let sb: Sandbox
  before(async () => {
    sb = await startSandbox()
  })
  after(async () => sb?.close())

  test('sb.env() is a configuration the connector accepts; with appUrl it registers the app', () => {
    const plain = sb.env()
    assert.equal(plain.GHL_CLIENT_ID, sb.app.clientId)
    assert.equal(plain.GHL_API_URL, sb.url)
    assert.equal(plain.GHL_REDIRECT_URI, undefined)
    const before = sb.app
    const env = sb.env({ appUrl: 'http://127.0.0.1:4555/ghl/', webhookPath: '/hooks' })
    assert.equal(env.GHL_REDIRECT_URI, 'http://127.0.0.1:4555/ghl/oauth/callback')
    assert.equal(env.GHL_WEBHOOK_PATH, '/hooks')
    assert.deepEqual(sb.app.redirectUris, ['http://127.0.0.1:4555/ghl/oauth/callback'])
    assert.equal(sb.app.webhookUrl, 'http://127.0.0.1:4555/ghl/hooks')
    assert.notDeepEqual(before.redirectUris, sb.app.redirectUris)
    const config = loadConfig({ env: { ...env, GHL_ENCRYPTION_KEY: testKey(), DATABASE_URL: ':memory:' } })
    assert.equal(config.clientSecret, sb.app.clientSecret)
    assert.equal(config.webhookPath, '/hooks')
  })

  test('bad input: each a clear error, nothing changed', async () => {
    const app = sb.app
    assert.throws(() => sb.env({ appUrl: 'not a url' }), /expected appUrl to be an absolute URL/)
    assert.throws(() => sb.env({ appUrl: 'http://127.0.0.1:1', webhookPath: 'hooks' }), /expected webhookPath to start with "\/"/)
    assert.deepEqual(sb.app, app, 'the app is as it was')
    assert.throws(() => sb.expire({}), /exactly one of token, locationId or companyId/)
    assert.throws(() => sb.expire({ locationId: 'a', companyId: 'b' }), /exactly one/)
    assert.throws(() => sb.expire({ token: 'no-such-token' }), /unknown token/)
    assert.equal(sb.expire({ locationId: sb.companies[0]!.locations[0]!.locationId }), 0, 'nothing installed: nothing expired')
  })

  test('sb.install names the step that failed: an app not listening, an app that does not redirect', async () => {
    const locationId = sb.companies[0]!.locations[0]!.locationId
    // A port with nothing listening (a server is opened and closed on it).
    const gone: Server = createServer()
    gone.listen(0, '127.0.0.1')
    await once(gone, 'listening')
    const port = (gone.address() as { port: number }).port
    await new Promise<void>((resolve) => gone.close(() => resolve()))
    sb.env({ appUrl: `http://127.0.0.1:${port}` })
    await assert.rejects(sb.install({ locationId }), /install route http:\/\/127\.0\.0\.1:\d+\/oauth\/install could not be reached/)

    const page: Server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<h1>hi</h1>'))
    page.listen(0, '127.0.0.1')
    await once(page, 'listening')
    try {
      sb.env({ appUrl: `http://127.0.0.1:${(page.address() as { port: number }).port}` })
      await assert.rejects(sb.install({ locationId }), /answered 200 instead of a redirect to HighLevel/)
    } finally {
      page.close()
    }
    const installs = (await (await fetch(`${sb.url}/_sandbox/installs`)).json()) as unknown[]
    assert.deepEqual(installs, [], 'no install was made')
    assert.deepEqual(sb.events(), [], 'no webhook was sent')
  })
})
