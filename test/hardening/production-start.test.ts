/**
 * `NODE_ENV=production ghl-connect serve` refuses to start without GHL_CONNECTOR_API_KEY (the proxy,
 * /api/* and the operator page would answer 401 to everyone) and without GHL_WEBHOOK_ED25519_PUBLIC_KEY
 * (HighLevel signs webhooks with Ed25519 only since 2026-07-01), naming each missing setting — and
 * starts once both are set.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { tempDir, testKey } from '../helpers/services.js'
import { freePort } from '../helpers/stack.js'
import { CLI, cleanEnv, runCli } from '../cli/run-cli.js'

const ED25519 = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString()
const API_KEY = 'production-api-key-0123456789'

function productionEnv(dir: string, port: number): Record<string, string> {
  return {
    NODE_ENV: 'production',
    GHL_CLIENT_ID: 'prod1234-client',
    GHL_CLIENT_SECRET: 'client-secret-value',
    GHL_REDIRECT_URI: 'https://app.example.com/oauth/callback',
    GHL_SCOPES: 'contacts.readonly',
    GHL_API_URL: 'http://127.0.0.1:9',
    GHL_ENCRYPTION_KEY: testKey(),
    GHL_CONNECTOR_API_KEY: API_KEY,
    GHL_WEBHOOK_ED25519_PUBLIC_KEY: ED25519,
    DATABASE_URL: join(dir, 'vault.db'),
    PORT: String(port),
    LOG_LEVEL: 'warn',
  }
}

const CASES: ReadonlyArray<[string, string[], RegExp[], RegExp[]]> = [
  ['without GHL_CONNECTOR_API_KEY', ['GHL_CONNECTOR_API_KEY'], [/GHL_CONNECTOR_API_KEY: expected a key of at least 16 characters in production/], [/GHL_WEBHOOK_ED25519_PUBLIC_KEY/]],
  ['without GHL_WEBHOOK_ED25519_PUBLIC_KEY', ['GHL_WEBHOOK_ED25519_PUBLIC_KEY'], [/GHL_WEBHOOK_ED25519_PUBLIC_KEY: expected HighLevel's Ed25519 webhook public key in production/], [/GHL_CONNECTOR_API_KEY/]],
  [
    'without either',
    ['GHL_CONNECTOR_API_KEY', 'GHL_WEBHOOK_ED25519_PUBLIC_KEY'],
    [/GHL_CONNECTOR_API_KEY: expected/, /GHL_WEBHOOK_ED25519_PUBLIC_KEY: expected/],
    [],
  ],
]

for (const [what, drop, named, notNamed] of CASES) {
  test(`NODE_ENV=production serve ${what} exits 1 naming it, and opens nothing`, { timeout: 60_000 }, async () => {
    const dir = tempDir()
    try {
      const env = productionEnv(dir.path, await freePort())
      for (const name of drop) delete env[name]
      const r = await runCli(['serve'], { env, cwd: dir.path, timeoutMs: 45_000 })
      assert.equal(r.code, 1, `exit ${r.code}\n${r.stdout}\n${r.stderr}`)
      for (const re of named) assert.match(r.stderr, re)
      for (const re of notNamed) assert.doesNotMatch(r.stderr, re)
      assert.doesNotMatch(r.stdout, /ghl-connect listening/)
      assert.equal(existsSync(env.DATABASE_URL!), false, 'refused before the database was opened')
    } finally {
      dir.remove()
    }
  })
}

test('NODE_ENV=production serve with both set starts and serves (positive control)', { timeout: 60_000 }, async () => {
  const dir = tempDir()
  const port = await freePort()
  const child = spawn(process.execPath, [...CLI, 'serve'], { cwd: dir.path, env: { ...cleanEnv(), ...productionEnv(dir.path, port) }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')))
  child.stderr.on('data', (d: Buffer) => (out += d.toString('utf8')))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  let gone = false
  void exited.then(() => (gone = true))
  try {
    let status = 0
    for (let i = 0; i < 450 && !gone && status !== 200; i++) {
      status = await request(`http://127.0.0.1:${port}/healthz`).then(
        async (res) => (await res.body.dump(), res.statusCode),
        () => 0,
      )
      if (status !== 200) await new Promise((r) => setTimeout(r, 100))
    }
    assert.equal(status, 200, `serve did not answer:\n${out}`)
    // In production the API key guards /api/*.
    const api = await request(`http://127.0.0.1:${port}/api/installations`)
    await api.body.dump()
    assert.equal(api.statusCode, 401)
    const withKey = await request(`http://127.0.0.1:${port}/api/installations`, { headers: { authorization: `Bearer ${API_KEY}` } })
    assert.equal(withKey.statusCode, 200)
    assert.deepEqual(await withKey.body.json(), { installations: [], total: 0 })
  } finally {
    child.kill('SIGTERM')
    assert.equal(await exited, 0, out)
    dir.remove()
  }
})
