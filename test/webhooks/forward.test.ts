/**
 * Forwarding to an app in any language (`GHL_WEBHOOK_FORWARD_URL`): the receiving app verifies every
 * event with the `standardwebhooks` library, as a real receiver would.
 *
 * 1. Over real HTTP with the sandbox: INSTALL, a ContactCreate, PLAN_CHANGE and UNINSTALL all reach
 *    the app, each verified (and refused under another secret or with a changed body).
 * 2. With an injected clock: an app that answers 500 is retried from the stored event on the Standard
 *    Webhooks schedule, never before an attempt is due, with the attempts and last error in the event
 *    record, the handlers run once, the same body and webhook-id each time, until a 2xx — and given
 *    up (audited) only when the event's retention ends.
 */
import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import { randomBytes, generateKeyPairSync, sign } from 'node:crypto'
import { Webhook } from 'standardwebhooks'
import { loadConfig } from '../../src/config.js'
import { ManualClock } from '../../src/clock.js'
import { createVault } from '../../src/vault/create-vault.js'
import type { TokenManager } from '../../src/tokens/types.js'
import { WebhookReceiver } from '../../src/webhooks/webhook-receiver.js'
import { FORWARD_RETENTION_MS, FORWARD_RETRY_DELAYS_MS, nextForwardAttemptAt } from '../../src/webhooks/event-queue.js'
import { freshDatabase, testKey } from '../helpers/services.js'
import { installViaHttp, sandboxJson, startStack, type Stack } from '../helpers/stack.js'

interface Received {
  headers: Record<string, string>
  body: string
}

