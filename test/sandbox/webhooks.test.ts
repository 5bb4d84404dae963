/**
 * Signed webhooks (INSTALL timing, UNINSTALL, arbitrary events, redelivery) received by a real HTTP
 * server and verified with node:crypto; SSO payloads decrypted by the openssl binary.
 */
import { after, before, beforeEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import { verify } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js'
import { authorize, call, exchange, getApi, installAgency, installLocation, postJson } from './helpers.js'

interface Received {
  body: Buffer
  headers: Record<string, string | string[] | undefined>
}

let receiver: Server
let received: Received[] = []
let answerStatus = 200
let waiters: Array<() => void> = []
let sb: Sandbox
let loc: string[]
let companyId: string

/** Resolves once `n` webhooks have arrived in total. */
function receivedCount(n: number): Promise<void> {
  if (received.length >= n) return Promise.resolve()
  return new Promise((resolve) => {
    const check = (): void => {
      if (received.length >= n) resolve()
      else waiters.push(check)
    }
    waiters.push(check)
  })
}

function payload(r: Received): Record<string, any> {
  return JSON.parse(r.body.toString('utf8'))
}

before(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      received.push({ body: Buffer.concat(chunks), headers: req.headers })
      res.statusCode = answerStatus
      res.end()
      const w = waiters
      waiters = []
      for (const f of w) f()
    })
  })
  receiver.listen(0, '127.0.0.1')
  await once(receiver, 'listening')
  const address = receiver.address()
  const port = typeof address === 'object' && address ? address.port : 0
  sb = await startSandbox()
  sb.configureApp({ webhookUrl: `http://127.0.0.1:${port}/webhooks` })
  loc = sb.companies[0]!.locations.map((l) => l.locationId)
  companyId = sb.companies[0]!.companyId
})
after(async () => {
  await sb.close()
  receiver.close()
})
beforeEach(async () => {
  await postJson(`${sb.url}/_sandbox/reset`, {})
  sb.configureApp({ webhookUrl: `http://127.0.0.1:${(receiver.address() as { port: number }).port}/webhooks` })
  received = []
  answerStatus = 200
})

describe('signatures', () => {
  test("webhookSignatures 'both': both signatures verify over the exact bytes with the keys of /_sandbox/keys", async () => {
    await call(`${sb.url}/_sandbox/settings`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ webhookSignatures: 'both' }) })
    const keys = (await call(`${sb.url}/_sandbox/keys`)).body
    assert.deepEqual(keys, sb.publicKeys)
    assert.match(keys.ed25519, /^-----BEGIN PUBLIC KEY-----/)
    assert.match(keys.rsa, /^-----BEGIN PUBLIC KEY-----/)
    await authorize(sb, { locationId: loc[0], webhookTiming: 'early' })
    assert.equal(received.length, 1, 'early: delivered before the redirect was returned')
    const r = received[0]!
    assert.equal(r.headers['content-type'], 'application/json')
    const ed = Buffer.from(String(r.headers['x-ghl-signature']), 'base64')
    const rsa = Buffer.from(String(r.headers['x-wh-signature']), 'base64')
    assert.equal(verify(null, r.body, keys.ed25519, ed), true)
    assert.equal(verify('sha256', r.body, keys.rsa, rsa), true)
    const tampered = Buffer.from(r.body.toString('utf8').replace('INSTALL', 'INSTALX'))
    assert.equal(verify(null, tampered, keys.ed25519, ed), false)
    assert.equal(verify('sha256', tampered, keys.rsa, rsa), false)
    const p = payload(r)
    assert.equal(p.type, 'INSTALL')
    assert.equal(p.appId, sb.app.appId)
    assert.equal(p.locationId, loc[0])
    assert.equal(p.companyId, companyId)
    assert.equal(typeof p.userId, 'string')
    assert.equal(p.companyName, 'Sandbox Agency')
    assert.equal(new Date(p.timestamp).toISOString(), p.timestamp)
    assert.equal(typeof p.webhookId, 'string')
  })
})

