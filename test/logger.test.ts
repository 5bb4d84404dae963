import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { createLogger } from '../src/logger.js'

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