/** The app's endpoint: records every request and answers the next status of `statuses` (then 200). */
async function receivingApp(statuses: number[] = []): Promise<{ url: string; received: Received[]; close: () => Promise<void> }> {
  const received: Received[] = []
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      received.push({ headers: req.headers as Record<string, string>, body: Buffer.concat(chunks).toString('utf8') })
      res.writeHead(statuses.shift() ?? 200).end()
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/ghl-events`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

const secretText = (): string => `whsec_${randomBytes(32).toString('base64')}`

describe('forwarded events over HTTP, verified with standardwebhooks', () => {
  let stack: Stack
  let app: Awaited<ReturnType<typeof receivingApp>>
  const secret = secretText()

  before(async () => {
    app = await receivingApp()
    stack = await startStack({
      env: { GHL_WEBHOOK_FORWARD_URL: app.url, GHL_WEBHOOK_FORWARD_SECRET: secret },
      sandbox: { seed: { apps: [{ planId: 'plan-basic' }] } },
    })
  })
  after(async () => {
    await stack?.close()
    await app?.close()
  })

  /** Every delivery of the sandbox answered, every event processed here. */
  async function settle(): Promise<void> {
    for (let i = 0; i < 500 && stack.sandbox.events().some((e) => e.status === 'pending'); i++) await new Promise((r) => setTimeout(r, 10))
    await stack.connector.webhooks.idle()
  }

  test('INSTALL, ContactCreate, PLAN_CHANGE and UNINSTALL reach the app, each signed per Standard Webhooks', async () => {
    const locationId = stack.sandbox.companies[0]!.locations[0]!.locationId
    const installed = await installViaHttp(stack, { locationId })
    assert.equal(installed.status, 200, installed.html)
    await settle()
    await sandboxJson(stack.sandbox, 'POST', '/_sandbox/webhooks/send', { type: 'ContactCreate', locationId, id: 'contact-1' })
    await settle()
    await sandboxJson(stack.sandbox, 'POST', '/_sandbox/plan-change', { locationId, newPlanId: 'plan-pro' })
    await settle()
    await sandboxJson(stack.sandbox, 'POST', '/_sandbox/uninstall', { locationId })
    await settle()

    const verifier = new Webhook(secret)
    const events = app.received.map((r) => verifier.verify(r.body, r.headers) as { type: string; webhookId: string })
    assert.deepEqual(events.map((e) => e.type), ['INSTALL', 'ContactCreate', 'PLAN_CHANGE', 'UNINSTALL'])
    const sent = stack.sandbox.events()
    assert.deepEqual(events.map((e) => e.webhookId), ['INSTALL', 'ContactCreate', 'PLAN_CHANGE', 'UNINSTALL'].map((t) => sent.find((s) => s.type === t)!.webhookId))
    for (const [i, r] of app.received.entries()) {
      assert.equal(r.headers['webhook-id'], events[i]!.webhookId, 'webhook-id is the event id')
      assert.equal(r.headers['x-ghl-connect-event'], events[i]!.type)
    }
    const plan = events[2] as unknown as { newPlanId: string; locationId: string }
    assert.deepEqual([plan.newPlanId, plan.locationId], ['plan-pro', locationId])

    // The verifier can fail: another secret, or one changed byte, is refused.
    const first = app.received[0]!
    assert.throws(() => new Webhook(secretText()).verify(first.body, first.headers))
    assert.throws(() => verifier.verify(first.body.replace('INSTALL', 'INSTALl'), first.headers))
  })
})

describe('forwarding retries on the Standard Webhooks schedule until acknowledged', () => {
  const ed = generateKeyPairSync('ed25519')
  const never: TokenManager = {
    getAccessToken: () => Promise.reject(new Error('not reached')),
    onUnauthorized: () => Promise.reject(new Error('not reached')),
    invalidate: () => undefined,
    mintLocationToken: () => Promise.reject(new Error('not reached')),
    refreshNow: () => Promise.reject(new Error('not reached')),
    coverLocations: () => Promise.reject(new Error('not reached')),
  }
  let db: Awaited<ReturnType<typeof freshDatabase>>
  let vault: Awaited<ReturnType<typeof createVault>>
  before(async () => {
    db = await freshDatabase('sqlite')
  })
  after(async () => {
    await vault?.close()
    await db?.cleanup()
  })

  async function setup(statuses: number[]) {
    const app = await receivingApp(statuses)
    const secret = secretText()
    const config = loadConfig({
      env: {
        GHL_CLIENT_ID: 'fwdApp-client',
        GHL_CLIENT_SECRET: 'client-secret-value',
        GHL_REDIRECT_URI: 'http://127.0.0.1:9/oauth/callback',
        GHL_SCOPES: 'contacts.readonly',
        GHL_ENCRYPTION_KEY: testKey(),
        GHL_WEBHOOK_ED25519_PUBLIC_KEY: ed.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
        GHL_WEBHOOK_FORWARD_URL: app.url,
        GHL_WEBHOOK_FORWARD_SECRET: secret,
        DATABASE_URL: db.url,
      },
    })
    vault ??= await createVault({ databaseUrl: db.url, keys: config.encryptionKeys })
    const clock = new ManualClock(Date.now())
    const receiver = new WebhookReceiver({ config, vault, tokens: never, clock, retry: { intervalMs: 1000, maxAttempts: 2 } })
    const handled: string[] = []
    receiver.on('ContactCreate', (e) => void handled.push(e.webhookId))
    const event = { type: 'ContactCreate', locationId: 'loc-1', id: 'c-1', webhookId: `wh-${randomBytes(4).toString('hex')}`, timestamp: new Date(clock.now()).toISOString() }
    const rawBody = Buffer.from(JSON.stringify(event))
    const answer = await receiver.receive({ rawBody, headers: { 'content-type': 'application/json', 'x-ghl-signature': sign(null, rawBody, ed.privateKey).toString('base64') } })
    assert.equal(answer.status, 200)
    await receiver.idle()
    return { app, secret, clock, receiver, handled, event }
  }

  test('500, 500, 500 then 200: retried when due and only then, the record shows attempts and the last error', async () => {
    const { app, secret, clock, receiver, handled, event } = await setup([500, 500, 500])
    try {
      const record = async () => (await vault.webhooks.get(event.webhookId))!
      assert.equal(app.received.length, 1)
      assert.deepEqual([(await record()).status, (await record()).attempts], ['failed', 1])
      assert.match((await record()).lastError!, /^GHL_WEBHOOK_FORWARD_FAILED: .*answered 500/)
      assert.ok((await record()).expiresAt.getTime() - clock.now() >= FORWARD_RETENTION_MS - 1000, 'kept for the forwarding retention')

      // Positive control first: maintenance before the attempt is due sends nothing.
      const due = [FORWARD_RETRY_DELAYS_MS[0]!, FORWARD_RETRY_DELAYS_MS[1]!, FORWARD_RETRY_DELAYS_MS[2]!]
      for (const [i, delay] of due.entries()) {
        clock.advance(delay - 1000)
        await receiver.runMaintenance()
        await receiver.idle()
        assert.equal(app.received.length, i + 1, `not before attempt ${i + 2} is due`)
        clock.advance(1000)
        await receiver.runMaintenance()
        await receiver.idle()
        assert.equal(app.received.length, i + 2, `attempt ${i + 2} when due`)
      }
      const done = await record()
      assert.deepEqual([done.status, done.attempts, done.lastError], ['processed', 3, null])
      assert.deepEqual(handled, [event.webhookId], "the app's handlers ran once; retries only forward")
      // The same body and webhook-id on every attempt, each verifiable when it was sent.
      assert.equal(new Set(app.received.map((r) => r.body)).size, 1)
      assert.deepEqual(new Set(app.received.map((r) => r.headers['webhook-id'])), new Set([event.webhookId]))
      const wh = new Webhook(secret)
      for (const r of app.received) {
        const ts = new Date(Number(r.headers['webhook-timestamp']) * 1000)
        assert.equal(r.headers['webhook-signature'], wh.sign(event.webhookId, ts, r.body))
      }
      await receiver.runMaintenance()
      await receiver.idle()
      assert.equal(app.received.length, 4, 'an acknowledged event is not sent again')
    } finally {
      await receiver.stop()
      await app.close()
    }
  })

  test('an app that never acknowledges: retried past maxAttempts, given up (audited) only when the retention ends', async () => {
    const { app, clock, receiver, event } = await setup(Array(100).fill(503))
    try {
      const hour = 3600_000
      for (let t = 0; t < FORWARD_RETENTION_MS + hour; t += hour) {
        clock.advance(hour)
        await receiver.runMaintenance()
        await receiver.idle()
      }
      const attempts = app.received.length
      // At receipt, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h later, then every 10 h while the event is
      // kept (72 h): due at 0, 5 s, 5 min 5 s, 35 min 5 s, 2 h 35 min, 7 h 35 min, 17 h 35 min, 27 h 35 min,
      // …, 67 h 35 min — 12 attempts, far beyond maxAttempts (2), far fewer than the 73 passes.
      let expected = 0
      while (nextForwardAttemptAt(0, expected) < FORWARD_RETENTION_MS) expected++
      assert.equal(expected, 12)
      assert.equal(attempts, expected, `on the schedule: ${attempts} attempts`)
      const audit = (await vault.audit.list()).filter((a) => a.action === 'webhook.failed' && a.detail.webhookId === event.webhookId)
      assert.equal(audit.length, 1, 'given up once, audited')
      assert.match(String(audit[0]!.detail.lastError), /GHL_WEBHOOK_FORWARD_FAILED/)
      assert.equal(audit[0]!.detail.attempts, expected, 'the record counted every attempt')
      assert.equal(await vault.webhooks.get(event.webhookId), undefined, 'purged once its retention ended')
    } finally {
      await receiver.stop()
      await app.close()
    }
  })
})
