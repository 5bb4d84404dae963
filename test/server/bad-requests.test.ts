/**
 * One bad request never stops the server. A real `ghl-connect serve` (the built CLI) at every log level
 * gets requests Node's HTTP parser refuses — a 100 KB URL, Content-Length with Transfer-Encoding, a
 * control character in a header value, a bad header name — each over a raw socket. Each is answered
 * (431 or 400, as Node and Fastify answer them), and the process goes on serving `/healthz`.
 *
 * Before the fix, at `LOG_LEVEL=trace` Fastify logged the client error with the parser's raw bytes
 * (`rawPacket`, a Buffer) attached, pino's redaction threw while walking it, and the process died.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { connect } from 'node:net'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { request } from 'undici'
import { tempDir, testKey } from '../helpers/services.js'
import { freePort } from '../helpers/stack.js'
import { CLI, cleanEnv } from '../cli/run-cli.js'

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const
/** A credential in every bad request: it must not reach the log (the raw bytes are never logged). */
const SECRET = `bad-request-secret-${randomBytes(8).toString('hex')}`

/** [what, the bytes sent, the answer's status line, the parser's error code logged at trace]. */
const BAD_REQUESTS: ReadonlyArray<[string, string, RegExp, string]> = [
  ['a 100 KB URL', `GET /${'a'.repeat(100 * 1024)} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${SECRET}\r\n\r\n`, /^HTTP\/1\.1 431 /, 'HPE_HEADER_OVERFLOW'],
  [
    'Content-Length and Transfer-Encoding together',
    `POST /sso/decrypt HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${SECRET}\r\nContent-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    /^HTTP\/1\.1 400 /,
    'HPE_INVALID_TRANSFER_ENCODING',
  ],
  ['a control character in a header value', `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${SECRET}\r\nX-Note: a\u0001b\r\n\r\n`, /^HTTP\/1\.1 400 /, 'HPE_INVALID_HEADER_TOKEN'],
  ['a space in a header name', `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${SECRET}\r\nX Bad: y\r\n\r\n`, /^HTTP\/1\.1 400 /, 'HPE_INVALID_HEADER_TOKEN'],
]

/** Writes `bytes` on a fresh connection and returns everything the server sent before closing it. */
function rawExchange(port: number, bytes: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes))
    let answer = ''
    socket.setEncoding('latin1')
    socket.on('data', (d: string) => (answer += d))
    // The server closes after answering a request it could not parse; writing the rest of a long
    // request may then fail (EPIPE, ECONNRESET). What matters is what was answered.
    socket.on('error', () => {})
    socket.on('close', () => resolve(answer))
  })
}

/** Starts `ghl-connect serve` and resolves once `/healthz` answers. */
async function startServe(level: string, dir: string): Promise<{ child: ChildProcess; port: number; output: () => string; exited: Promise<number | null> }> {
  const port = await freePort()
  const child = spawn(process.execPath, [...CLI, 'serve'], {
    cwd: dir,
    env: {
      ...cleanEnv(),
      GHL_CLIENT_ID: 'badreq1234-client',
      GHL_CLIENT_SECRET: 'client-secret-value',
      GHL_REDIRECT_URI: `http://127.0.0.1:${port}/oauth/callback`,
      GHL_SCOPES: 'contacts.readonly',
      // Nothing listens there: this server never needs HighLevel.
      GHL_API_URL: 'http://127.0.0.1:9',
      GHL_ENCRYPTION_KEY: testKey(),
      DATABASE_URL: join(dir, 'vault.db'),
      PORT: String(port),
      LOG_LEVEL: level,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')))
  child.stderr!.on('data', (d: Buffer) => (out += d.toString('utf8')))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  let gone = false
  void exited.then(() => (gone = true))
  for (let i = 0; ; i++) {
    if (gone) throw new Error(`serve exited before answering:\n${out}`)
    if (i > 600) throw new Error(`serve did not answer /healthz:\n${out}`)
    const ok = await request(`http://127.0.0.1:${port}/healthz`).then(
      async (res) => (await res.body.text(), res.statusCode === 200),
      () => false,
    )
    if (ok) break
    await new Promise((r) => setTimeout(r, 100))
  }
  return { child, port, output: () => out, exited }
}

for (const level of LEVELS) {
  test(`LOG_LEVEL=${level}: every bad request is answered and the server keeps serving`, { timeout: 120_000 }, async () => {
    const dir = tempDir()
    const serve = await startServe(level, dir.path)
    try {
      for (const [what, bytes, status] of BAD_REQUESTS) {
        const answer = await rawExchange(serve.port, bytes)
        assert.match(answer, status, `${what}: answered ${JSON.stringify(answer.slice(0, 80))}\n${serve.output().slice(-2000)}`)
        // Positive control: the process is alive and still serves.
        const health = await request(`http://127.0.0.1:${serve.port}/healthz`)
        assert.equal(health.statusCode, 200, `${what}: /healthz after it`)
        assert.deepEqual(await health.body.json(), { ok: true })
        assert.equal(serve.child.exitCode, null, `${what}: the process exited`)
      }
    } finally {
      serve.child.kill('SIGTERM')
    }
    const code = await serve.exited
    const output = serve.output()
    dir.remove()
    assert.equal(code, 0, `a clean shutdown after SIGTERM:\n${output.slice(-2000)}`)
    assert.ok(!output.includes(SECRET), 'the raw bytes of a bad request (with its Authorization header) reached the log')
    if (level === 'trace') {
      // The client errors were logged (the path that used to throw), each with its parser code.
      for (const [what, , , parserCode] of BAD_REQUESTS) assert.ok(output.includes(`"code":"${parserCode}"`), `${what}: no trace line with ${parserCode}`)
      assert.doesNotMatch(output, /rawPacket|a log line could not be written/)
    }
  })
}
