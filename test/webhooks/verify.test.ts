/**
 * Signature verification with real keys generated here: Ed25519 (`x-ghl-signature`) and RSA-SHA256
 * (`x-wh-signature`), always over the exact body bytes.
 */
import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairSync, sign } from 'node:crypto'
import { verifyWebhookSignature, WebhookVerifier, parseEd25519PublicKey } from '../../src/webhooks/verify.js'
import { WebhookRejectedError } from '../../src/errors.js'
import { HIGHLEVEL_WEBHOOK_RSA_PUBLIC_KEY } from '../../src/config.js'

const ed = generateKeyPairSync('ed25519')
const otherEd = generateKeyPairSync('ed25519')
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
const otherRsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
const edPem = ed.publicKey.export({ type: 'spki', format: 'pem' }).toString()
const rsaPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString()
const keys = { ed25519: edPem, rsa: rsaPem }

const body = Buffer.from(JSON.stringify({ type: 'ContactCreate', webhookId: 'w1', timestamp: '2026-01-01T00:00:00Z', id: 'c1' }))
const edSig = (b: Buffer, key = ed.privateKey): string => sign(null, b, key).toString('base64')
const rsaSig = (b: Buffer, key = rsa.privateKey): string => sign('sha256', b, key).toString('base64')

function rejects(fn: () => unknown, fragment: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof WebhookRejectedError, String(err))
    assert.equal(err.code, 'GHL_WEBHOOK_SIGNATURE_INVALID')
    assert.equal(err.status, 401)
    assert.match(err.message, fragment)
    return true
  })
}

