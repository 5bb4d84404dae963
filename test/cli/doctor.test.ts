/**
 * `ghl-connect doctor`, run as a real process: the sandbox as HighLevel, real SQLite files (and
 * PostgreSQL and Redis when reachable; required on CI), small loopback servers for a skewed clock.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { vaultMigrations } from '../../src/vault/migrations/index.js'
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { parseKeys } from '../../src/config.js'
import { createVault } from '../../src/vault/create-vault.js'
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js'
import { createPostgresDatabase, postgresSkipReason, redisSkipReason, REDIS_URL, tempDir, testKey } from '../helpers/services.js'
import { freePort } from '../helpers/stack.js'
import { appEnv, runCli, type CliResult } from './run-cli.js'

const CHECKS = ['config', 'database', 'migrations', 'encryption keys', 'installations', 'redis', 'highlevel', 'clock', 'redirect uri', 'webhook key']

let sandbox: Sandbox
let dir: ReturnType<typeof tempDir>
let databaseUrl: string
const key = testKey()
let env: Record<string, string>

before(async () => {
  sandbox = await startSandbox({ port: 0 })
  dir = tempDir()
  databaseUrl = join(dir.path, 'vault.db')
  const vault = await createVault({ databaseUrl, keys: parseKeys(`orig:${key}`) })
  for (const locationId of ['LocA', 'LocB']) {
    await vault.installations.upsert({
      clientId: sandbox.app.clientId, companyId: 'Co1', locationId, userType: 'Location', scopes: ['contacts.readonly'], source: 'oauth',
      tokens: { accessToken: `at-${locationId}`, refreshToken: `rt-${locationId}`, expiresAt: new Date(Date.now() + 3600_000) },
    })
  }
  await vault.close()
  env = appEnv(sandbox, { redirectUri: 'http://127.0.0.1:3000/oauth/callback', scopes: sandbox.app.scopes }, databaseUrl, `orig:${key}`)
})
after(async () => {
  await sandbox?.close()
  dir?.remove()
})

const doctor = (more: Record<string, string> = {}) => runCli(['doctor'], { env: { ...env, ...more }, cwd: dir.path })

/** The report line of `check` (its first, when there are several). */
function line(r: CliResult, check: string): string {
  const found = r.stdout.split('\n').find((l) => new RegExp(`^(ok|warn|fail)\\s+${check}\\s`).test(l))
  assert.ok(found, `a "${check}" line in:\n${r.stdout}${r.stderr}`)
  return found!
}

test('a healthy setup: every check ok, exit 0', async () => {
  const r = await doctor()
  assert.equal(r.code, 0, r.stdout + r.stderr)
  for (const check of CHECKS) assert.match(line(r, check), /^ok\s/, check)
  assert.match(line(r, 'encryption keys'), /2 installations, all encrypted with key id "orig"/)
  assert.match(line(r, 'highlevel'), new RegExp(`${sandbox.url}: answered HTTP \\d+`))
  assert.match(r.stdout, /\nEvery check passed\.\n$/)
})

test('a key id the stored tokens use is not configured: fail naming it, with what to do; exit 1', async () => {
  const r = await doctor({ GHL_ENCRYPTION_KEY: `other:${testKey()}` })
  assert.equal(r.code, 1, r.stdout + r.stderr)
  assert.match(line(r, 'encryption keys'), /^fail\s+encryption keys\s+2 installations encrypted with key id "orig", which GHL_ENCRYPTION_KEY does not contain \(it has "other"\)$/)
  assert.match(r.stdout, /→ add the missing key to GHL_ENCRYPTION_KEY as "orig:<base64 key>"/)
  assert.match(line(r, 'config'), /^ok\s/, 'the configuration itself is valid')
  assert.match(r.stdout, /\n1 failed, 0 warnings\.\n$/)
})

test('tokens still on an older key: a warning pointing at "keys rotate"; exit 0', async () => {
  const r = await doctor({ GHL_ENCRYPTION_KEY: `new:${testKey()},orig:${key}` })
  assert.equal(r.code, 0, r.stdout + r.stderr)
  assert.match(line(r, 'encryption keys'), /^warn\s+encryption keys\s+2 installations still encrypted with key id "orig" \(new tokens use "new"\)$/)
  assert.match(r.stdout, /→ run "ghl-connect keys rotate"/)
  assert.match(r.stdout, /\n0 failed, 1 warning\.\n$/)
})

test('a clock an hour off HighLevel\'s Date header fails; HighLevel itself is reachable', async () => {
  const skewed: Server = createServer((req, res) => {
    res.setHeader('date', new Date(Date.now() + 3600_000).toUTCString())
    res.end('{}')
  })
  skewed.listen(0, '127.0.0.1')
  await once(skewed, 'listening')
  try {
    const r = await doctor({ GHL_API_URL: `http://127.0.0.1:${(skewed.address() as { port: number }).port}` })
    assert.equal(r.code, 1, r.stdout + r.stderr)
    assert.match(line(r, 'highlevel'), /^ok\s+highlevel\s+.*answered HTTP 200$/)
    assert.match(line(r, 'clock'), /^fail\s+clock\s+this machine's clock is about (59 min|1 h) behind HighLevel's/)
    assert.match(r.stdout, /→ synchronise the system clock/)
  } finally {
    skewed.close()
  }
})

test('HighLevel unreachable and Redis unreachable: a fail line each', async () => {
  const r = await doctor({ GHL_API_URL: `http://127.0.0.1:${await freePort()}`, REDIS_URL: `redis://127.0.0.1:${await freePort()}` })
  assert.equal(r.code, 1, r.stdout + r.stderr)
  assert.match(line(r, 'highlevel'), /^fail\s+highlevel\s+http:\/\/127\.0\.0\.1:\d+: not reachable \(ECONNREFUSED\)$/)
  assert.match(line(r, 'redis'), /^fail\s+redis\s+redis:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/)
  assert.doesNotMatch(r.stdout, /^\S+\s+clock\s/m, 'no clock comparison without an answer')
})

