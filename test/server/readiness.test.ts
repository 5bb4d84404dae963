/**
 * Errors name the real cause. `/healthz` is liveness only; `/readyz` says whether the database (with its
 * migrations) and Redis answer within a bound, and names what failed (503 with Retry-After). Every error
 * answer of every route has one body, `{code, message, status}`, and every 503 carries Retry-After.
 *
 * The failing dependencies are real: a Redis URL on a port nothing listens on, a "Redis" and a
 * "PostgreSQL" that accept connections and never answer (plain TCP servers on port 0), a SQLite file
 * whose migrations were never applied.
 */
import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer as createHttpServer } from 'node:http'
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net'
import { generateKeyPairSync } from 'node:crypto'
import { once } from 'node:events'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { Client, request } from 'undici'
import { loadConfig } from '../../src/config.js'
import { createConnector, type Connector, type ConnectorOptions } from '../../src/connector.js'
import { ERROR_CODES } from '../../src/errors.js'
import { createLogger } from '../../src/logger.js'
import { buildServer } from '../../src/server/app.js'
import { createVault } from '../../src/vault/create-vault.js'
import { vaultMigrations } from '../../src/vault/migrations/index.js'
import { tempDir, testKey } from '../helpers/services.js'

const API_KEY = 'readiness-api-key-0123456789'
const WEBHOOK_MAX_BYTES = 2048

interface Served {
  url: string
  connector: Connector
  logs: string[]
  close(): Promise<void>
}

/**
 * A connector server on port 0 (SQLite in a temp folder unless DATABASE_URL is given). HighLevel is
 * never needed here: GHL_API_URL points at a port nothing listens on.
 */
async function serve(env: Record<string, string> = {}, options: Pick<ConnectorOptions, 'vault' | 'checkKeys'> = {}): Promise<Served> {
  const dir = tempDir()
  const server = createHttpServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  const config = loadConfig({
    env: {
      GHL_CLIENT_ID: 'ready1234-client',
      GHL_CLIENT_SECRET: 'client-secret-value',
      GHL_REDIRECT_URI: `${url}/oauth/callback`,
      GHL_SCOPES: 'contacts.readonly',
      GHL_API_URL: 'http://127.0.0.1:9',
      GHL_ENCRYPTION_KEY: testKey(),
      GHL_CONNECTOR_API_KEY: API_KEY,
      GHL_SHARED_SECRET: 'shared-secret-value',
      GHL_WEBHOOK_ED25519_PUBLIC_KEY: generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      GHL_WEBHOOK_MAX_BYTES: String(WEBHOOK_MAX_BYTES),
      DATABASE_URL: join(dir.path, 'vault.db'),
      ...env,
    },
  })
  const logs: string[] = []
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean))
      cb()
    },
  })
  const connector = await createConnector({ config, logger: createLogger({ level: 'debug', destination }), background: false, ...options })
  const app = await buildServer(connector, { server })
  await app.ready()
  return {
    url,
    connector,
    logs,
    close: async () => {
      await app.close()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await connector.close()
      dir.remove()
    },
  }
}

