import { test, describe, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http'
import { once } from 'node:events'
import { inspect } from 'node:util'
import type { AddressInfo } from 'node:net'
import { HighLevelClient } from '../../src/client/index.js'
import type { StreamResponse } from '../../src/client/index.js'
import { GhlError, HighLevelApiError, NotInstalledError, RateLimitedError } from '../../src/errors.js'
import { MemoryRateLimiter } from '../../src/ratelimit/memory-rate-limiter.js'
import type { AccessGrant, Target, TokenProvider } from '../../src/tokens/types.js'
import { startLimitedServer } from '../ratelimit/fixtures/limited-server.js'

/** A real, small TokenProvider: hands out `tokens[i]`; onUnauthorized moves to the next one. */
class ListTokens implements TokenProvider {
  index = 0
  unauthorizedCalls = 0
  constructor(readonly tokens: string[]) {}
  async getAccessToken(target: Target): Promise<AccessGrant> {
    return this.#grant(target)
  }
  async onUnauthorized(target: Target, rejected: AccessGrant): Promise<AccessGrant> {
    this.unauthorizedCalls++
    assert.equal(rejected.accessToken, this.tokens[this.index])
    this.index = Math.min(this.index + 1, this.tokens.length - 1)
    return this.#grant(target)
  }
  invalidate(): void {}
  #grant(target: Target): AccessGrant {
    return { accessToken: this.tokens[this.index]!, installationId: 'inst-1', version: this.index, expiresAt: Date.now() + 3600_000, resourceId: target.kind === 'static' ? target.resourceId : target.id, scopes: [], userType: 'Location' }
  }
}

interface Hit { method: string; url: string; headers: IncomingMessage['headers']; body: string }
async function serve(handler: (req: IncomingMessage, res: ServerResponse, hit: Hit, n: number) => void, port = 0): Promise<{ url: string; hits: Hit[]; server: Server; close: () => Promise<void> }> {
  const hits: Hit[] = []
  const server = createServer(async (req, res) => {
    let body = ''
    for await (const chunk of req) body += chunk
    const hit = { method: req.method!, url: req.url!, headers: req.headers, body }
    hits.push(hit)
    handler(req, res, hit, hits.length)
  })
  server.listen(port, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits, server,
    close: async () => { server.closeAllConnections(); server.close(); await once(server, 'close') },
  }
}
const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers })
  res.end(JSON.stringify(body))
}
const LOC: Target = { kind: 'location', id: 'loc-1' }
const clients: HighLevelClient[] = []
function client(url: string, tokens: TokenProvider = new ListTokens(['tok-A']), extra: Partial<ConstructorParameters<typeof HighLevelClient>[0]> = {}): HighLevelClient {
  const c = new HighLevelClient({ baseUrl: url, apiVersion: '2021-07-28', tokens, retry: { baseDelayMs: 10, maxDelayMs: 50 }, ...extra })
  clients.push(c)
  return c
}
after(async () => { for (const c of clients) await c.close() })