describe('verifyWebhookSignature', () => {
  test('a valid Ed25519 x-ghl-signature verifies', () => {
    assert.deepEqual(verifyWebhookSignature(body, { 'x-ghl-signature': edSig(body) }, keys), { algorithm: 'ed25519' })
  })

  test('a valid RSA x-wh-signature verifies', () => {
    assert.deepEqual(verifyWebhookSignature(body, { 'x-wh-signature': rsaSig(body) }, keys), { algorithm: 'rsa-sha256' })
  })

  test('x-ghl-signature wins when both are present (a bad RSA one does not matter)', () => {
    const r = verifyWebhookSignature(body, { 'x-ghl-signature': edSig(body), 'x-wh-signature': 'AAAA' }, keys)
    assert.equal(r.algorithm, 'ed25519')
  })

  test('a failing x-ghl-signature is not rescued by a valid x-wh-signature', () => {
    rejects(() => verifyWebhookSignature(body, { 'x-ghl-signature': edSig(body, otherEd.privateKey), 'x-wh-signature': rsaSig(body) }, keys), /x-ghl-signature \(Ed25519\) does not verify/)
  })

  test('x-ghl-signature without an Ed25519 key falls back to x-wh-signature', () => {
    const r = verifyWebhookSignature(body, { 'x-ghl-signature': edSig(body), 'x-wh-signature': rsaSig(body) }, { rsa: rsaPem })
    assert.equal(r.algorithm, 'rsa-sha256')
  })

  test('x-ghl-signature without an Ed25519 key and no x-wh-signature → rejected, saying why', () => {
    rejects(() => verifyWebhookSignature(body, { 'x-ghl-signature': edSig(body) }, { rsa: rsaPem }), /no Ed25519 public key is configured.*no x-wh-signature/)
  })

  test('forged: signed with another Ed25519 key → rejected', () => {
    rejects(() => verifyWebhookSignature(body, { 'x-ghl-signature': edSig(body, otherEd.privateKey) }, keys), /x-ghl-signature \(Ed25519\) does not verify/)
  })

  test('forged: signed with another RSA key → rejected', () => {
    rejects(() => verifyWebhookSignature(body, { 'x-wh-signature': rsaSig(body, otherRsa.privateKey) }, keys), /x-wh-signature \(RSA-SHA256\) does not verify/)
  })

  test("HighLevel's published RSA key does not accept our own signature", () => {
    rejects(() => verifyWebhookSignature(body, { 'x-wh-signature': rsaSig(body) }, { rsa: HIGHLEVEL_WEBHOOK_RSA_PUBLIC_KEY }), /must be a 512-byte RSA signature/)
  })

  test('tampered: one byte of the body flipped → rejected (both schemes)', () => {
    const tampered = Buffer.from(body)
    tampered[10]! ^= 0x01
    rejects(() => verifyWebhookSignature(tampered, { 'x-ghl-signature': edSig(body) }, keys), /does not verify/)
    rejects(() => verifyWebhookSignature(tampered, { 'x-wh-signature': rsaSig(body) }, keys), /does not verify/)
  })

  test('missing signature → rejected naming both headers', () => {
    rejects(() => verifyWebhookSignature(body, { 'content-type': 'application/json' }, keys), /no signature: expected an x-ghl-signature \(Ed25519\) or x-wh-signature/)
  })

  test('undecodable, empty or wrong-length signatures → rejected naming the header', () => {
    rejects(() => verifyWebhookSignature(body, { 'x-ghl-signature': 'not base64 !!' }, keys), /x-ghl-signature header is not valid base64/)
    rejects(() => verifyWebhookSignature(body, { 'x-wh-signature': '%%%' }, keys), /x-wh-signature header is not valid base64/)
    rejects(() => verifyWebhookSignature(body, { 'x-ghl-signature': '' }, keys), /x-ghl-signature header is empty/)
    rejects(() => verifyWebhookSignature(body, { 'x-ghl-signature': 'AAAA' }, keys), /64-byte Ed25519 signature, got 3 bytes/)
    rejects(() => verifyWebhookSignature(body, { 'x-wh-signature': 'AAAA' }, keys), /256-byte RSA signature, got 3 bytes/)
  })

  test('x-wh-signature with no RSA key configured → rejected', () => {
    rejects(() => verifyWebhookSignature(body, { 'x-wh-signature': rsaSig(body) }, { ed25519: edPem }), /no RSA public key is configured/)
  })

  test('header names match case-insensitively; a repeated identical header is fine, differing ones are not', () => {
    assert.equal(verifyWebhookSignature(body, { 'X-GHL-Signature': edSig(body) }, keys).algorithm, 'ed25519')
    assert.equal(verifyWebhookSignature(body, { 'x-ghl-signature': [edSig(body), edSig(body)] }, keys).algorithm, 'ed25519')
    rejects(() => verifyWebhookSignature(body, { 'x-ghl-signature': [edSig(body), edSig(Buffer.from('x'))] }, keys), /sent 2 times/)
  })

  test('signature over the raw bytes: unusual key order, whitespace and \\u escapes verify; the re-serialised JSON does not', () => {
    const raw = Buffer.from('{ "timestamp" : "2026-01-01T00:00:00Z",\n\t"name":"Ren\\u00e9e",  "type":"ContactCreate", "webhookId":"w-raw" }\n', 'utf8')
    const headers = { 'x-ghl-signature': edSig(raw), 'x-wh-signature': rsaSig(raw) }
    assert.equal(verifyWebhookSignature(raw, headers, keys).algorithm, 'ed25519')
    assert.equal(verifyWebhookSignature(raw, headers, { rsa: rsaPem }).algorithm, 'rsa-sha256')
    const reserialised = Buffer.from(JSON.stringify(JSON.parse(raw.toString('utf8'))))
    assert.equal(JSON.parse(reserialised.toString()).name, 'Renée')
    rejects(() => verifyWebhookSignature(reserialised, headers, keys), /does not verify/)
    rejects(() => verifyWebhookSignature(reserialised, headers, { rsa: rsaPem }), /does not verify/)
  })

  test('keys: base64 raw 32-byte Ed25519 key and KeyObjects are accepted', () => {
    const jwk = ed.publicKey.export({ format: 'jwk' })
    const raw = Buffer.from(jwk.x!, 'base64url').toString('base64')
    assert.equal(verifyWebhookSignature(body, { 'x-ghl-signature': edSig(body) }, { ed25519: raw }).algorithm, 'ed25519')
    assert.equal(verifyWebhookSignature(body, { 'x-ghl-signature': edSig(body) }, { ed25519: ed.publicKey }).algorithm, 'ed25519')
    assert.equal(verifyWebhookSignature(body, { 'x-wh-signature': rsaSig(body) }, { rsa: rsa.publicKey }).algorithm, 'rsa-sha256')
  })

  test('bad keys fail at construction with a clear message', () => {
    assert.throws(() => parseEd25519PublicKey('AAAA'), /32 raw bytes, got 3 bytes/)
    assert.throws(() => new WebhookVerifier({ ed25519: rsaPem }), /expected an Ed25519 public key, got a public rsa key/)
    assert.throws(() => new WebhookVerifier({ rsa: edPem }), /expected an RSA public key, got a public ed25519 key/)
  })

  test('fuzz: random bodies and signatures never throw anything but WebhookRejectedError', () => {
    const verifier = new WebhookVerifier(keys)
    for (let i = 0; i < 200; i++) {
      const b = Buffer.from(Array.from({ length: i * 3 }, (_, j) => (j * 31 + i * 7) & 0xff))
      const sig = Buffer.from(Array.from({ length: (i % 70) + 1 }, (_, j) => (j * 13 + i) & 0xff)).toString('base64')
      assert.throws(() => verifier.verify(b, i % 2 ? { 'x-ghl-signature': sig } : { 'x-wh-signature': sig }), WebhookRejectedError)
    }
  })
})