/** A TCP server that accepts connections and never answers (a hung Redis or PostgreSQL). */
async function silentPeer(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>()
  const server: TcpServer = createTcpServer((socket) => {
    sockets.add(socket)
    socket.on('error', () => {})
    socket.on('close', () => sockets.delete(socket))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    port: (server.address() as { port: number }).port,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/** A loopback port nothing listens on (bound, read, closed). */
async function closedPort(): Promise<number> {
  const server = createTcpServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as { port: number }).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

type Readiness = { ok: boolean; checks: Record<string, { ok: boolean; reason?: string }> }

async function get(url: string, headers: Record<string, string> = {}) {
  const res = await request(url, { headers })
  return { status: res.statusCode, headers: res.headers, body: (await res.body.json()) as Record<string, unknown> }
}

/** The one error body: exactly {code, message, status} (+ `ok: false` on the webhook and SSO routes, + retryAfterMs on a 503). */
function assertErrorBody(what: string, status: number, body: Record<string, unknown>, code: string): void {
  const keys = Object.keys(body).filter((k) => k !== 'ok' && k !== 'retryAfterMs').sort()
  assert.deepEqual(keys, ['code', 'message', 'status'], `${what}: ${JSON.stringify(body)}`)
  assert.equal(body.code, code, `${what}: ${JSON.stringify(body)}`)
  assert.ok(body.code as string in ERROR_CODES, `${what}: ${String(body.code)} is not in the table`)
  assert.equal(body.status, status, `${what}: body status`)
  assert.equal(typeof body.message, 'string')
  assert.ok((body.message as string).length > 0)
  if ('ok' in body) assert.equal(body.ok, false)
}

describe('readiness', () => {
  test('healthy: /healthz and /readyz answer 200, each check named and ok', async () => {
    const s = await serve()
    try {
      assert.deepEqual((await get(`${s.url}/healthz`)).body, { ok: true })
      const ready = await get(`${s.url}/readyz`)
      assert.equal(ready.status, 200)
      assert.deepEqual(ready.body, { ok: true, checks: { database: { ok: true }, webhookSignatures: { ok: true } } })
      assert.equal(ready.headers['retry-after'], undefined)
    } finally {
      await s.close()
    }
  })

  test('Redis on a port nothing listens on: /readyz 503 with Retry-After naming Redis; the database is ok; /healthz still 200', async () => {
    const s = await serve({ REDIS_URL: `redis://127.0.0.1:${await closedPort()}`, GHL_REDIS_TIMEOUT_MS: '300' })
    try {
      const ready = await get(`${s.url}/readyz`)
      const body = ready.body as unknown as Readiness
      assert.equal(ready.status, 503)
      assert.ok(Number(ready.headers['retry-after']) > 0, 'Retry-After')
      assert.equal(body.ok, false)
      assert.deepEqual(body.checks.database, { ok: true })
      assert.equal(body.checks.redis?.ok, false)
      assert.match(body.checks.redis!.reason!, /Redis/)
      assert.equal((await get(`${s.url}/healthz`)).status, 200)
    } finally {
      await s.close()
    }
  })

  test('Redis that accepts connections and never answers: /readyz still answers, 503 naming Redis', async () => {
    const peer = await silentPeer()
    const s = await serve({ REDIS_URL: `redis://127.0.0.1:${peer.port}`, GHL_REDIS_TIMEOUT_MS: '300' })
    try {
      const ready = await get(`${s.url}/readyz`)
      const body = ready.body as unknown as Readiness
      assert.equal(ready.status, 503)
      assert.ok(Number(ready.headers['retry-after']) > 0)
      assert.equal(body.checks.redis?.ok, false)
      assert.match(body.checks.redis!.reason!, /Redis/)
      assert.deepEqual(body.checks.database, { ok: true })
    } finally {
      await s.close()
      await peer.close()
    }
  })

  test('a database whose migrations are not applied: /readyz 503 naming every pending migration', async () => {
    const dir = tempDir()
    const databaseUrl = join(dir.path, 'unmigrated.db')
    const key = testKey()
    const vault = await createVault({ databaseUrl, keys: loadConfig({ env: { GHL_CLIENT_ID: 'a-b', GHL_CLIENT_SECRET: 'x', GHL_REDIRECT_URI: 'http://x.example/cb', GHL_SCOPES: 's', GHL_ENCRYPTION_KEY: key } }).encryptionKeys, migrate: false })
    // The key check reads stored rows, which need the tables: off here, since the point is /readyz.
    const s = await serve({ DATABASE_URL: databaseUrl, GHL_ENCRYPTION_KEY: key }, { vault, checkKeys: false })
    try {
      const ready = await get(`${s.url}/readyz`)
      const body = ready.body as unknown as Readiness
      assert.equal(ready.status, 503)
      assert.ok(Number(ready.headers['retry-after']) > 0)
      assert.equal(body.checks.database?.ok, false)
      const pending = Object.keys(await vaultMigrations('sqlite').getMigrations())
      assert.ok(pending.length > 0)
      assert.equal(body.checks.database!.reason, `migrations not applied: ${pending.join(', ')} (run \`ghl-connect migrate\`)`)
      assert.equal(body.checks.redis, undefined, 'no Redis configured, none checked')
      // Positive control: once migrated, the same server is ready.
      await vault.migrate()
      const again = await get(`${s.url}/readyz`)
      assert.equal(again.status, 200, JSON.stringify(again.body))
    } finally {
      await s.close()
      dir.remove()
    }
  })

  test('a PostgreSQL that never answers: /readyz 503 naming the database; the API, webhook and proxy routes answer 503 GHL_DATABASE_UNAVAILABLE with Retry-After; /healthz 200', async () => {
    const peer = await silentPeer()
    const key = testKey()
    const databaseUrl = `postgres://postgres@127.0.0.1:${peer.port}/never`
    const vault = await createVault({
      databaseUrl,
      keys: loadConfig({ env: { GHL_CLIENT_ID: 'a-b', GHL_CLIENT_SECRET: 'x', GHL_REDIRECT_URI: 'http://x.example/cb', GHL_SCOPES: 's', GHL_ENCRYPTION_KEY: key } }).encryptionKeys,
      migrate: false,
      timeouts: { connectMs: 300, statementMs: 300 },
    })
    const s = await serve(
      { DATABASE_URL: databaseUrl, GHL_ENCRYPTION_KEY: key, GHL_DB_CONNECT_TIMEOUT_MS: '300', GHL_DB_STATEMENT_TIMEOUT_MS: '300', GHL_WEBHOOK_ALLOW_UNSIGNED: 'true' },
      { vault, checkKeys: false },
    )
    try {
      assert.equal((await get(`${s.url}/healthz`)).status, 200)
      const ready = await get(`${s.url}/readyz`)
      const body = ready.body as unknown as Readiness
      assert.equal(ready.status, 503)
      assert.ok(Number(ready.headers['retry-after']) > 0)
      assert.equal(body.checks.database?.ok, false)
      assert.match(body.checks.database!.reason!, /database/)

      const auth = { authorization: `Bearer ${API_KEY}` }
      const api = await get(`${s.url}/api/installations`, auth)
      const proxy = await get(`${s.url}/proxy/locations/Loc123/contacts/?locationId=Loc123`, auth)
      const hook = await request(`${s.url}/webhooks/highlevel`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'ContactCreate', locationId: 'Loc123', id: 'c1', webhookId: 'wh-ready-1', timestamp: new Date().toISOString() }),
      })
      const webhook = { status: hook.statusCode, headers: hook.headers, body: (await hook.body.json()) as Record<string, unknown> }
      for (const [what, res] of [['GET /api/installations', api], ['the proxy', proxy], ['the webhook route', webhook]] as const) {
        assert.equal(res.status, 503, `${what}: ${JSON.stringify(res.body)}`)
        assertErrorBody(what, 503, res.body, 'GHL_DATABASE_UNAVAILABLE')
        assert.ok(Number(res.headers['retry-after']) > 0, `${what}: Retry-After`)
      }
    } finally {
      await s.close()
      await peer.close()
    }
  })
})

