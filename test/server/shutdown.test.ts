/**
 * Closing the server while a request is under way on a keep-alive connection (every deploy sends
 * SIGTERM to a server whose clients keep connections open): the request is answered, its answer says
 * `Connection: close` and the server ends that connection, so the close completes at once instead of
 * waiting out the client's keep-alive (72 s with Fastify's defaults: past `serve`'s shutdown limit,
 * which then exited 1 — seen in the fault suite's SIGTERM scenario).
 */
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { Agent, request } from 'node:http'
import { once } from 'node:events'
import { connect } from 'node:net'
import { join } from 'node:path'
import { loadConfig } from '../../src/config.js'
import { createConnector, type Connector } from '../../src/connector.js'
import { buildServer } from '../../src/server/app.js'
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js'
import { tempDir, testKey } from '../helpers/services.js'
import { sandboxJson } from '../helpers/stack.js'

const API_KEY = 'shutdown-api-key-0123456789'
const REDIRECT_URI = 'http://127.0.0.1:1/oauth/callback'

let sandbox: Sandbox
let connector: Connector
const dir = tempDir()
after(async () => {
  await connector?.close()
  await sandbox?.close()
  dir.remove()
})

interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
  socketClosed: Promise<void>
}

function get(url: string, agent: Agent, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, headers }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, socketClosed: socketClosed }))
    })
    let socketClosed: Promise<void> = Promise.resolve()
    req.on('socket', (s) => (socketClosed = once(s, 'close').then(() => undefined)))
    req.on('error', reject)
    req.end()
  })
}

test('close() with a request under way on a keep-alive connection: answered with Connection: close, the connection ended, the close completes', { timeout: 60_000 }, async () => {
  sandbox = await startSandbox({ port: 0 })
  sandbox.configureApp({ redirectUris: [REDIRECT_URI] })
  connector = await createConnector({
    config: loadConfig({
      env: {
        GHL_CLIENT_ID: sandbox.app.clientId,
        GHL_CLIENT_SECRET: sandbox.app.clientSecret,
        GHL_REDIRECT_URI: REDIRECT_URI,
        GHL_SCOPES: sandbox.app.scopes.join(' '),
        GHL_API_URL: sandbox.url,
        GHL_MARKETPLACE_URL: sandbox.url,
        GHL_ENCRYPTION_KEY: testKey(),
        GHL_CONNECTOR_API_KEY: API_KEY,
        DATABASE_URL: join(dir.path, 'vault.db'),
      },
    }),
    background: false,
  })
  const locationId = sandbox.companies[0]!.locations[0]!.locationId
  const { state } = await connector.startInstall()
  const consent = await sandboxJson<{ redirect: string }>(sandbox, 'POST', '/_sandbox/authorize', {
    clientId: sandbox.app.clientId, redirectUri: REDIRECT_URI, scope: sandbox.app.scopes.join(' '), state, locationId, webhookTiming: 'none',
  })
  await connector.completeInstall(Object.fromEntries(new URL(consent.redirect).searchParams))

  const app = await buildServer(connector)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const proxyUrl = `http://127.0.0.1:${port}/proxy/locations/${locationId}/locations/${locationId}`
  const auth = { authorization: `Bearer ${API_KEY}` }
  // Two keep-alive connections: one carries a call HighLevel holds, the other stays open and idle-then-busy.
  const agent = new Agent({ keepAlive: true, keepAliveMsecs: 60_000, maxSockets: 2 })
  try {
    // Positive control: outside a shutdown the answer keeps the connection alive.
    const warm = await Promise.all([get(proxyUrl, agent, auth), get(proxyUrl, agent, auth)])
    for (const a of warm) {
      assert.equal(a.status, 200, a.body)
      assert.equal(a.headers.connection, 'keep-alive')
    }

    // HighLevel holds the next call; close() starts while it is under way.
    await sandboxJson(sandbox, 'POST', '/_sandbox/faults', { endpoint: 'api', kind: 'hang', count: 1, hangMs: 1500 })
    const before = (await sandboxJson<{ faults: { api: number } }>(sandbox, 'GET', '/_sandbox/stats')).faults.api
    const socket = connect(port, '127.0.0.1')
    await once(socket, 'connect')
    let raw = ''
    socket.setEncoding('utf8')
    socket.on('data', (c: string) => (raw += c))
    const ended = once(socket, 'end')
    const path = `/proxy/locations/${locationId}/locations/${locationId}`
    const one = `GET ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${API_KEY}\r\nconnection: keep-alive\r\n\r\n`
    socket.write(one)
    for (let i = 0; i < 500; i++) {
      if ((await sandboxJson<{ faults: { api: number } }>(sandbox, 'GET', '/_sandbox/stats')).faults.api > before) break
      await new Promise((r) => setTimeout(r, 10))
    }
    const closed = app.close()
    await ended // the server ends the connection (no keep-alive left open to wait for)
    await closed
    assert.equal(app.server.listening, false)
    // The held call is answered (HighLevel's 504 after its hang was retried) and ends its connection.
    assert.match(raw, /^HTTP\/1\.1 200 /)
    assert.match(raw, /\r\nconnection: close\r\n/i)
  } finally {
    agent.destroy()
  }
})
