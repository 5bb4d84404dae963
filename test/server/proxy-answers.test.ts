/**
 * How the proxy passes HighLevel's answer back: a small answer of declared length is sent whole, with
 * its length (`Content-Length`, not chunked); a large one, or one of unknown length, is streamed; both
 * arrive byte for byte. An answer that breaks off before its declared length is a 502 GHL_NETWORK, and
 * the server goes on answering. HighLevel here is a loopback server on port 0 whose answers the test
 * chooses (the sandbox always answers whole).
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { request } from 'undici'
import { loadConfig } from '../../src/config.js'
import { createConnector, type Connector } from '../../src/connector.js'
import { createLogger } from '../../src/logger.js'
import { buildServer } from '../../src/server/index.js'
import { tempDir, testKey } from '../helpers/services.js'

const API_KEY = 'proxy-answers-api-key-0123456789'
const LARGE = Buffer.alloc(200 * 1024, 'abcdefghij')
const SMALL = JSON.stringify({ contact: { id: 'c1', firstName: 'Ada' } })

/** The answers HighLevel gives, by path. */
function answer(path: string, res: import('node:http').ServerResponse): void {
  if (path === '/contacts/small') {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(SMALL), 'x-ratelimit-remaining': '99' }).end(SMALL)
  } else if (path === '/contacts/large') {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': LARGE.length }).end(LARGE)
  } else if (path === '/contacts/unsized') {
    // No Content-Length: chunked.
    res.writeHead(200, { 'content-type': 'application/json' })
    res.write('{"part":')
    res.end('1}')
  } else if (path === '/contacts/cut') {
    // Declares 100 bytes, sends 10, and drops the connection.
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': 100 })
    res.write('{"partial"', () => res.destroy())
  } else {
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"not found"}')
  }
}

let upstream: Server
let connector: Connector
let app: Awaited<ReturnType<typeof buildServer>>
let url: string
const dir = tempDir()

before(async () => {
  upstream = createServer((req, res) => {
    req.resume()
    answer(req.url!.split('?')[0]!, res)
  })
  upstream.listen(0, '127.0.0.1')
  await once(upstream, 'listening')
  const config = loadConfig({
    env: {
      GHL_CLIENT_ID: 'answers1234-client',
      GHL_CLIENT_SECRET: 'client-secret-value',
      GHL_REDIRECT_URI: 'http://127.0.0.1:1/oauth/callback',
      GHL_SCOPES: 'contacts.readonly',
      GHL_API_URL: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
      GHL_ENCRYPTION_KEY: testKey(),
      GHL_CONNECTOR_API_KEY: API_KEY,
      GHL_RATE_LIMIT: 'false',
      DATABASE_URL: join(dir.path, 'vault.db'),
    },
  })
  connector = await createConnector({ config, logger: createLogger({ level: 'silent' }), background: false })
  await connector.vault.installations.upsert({
    clientId: config.clientId,
    companyId: 'co-1',
    locationId: 'loc-1',
    userType: 'Location',
    scopes: ['contacts.readonly'],
    source: 'oauth',
    tokens: { accessToken: 'at.loc-1', refreshToken: 'rt.loc-1', expiresAt: new Date(Date.now() + 3600_000) },
  })
  app = await buildServer(connector)
  url = await app.listen({ port: 0, host: '127.0.0.1' })
})

after(async () => {
  await app?.close()
  await connector?.close()
  upstream?.closeAllConnections()
  upstream?.close()
  dir.remove()
})

async function proxied(path: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  const res = await request(`${url}/proxy/locations/loc-1${path}`, { headers: { 'x-connector-key': API_KEY } })
  return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) }
}

test('a small answer of declared length arrives whole, with its length and headers', async () => {
  const res = await proxied('/contacts/small')
  assert.equal(res.status, 200)
  assert.equal(res.body.toString('utf8'), SMALL)
  assert.equal(res.headers['content-length'], String(Buffer.byteLength(SMALL)))
  assert.equal(res.headers['transfer-encoding'], undefined)
  assert.equal(res.headers['content-type'], 'application/json')
  assert.equal(res.headers['x-ratelimit-remaining'], '99')
})

test('a large answer, and one of unknown length, are streamed byte for byte', async () => {
  const large = await proxied('/contacts/large')
  assert.equal(large.status, 200)
  assert.ok(large.body.equals(LARGE), `${large.body.length} bytes, expected ${LARGE.length}`)
  assert.equal(large.headers['transfer-encoding'], 'chunked', 'streamed, not buffered')
  const unsized = await proxied('/contacts/unsized')
  assert.equal(unsized.status, 200)
  assert.equal(unsized.body.toString('utf8'), '{"part":1}')
})

test('an answer that breaks off before its declared length → 502 GHL_NETWORK; the server goes on', async () => {
  const cut = await proxied('/contacts/cut')
  assert.equal(cut.status, 502)
  const body = JSON.parse(cut.body.toString('utf8')) as { code: string; message: string }
  assert.equal(body.code, 'GHL_NETWORK')
  assert.match(body.message, /broke off/)
  const next = await proxied('/contacts/small')
  assert.equal(next.status, 200)
  assert.equal(next.body.toString('utf8'), SMALL)
})
