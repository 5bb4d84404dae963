/**
 * The receiver against a real vault (SQLite and PostgreSQL) with keys generated here: every rejection
 * answers the right status and code and leaves the vault exactly as it was; accepted events are
 * persisted first, processed once, dispatched typed, retried when a handler or forwarding fails.
 */
import { test, describe, before, after, beforeEach } from 'node:test'
import assert from 'node:assert/strict'
import { createLogger } from '../../src/logger.js'
import { GhlError } from '../../src/errors.js'
import { wrapVault } from '../tokens/harness.js'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { generateKeyPairSync, sign, createHash, type KeyObject } from 'node:crypto'
import { loadConfig, type Config } from '../../src/config.js'
import { ManualClock } from '../../src/clock.js'
import { createVault } from '../../src/vault/create-vault.js'
import type { Vault, WebhookEventRecord } from '../../src/vault/types.js'
import type { TokenManager } from '../../src/tokens/types.js'
import { WebhookReceiver } from '../../src/webhooks/webhook-receiver.js'
import type { ContactCreateEvent, WebhookEvent } from '../../src/webhooks/events.js'
import { DIALECTS, dialectSkipReason, freshDatabase, testKey } from '../helpers/services.js'

const ed = generateKeyPairSync('ed25519')
const otherEd = generateKeyPairSync('ed25519')
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
const pem = (k: KeyObject): string => k.export({ type: 'spki', format: 'pem' }).toString()
const APP_ID = 'wbApp123'
const START = Date.UTC(2026, 0, 1, 12, 0, 0)

/**
 * The token manager is not reached by the events in this file (lifecycle with real tokens is in
 * lifecycle.test.ts): any call is a test failure, so it throws loudly.
 */
const unreachableTokens: TokenManager = {
  getAccessToken: () => Promise.reject(new Error('tokens.getAccessToken must not be called here')),
  onUnauthorized: () => Promise.reject(new Error('tokens.onUnauthorized must not be called here')),
  invalidate: () => {
    throw new Error('tokens.invalidate must not be called here')
  },
  mintLocationToken: () => Promise.reject(new Error('tokens.mintLocationToken must not be called here')),
  refreshNow: () => Promise.reject(new Error('tokens.refreshNow must not be called here')),
  coverLocations: () => Promise.reject(new Error('tokens.coverLocations must not be called here')),
}

function makeConfig(databaseUrl: string, env: Record<string, string> = {}): Config {
  return loadConfig({
    env: {
      GHL_CLIENT_ID: `${APP_ID}-client`,
      GHL_CLIENT_SECRET: 'client-secret-value',
      GHL_REDIRECT_URI: 'http://127.0.0.1:9/oauth/callback',
      GHL_SCOPES: 'contacts.readonly',
      GHL_ENCRYPTION_KEY: testKey(),
      GHL_WEBHOOK_ED25519_PUBLIC_KEY: pem(ed.publicKey),
      GHL_WEBHOOK_RSA_PUBLIC_KEY: pem(rsa.publicKey),
      GHL_WEBHOOK_MAX_BYTES: '4096',
      DATABASE_URL: databaseUrl,
      ...env,
    },
  })
}

function signed(body: Buffer | string, scheme: 'ed25519' | 'rsa' | 'both' = 'ed25519', key?: KeyObject) {
  const rawBody = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8')
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (scheme !== 'rsa') headers['x-ghl-signature'] = sign(null, rawBody, key ?? ed.privateKey).toString('base64')
  if (scheme !== 'ed25519') headers['x-wh-signature'] = sign('sha256', rawBody, key ?? rsa.privateKey).toString('base64')
  return { rawBody, headers }
}

let counter = 0
function contactEvent(clock: ManualClock, extra: Record<string, unknown> = {}): Record<string, unknown> {
  counter++
  return {
    type: 'ContactCreate',
    locationId: 'loc-1',
    id: `contact-${counter}`,
    email: 'someone@example.com',
    tags: ['a'],
    timestamp: new Date(clock.now()).toISOString(),
    webhookId: `wh-${counter}-${Math.random().toString(36).slice(2)}`,
    ...extra,
  }
}