describe('HighLevelClient: JSON calls', () => {
  test('GET: query (arrays, booleans, undefined left out), Version default, Bearer token, JSON data and trace id', async () => {
    const s = await serve((_req, res) => json(res, 200, { contacts: [] }, { 'x-trace-id': 'trace-1' }))
    const r = await client(s.url).forTarget(LOC).get('/contacts/', { query: { locationId: 'loc-1', limit: 20, tags: ['a b', 'c'], active: true, skip: undefined } })
    assert.deepEqual(r.data, { contacts: [] })
    assert.equal(r.status, 200)
    assert.equal(r.traceId, 'trace-1')
    assert.equal(s.hits[0]!.url, '/contacts/?locationId=loc-1&limit=20&tags=a%20b&tags=c&active=true')
    assert.equal(s.hits[0]!.headers.version, '2021-07-28')
    assert.equal(s.hits[0]!.headers.authorization, 'Bearer tok-A')
    assert.equal(s.hits[0]!.headers.accept, 'application/json')
    await s.close()
  })

  test('POST/PUT/PATCH/DELETE: JSON body, per-call Version, extra headers; a caller Authorization is ignored; base path kept', async () => {
    const s = await serve((req, res, hit) => json(res, req.method === 'DELETE' ? 200 : 201, { echo: hit.body ? JSON.parse(hit.body) : null }))
    const c = client(`${s.url}/api/`).forTarget({ kind: 'static', token: 'pit-1', resourceId: 'loc-9' })
    const post = await c.post('/contacts/', { body: { firstName: 'Ada' }, version: '2021-04-15', headers: { 'X-Extra': 'yes', Authorization: 'Bearer evil' } })
    assert.deepEqual(post.data, { echo: { firstName: 'Ada' } })
    await c.put('contacts/1', { body: { a: 1 } })
    await c.patch('/contacts/1', { body: { b: 2 } })
    const del = await c.delete('/contacts/1')
    assert.equal(del.status, 200)
    assert.deepEqual(s.hits.map((h) => [h.method, h.url]), [['POST', '/api/contacts/'], ['PUT', '/api/contacts/1'], ['PATCH', '/api/contacts/1'], ['DELETE', '/api/contacts/1']])
    assert.equal(s.hits[0]!.headers.version, '2021-04-15')
    assert.equal(s.hits[1]!.headers.version, '2021-07-28')
    assert.equal(s.hits[0]!.headers['x-extra'], 'yes')
    assert.equal(s.hits[0]!.headers.authorization, 'Bearer tok-A')
    assert.equal(s.hits[0]!.headers['content-type'], 'application/json')
    await s.close()
  })

  test('a non-JSON answer is returned as text; an absolute URL as path is refused before any request', async () => {
    const s = await serve((_req, res) => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('hello') })
    const c = client(s.url).forTarget(LOC)
    assert.equal((await c.get('/x')).data, 'hello')
    await assert.rejects(c.get('https://evil.example/x'), (e: unknown) => e instanceof GhlError && e.code === 'GHL_BAD_REQUEST')
    assert.equal(s.hits.length, 1)
    await s.close()
  })
})

describe('HighLevelClient: deadline and abort', () => {
  test('per-call timeout → GHL_TIMEOUT', async () => {
    const s = await serve(() => {}) // never answers
    await assert.rejects(client(s.url).forTarget(LOC).get('/slow', { timeoutMs: 100 }), (e: unknown) => e instanceof GhlError && e.code === 'GHL_TIMEOUT' && e.status === 504)
    await s.close()
  })

  test('caller abort → GHL_ABORTED (also for an already aborted signal, which sends nothing)', async () => {
    const s = await serve(() => {})
    const ac = new AbortController()
    const p = client(s.url).forTarget(LOC).get('/slow', { signal: ac.signal })
    setTimeout(() => ac.abort(), 30)
    await assert.rejects(p, (e: unknown) => e instanceof GhlError && e.code === 'GHL_ABORTED')
    const before = s.hits.length
    await assert.rejects(client(s.url).forTarget(LOC).get('/x', { signal: AbortSignal.abort() }), (e: unknown) => e instanceof GhlError && e.code === 'GHL_ABORTED')
    assert.equal(s.hits.length, before)
    await s.close()
  })
})