describe('one error body on every route', () => {
  let s: Served
  let client: Client
  before(async () => {
    s = await serve()
    client = new Client(s.url)
  })
  after(async () => {
    await client?.close()
    await s?.close()
  })

  async function send(method: 'GET' | 'POST', path: string, init: { headers?: Record<string, string>; body?: string | Buffer } = {}) {
    const res = await client.request({ method, path, headers: init.headers, body: init.body })
    const text = await res.body.text()
    let body: Record<string, unknown>
    try {
      body = JSON.parse(text) as Record<string, unknown>
    } catch {
      throw new Error(`${method} ${path}: not JSON (${res.statusCode}): ${text.slice(0, 200)}`)
    }
    return { status: res.statusCode, body }
  }

  const json = { 'content-type': 'application/json' }
  const CASES: ReadonlyArray<[string, () => ReturnType<typeof send>, number, string]> = [
    ['an unknown route', () => send('GET', '/no/such/route'), 404, 'GHL_NOT_FOUND'],
    ['a known path with another method', () => send('POST', '/healthz', { headers: json, body: '{}' }), 404, 'GHL_NOT_FOUND'],
    ['/api/installations without the API key', () => send('GET', '/api/installations'), 401, 'GHL_UNAUTHORIZED'],
    ['/api/installations with a wrong API key', () => send('GET', '/api/installations', { headers: { authorization: 'Bearer not-the-key-not-the-key' } }), 401, 'GHL_UNAUTHORIZED'],
    ['the proxy without the API key', () => send('GET', '/proxy/locations/Loc1/contacts/'), 401, 'GHL_UNAUTHORIZED'],
    ['the proxy for a location never installed', () => send('GET', '/proxy/locations/Loc1/contacts/', { headers: { authorization: `Bearer ${API_KEY}` } }), 404, 'GHL_NOT_INSTALLED'],
    ['a path parameter over the router limit', () => send('GET', `/proxy/locations/${'L'.repeat(300)}/contacts/`, { headers: { authorization: `Bearer ${API_KEY}` } }), 414, 'GHL_BAD_REQUEST'],
    ['a path that is not valid percent-encoding', () => send('GET', '/api/%E0%A4%A'), 400, 'GHL_BAD_REQUEST'],
    ['a webhook over GHL_WEBHOOK_MAX_BYTES', () => send('POST', '/webhooks/highlevel', { headers: json, body: `{"pad":"${'x'.repeat(WEBHOOK_MAX_BYTES)}"}` }), 413, 'GHL_WEBHOOK_TOO_LARGE'],
    ['a webhook far over the limit (refused while reading)', () => send('POST', '/webhooks/highlevel', { headers: json, body: `{"pad":"${'x'.repeat(WEBHOOK_MAX_BYTES * 4)}"}` }), 413, 'GHL_WEBHOOK_TOO_LARGE'],
    ['an unsigned webhook', () => send('POST', '/webhooks/highlevel', { headers: json, body: '{"type":"ContactCreate"}' }), 401, 'GHL_WEBHOOK_SIGNATURE_INVALID'],
    ['bad JSON on /sso/decrypt', () => send('POST', '/sso/decrypt', { headers: json, body: '{"encryptedData":' }), 400, 'GHL_BAD_REQUEST'],
    ['a media type no route parses on /sso/decrypt', () => send('POST', '/sso/decrypt', { headers: { 'content-type': 'application/xml' }, body: '<a/>' }), 415, 'GHL_BAD_REQUEST'],
    ['a text body on /sso/decrypt', () => send('POST', '/sso/decrypt', { headers: { 'content-type': 'text/plain' }, body: 'hello' }), 400, 'GHL_SSO_INVALID'],
    ['a payload that does not decrypt on /sso/decrypt', () => send('POST', '/sso/decrypt', { headers: json, body: '{"encryptedData":"bm90IGEgcGF5bG9hZA=="}' }), 400, 'GHL_SSO_INVALID'],
    ['no payload on /sso/decrypt', () => send('POST', '/sso/decrypt', { headers: json, body: '{}' }), 400, 'GHL_SSO_INVALID'],
  ]

  for (const [what, call, status, code] of CASES) {
    test(`${what} → ${status} ${code} as {code, message, status}`, async () => {
      const res = await call()
      assert.equal(res.status, status, `${what}: ${JSON.stringify(res.body)}`)
      assertErrorBody(what, status, res.body, code)
    })
  }

  test('SSO without GHL_SHARED_SECRET → 501 GHL_CONFIG_INVALID in the same body', async () => {
    const other = await serve({ GHL_SHARED_SECRET: '' })
    try {
      const res = await request(`${other.url}/sso/decrypt`, { method: 'POST', headers: json, body: '{"encryptedData":"abc"}' })
      const body = (await res.body.json()) as Record<string, unknown>
      assert.equal(res.statusCode, 501)
      assertErrorBody('SSO not configured', 501, body, 'GHL_CONFIG_INVALID')
    } finally {
      await other.close()
    }
  })
})