for (const dialect of DIALECTS) {
  describe(`WebhookReceiver (${dialect})`, { skip: await dialectSkipReason(dialect) }, () => {
    let db: { url: string; cleanup: () => Promise<void> }
    let vault: Vault
    let config: Config
    let clock: ManualClock
    let receiver: WebhookReceiver

    before(async () => {
      db = await freshDatabase(dialect)
      config = makeConfig(db.url)
      vault = await createVault({ databaseUrl: db.url, keys: config.encryptionKeys })
    })
    after(async () => {
      await vault.close()
      await db.cleanup()
    })
    beforeEach(() => {
      clock = new ManualClock(START + counter * 1000)
      receiver = new WebhookReceiver({ config, vault, tokens: unreachableTokens, clock, retry: { intervalMs: 50, maxAttempts: 3 } })
    })

    /** Everything the vault holds that a webhook could change. */
    async function snapshot(): Promise<unknown> {
      const webhooks: Record<string, WebhookEventRecord[]> = {}
      for (const status of ['pending', 'processed', 'failed', 'waiting'] as const) {
        webhooks[status] = await vault.webhooks.list({ status, limit: 10_000 })
      }
      return { webhooks, installations: await vault.installations.list(), audit: await vault.audit.list() }
    }

    async function assertRejected(
      input: { rawBody: Buffer; headers: Record<string, string | string[] | undefined> },
      status: number,
      code: string,
      message: RegExp,
      r: WebhookReceiver = receiver,
    ): Promise<void> {
      const before = await snapshot()
      const seen: unknown[] = []
      const off = r.on('*', (e) => void seen.push(e))
      const res = await r.receive(input)
      await r.idle()
      off()
      assert.equal(res.status, status, JSON.stringify(res.body))
      assert.equal(res.body.ok, false)
      assert.equal(res.body.code, code)
      assert.match(res.body.message ?? '', message)
      assert.deepEqual(await snapshot(), before, 'a rejected webhook changed the vault')
      assert.equal(seen.length, 0, 'a rejected webhook reached a subscriber')
    }

    test('a valid Ed25519-signed event is persisted, acknowledged, then dispatched typed and marked processed', async () => {
      const event = contactEvent(clock)
      const got: ContactCreateEvent[] = []
      let answered = false
      receiver.on('ContactCreate', (e) => {
        assert.ok(answered, 'processing must start after the answer')
        // Typed: e.email is string | undefined, e.locationId a string.
        const email: string | undefined = e.email
        assert.equal(typeof email, 'string')
        got.push(e)
      })
      const res = await receiver.receive(signed(JSON.stringify(event)))
      answered = true
      assert.deepEqual(res, { status: 200, body: { ok: true, webhookId: event.webhookId } })
      // Persisted before the answer, processed after it.
      const stored = (await vault.webhooks.list({ status: 'pending', limit: 1000 })).find((w) => w.webhookId === event.webhookId)
      assert.ok(stored || got.length === 1, 'the event was not persisted before the answer')
      await receiver.idle()
      assert.equal(got.length, 1)
      assert.deepEqual(got[0], event)
      const processed = (await vault.webhooks.list({ status: 'processed', limit: 1000 })).find((w) => w.webhookId === event.webhookId)
      assert.equal(processed?.attempts, 0)
      assert.equal(processed?.locationId, 'loc-1')
      assert.equal(processed?.receivedAt.getTime(), clock.now())
      // Kept for the longest of the replay window (2×5 min + 1 min), the retry schedule (50 ms × 4) and one hour.
      assert.equal(processed?.expiresAt.getTime(), clock.now() + 3_600_000)
    })

    test('a valid RSA x-wh-signature (legacy) is accepted', async () => {
      const event = contactEvent(clock)
      const res = await receiver.receive(signed(JSON.stringify(event), 'rsa'))
      assert.equal(res.status, 200)
      await receiver.idle()
    })

    test('forged (signed with another key) → 401 GHL_WEBHOOK_SIGNATURE_INVALID, nothing stored', async () => {
      await assertRejected(signed(JSON.stringify(contactEvent(clock)), 'ed25519', otherEd.privateKey), 401, 'GHL_WEBHOOK_SIGNATURE_INVALID', /x-ghl-signature \(Ed25519\) does not verify/)
    })

    test('tampered (one body byte flipped) → 401, nothing stored', async () => {
      const input = signed(JSON.stringify(contactEvent(clock)))
      const tampered = Buffer.from(input.rawBody)
      tampered[tampered.indexOf('contact-')]! ^= 0x02
      await assertRejected({ rawBody: tampered, headers: input.headers }, 401, 'GHL_WEBHOOK_SIGNATURE_INVALID', /does not verify/)
    })

    test('wrong key configured (a valid HighLevel-style signature, but our config has another public key) → 401', async () => {
      const other = new WebhookReceiver({ config: { ...config, webhookEd25519PublicKeys: [pem(otherEd.publicKey)] }, vault, tokens: unreachableTokens, clock })
      await assertRejected(signed(JSON.stringify(contactEvent(clock))), 401, 'GHL_WEBHOOK_SIGNATURE_INVALID', /does not verify/, other)
    })

    test('key rollover: with two Ed25519 keys configured, either one verifies; a third does not', async () => {
      const third = generateKeyPairSync('ed25519')
      const both = new WebhookReceiver({ config: { ...config, webhookEd25519PublicKeys: [pem(otherEd.publicKey), pem(ed.publicKey)] }, vault, tokens: unreachableTokens, clock })
      assert.equal((await both.receive(signed(JSON.stringify(contactEvent(clock))))).status, 200, 'signed with the second key')
      assert.equal((await both.receive(signed(JSON.stringify(contactEvent(clock)), 'ed25519', otherEd.privateKey))).status, 200, 'signed with the first key')
      await both.idle()
      await assertRejected(signed(JSON.stringify(contactEvent(clock)), 'ed25519', third.privateKey), 401, 'GHL_WEBHOOK_SIGNATURE_INVALID', /configured public keys \(2\)/, both)
      // The setting takes several keys as PEM blocks one after another.
      const fromEnv = makeConfig(config.databaseUrl, { GHL_WEBHOOK_ED25519_PUBLIC_KEY: `${pem(otherEd.publicKey)}${pem(ed.publicKey)}` })
      assert.equal(fromEnv.webhookEd25519PublicKeys.length, 2)
    })

    test('no Ed25519 key configured: an Ed25519-signed webhook is refused, and the log says once what to configure', async () => {
      const lines: string[] = []
      const logger = createLogger({ level: 'info', destination: { write: (l: string) => void lines.push(l) } })
      const noKey = new WebhookReceiver({ config: { ...config, webhookEd25519PublicKeys: [] }, vault, tokens: unreachableTokens, clock, logger })
      assert.equal(noKey.ed25519Configured, false)
      for (let i = 0; i < 3; i++) assert.equal((await noKey.receive(signed(JSON.stringify(contactEvent(clock))))).status, 401)
      const advice = lines.filter((l) => l.includes('GHL_WEBHOOK_ED25519_PUBLIC_KEY is not set'))
      assert.equal(advice.length, 1, 'said once')
      assert.match(advice[0]!, /Ed25519 only since 2026-07-01/)
      assert.equal(lines.filter((l) => l.includes('webhook rejected')).length, 3, 'every refusal is still logged')
    })

    test('missing signature → 401 naming both headers, nothing stored', async () => {
      await assertRejected(
        { rawBody: Buffer.from(JSON.stringify(contactEvent(clock))), headers: { 'content-type': 'application/json' } },
        401,
        'GHL_WEBHOOK_SIGNATURE_INVALID',
        /no signature: expected an x-ghl-signature .* or x-wh-signature/,
      )
    })

    test('replayed (same webhookId): the second is 200 duplicate and a no-op', async () => {
      const input = signed(JSON.stringify(contactEvent(clock)))
      let calls = 0
      receiver.on('ContactCreate', () => void calls++)
      const first = await receiver.receive(input)
      await receiver.idle()
      assert.equal(first.status, 200)
      const state = await snapshot()
      const second = await receiver.receive(input)
      await receiver.idle()
      assert.equal(second.status, 200)
      assert.equal(second.body.duplicate, true)
      assert.equal(second.body.ok, true)
      assert.equal(calls, 1, 'a replay was processed again')
      assert.deepEqual(await snapshot(), state, 'a replay changed the vault')
    })

    test('replayed with a different body but the same webhookId is still a duplicate', async () => {
      const event = contactEvent(clock)
      await receiver.receive(signed(JSON.stringify(event)))
      await receiver.idle()
      const state = await snapshot()
      const res = await receiver.receive(signed(JSON.stringify({ ...event, email: 'changed@example.com' })))
      await receiver.idle()
      assert.equal(res.body.duplicate, true)
      assert.deepEqual(await snapshot(), state)
    })

    test('stale: 6 minutes old → 400 GHL_WEBHOOK_STALE, nothing stored', async () => {
      const event = contactEvent(clock, { timestamp: new Date(clock.now() - 6 * 60_000).toISOString() })
      await assertRejected(signed(JSON.stringify(event)), 400, 'GHL_WEBHOOK_STALE', /360 s old; at most 300 s/)
    })

    test('stale: 6 minutes in the future → 400 GHL_WEBHOOK_STALE', async () => {
      const event = contactEvent(clock, { timestamp: new Date(clock.now() + 6 * 60_000).toISOString() })
      await assertRejected(signed(JSON.stringify(event)), 400, 'GHL_WEBHOOK_STALE', /360 s in the future/)
    })

    test('within the window (4 min 59 s old) is accepted', async () => {
      const event = contactEvent(clock, { timestamp: new Date(clock.now() - 299_000).toISOString() })
      assert.equal((await receiver.receive(signed(JSON.stringify(event)))).status, 200)
      await receiver.idle()
    })

    test('missing timestamp → 400 GHL_WEBHOOK_STALE saying why', async () => {
      const event = contactEvent(clock)
      delete event.timestamp
      await assertRejected(signed(JSON.stringify(event)), 400, 'GHL_WEBHOOK_STALE', /no timestamp/)
    })

    test('unparseable timestamp → 400 GHL_WEBHOOK_INVALID', async () => {
      await assertRejected(signed(JSON.stringify(contactEvent(clock, { timestamp: 'yesterday' }))), 400, 'GHL_WEBHOOK_INVALID', /timestamp is not an ISO 8601 date/)
      await assertRejected(signed(JSON.stringify(contactEvent(clock, { timestamp: { a: 1 } }))), 400, 'GHL_WEBHOOK_INVALID', /timestamp/)
    })

    test('signature over the raw bytes: key order, whitespace and \\u escapes as sent', async () => {
      const ts = new Date(clock.now()).toISOString()
      const id = `wh-raw-${counter++}`
      const raw = `{\n  "webhookId" : "${id}",\t"timestamp":"${ts}",  "firstName":"Ren\\u00e9e", "locationId":"loc-1", "id":"c-raw",\n "type":"ContactCreate"\n}\n`
      const got: WebhookEvent[] = []
      receiver.on('ContactCreate', (e) => void got.push(e))
      const res = await receiver.receive(signed(raw, 'both'))
      assert.equal(res.status, 200, JSON.stringify(res.body))
      await receiver.idle()
      assert.equal((got[0] as ContactCreateEvent).firstName, 'Renée')
      // The same event re-serialised does not verify against the original signatures.
      const headers = signed(raw, 'both').headers
      await assertRejected({ rawBody: Buffer.from(JSON.stringify(JSON.parse(raw))), headers }, 401, 'GHL_WEBHOOK_SIGNATURE_INVALID', /does not verify/)
    })

    test('too large → 413 GHL_WEBHOOK_TOO_LARGE before anything else, nothing stored', async () => {
      const event = contactEvent(clock, { pad: 'x'.repeat(5000) })
      await assertRejected(signed(JSON.stringify(event)), 413, 'GHL_WEBHOOK_TOO_LARGE', /at most 4096/)
      // Even unsigned: the size is checked first.
      await assertRejected({ rawBody: Buffer.alloc(5000, 0x20), headers: {} }, 413, 'GHL_WEBHOOK_TOO_LARGE', /5000 bytes/)
    })

    test('malformed JSON (signed) → 400 GHL_WEBHOOK_INVALID, nothing stored', async () => {
      await assertRejected(signed('{"type":"ContactCreate",'), 400, 'GHL_WEBHOOK_INVALID', /not valid JSON/)
      await assertRejected(signed('[1,2,3]'), 400, 'GHL_WEBHOOK_INVALID', /not a JSON object/)
      await assertRejected(signed('null'), 400, 'GHL_WEBHOOK_INVALID', /not a JSON object/)
    })

    test('missing or non-string type → 400 GHL_WEBHOOK_INVALID', async () => {
      const event = contactEvent(clock)
      delete event.type
      await assertRejected(signed(JSON.stringify(event)), 400, 'GHL_WEBHOOK_INVALID', /type/)
      await assertRejected(signed(JSON.stringify(contactEvent(clock, { type: 42 }))), 400, 'GHL_WEBHOOK_INVALID', /type/)
    })

    test('unknown type → 400 GHL_WEBHOOK_INVALID "unknown event type", nothing stored', async () => {
      await assertRejected(signed(JSON.stringify(contactEvent(clock, { type: 'ContactExploded' }))), 400, 'GHL_WEBHOOK_INVALID', /unknown event type "ContactExploded"/)
    })

    test('INSTALL for another app → 400; INSTALL/UNINSTALL without location or company → 400; without appId → 400', async () => {
      const base = { timestamp: new Date(clock.now()).toISOString() }
      await assertRejected(
        signed(JSON.stringify({ ...base, webhookId: 'i-1', type: 'INSTALL', appId: 'someoneElse', locationId: 'L1', companyId: 'C1' })),
        400,
        'GHL_WEBHOOK_INVALID',
        /for app "someoneElse", not this app \(wbApp123\)/,
      )
      await assertRejected(signed(JSON.stringify({ ...base, webhookId: 'i-2', type: 'INSTALL', appId: APP_ID })), 400, 'GHL_WEBHOOK_INVALID', /needs a locationId .* or a companyId/)
      await assertRejected(signed(JSON.stringify({ ...base, webhookId: 'i-3', type: 'UNINSTALL', appId: APP_ID })), 400, 'GHL_WEBHOOK_INVALID', /needs a locationId/)
      await assertRejected(signed(JSON.stringify({ ...base, webhookId: 'i-4', type: 'UNINSTALL', locationId: 'L1' })), 400, 'GHL_WEBHOOK_INVALID', /appId/)
    })

    test('JSON nested deeper than 64 levels → 400, nothing stored', async () => {
      const deep = `{"type":"ContactCreate","webhookId":"deep","timestamp":"${new Date(clock.now()).toISOString()}","x":${'['.repeat(100)}${']'.repeat(100)}}`
      await assertRejected(signed(deep), 400, 'GHL_WEBHOOK_INVALID', /nested deeper than 64/)
    })

    test('no webhookId: a stable id is derived from the body hash; the same bytes again are a duplicate', async () => {
      const event = contactEvent(clock)
      delete event.webhookId
      const input = signed(JSON.stringify(event))
      const expected = `sha256:${createHash('sha256').update(input.rawBody).digest('hex')}`
      const first = await receiver.receive(input)
      assert.deepEqual(first.body, { ok: true, webhookId: expected })
      await receiver.idle()
      const second = await receiver.receive(input)
      assert.deepEqual(second.body, { ok: true, duplicate: true, webhookId: expected })
    })

    test('unsigned webhooks: accepted only with allowUnsignedWebhooks outside production; a bad signature is still rejected', async () => {
      const dev = new WebhookReceiver({ config: { ...config, allowUnsignedWebhooks: true }, vault, tokens: unreachableTokens, clock })
      const ok = await dev.receive({ rawBody: Buffer.from(JSON.stringify(contactEvent(clock))), headers: {} })
      assert.equal(ok.status, 200)
      await dev.idle()
      await assertRejected(signed(JSON.stringify(contactEvent(clock)), 'ed25519', otherEd.privateKey), 401, 'GHL_WEBHOOK_SIGNATURE_INVALID', /does not verify/, dev)
      const prod = new WebhookReceiver({ config: { ...config, allowUnsignedWebhooks: true, production: true }, vault, tokens: unreachableTokens, clock })
      await assertRejected({ rawBody: Buffer.from(JSON.stringify(contactEvent(clock))), headers: {} }, 401, 'GHL_WEBHOOK_SIGNATURE_INVALID', /no signature/, prod)
    })

    test('fuzz: random bytes, huge numbers, nested arrays — signed or not — never crash, always 4xx, nothing stored', async () => {
      const before = await snapshot()
      const bodies: Buffer[] = []
      let seed = 12345
      const rnd = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff)
      for (let i = 0; i < 40; i++) bodies.push(Buffer.from(Array.from({ length: rnd() % 300 }, () => rnd() & 0xff)))
      const ts = new Date(clock.now()).toISOString()
      bodies.push(
        Buffer.from(`{"type":"ContactCreate","webhookId":"n","timestamp":1e999}`),
        Buffer.from(`{"type":"ContactCreate","webhookId":${'9'.repeat(400)},"timestamp":"${ts}"}`),
        Buffer.from(`{"type":"ContactCreate","webhookId":"w","timestamp":-1e308}`),
        Buffer.from(`{"type":["ContactCreate"],"webhookId":"w","timestamp":"${ts}"}`),
        Buffer.from(`${'['.repeat(3000)}${']'.repeat(3000)}`),
        Buffer.from(`{"type":"ContactCreate","webhookId":"${'w'.repeat(300)}","timestamp":"${ts}"}`),
        Buffer.from(`{"__proto__":{"polluted":true},"type":"Nope","webhookId":"p","timestamp":"${ts}"}`),
        Buffer.from('\uFEFF{}'),
        Buffer.alloc(0),
      )
      for (const body of bodies) {
        for (const input of [signed(body), signed(body, 'rsa'), { rawBody: body, headers: {} }]) {
          const res = await receiver.receive(input)
          assert.ok(res.status >= 400 && res.status < 500, `status ${res.status} for ${body.toString('hex').slice(0, 40)}`)
          assert.equal(res.body.ok, false)
        }
      }
      await receiver.idle()
      assert.equal(({} as Record<string, unknown>).polluted, undefined)
      assert.deepEqual(await snapshot(), before)
    })

    test("typed subscriptions: '*' sees every event, a type only its own; unsubscribe works; unknown types are refused", async () => {
      const all: string[] = []
      const contacts: string[] = []
      const offAll = receiver.on('*', (e) => void all.push(e.type))
      receiver.on('ContactCreate', (e) => void contacts.push(e.id))
      await receiver.receive(signed(JSON.stringify(contactEvent(clock))))
      await receiver.receive(signed(JSON.stringify(contactEvent(clock, { type: 'OpportunityCreate' }))))
      await receiver.idle()
      assert.deepEqual(all.sort(), ['ContactCreate', 'OpportunityCreate'])
      assert.equal(contacts.length, 1)
      offAll()
      await receiver.receive(signed(JSON.stringify(contactEvent(clock, { type: 'TaskCreate' }))))
      await receiver.idle()
      assert.equal(all.length, 2)
      assert.throws(() => receiver.on('Bogus' as 'ContactCreate', () => {}), /Unknown webhook event type "Bogus"/)
    })

    test('a handler that throws marks the event failed (attempts, lastError); the retry loop processes it', async () => {
      let calls = 0
      receiver.on('ContactUpdate', () => {
        calls++
        if (calls === 1) throw new Error('crm down')
      })
      const event = contactEvent(clock, { type: 'ContactUpdate' })
      assert.equal((await receiver.receive(signed(JSON.stringify(event)))).status, 200)
      await receiver.idle()
      const failed = (await vault.webhooks.list({ status: 'failed', limit: 1000 })).find((w) => w.webhookId === event.webhookId)
      assert.equal(failed?.attempts, 1)
      assert.equal(failed?.lastError, 'crm down')
      await receiver.runMaintenance()
      await receiver.idle()
      assert.equal(calls, 2)
      const done = (await vault.webhooks.list({ status: 'processed', limit: 1000 })).find((w) => w.webhookId === event.webhookId)
      assert.ok(done, 'the retried event was not marked processed')
      assert.equal(done.attempts, 1)
    })

    test('the background loop (start/stop) retries by itself; gives up after maxAttempts and keeps the event failed', async () => {
      /** Polls (real time: the loop runs on a real interval) until `check` holds; fails after 10 s. */
      const until = async (what: string, check: () => boolean | Promise<boolean>): Promise<void> => {
        const deadline = Date.now() + 10_000
        while (!(await check())) {
          if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`)
          await new Promise((r) => setTimeout(r, 20))
        }
      }
      let calls = 0
      const off = receiver.on('NoteCreate', () => {
        calls++
        throw new Error(`still failing ${calls}`)
      })
      // The control: an event that fails once, then succeeds on the loop's next pass.
      let controlCalls = 0
      const offControl = receiver.on('NoteUpdate', () => {
        controlCalls++
        if (controlCalls === 1) throw new Error('fails once')
      })
      const event = contactEvent(clock, { type: 'NoteCreate' })
      await receiver.receive(signed(JSON.stringify(event)))
      receiver.start()
      const gaveUp = async () => (await vault.audit.list()).filter((a) => a.action === 'webhook.failed' && a.detail.webhookId === event.webhookId)
      await until('the third attempt to be given up', async () => (await gaveUp()).length > 0)
      // No fourth attempt: the control event's retry needs a pass of the loop after the give-up was
      // recorded, and every pass lists every failed event with attempts left — the given-up one would be
      // retried in that same pass. stop() then waits for all work that pass started.
      const control = contactEvent(clock, { type: 'NoteUpdate' })
      await receiver.receive(signed(JSON.stringify(control)))
      await until('the control event to be retried and processed', async () => (await vault.webhooks.get(String(control.webhookId)))?.status === 'processed')
      await receiver.stop()
      off()
      offControl()
      assert.equal(controlCalls, 2, 'the control failed once and was retried once')
      assert.equal(calls, 3, 'maxAttempts is 3')
      const failed = (await vault.webhooks.list({ status: 'failed', limit: 1000 })).find((w) => w.webhookId === event.webhookId)
      assert.equal(failed?.attempts, 3)
      assert.equal(failed?.lastError, 'still failing 3')
      assert.equal((await gaveUp()).length, 1, 'giving up is audited once')
      assert.deepEqual((await gaveUp())[0]!.detail, { webhookId: event.webhookId, type: 'NoteCreate', attempts: 3, lastError: 'still failing 3' })
    })

    test('a pending event left by a process that died is resumed by the loop', async () => {
      const event = contactEvent(clock, { type: 'TaskCreate' })
      await vault.webhooks.record({
        webhookId: String(event.webhookId),
        type: 'TaskCreate',
        payload: event,
        locationId: 'loc-1',
        companyId: null,
        receivedAt: new Date(clock.now()),
        expiresAt: new Date(clock.now() + 3_600_000),
      })
      const got: unknown[] = []
      receiver.on('TaskCreate', (e) => void got.push(e))
      await receiver.runMaintenance()
      assert.equal(got.length, 0, 'a fresh pending event may still be processing elsewhere')
      clock.advance(100)
      await receiver.runMaintenance()
      await receiver.idle()
      assert.equal(got.length, 1)
    })

    test('two instances (two vaults on one database) running maintenance at once: a failed event and a stale pending one are each handled exactly once', async () => {
      const vault2 = await createVault({ databaseUrl: db.url, keys: config.encryptionKeys })
      try {
        // The first attempt fails here, so the event is `failed` with attempts 1.
        const failing = receiver.on('ContactTagUpdate', () => {
          throw new Error('crm down')
        })
        const event = contactEvent(clock, { type: 'ContactTagUpdate' })
        await receiver.receive(signed(JSON.stringify(event)))
        await receiver.idle()
        failing()
        // A pending event whose process died (never processed, older than one interval).
        const orphan = contactEvent(clock, { type: 'ContactTagUpdate' })
        await vault.webhooks.record({
          webhookId: String(orphan.webhookId),
          type: 'ContactTagUpdate',
          payload: orphan,
          locationId: 'loc-1',
          companyId: null,
          receivedAt: new Date(clock.now()),
          expiresAt: new Date(clock.now() + 3_600_000),
        })
        clock.advance(100)
        const calls = new Map<string, number>()
        const instances = [vault, vault2].map((v) => {
          const r = new WebhookReceiver({ config, vault: v, tokens: unreachableTokens, clock, retry: { intervalMs: 50, maxAttempts: 3 } })
          r.on('ContactTagUpdate', async (e) => {
            calls.set(e.webhookId, (calls.get(e.webhookId) ?? 0) + 1)
            await new Promise((resolve) => setTimeout(resolve, 30)) // long enough for the other instance to overlap
          })
          return r
        })
        await Promise.all([...instances.map((r) => r.runMaintenance()), ...instances.map((r) => r.runMaintenance())])
        await Promise.all(instances.map((r) => r.idle()))
        assert.equal(calls.get(String(event.webhookId)), 1, 'the failed event was retried by both instances')
        assert.equal(calls.get(String(orphan.webhookId)), 1, 'the pending event was resumed by both instances')
        const processed = await vault.webhooks.list({ status: 'processed', limit: 10_000 })
        const done = processed.find((w) => w.webhookId === event.webhookId)
        assert.equal(done?.attempts, 1)
        assert.ok(processed.some((w) => w.webhookId === orphan.webhookId))
        // Nothing is left to do: another pass on both handles nothing again.
        await Promise.all(instances.map((r) => r.runMaintenance()))
        await Promise.all(instances.map((r) => r.idle()))
        assert.equal(calls.get(String(event.webhookId)), 1)
        assert.equal(calls.get(String(orphan.webhookId)), 1)
      } finally {
        await vault2.close()
      }
    })

    test('an event claimed by another instance is not processed here until the claim passes', async () => {
      const event = contactEvent(clock, { type: 'ContactDndUpdate' })
      const id = String(event.webhookId)
      await vault.webhooks.record({
        webhookId: id,
        type: 'ContactDndUpdate',
        payload: event,
        locationId: 'loc-1',
        companyId: null,
        receivedAt: new Date(clock.now()),
        expiresAt: new Date(clock.now() + 3_600_000),
      })
      // Another instance is processing it (its claim runs to now + 120 s).
      assert.equal(await vault.webhooks.claim(id, 'other-instance', new Date(clock.now() + 120_000), { now: new Date(clock.now()) }), true)
      let calls = 0
      receiver.on('ContactDndUpdate', () => void calls++)
      clock.advance(100)
      await receiver.runMaintenance()
      await receiver.idle()
      assert.equal(calls, 0)
      assert.ok((await vault.webhooks.list({ status: 'pending', limit: 10_000 })).some((w) => w.webhookId === id))
      // That instance died: once its claim has passed, the event is taken over.
      clock.advance(120_000)
      await receiver.runMaintenance()
      await receiver.idle()
      assert.equal(calls, 1)
      assert.ok((await vault.webhooks.list({ status: 'processed', limit: 10_000 })).some((w) => w.webhookId === id))
    })

    test('maintenance purges records past their retention; a replay of a purged event is then stale, never processed again', async () => {
      const input = signed(JSON.stringify(contactEvent(clock, { type: 'ContactDelete' })))
      let calls = 0
      receiver.on('ContactDelete', () => void calls++)
      await receiver.receive(input)
      await receiver.idle()
      const id = JSON.parse(input.rawBody.toString()).webhookId as string
      clock.advance(3_599_999)
      await receiver.runMaintenance()
      assert.ok((await vault.webhooks.list({ status: 'processed', limit: 10_000 })).some((w) => w.webhookId === id), 'not yet expired')
      clock.advance(1)
      await receiver.runMaintenance()
      assert.ok(!(await vault.webhooks.list({ status: 'processed', limit: 10_000 })).some((w) => w.webhookId === id), 'purged')
      const replay = await receiver.receive(input)
      assert.equal(replay.status, 400)
      assert.equal(replay.body.code, 'GHL_WEBHOOK_STALE')
      await receiver.idle()
      assert.equal(calls, 1)
    })

    test('UNINSTALL for a location never installed: processed, audited, nothing else changes', async () => {
      const body = { type: 'UNINSTALL', appId: APP_ID, locationId: 'never-installed', timestamp: new Date(clock.now()).toISOString(), webhookId: `un-${counter++}` }
      const res = await receiver.receive(signed(JSON.stringify(body)))
      assert.equal(res.status, 200)
      await receiver.idle()
      const audit = (await vault.audit.list()).filter((a) => a.action === 'webhook.uninstall.unknown')
      assert.ok(audit.some((a) => a.detail.locationId === 'never-installed'))
      assert.deepEqual(await vault.installations.list(), [])
    })

    test('forwarding: verified events are POSTed with the event headers; a failing endpoint is retried', async () => {
      const seen: { headers: IncomingMessage['headers']; body: string }[] = []
      let fail = true
      const server: Server = createServer((req, res) => {
        const chunks: Buffer[] = []
        req.on('data', (c: Buffer) => chunks.push(c))
        req.on('end', () => {
          seen.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') })
          res.statusCode = fail ? 503 : 204
          fail = false
          res.end()
        })
      })
      server.listen(0, '127.0.0.1')
      await once(server, 'listening')
      try {
        const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`
        // maxAttempts as in the other tests: events given up on earlier stay given up.
        const secret = Buffer.alloc(32, 7)
        const fwd = new WebhookReceiver({ config: { ...config, webhookForwardUrl: url, webhookForwardSecret: secret }, vault, tokens: unreachableTokens, clock, retry: { maxAttempts: 3 } })
        const event = contactEvent(clock, { type: 'OpportunityStatusUpdate' })
        await fwd.receive(signed(JSON.stringify(event)))
        await fwd.idle()
        assert.equal(seen.length, 1)
        const failed = (await vault.webhooks.list({ status: 'failed', limit: 1000 })).find((w) => w.webhookId === event.webhookId)
        assert.match(failed?.lastError ?? '', /^GHL_WEBHOOK_FORWARD_FAILED: .*answered 503/)
        // The next attempt is due 5 s after receipt (test/webhooks/forward.test.ts has the whole schedule).
        await fwd.runMaintenance()
        await fwd.idle()
        assert.equal(seen.length, 1, 'not retried before it is due')
        clock.advance(5_000)
        await fwd.runMaintenance()
        await fwd.idle()
        assert.equal(seen.length, 2, JSON.stringify(seen.map((x) => x.headers['x-ghl-connect-event'])))
        assert.equal(seen[1]!.headers['x-ghl-connect-event'], 'OpportunityStatusUpdate')
        assert.equal(seen[1]!.headers['x-ghl-connect-webhook-id'], event.webhookId)
        assert.deepEqual(JSON.parse(seen[1]!.body), event)
        assert.ok((await vault.webhooks.list({ status: 'processed', limit: 1000 })).some((w) => w.webhookId === event.webhookId))
      } finally {
        server.close()
      }
    })

    test('the vault failing → 500 GHL_INTERNAL (HighLevel will retry), no crash', async () => {
      const broken = wrapVault(vault, { webhooks: { record: () => Promise.reject(new Error('database is down')) } })
      const r = new WebhookReceiver({ config, vault: broken, tokens: unreachableTokens, clock })
      const res = await r.receive(signed(JSON.stringify(contactEvent(clock))))
      assert.equal(res.status, 500)
      assert.equal(res.body.code, 'GHL_INTERNAL')
      assert.doesNotMatch(res.body.message ?? '', /database is down/)
    })

    test('the database not answering → 503 GHL_DATABASE_UNAVAILABLE with Retry-After (HighLevel delivers it again), nothing acknowledged', async () => {
      const silent = wrapVault(vault, {
        webhooks: { record: () => Promise.reject(new GhlError('GHL_DATABASE_UNAVAILABLE', 'The database did not answer: timeout')) },
      })
      const r = new WebhookReceiver({ config, vault: silent, tokens: unreachableTokens, clock })
      const event = contactEvent(clock)
      const res = await r.receive(signed(JSON.stringify(event)))
      assert.equal(res.status, 503)
      assert.equal(res.body.code, 'GHL_DATABASE_UNAVAILABLE')
      assert.equal(res.headers?.['retry-after'], '5')
      // Positive control: the same delivery, once the database answers, is stored and acknowledged.
      const ok = await new WebhookReceiver({ config, vault, tokens: unreachableTokens, clock }).receive(signed(JSON.stringify(event)))
      assert.equal(ok.status, 200)
      assert.equal(ok.body.duplicate, undefined, 'the 503 stored nothing, so the redelivery is new')
    })
  })
}
