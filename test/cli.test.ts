/**
 * The `ghl-connect` command, run as a real process.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { vaultMigrations } from '../src/vault/migrations/index.js'
import { spawn, spawnSync } from 'node:child_process'
import { statSync, existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { request } from 'undici'
import { tempDir, testKey } from './helpers/services.js'
import { freePort } from './helpers/stack.js'
import { CLI } from './cli/run-cli.js'



const cleanEnv = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GHL_') && k !== 'DATABASE_URL' && k !== 'PORT' && k !== 'REDIS_URL'))

test('serve refuses to start without an encryption key, naming every missing setting', () => {
  const dir = tempDir()
  try {
    const r = spawnSync(process.execPath, [...CLI, 'serve'], {
      cwd: dir.path,
      env: { ...cleanEnv(), NODE_OPTIONS: '', GHL_CLIENT_ID: 'abc123-def', GHL_CLIENT_SECRET: 's3cret-value', GHL_REDIRECT_URI: 'https://x.example/cb', GHL_SCOPES: 'contacts.readonly' },
      encoding: 'utf8',
      timeout: 30_000,
    })
    assert.equal(r.status, 1)
    assert.match(r.stderr, /GHL_ENCRYPTION_KEY: expected one or more base64 32-byte keys/)
    assert.ok(!r.stderr.includes('s3cret-value'))
  } finally {
    dir.remove()
  }
})

test('serve refuses unsigned webhooks in production', () => {
  const r = spawnSync(process.execPath, [...CLI, 'serve'], {
    env: { ...cleanEnv(), NODE_ENV: 'production', GHL_WEBHOOK_ALLOW_UNSIGNED: 'true', GHL_CLIENT_ID: 'abc123-def', GHL_CLIENT_SECRET: 'x', GHL_REDIRECT_URI: 'https://x.example/cb', GHL_SCOPES: 'contacts.readonly', GHL_ENCRYPTION_KEY: testKey() },
    encoding: 'utf8',
    timeout: 30_000,
  })
  assert.equal(r.status, 1)
  assert.match(r.stderr, /GHL_WEBHOOK_ALLOW_UNSIGNED/)
})

test('keys generate prints a usable key; unknown commands are a usage error (exit 2)', () => {
  const k = spawnSync(process.execPath, [...CLI, 'keys', 'generate'], { encoding: 'utf8', timeout: 30_000 })
  assert.equal(k.status, 0)
  assert.equal(Buffer.from(k.stdout.trim(), 'base64').length, 32)
  const u = spawnSync(process.execPath, [...CLI, 'frobnicate'], { encoding: 'utf8', timeout: 30_000 })
  assert.equal(u.status, 2)
  assert.match(u.stderr, /unknown command "frobnicate"/)
})

test('migrate needs only DATABASE_URL: it creates the tables, and running it again changes nothing', async () => {
  const { createVault } = await import('../src/vault/create-vault.js')
  const { parseKeys } = await import('../src/config.js')
  const dir = tempDir()
  try {
    const databaseUrl = join(dir.path, 'fresh.db')
    for (let run = 0; run < 2; run++) {
      const r = spawnSync(process.execPath, [...CLI, 'migrate'], { cwd: dir.path, env: { ...cleanEnv(), DATABASE_URL: databaseUrl }, encoding: 'utf8', timeout: 30_000 })
      assert.equal(r.status, 0, r.stderr)
      assert.equal(r.stdout, `Migrations applied: SQLite ${databaseUrl}\n`)
    }
    const Database = (await import('better-sqlite3')).default
    const sqlite = new Database(databaseUrl, { readonly: true, fileMustExist: true })
    const names = sqlite.prepare('select name from kysely_migration order by name').all() as { name: string }[]
    sqlite.close()
    assert.deepEqual(names.map((n) => n.name), Object.keys(await vaultMigrations('sqlite').getMigrations()))
    const vault = await createVault({ databaseUrl, keys: parseKeys(testKey()), migrate: false })
    assert.deepEqual(await vault.installations.list(), [])
    await vault.close()
  } finally {
    dir.remove()
  }
})

test('dev starts sandbox + connector on SQLite, creates a 0600 key file, serves the page; migrate works', { timeout: 60_000 }, async () => {
  const dir = tempDir()
  const port = await freePort()
  const sandboxPort = await freePort()
  const child = spawn(process.execPath, [...CLI, 'dev'], {
    cwd: dir.path,
    env: { ...cleanEnv(), PORT: String(port), GHL_SANDBOX_PORT: String(sandboxPort), LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr.on('data', (d: Buffer) => (out += d.toString()))
  try {
    await new Promise<void>((resolveReady, reject) => {
      const timer = setTimeout(() => reject(new Error(`dev did not start:\n${out}`)), 45_000)
      const check = () => {
        if (out.includes('ghl-connect is running')) {
          clearTimeout(timer)
          resolveReady()
        }
      }
      child.stdout.on('data', check)
      child.once('exit', (code) => reject(new Error(`dev exited ${code}:\n${out}`)))
    })
    assert.match(out, new RegExp(`http://127.0.0.1:${port}`))
    assert.match(out, new RegExp(`http://127.0.0.1:${sandboxPort}`))
    assert.match(out, /Created a local encryption key at .*encryption\.key \(mode 0600\)/)
    const keyFile = join(dir.path, 'data', 'encryption.key')
    assert.equal(statSync(keyFile).mode & 0o777, 0o600)
    assert.ok(existsSync(join(dir.path, 'data', 'ghl-connect.db')))
    const page = await request(`http://127.0.0.1:${port}/`)
    assert.equal(page.statusCode, 200)
    assert.match(await page.body.text(), /id="install"/)
    const install = await request(`http://127.0.0.1:${port}/oauth/install`)
    await install.body.dump()
    assert.equal(install.statusCode, 302)
    assert.ok(String(install.headers.location).startsWith(`http://127.0.0.1:${sandboxPort}/v2/oauth/chooselocation?`))
  } finally {
    child.kill('SIGTERM')
    await new Promise((r) => child.once('exit', r))
  }
  const m = spawnSync(process.execPath, [...CLI, 'migrate'], {
    cwd: dir.path,
    env: { ...cleanEnv(), GHL_CLIENT_ID: 'abc123-def', GHL_CLIENT_SECRET: 'x', GHL_REDIRECT_URI: 'https://x.example/cb', GHL_SCOPES: 'contacts.readonly', LOG_LEVEL: 'warn' },
    encoding: 'utf8',
    timeout: 30_000,
  })
  assert.equal(m.status, 0, m.stderr)
  dir.remove()
})

test('keys rotate re-encrypts every stored token with the first key; the old key can then be dropped', async () => {
  const { createVault } = await import('../src/vault/create-vault.js')
  const { parseKeys } = await import('../src/config.js')
  const dir = tempDir()
  try {
    const databaseUrl = join(dir.path, 'vault.db')
    const oldKey = testKey()
    const newKey = testKey()
    const v1 = await createVault({ databaseUrl, keys: parseKeys(`old:${oldKey}`) })
    for (const locationId of ['LocA', 'LocB']) {
      await v1.installations.upsert({
        clientId: 'abc123-def', companyId: 'Co1', locationId, userType: 'Location', scopes: ['contacts.readonly'], source: 'oauth',
        tokens: { accessToken: `at-${locationId}`, refreshToken: `rt-${locationId}`, expiresAt: new Date(Date.now() + 3600_000) },
      })
    }
    await v1.close()
    // Only the database settings: rotation never talks to HighLevel.
    const env = { ...cleanEnv(), DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn' }
    const r = spawnSync(process.execPath, [...CLI, 'keys', 'rotate'], { env: { ...env, GHL_ENCRYPTION_KEY: `new:${newKey},old:${oldKey}` }, encoding: 'utf8', timeout: 30_000 })
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stdout, /Re-encrypted 2 installation\(s\) with key new/)
    const v2 = await createVault({ databaseUrl, keys: parseKeys(`new:${newKey}`) })
    const rows = await v2.installations.list()
    for (const row of rows) {
      const full = await v2.installations.get(row.id)
      assert.equal(full!.tokens!.accessToken, `at-${row.locationId}`)
      assert.equal(full!.tokens!.refreshToken, `rt-${row.locationId}`)
    }
    await v2.close()
  } finally {
    dir.remove()
  }
})

test('dev with its port already taken exits with the error instead of hanging', { timeout: 60_000 }, async () => {
  const { createServer } = await import('node:net')
  const blocker = createServer()
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r))
  const port = (blocker.address() as { port: number }).port
  const dir = tempDir()
  try {
    const r = spawnSync(process.execPath, [...CLI, 'dev'], {
      cwd: dir.path,
      env: { ...cleanEnv(), PORT: String(port), GHL_SANDBOX_PORT: String(await freePort()), LOG_LEVEL: 'silent' },
      encoding: 'utf8',
      timeout: 45_000,
    })
    assert.equal(r.status, 1, `exit ${r.status} signal ${r.signal}: ${r.stderr}`)
    assert.match(r.stderr, /EADDRINUSE|address already in use/i)
  } finally {
    blocker.close()
    dir.remove()
  }
})
