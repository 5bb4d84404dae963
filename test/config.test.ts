import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadConfig, parseKeys, ConfigError, HIGHLEVEL_WEBHOOK_RSA_PUBLIC_KEY } from '../src/config.js'
import { testKey, tempDir } from './helpers/services.js'

const good = () => ({
  GHL_CLIENT_ID: '6578278e879ad2646715ba9c-lx2y5z1k',
  GHL_CLIENT_SECRET: 'a-client-secret-value',
  GHL_REDIRECT_URI: 'https://app.example.com/oauth/callback',
  GHL_SCOPES: 'contacts.readonly contacts.write',
  GHL_ENCRYPTION_KEY: testKey(),
})

test('a good configuration is parsed, defaulted and frozen', () => {
  const c = loadConfig({ env: good() })
  assert.equal(c.appId, '6578278e879ad2646715ba9c')
  assert.deepEqual(c.scopes, ['contacts.readonly', 'contacts.write'])
  assert.equal(c.userType, 'Location')
  assert.equal(c.apiUrl, 'https://services.leadconnectorhq.com')
  assert.equal(c.marketplaceUrl, 'https://marketplace.gohighlevel.com')
  assert.equal(c.rateLimit.burstMax, 100)
  assert.equal(c.rateLimit.burstWindowMs, 10_000)
  assert.equal(c.rateLimit.dailyMax, 200_000)
  assert.equal(c.webhookRsaPublicKey, HIGHLEVEL_WEBHOOK_RSA_PUBLIC_KEY)
  assert.equal(c.encryptionKeys.length, 1)
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.rateLimit) && Object.isFrozen(c.scopes))
  assert.throws(() => {
    ;(c as { port: number }).port = 1
  }, TypeError)
})

test('every problem is reported at once, naming the variable, what was expected and what arrived', () => {
  const err = (() => {
    try {
      loadConfig({
        env: {
          GHL_CLIENT_ID: 'no_dash_here',
          GHL_REDIRECT_URI: 'not a url',
          GHL_SCOPES: 'contacts.readonly',
          GHL_USER_TYPE: 'Agency',
          GHL_ENCRYPTION_KEY: 'c2hvcnQ=',
          PORT: '99999',
          DATABASE_URL: 'mysql://x',
          REDIS_URL: 'http://redis',
          GHL_CLIENT_SECRET: '',
        },
      })
    } catch (e) {
      return e
    }
    return undefined
  })()
  assert.ok(err instanceof ConfigError)
  assert.equal(err.code, 'GHL_CONFIG_INVALID')
  const names = err.issues.map((i) => i.variable).sort()
  assert.deepEqual(names, ['DATABASE_URL', 'GHL_CLIENT_ID', 'GHL_CLIENT_SECRET', 'GHL_ENCRYPTION_KEY', 'GHL_REDIRECT_URI', 'GHL_USER_TYPE', 'PORT', 'REDIS_URL'])
  assert.match(err.message, /PORT: expected an integer from 0 to 65535, got "99999"/)
  assert.match(err.message, /GHL_USER_TYPE: expected "Location" or "Company", got "Agency"/)
  assert.match(err.message, /GHL_CLIENT_SECRET: expected a non-empty string, got nothing/)
  assert.ok(!err.message.includes('c2hvcnQ='), 'secret values are never echoed')
  assert.match(err.message, /GHL_ENCRYPTION_KEY: expected .*32 bytes.*, got a value of 8 characters/)
})

test('the encryption key is required unless a command allows it', () => {
  const env = good()
  delete (env as Partial<typeof env>).GHL_ENCRYPTION_KEY
  assert.throws(() => loadConfig({ env }), /GHL_ENCRYPTION_KEY: expected one or more base64 32-byte keys/)
  assert.equal(loadConfig({ env, allowMissingKey: true }).encryptionKeys.length, 0)
})

test('unsigned webhooks are refused in production', () => {
  assert.throws(() => loadConfig({ env: { ...good(), NODE_ENV: 'production', GHL_WEBHOOK_ALLOW_UNSIGNED: 'true' } }), /GHL_WEBHOOK_ALLOW_UNSIGNED/)
  assert.equal(loadConfig({ env: { ...good(), GHL_WEBHOOK_ALLOW_UNSIGNED: 'true' } }).allowUnsignedWebhooks, true)
})

test('several keys: ids from "id:key" or derived; the first encrypts', () => {
  const a = testKey()
  const b = testKey()
  const keys = parseKeys(`new:${a}, ${b}`)
  assert.equal(keys.length, 2)
  assert.equal(keys[0]!.id, 'new')
  assert.match(keys[1]!.id, /^k[0-9a-f]{8}$/)
  assert.equal(keys[0]!.key.length, 32)
})

test('a .env file is read under the environment, which wins', () => {
  const dir = tempDir()
  try {
    const file = join(dir.path, '.env')
    writeFileSync(file, Object.entries({ ...good(), PORT: '4000', GHL_SCOPES: 'locations.readonly' }).map(([k, v]) => `${k}=${v}`).join('\n'))
    const c = loadConfig({ env: { PORT: '5000' }, envFile: file })
    assert.equal(c.port, 5000)
    assert.deepEqual(c.scopes, ['locations.readonly'])
  } finally {
    dir.remove()
  }
})
