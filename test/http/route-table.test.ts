/**
 * The framework-neutral route table alone: matching (parameters, percent-decoding, methods), body
 * reading (JSON with prototype keys refused, form, text, refused types, size), and errors turned into
 * the one error body — the parts every adapter relies on.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { GhlError } from '../../src/errors.js'
import { createLogger } from '../../src/logger.js'
import { Writable } from 'node:stream'
import { RouteTable, type Route } from '../../src/http/route-table.js'
import type { HttpRequest } from '../../src/http/http-exchange.js'

const lines: string[] = []
const logger = createLogger({ level: 'info', destination: new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }) })

const echo = (body: Route['body'], maxBodyBytes?: number): Omit<Route, 'path' | 'methods'> => ({
  body,
  maxBodyBytes,
  handle: async (req) => ({ status: 200, headers: {}, body: JSON.stringify({ params: req.params, body: Buffer.isBuffer(req.body) ? req.body.toString('hex') : req.body }) }),
})
const table = new RouteTable(
  [
    { methods: ['GET'], path: '/items/:id', ...echo('none') },
    { methods: ['POST'], path: '/parsed', ...echo('parsed', 64) },
    { methods: ['POST'], path: '/raw', ...echo('raw', 8), tooLargeCode: 'GHL_WEBHOOK_TOO_LARGE' },
    { methods: ['GET'], path: '/throws/ghl', body: 'none', handle: async () => Promise.reject(new GhlError('GHL_SHUTTING_DOWN')) },
    { methods: ['GET'], path: '/throws/other', body: 'none', handle: async () => Promise.reject(new Error('secret detail xyz')) },
  ],
  logger,
)

const req = (method: string, path: string, extra: Partial<HttpRequest> = {}): HttpRequest => ({ method, path, query: {}, headers: {}, ...extra })
const answer = async (r: HttpRequest) => {
  const res = await table.handle(r)
  return res && { status: res.status, headers: res.headers, json: res.body ? JSON.parse(String(res.body)) : undefined }
}

test('matching: parameters are percent-decoded; HEAD is served by GET; other methods and shapes do not match', async () => {
  assert.deepEqual((await answer(req('GET', '/items/a%2Fb%20c')))?.json.params, { id: 'a/b c' })
  assert.equal((await answer(req('HEAD', '/items/1')))?.status, 200)
  assert.equal(await table.handle(req('POST', '/items/1')), undefined)
  assert.equal(await table.handle(req('GET', '/items/')), undefined)
  assert.equal(await table.handle(req('GET', '/items/1/more')), undefined)
  assert.equal(await table.handle(req('GET', '/items/%E0%A4%A')), undefined, 'a malformed escape matches nothing')
})

test('parsed bodies: JSON, form, text; prototype keys, malformed JSON, empty JSON and other types refused', async () => {
  const post = (type: string, body: string) => answer(req('POST', '/parsed', { headers: { 'content-type': type }, rawBody: Buffer.from(body) }))
  assert.deepEqual((await post('application/json; charset=utf-8', '{"a":[1]}'))?.json.body, { a: [1] })
  assert.deepEqual((await post('application/x-www-form-urlencoded', 'a=1&a=2&b=x'))?.json.body, { a: ['1', '2'], b: 'x' })
  assert.equal((await post('text/plain', 'hello'))?.json.body, 'hello')
  for (const [type, body, status] of [
    ['application/json', '{"__proto__":{"admin":true}}', 400],
    ['application/json', '{"constructor":{"prototype":{"admin":true}}}', 400],
    ['application/json', '{"a":', 400],
    ['application/json', '', 400],
    ['application/xml', '<a/>', 415],
    ['application/json', JSON.stringify({ long: 'x'.repeat(100) }), 413],
  ] as const) {
    const res = await post(type, body)
    assert.equal(res?.status, status, `${type} ${body.slice(0, 30)}`)
    assert.equal(res?.json.code, 'GHL_BAD_REQUEST')
    assert.equal(res?.json.status, status)
  }
  assert.deepEqual((await answer(req('POST', '/parsed', { parsedBody: { already: 'parsed' } })))?.json.body, { already: 'parsed' })
})

test('raw bodies: the exact bytes; over the limit the route code; a body parsed by the app first is refused with the reason', async () => {
  assert.equal((await answer(req('POST', '/raw', { rawBody: Buffer.from([0, 255, 1]) })))?.json.body, '00ff01')
  const big = await answer(req('POST', '/raw', { rawBody: Buffer.alloc(9) }))
  assert.deepEqual([big?.status, big?.json.code], [413, 'GHL_WEBHOOK_TOO_LARGE'])
  const parsed = await answer(req('POST', '/raw', { parsedBody: { type: 'ContactCreate' } }))
  assert.equal(parsed?.status, 400)
  assert.match(parsed?.json.message, /before body parsers/)
})

test('errors: a GhlError keeps its status (and Retry-After); anything else is a 500 with a reference, its detail only in the log', async () => {
  const ghl = await answer(req('GET', '/throws/ghl'))
  assert.deepEqual([ghl?.status, ghl?.json.code, ghl?.headers['retry-after']], [503, 'GHL_SHUTTING_DOWN', '5'])
  const other = await answer(req('GET', '/throws/other'))
  assert.equal(other?.status, 500)
  assert.equal(other?.json.code, 'GHL_INTERNAL')
  assert.doesNotMatch(JSON.stringify(other?.json), /secret detail/)
  const reference = /reference ([0-9a-f]+)/.exec(other?.json.message)?.[1]
  assert.ok(reference && lines.some((l) => l.includes(reference) && l.includes('secret detail xyz')), 'the log has the cause under the reference')
})