test('production: an http redirect URI, a wrong callback path and a missing Ed25519 key fail', async () => {
  const ed25519Expected = Date.now() >= Date.UTC(2026, 6, 1) ? 'fail' : 'warn'
  const http = await doctor({ NODE_ENV: 'production', GHL_REDIRECT_URI: 'http://app.example.com/oauth/callback', GHL_WEBHOOK_ED25519_PUBLIC_KEY: '' })
  assert.equal(http.code, 1, http.stdout + http.stderr)
  assert.match(line(http, 'config'), /^ok\s+config\s+valid \(production\)$/)
  assert.match(line(http, 'redirect uri'), /^fail\s+redirect uri\s+http:\/\/app\.example\.com\/oauth\/callback is not https \(NODE_ENV=production\)$/)
  assert.match(line(http, 'webhook key'), new RegExp(`^${ed25519Expected}\\s+webhook key\\s+GHL_WEBHOOK_ED25519_PUBLIC_KEY is not set`))

  const path = await doctor({ GHL_REDIRECT_URI: 'https://app.example.com/auth/done' })
  assert.equal(path.code, 1, path.stdout + path.stderr)
  assert.match(line(path, 'redirect uri'), /^fail\s+redirect uri\s+https:\/\/app\.example\.com\/auth\/done: the path is \/auth\/done, but the server answers the callback on \/oauth\/callback$/)
})

test('an invalid configuration is reported setting by setting, and the other checks still run', async () => {
  const r = await runCli(['doctor'], { env: { DATABASE_URL: databaseUrl, GHL_ENCRYPTION_KEY: `orig:${key}`, GHL_API_URL: sandbox.url }, cwd: dir.path })
  assert.equal(r.code, 1, r.stdout + r.stderr)
  for (const variable of ['GHL_CLIENT_ID', 'GHL_CLIENT_SECRET', 'GHL_REDIRECT_URI', 'GHL_SCOPES']) {
    assert.match(r.stdout, new RegExp(`^fail\\s+config\\s+${variable}: expected a non-empty string, got nothing$`, 'm'))
  }
  assert.match(line(r, 'database'), /^ok\s/)
  assert.match(line(r, 'encryption keys'), /^ok\s/)
  assert.match(line(r, 'highlevel'), /^ok\s/)
})

test('a database without the tables fails "migrations"; a missing SQLite file fails "database" and is not created', async () => {
  const empty = join(dir.path, 'empty.db')
  new Database(empty).close()
  const r = await doctor({ DATABASE_URL: empty })
  assert.equal(r.code, 1, r.stdout + r.stderr)
  assert.match(line(r, 'database'), /^ok\s/)
  const names = Object.keys(await vaultMigrations('sqlite').getMigrations())
  assert.match(line(r, 'migrations'), new RegExp(`^fail\\s+migrations\\s+${names.length} of ${names.length} not applied: ${names.join(', ')}$`))
  assert.match(r.stdout, /→ run "ghl-connect migrate"/)

  const missing = join(dir.path, 'nowhere', 'missing.db')
  const m = await doctor({ DATABASE_URL: missing })
  assert.equal(m.code, 1, m.stdout + m.stderr)
  assert.match(line(m, 'database'), new RegExp(`^fail\\s+database\\s+SQLite ${missing.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: cannot be read \\(no database file`))
  assert.equal(existsSync(join(dir.path, 'nowhere')), false, 'doctor created nothing')
})

test('installations that need reauthorization are a warning', async () => {
  const vault = await createVault({ databaseUrl, keys: parseKeys(`orig:${key}`) })
  const [first] = await vault.installations.list()
  await vault.installations.setStatus(first!.id, 'needs_reauthorization', { reason: 'refresh token rejected: invalid_grant' })
  await vault.close()
  const r = await doctor()
  assert.equal(r.code, 0, r.stdout + r.stderr)
  assert.match(line(r, 'installations'), /^warn\s+installations\s+.*1 installation cannot be refreshed until a HighLevel user installs the app again$/)
  assert.match(r.stdout, /→ see "ghl-connect installations --status needs_reauthorization"/)
})

test('PostgreSQL and Redis: "migrate" with only DATABASE_URL, then doctor finds both ok', { skip: (await postgresSkipReason()) || (await redisSkipReason()) }, async () => {
  const db = await createPostgresDatabase()
  try {
    const m = await runCli(['migrate'], { env: { DATABASE_URL: db.url }, cwd: dir.path })
    assert.equal(m.code, 0, m.stdout + m.stderr)
    assert.match(m.stdout, /^Migrations applied: PostgreSQL postgres/)
    const r = await doctor({ DATABASE_URL: db.url, REDIS_URL })
    assert.equal(r.code, 0, r.stdout + r.stderr)
    assert.match(line(r, 'database'), /^ok\s+database\s+PostgreSQL postgres(ql)?:\/\/.*: reachable$/)
    const count = Object.keys(await vaultMigrations('postgres').getMigrations()).length
    assert.match(line(r, 'migrations'), new RegExp(`^ok\\s+migrations\\s+all ${count} applied$`))
    assert.match(line(r, 'encryption keys'), /^ok\s+encryption keys\s+no stored tokens yet/)
    assert.match(line(r, 'redis'), /^ok\s+redis\s+redis:\/\/.*: reachable$/)
  } finally {
    await db.drop()
  }
})