describe('HighLevelClient: retries', () => {
  test('GET is retried on 500 until it succeeds (3 hits)', async () => {
    const s = await serve((_req, res, _h, n) => (n < 3 ? json(res, 500, { message: 'boom' }) : json(res, 200, { ok: true })))
    assert.deepEqual((await client(s.url).forTarget(LOC).get('/x')).data, { ok: true })
    assert.equal(s.hits.length, 3)
    await s.close()
  })

  test('GET gives up after maxRetries: HighLevelApiError 503 after 1 + 2 hits', async () => {
    const s = await serve((_req, res) => json(res, 503, { message: 'down' }))
    await assert.rejects(client(s.url, undefined, { retry: { maxRetries: 2, baseDelayMs: 5 } }).forTarget(LOC).get('/x'), (e: unknown) => e instanceof HighLevelApiError && e.upstreamStatus === 503)
    assert.equal(s.hits.length, 3)
    await s.close()
  })

  test('POST is not retried on 500', async () => {
    const s = await serve((_req, res) => json(res, 500, { message: 'boom' }))
    await assert.rejects(client(s.url).forTarget(LOC).post('/contacts/', { body: { a: 1 } }), HighLevelApiError)
    assert.equal(s.hits.length, 1)
    await s.close()
  })

  test('POST is retried on ECONNREFUSED (server starts late) and arrives exactly once', async () => {
    const probe = await serve(() => {})
    const port = Number(new URL(probe.url).port)
    await probe.close() // the port now refuses connections
    const c = client(`http://127.0.0.1:${port}`, undefined, { retry: { maxRetries: 6, baseDelayMs: 40, maxDelayMs: 200 } })
    const p = c.forTarget(LOC).post('/contacts/', { body: { a: 1 } })
    await new Promise((r) => setTimeout(r, 60))
    const s = await serve((_req, res) => json(res, 201, { id: 'c1' }), port)
    assert.deepEqual((await p).data, { id: 'c1' })
    assert.equal(s.hits.length, 1)
    await s.close()
  })

  test('network error that persists → GHL_NETWORK naming the code, no token in it', async () => {
    const probe = await serve(() => {})
    const url = probe.url
    await probe.close()
    const err = await client(url, new ListTokens(['secret-tok']), { retry: { maxRetries: 1, baseDelayMs: 5 } }).forTarget(LOC).get('/x').catch((e: unknown) => e)
    assert.ok(err instanceof GhlError)
    assert.equal(err.code, 'GHL_NETWORK')
    assert.match(err.message, /ECONNREFUSED/)
    assert.ok(!inspect(err, { depth: 10 }).includes('secret-tok'))
  })

  test('429 with Retry-After: waits that long, then succeeds (POST too: HighLevel did not process it)', async () => {
    const s = await serve((_req, res, _h, n) => (n === 1 ? json(res, 429, { message: 'Too many' }, { 'retry-after': '0.3' }) : json(res, 201, { ok: 1 })))
    const times: number[] = []
    s.server.on('request', () => times.push(performance.now()))
    assert.deepEqual((await client(s.url).forTarget(LOC).post('/x', { body: {} })).data, { ok: 1 })
    assert.equal(s.hits.length, 2)
    assert.ok(times[1]! - times[0]! >= 290, `waited ${times[1]! - times[0]!} ms`)
    await s.close()
  })

  test('429 whose Retry-After passes the deadline → RateLimitedError with retryAfterMs, no second hit', async () => {
    const s = await serve((_req, res) => json(res, 429, { message: 'Too many' }, { 'retry-after': '10' }))
    const err = await client(s.url).forTarget(LOC).get('/x', { timeoutMs: 500 }).catch((e: unknown) => e)
    assert.ok(err instanceof RateLimitedError)
    assert.equal(err.retryAfterMs, 10_000)
    assert.equal(s.hits.length, 1)
    await s.close()
  })
})

describe('HighLevelClient: refresh on 401', () => {
  test('first 401 (invalid token) → onUnauthorized once, resent with the new token, success', async () => {
    const s = await serve((req, res) => (req.headers.authorization === 'Bearer tok-2' ? json(res, 200, { ok: true }) : json(res, 401, { statusCode: 401, message: 'Invalid JWT', error: 'Unauthorized' })))
    const tokens = new ListTokens(['tok-1', 'tok-2'])
    assert.deepEqual((await client(s.url, tokens).forTarget(LOC).get('/x')).data, { ok: true })
    assert.equal(tokens.unauthorizedCalls, 1)
    assert.deepEqual(s.hits.map((h) => h.headers.authorization), ['Bearer tok-1', 'Bearer tok-2'])
    await s.close()
  })

  test('double 401 → HighLevelApiError with status, body, trace id, and no token in JSON or inspect', async () => {
    const s = await serve((_req, res) => json(res, 401, { statusCode: 401, message: 'Invalid token: access token is invalid', error: 'Unauthorized', traceId: 'tr-401' }))
    const tokens = new ListTokens(['tok-secret-1', 'tok-secret-2'])
    const err = await client(s.url, tokens).forTarget(LOC).get('/x').catch((e: unknown) => e)
    assert.ok(err instanceof HighLevelApiError)
    assert.equal(err.upstreamStatus, 401)
    assert.equal(err.traceId, 'tr-401')
    assert.deepEqual(err.body, { statusCode: 401, message: 'Invalid token: access token is invalid', error: 'Unauthorized', traceId: 'tr-401' })
    assert.equal(tokens.unauthorizedCalls, 1)
    assert.equal(s.hits.length, 2)
    for (const text of [JSON.stringify(err), inspect(err, { depth: 10, showHidden: true }), String(err.stack)]) {
      assert.ok(!text.includes('tok-secret'), text)
    }
    await s.close()
  })

  test('a 401 about scope is not a token problem: no refresh, one hit', async () => {
    const s = await serve((_req, res) => json(res, 401, { statusCode: 401, message: 'The token is not authorized for this scope.' }))
    const tokens = new ListTokens(['tok-1', 'tok-2'])
    await assert.rejects(client(s.url, tokens).forTarget(LOC).get('/x'), HighLevelApiError)
    assert.equal(tokens.unauthorizedCalls, 0)
    assert.equal(s.hits.length, 1)
    await s.close()
  })

  test('errors of the token provider pass through unchanged', async () => {
    const s = await serve((_req, res) => json(res, 200, {}))
    const tokens: TokenProvider = { getAccessToken: async () => { throw new NotInstalledError({ locationId: 'loc-1' }) }, onUnauthorized: async () => { throw new Error('unused') }, invalidate: () => {} }
    await assert.rejects(client(s.url, tokens).forTarget(LOC).get('/x'), NotInstalledError)
    assert.equal(s.hits.length, 0)
    await s.close()
  })
})

