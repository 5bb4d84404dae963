import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { createLogger, redactSecrets } from '../src/logger.js'

test('secrets are redacted wherever they sit in a logged object', async () => {
  const lines: string[] = []
  const destination = new Writable({
    write(chunk: Buffer, _e, cb) {
      lines.push(chunk.toString())
      cb()
    },
  })
  const log = createLogger({ destination, level: 'info' })
  const secret = 'tok_' + Math.random().toString(36).slice(2)
  log.info({ access_token: secret, nested: { refreshToken: secret, deeper: { authorization: `Bearer ${secret}` } }, headers: { authorization: secret }, client_secret: secret }, 'hello')
  log.info({ tokens: { accessToken: secret } }, 'tokens')
  await new Promise((r) => setImmediate(r))
  const text = lines.join('')
  assert.ok(text.includes('hello') && text.includes('[redacted]'))
  assert.ok(!text.includes(secret), text)
})

test('redaction reaches arrays, errors and child bindings, and copies nothing without a secret', async () => {
  const lines: string[] = []
  const destination = new Writable({
    write(chunk: Buffer, _e, cb) {
      lines.push(chunk.toString())
      cb()
    },
  })
  const secret = 'tok_' + Math.random().toString(36).slice(2)
  const log = createLogger({ destination, level: 'info' }).child({ context: { clientSecret: secret } })
  const err = Object.assign(new Error('boom'), { response: { headers: { authorization: `Bearer ${secret}` } } })
  log.info({ list: [{ refresh_token: secret }, 'plain'], err, a: { b: { c: { d: { token: secret } } } } }, 'deep')
  const plain = { method: 'GET', path: '/x', status: 200, ms: 1 }
  assert.equal(redactSecrets(plain), plain)
  const nested = { ok: 1, inner: { password: secret } }
  const redacted = redactSecrets(nested) as typeof nested
  assert.notEqual(redacted, nested)
  assert.equal(nested.inner.password, secret) // the caller's object is never changed
  assert.equal(redacted.inner.password, '[redacted]')
  await new Promise((r) => setImmediate(r))
  const text = lines.join('')
  assert.ok(text.includes('deep') && text.includes('boom') && text.includes('plain'), text)
  assert.ok(!text.includes(secret), text)
})
