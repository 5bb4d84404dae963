/**
 * Webhook status writes honour the processing claim, seen at the receiver: two receivers (two vault
 * connections on one database, as two instances would have); the first's claim lapses while its handler
 * is still running, the second takes the event over and processes it; the first's late outcome — a
 * failure, or a success — is not recorded over `processed`, and nothing runs again afterwards.
 * (test/vault covers `complete()` itself.)
 */
import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairSync, sign } from 'node:crypto'
import { Writable } from 'node:stream'
import { ManualClock } from '../../src/clock.js'
import { loadConfig, type Config } from '../../src/config.js'
import { createLogger } from '../../src/logger.js'
import type { TokenManager } from '../../src/tokens/types.js'
import { createVault } from '../../src/vault/create-vault.js'
import type { Vault } from '../../src/vault/types.js'
import { WEBHOOK_CLAIM_MS, WebhookReceiver } from '../../src/webhooks/webhook-receiver.js'
import { DIALECTS, dialectSkipReason, freshDatabase, testKey } from '../helpers/services.js'

const ed = generateKeyPairSync('ed25519')
const INTERVAL_MS = 50

/** ContactCreate events carry no lifecycle work: the token manager is never reached. */
const noTokens = new Proxy({} as TokenManager, {
  get: () => () => {
    throw new Error('the token manager must not be called here')
  },
})

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void
  const promise = new Promise<void>((r) => (resolve = r))
  return { promise, resolve }
}

for (const dialect of DIALECTS) {
  describe(`a lapsed webhook claim at the receiver (${dialect})`, { skip: await dialectSkipReason(dialect) }, () => {
    let db: { url: string; cleanup: () => Promise<void> }
    let config: Config
    let vaultA: Vault
    let vaultB: Vault
    before(async () => {
      db = await freshDatabase(dialect)
      config = loadConfig({
        env: {
          GHL_CLIENT_ID: 'claim1234-client',
          GHL_CLIENT_SECRET: 'client-secret-value',
          GHL_REDIRECT_URI: 'http://127.0.0.1:1/oauth/callback',
          GHL_SCOPES: 'contacts.readonly',
          GHL_ENCRYPTION_KEY: testKey(),
          GHL_WEBHOOK_ED25519_PUBLIC_KEY: ed.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
          DATABASE_URL: db.url,
        },
      })
      vaultA = await createVault({ databaseUrl: db.url, keys: config.encryptionKeys })
      vaultB = await createVault({ databaseUrl: db.url, keys: config.encryptionKeys })
    })
    after(async () => {
      await vaultA?.close()
      await vaultB?.close()
      await db?.cleanup()
    })

    for (const late of ['failure', 'success'] as const) {
      test(`the first receiver's late ${late} does not overwrite the second's processed; each handler ran once`, async () => {
        const clock = new ManualClock(Date.UTC(2026, 0, 1, 12) + (late === 'failure' ? 0 : 3_600_000))
        const logs: Array<{ msg: string; webhookId?: string; status?: string }> = []
        const destination = new Writable({
          write(chunk: Buffer, _enc, cb) {
            for (const l of chunk.toString('utf8').split('\n').filter(Boolean)) logs.push(JSON.parse(l))
            cb()
          },
        })
        const make = (vault: Vault, logged: boolean) =>
          new WebhookReceiver({
            config,
            vault,
            tokens: noTokens,
            clock,
            retry: { intervalMs: INTERVAL_MS, maxAttempts: 3 },
            ...(logged ? { logger: createLogger({ level: 'info', destination }) } : {}),
          })
        const first = make(vaultA, true)
        const second = make(vaultB, false)
        const webhookId = `wh-claim-${late}-${Math.random().toString(36).slice(2)}`
        // Counted for this test's event only (the database is shared with the other test).
        const calls = { first: 0, second: 0 }
        const firstStarted = deferred()
        const releaseFirst = deferred()
        first.on('ContactCreate', async (e) => {
          if (e.webhookId !== webhookId) return
          calls.first++
          firstStarted.resolve()
          await releaseFirst.promise
          if (late === 'failure') throw new Error('the first handler failed late')
        })
        second.on('ContactCreate', (e) => {
          if (e.webhookId === webhookId) calls.second++
        })

        const rawBody = Buffer.from(JSON.stringify({ type: 'ContactCreate', locationId: 'Loc1', id: 'c1', webhookId, timestamp: new Date(clock.now()).toISOString() }))
        const res = await first.receive({ rawBody, headers: { 'x-ghl-signature': sign(null, rawBody, ed.privateKey).toString('base64') } })
        assert.equal(res.status, 200)
        await firstStarted.promise

        // While the first holds its claim, the second's maintenance leaves the event alone (positive
        // control for the claim: the event is old enough to be resumed, but it is held).
        clock.advance(INTERVAL_MS * 2)
        await second.runMaintenance()
        await second.idle()
        assert.equal(calls.second, 0, 'taken over while the claim was held')

        // The first's claim lapses (its handler still running): the second takes the event over.
        clock.advance(WEBHOOK_CLAIM_MS)
        await second.runMaintenance()
        await second.idle()
        assert.equal(calls.second, 1, 'the second receiver did not take the event over')
        const taken = await vaultA.webhooks.get(webhookId)
        assert.equal(taken?.status, 'processed')

        // The first finishes now: its outcome must not be recorded.
        releaseFirst.resolve()
        await first.idle()
        const after = await vaultA.webhooks.get(webhookId)
        assert.equal(after?.status, 'processed', 'the late outcome overwrote processed')
        assert.equal(after?.attempts, 0)
        assert.equal(after?.lastError ?? null, null)
        assert.ok(
          logs.some((l) => l.webhookId === webhookId && /claim lapsed before its outcome was recorded/.test(l.msg)),
          'the first receiver says its outcome was not recorded',
        )

        // Nothing is left to do: later passes of both run no handler again.
        clock.advance(INTERVAL_MS * 2)
        await Promise.all([first.runMaintenance(), second.runMaintenance()])
        await Promise.all([first.idle(), second.idle()])
        assert.deepEqual(calls, { first: 1, second: 1 })
        assert.equal((await vaultB.webhooks.get(webhookId))?.status, 'processed')
      })
    }
  })
}