describe('HighLevelClient: streaming', () => {
  test('responseType stream: the body arrives before HighLevel finished sending it (not buffered)', async () => {
    let release!: () => void
    const released = new Promise<void>((r) => { release = r })
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write('{"part":1,')
      void released.then(() => res.end('"done":true}'))
    })
    const r = (await client(s.url).forTarget(LOC).request('GET', '/big', { responseType: 'stream' })) as StreamResponse
    assert.equal(r.status, 200)
    const chunks: string[] = []
    for await (const chunk of r.body) {
      chunks.push(String(chunk))
      if (chunks.length === 1) release() // only possible if the first part came through unbuffered
    }
    assert.equal(chunks.join(''), '{"part":1,"done":true}')
    await s.close()
  })

  test('responseType stream with an error status: the status and body are handed back, not thrown', async () => {
    const s = await serve((_req, res) => json(res, 404, { message: 'Not found' }))
    const r = (await client(s.url).forTarget(LOC).request('GET', '/nope', { responseType: 'stream' })) as StreamResponse
    assert.equal(r.status, 404)
    let text = ''
    for await (const c of r.body) text += c
    assert.deepEqual(JSON.parse(text), { message: 'Not found' })
    await s.close()
  })
})

describe('HighLevelClient with the rate limiter', () => {
  test('30 parallel calls through a 10 per 500 ms limiter: zero 429s at a server enforcing that limit', async () => {
    const server = await startLimitedServer({ max: 10, windowMs: 500 })
    const limiter = new MemoryRateLimiter({ enabled: true, burstMax: 10, burstWindowMs: 500, dailyMax: 1e6, dailyWindowMs: 864e5, maxQueue: 100 })
    const c = client(server.url, undefined, { limiter }).forTarget({ kind: 'location', id: 'loc7' })
    const results = await Promise.all(Array.from({ length: 30 }, () => c.get('/r/loc7')))
    assert.equal(results.length, 30)
    assert.equal(server.rejected, 0)
    assert.equal(server.accepted.get('loc7')!.length, 30)
    await limiter.close()
    await server.close()
  })

  test('a 429 penalizes the resource: the resend waits for Retry-After through the limiter', async () => {
    const s = await serve((_req, res, _h, n) => (n === 1 ? json(res, 429, {}, { 'retry-after': '0.2' }) : json(res, 200, { ok: 1 })))
    const limiter = new MemoryRateLimiter({ enabled: true, burstMax: 100, burstWindowMs: 10_000, dailyMax: 1e6, dailyWindowMs: 864e5, maxQueue: 100 })
    const c = client(s.url, undefined, { limiter }).forTarget(LOC)
    await c.get('/x')
    // the penalty is over; a call whose deadline is shorter than a window still goes at once
    await c.get('/y', { timeoutMs: 100 })
    assert.equal(s.hits.length, 3)
    await limiter.close()
    await s.close()
  })
})