describe('install timing', () => {
  test('after-exchange: nothing until the code is exchanged, then the INSTALL follows', async () => {
    const code = await authorize(sb, { locationId: loc[1] })
    const list = (await call(`${sb.url}/_sandbox/webhooks`)).body
    assert.equal(list.length, 0)
    assert.equal((await exchange(sb, code)).status, 200)
    await receivedCount(1)
    assert.equal(payload(received[0]!).locationId, loc[1])
    const again = await exchange(sb, code)
    assert.equal(again.status, 400)
    const deliveries = (await call(`${sb.url}/_sandbox/webhooks`)).body
    assert.equal(deliveries.length, 1, 'sent once, on the first exchange only')
    assert.equal(deliveries[0].status, 'delivered')
    assert.equal(deliveries[0].responseStatus, 200)
  })

  test('none: no webhook at all', async () => {
    await installLocation(sb, loc[0]!)
    assert.equal((await call(`${sb.url}/_sandbox/webhooks`)).body.length, 0)
  })

  test('bulk agency install: one agency event plus one per approved location', async () => {
    await authorize(sb, { companyId, locationIds: [loc[0], loc[2]], webhookTiming: 'early' })
    const ps = received.map(payload)
    assert.equal(ps.length, 3)
    assert.deepEqual(Object.keys(ps[0]!).sort(), ['appId', 'companyId', 'installType', 'timestamp', 'type', 'versionId', 'webhookId'])
    assert.equal(ps[0]!.installType, 'Company')
    assert.equal(ps[0]!.companyId, companyId)
    assert.deepEqual(ps.slice(1).map((p) => p.locationId), [loc[0], loc[2]])
    assert.equal(new Set(ps.map((p) => p.webhookId)).size, 3)
  })
})

describe('uninstall, arbitrary events, redelivery', () => {
  test('uninstalling a location revokes its tokens and sends UNINSTALL', async () => {
    const t = await installLocation(sb, loc[0]!)
    const res = await postJson(`${sb.url}/_sandbox/uninstall`, { locationId: loc[0] })
    assert.equal(res.status, 200)
    assert.equal(res.body.revoked, 3, 'code, access and refresh token')
    assert.equal(received.length, 1)
    const p = payload(received[0]!)
    assert.equal(p.type, 'UNINSTALL')
    assert.equal(p.locationId, loc[0])
    assert.equal((await getApi(`${sb.url}/locations/${loc[0]}`, t.access_token)).status, 401)
    assert.equal((await postJson(`${sb.url}/_sandbox/uninstall`, { locationId: loc[0] })).status, 404)
  })

  test('uninstalling an agency revokes the location tokens minted from it', async () => {
    const agency = await installAgency(sb, { locationIds: [loc[0]] })
    const minted = await call(`${sb.url}/oauth/locationToken`, {
      method: 'POST',
      headers: { authorization: `Bearer ${agency.access_token}`, version: '2021-07-28', 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ companyId, locationId: loc[0]! }),
    })
    assert.equal(minted.status, 200)
    const res = await postJson(`${sb.url}/_sandbox/uninstall`, { companyId })
    assert.equal(res.status, 200)
    assert.deepEqual(received.map(payload).map((p) => [p.type, p.companyId ?? p.locationId]), [['UNINSTALL', companyId], ['UNINSTALL', loc[0]]])
    assert.equal((await getApi(`${sb.url}/locations/${loc[0]}`, minted.body.access_token)).status, 401)
    assert.equal((await getApi(`${sb.url}/locations/${loc[0]}`, agency.access_token)).status, 401)
  })

  test('an arbitrary event is signed and sent; redeliver sends identical bytes and headers', async () => {
    const sent = await postJson(`${sb.url}/_sandbox/webhooks/send`, { type: 'ContactCreate', locationId: loc[0], id: 'c1', email: 'a@b.c' })
    assert.equal(sent.status, 200)
    assert.equal(sent.body.status, 'delivered')
    const re = await postJson(`${sb.url}/_sandbox/webhooks/redeliver`, { webhookId: sent.body.webhookId })
    assert.equal(re.status, 200)
    assert.equal(re.body.attempts, 2)
    assert.equal(received.length, 2)
    assert.ok(received[0]!.body.equals(received[1]!.body))
    for (const h of ['x-ghl-signature', 'content-type']) assert.equal(received[0]!.headers[h], received[1]!.headers[h])
    assert.equal(payload(received[0]!).type, 'ContactCreate')
    assert.equal(payload(received[0]!).webhookId, sent.body.webhookId)
    assert.equal((await postJson(`${sb.url}/_sandbox/webhooks/redeliver`, { webhookId: 'nope' })).status, 404)
    assert.equal((await postJson(`${sb.url}/_sandbox/webhooks/send`, { id: 'x' })).status, 400)
  })

  test('a failed delivery is recorded and not retried', async () => {
    answerStatus = 500
    const sent = await postJson(`${sb.url}/_sandbox/webhooks/send`, { type: 'ContactDelete', locationId: loc[0] })
    assert.equal(sent.body.status, 'failed')
    assert.equal(sent.body.responseStatus, 500)
    // Positive control: a later event, answered 200, arrives — and nothing but it arrived after the failed one.
    answerStatus = 200
    const next = await postJson(`${sb.url}/_sandbox/webhooks/send`, { type: 'ContactCreate', locationId: loc[0] })
    assert.equal(next.body.status, 'delivered')
    await receivedCount(2)
    assert.deepEqual(received.map((r) => payload(r).webhookId), [sent.body.webhookId, next.body.webhookId])
    const list = (await call(`${sb.url}/_sandbox/webhooks`)).body as Array<{ webhookId: string; attempts: number }>
    assert.equal(list.find((w) => w.webhookId === sent.body.webhookId)?.attempts, 1)
    const re = await postJson(`${sb.url}/_sandbox/webhooks/redeliver`, { webhookId: sent.body.webhookId })
    assert.equal(re.body.status, 'delivered')
    assert.deepEqual(received.map((r) => payload(r).webhookId), [sent.body.webhookId, next.body.webhookId, sent.body.webhookId])
  })

  test('without a webhook URL, deliveries are recorded as skipped', async () => {
    sb.configureApp({ webhookUrl: null })
    const sent = await postJson(`${sb.url}/_sandbox/webhooks/send`, { type: 'ContactCreate' })
    assert.equal(sent.body.status, 'skipped')
    // Positive control: with the URL back, the next event arrives, and it is the only one that did.
    sb.configureApp({ webhookUrl: `http://127.0.0.1:${(receiver.address() as { port: number }).port}/webhooks` })
    const next = await postJson(`${sb.url}/_sandbox/webhooks/send`, { type: 'ContactCreate' })
    assert.equal(next.body.status, 'delivered')
    await receivedCount(1)
    assert.deepEqual(received.map((r) => payload(r).webhookId), [next.body.webhookId])
  })
})

