import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { pathToFileURL } from 'node:url'
import { batchedDestination, createLogger, redactSecrets } from '../src/logger.js'

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

test('the default destination writes lines in batches: a lone line still arrives, and every line is written by exit', { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ghl-log-'))
  try {
    // A lone line, fewer bytes than a batch: written on its own after a moment (the periodic flush).
    const file = join(dir, 'lone.log')
    const log = createLogger({ level: 'info', destination: batchedDestination(file) })
    log.info({ n: 1 }, 'lone line')
    let text = ''
    for (let i = 0; i < 100 && !text.includes('lone line'); i++) {
      await new Promise((r) => setTimeout(r, 50))
      text = readFileSync(file, 'utf8')
    }
    assert.match(text, /"msg":"lone line"/)
    // A process that logs and exits at once (by process.exit and by running out of work): nothing is lost.
    // (Its destination is a file descriptor, as stdout is for `serve`.)
    for (const end of ['process.exit(0)', '']) {
      const out = join(dir, `exit-${end ? 'explicit' : 'natural'}.log`)
      const script = `import { openSync } from 'node:fs'
import { batchedDestination, createLogger } from ${JSON.stringify(pathToFileURL(join(import.meta.dirname, '../src/logger.ts')).href)}
const log = createLogger({ level: 'info', destination: batchedDestination(openSync(${JSON.stringify(out)}, 'w')) })
for (let i = 0; i < 3; i++) log.info({ i }, 'line')
${end}`
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'inherit', 'inherit'] })
      const [code] = await once(child, 'exit')
      assert.equal(code, 0)
      const lines = readFileSync(out, 'utf8').trim().split('\n')
      assert.deepEqual(lines.map((l) => (JSON.parse(l) as { i: number }).i), [0, 1, 2], `${end || 'natural exit'}: every line`)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
