/**
 * A wrong GHL_ENCRYPTION_KEY is refused at start, naming the key ids stored rows need that are not
 * configured — by `createConnector()` (GhlError GHL_VAULT_KEY_MISSING) and by `ghl-connect serve` (exit
 * 1 with that message) — instead of every installation failing at its first call. Nothing is changed.
 */
import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { loadConfig, parseKeys } from '../../src/config.js'
import { createConnector } from '../../src/connector.js'
import { GhlError } from '../../src/errors.js'
import { createVault } from '../../src/vault/create-vault.js'
import { DIALECTS, dialectSkipReason, freshDatabase, tempDir, testKey } from '../helpers/services.js'
import { runCli } from '../cli/run-cli.js'

const OLD = testKey()
const OTHER = testKey()
const NEW = testKey()

function env(databaseUrl: string, keys: string): Record<string, string> {
  return {
    GHL_CLIENT_ID: 'keys1234-client',
    GHL_CLIENT_SECRET: 'client-secret-value',
    GHL_REDIRECT_URI: 'http://127.0.0.1:1/oauth/callback',
    GHL_SCOPES: 'contacts.readonly',
    GHL_API_URL: 'http://127.0.0.1:9',
    GHL_ENCRYPTION_KEY: keys,
    DATABASE_URL: databaseUrl,
  }
}

/** Two installations, encrypted with key ids "old" and "other". */
async function seed(databaseUrl: string): Promise<Array<{ id: string; version: number }>> {
  const rows: Array<{ id: string; version: number }> = []
  for (const [keys, locationId] of [[`old:${OLD}`, 'LocOld'], [`other:${OTHER}`, 'LocOther']] as const) {
    const vault = await createVault({ databaseUrl, keys: parseKeys(keys) })
    const row = await vault.installations.upsert({
      clientId: 'keys1234-client', companyId: 'Co1', locationId, userType: 'Location', scopes: ['contacts.readonly'], source: 'oauth',
      tokens: { accessToken: `at-${locationId}`, refreshToken: `rt-${locationId}`, expiresAt: new Date(Date.now() + 3600_000) },
    })
    rows.push({ id: row.id, version: row.version })
    await vault.close()
  }
  return rows
}

for (const dialect of DIALECTS) {
  describe(`createConnector with a wrong GHL_ENCRYPTION_KEY (${dialect})`, { skip: await dialectSkipReason(dialect) }, () => {
    test('refuses with GHL_VAULT_KEY_MISSING naming every missing key id; nothing changes; with the keys added it starts', async () => {
      const db = await freshDatabase(dialect)
      try {
        const rows = await seed(db.url)
        const err = await createConnector({ config: loadConfig({ env: env(db.url, `new:${NEW}`) }), background: false }).then(
          (c) => c.close().then(() => assert.fail('createConnector started with keys that cannot decrypt the stored rows')),
          (e: unknown) => e,
        )
        assert.ok(err instanceof GhlError, String(err))
        assert.equal(err.code, 'GHL_VAULT_KEY_MISSING')
        assert.match(err.message, /key ids old, other, which GHL_ENCRYPTION_KEY does not contain/)
        assert.ok(!err.message.includes(OLD) && !err.message.includes(NEW), 'no key material in the message')

        // One of the two missing: only that one is named.
        const one = await createConnector({ config: loadConfig({ env: env(db.url, `new:${NEW},old:${OLD}`) }), background: false }).then(
          (c) => c.close().then(() => assert.fail('started without the key "other"')),
          (e: unknown) => e,
        )
        assert.ok(one instanceof GhlError && one.code === 'GHL_VAULT_KEY_MISSING')
        assert.match(one.message, /key id other, which/)

        // Positive control: with every key configured it starts and reads both tokens; the refusals changed nothing.
        const ok = await createConnector({ config: loadConfig({ env: env(db.url, `new:${NEW},old:${OLD},other:${OTHER}`) }), background: false })
        try {
          for (const row of rows) {
            const stored = await ok.vault.installations.get(row.id)
            assert.equal(stored!.version, row.version)
            assert.equal(stored!.tokens!.accessToken, `at-${stored!.locationId}`)
          }
        } finally {
          await ok.close()
        }
      } finally {
        await db.cleanup()
      }
    })
  })
}

test('ghl-connect serve with a wrong GHL_ENCRYPTION_KEY exits 1 naming the missing key ids', { timeout: 90_000 }, async () => {
  const dir = tempDir()
  try {
    const databaseUrl = join(dir.path, 'vault.db')
    await seed(databaseUrl)
    const r = await runCli(['serve'], { env: { ...env(databaseUrl, `new:${NEW}`), PORT: '0', LOG_LEVEL: 'warn' }, cwd: dir.path, timeoutMs: 45_000 })
    assert.equal(r.code, 1, `exit ${r.code}\n${r.stdout}\n${r.stderr}`)
    assert.match(r.stderr, /GHL_VAULT_KEY_MISSING: Stored tokens are encrypted with key ids old, other, which GHL_ENCRYPTION_KEY does not contain/)
    assert.ok(!`${r.stdout}${r.stderr}`.includes(OLD))
  } finally {
    dir.remove()
  }
})