describe('SSO', () => {
  function opensslDecrypt(payloadB64: string, secret: string): string {
    const out = spawnSync('openssl', ['enc', '-d', '-aes-256-cbc', '-md', 'md5', '-a', '-A', '-k', secret], { input: payloadB64 })
    assert.equal(out.status, 0, out.stderr.toString())
    return out.stdout.toString('utf8')
  }

  test('the payload decrypts with openssl and the app shared secret', async () => {
    const res = await postJson(`${sb.url}/_sandbox/sso`, {})
    assert.equal(res.status, 200)
    assert.ok(Buffer.from(res.body.payload, 'base64').subarray(0, 8).equals(Buffer.from('Salted__')))
    const ctx = JSON.parse(opensslDecrypt(res.body.payload, sb.app.sharedSecret))
    assert.deepEqual(Object.keys(ctx).sort(), ['companyId', 'email', 'role', 'type', 'userId', 'userName'])
    assert.equal(ctx.companyId, companyId)
    assert.equal(ctx.role, 'admin')
    assert.equal(ctx.type, 'agency')
    const users = (await call(`${sb.url}/_sandbox/users`)).body
    assert.equal(ctx.userId, users[0].userId)
    assert.equal(ctx.email, users[0].email)
    const wrong = spawnSync('openssl', ['enc', '-d', '-aes-256-cbc', '-md', 'md5', '-a', '-A', '-k', 'wrong-secret'], { input: res.body.payload })
    assert.ok(wrong.status !== 0 || !wrong.stdout.toString().includes(companyId))
  })

  test('a location context carries activeLocation; overrides apply; bad ids are refused', async () => {
    const res = await postJson(`${sb.url}/_sandbox/sso`, { locationId: loc[1], role: 'user', type: 'location' })
    const ctx = JSON.parse(opensslDecrypt(res.body.payload, sb.app.sharedSecret))
    assert.equal(ctx.activeLocation, loc[1])
    assert.equal(ctx.role, 'user')
    assert.equal(ctx.type, 'location')
    assert.equal((await postJson(`${sb.url}/_sandbox/sso`, { locationId: 'nope' })).status, 404)
    assert.equal((await postJson(`${sb.url}/_sandbox/sso`, { userId: 'nope' })).status, 404)
  })
})
