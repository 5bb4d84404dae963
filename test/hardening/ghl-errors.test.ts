/**
 * Every error a library caller can get is a GhlError with a code from the one table. Here: the webhook
 * signature check with bad keys and bad inputs (as a caller wiring its own framework may pass them),
 * and the receiver built with a bad configured key. A plain TypeError from inside (reading a property
 * of `undefined`, iterating a number) would fail these.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairSync, sign } from 'node:crypto'
import { ERROR_CODES, GhlError, WebhookRejectedError } from '../../src/errors.js'
import { loadConfig } from '../../src/config.js'
import { createVault } from '../../src/vault/create-vault.js'
import { verifyWebhookSignature, WebhookVerifier, type WebhookHeaders, type WebhookKeys } from '../../src/webhooks/verify.js'
import { WebhookReceiver } from '../../src/webhooks/webhook-receiver.js'
import type { TokenManager } from '../../src/tokens/types.js'
import { tempDir, testKey } from '../helpers/services.js'

const ed = generateKeyPairSync('ed25519')
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
const edPem = ed.publicKey.export({ type: 'spki', format: 'pem' }).toString()
const rsaPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString()
const body = Buffer.from('{"type":"ContactCreate","webhookId":"w1","timestamp":"2026-01-01T00:00:00Z"}')
const edSig = sign(null, body, ed.privateKey).toString('base64')
const rsaSig = sign('sha256', body, rsa.privateKey).toString('base64')

/** Asserts `fn` throws a GhlError of `code` (from the table) whose message matches. */
function throwsGhl(what: string, fn: () => unknown, code: keyof typeof ERROR_CODES, message: RegExp): void {
  let caught: unknown
  try {
    fn()
  } catch (err) {
    caught = err
  }
  assert.ok(caught instanceof GhlError, `${what}: expected a GhlError, got ${caught === undefined ? 'no error' : String(caught)}`)
  assert.equal(caught.code, code, `${what}: ${caught.message}`)
  assert.ok(caught.code in ERROR_CODES)
  assert.equal(caught.status, ERROR_CODES[code][0])
  assert.match(caught.message, message, what)
}

const BAD_KEYS: ReadonlyArray<[string, unknown, RegExp]> = [
  ['no keys object (undefined)', undefined, /expected an object with ed25519 and\/or rsa keys, got undefined/],
  ['null keys', null, /expected an object with ed25519 and\/or rsa keys, got null/],
  ['a string instead of the keys object', edPem, /expected an object with ed25519 and\/or rsa keys, got string/],
  ['an Ed25519 key that is not base64 of 32 bytes', { ed25519: 'not-a-key' }, /Invalid Ed25519 webhook public key: .*32 raw bytes/],
  ['an RSA PEM given as the Ed25519 key', { ed25519: rsaPem }, /Invalid Ed25519 webhook public key: expected an Ed25519 public key, got a public rsa key/],
  ['an Ed25519 private key', { ed25519: ed.privateKey }, /Invalid Ed25519 webhook public key: expected an Ed25519 public key, got a private ed25519 key/],
  ['a number as the Ed25519 key', { ed25519: 42 }, /Invalid Ed25519 webhook public key/],
  ['a null among several Ed25519 keys', { ed25519: [edPem, null] }, /Invalid Ed25519 webhook public key/],
  ['a PEM that does not parse as the RSA key', { rsa: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----' }, /Invalid RSA webhook public key/],
  ['an Ed25519 PEM given as the RSA key', { rsa: edPem }, /Invalid RSA webhook public key: expected an RSA public key, got a public ed25519 key/],
  ['an object that is no key as the RSA key', { rsa: {} }, /Invalid RSA webhook public key/],
]

for (const [what, keys, message] of BAD_KEYS) {
  test(`verifyWebhookSignature with ${what} → GhlError GHL_CONFIG_INVALID`, () => {
    throwsGhl(what, () => verifyWebhookSignature(body, { 'x-ghl-signature': edSig }, keys as WebhookKeys), 'GHL_CONFIG_INVALID', message)
    throwsGhl(`new WebhookVerifier: ${what}`, () => new WebhookVerifier(keys as WebhookKeys), 'GHL_CONFIG_INVALID', message)
  })
}

const BAD_INPUTS: ReadonlyArray<[string, unknown, unknown, keyof typeof ERROR_CODES, RegExp]> = [
  ['a string body', body.toString(), { 'x-ghl-signature': edSig }, 'GHL_WEBHOOK_INVALID', /must be the raw request bytes/],
  ['no body', undefined, { 'x-ghl-signature': edSig }, 'GHL_WEBHOOK_INVALID', /must be the raw request bytes/],
  ['null headers', body, null, 'GHL_WEBHOOK_SIGNATURE_INVALID', /no request headers/],
  ['headers as a string', body, 'x-ghl-signature: abc', 'GHL_WEBHOOK_SIGNATURE_INVALID', /no request headers/],
  ['a signature header that is a number', body, { 'x-ghl-signature': 12345 }, 'GHL_WEBHOOK_SIGNATURE_INVALID', /x-ghl-signature header is not text/],
  ['a signature header list with a number in it', body, { 'x-wh-signature': [rsaSig, 7] }, 'GHL_WEBHOOK_SIGNATURE_INVALID', /x-wh-signature header is not text/],
  ['a signature header that is an object', body, { 'x-ghl-signature': { value: edSig } }, 'GHL_WEBHOOK_SIGNATURE_INVALID', /x-ghl-signature header is not text/],
  ['two different signature values', body, { 'x-ghl-signature': [edSig, `${edSig.slice(0, -4)}AAA=`] }, 'GHL_WEBHOOK_SIGNATURE_INVALID', /sent 2 times with different values/],
  ['an empty signature', body, { 'x-ghl-signature': '' }, 'GHL_WEBHOOK_SIGNATURE_INVALID', /header is empty/],
  ['a signature that is not base64', body, { 'x-ghl-signature': '%%%' }, 'GHL_WEBHOOK_SIGNATURE_INVALID', /not valid base64/],
  ['no signature header', body, {}, 'GHL_WEBHOOK_SIGNATURE_INVALID', /no signature/],
]

for (const [what, raw, headers, code, message] of BAD_INPUTS) {
  test(`verifyWebhookSignature with ${what} → ${code}`, () => {
    throwsGhl(what, () => verifyWebhookSignature(raw as Buffer, headers as WebhookHeaders, { ed25519: edPem, rsa: rsaPem }), code, message)
    assert.throws(() => verifyWebhookSignature(raw as Buffer, headers as WebhookHeaders, { ed25519: edPem, rsa: rsaPem }), WebhookRejectedError)
  })
}

test('positive control: the same keys and headers, well formed, verify', () => {
  assert.deepEqual(verifyWebhookSignature(body, { 'x-ghl-signature': edSig }, { ed25519: edPem, rsa: rsaPem }), { algorithm: 'ed25519' })
  assert.deepEqual(verifyWebhookSignature(body, { 'x-wh-signature': [rsaSig, rsaSig] }, { ed25519: [edPem], rsa: rsaPem }), { algorithm: 'rsa-sha256' })
})

test('a WebhookReceiver configured with a key that does not parse → GhlError GHL_CONFIG_INVALID at construction', async () => {
  const dir = tempDir()
  const key = testKey()
  const config = loadConfig({
    env: { GHL_CLIENT_ID: 'errs1234-client', GHL_CLIENT_SECRET: 'x', GHL_REDIRECT_URI: 'http://127.0.0.1:1/cb', GHL_SCOPES: 's', GHL_ENCRYPTION_KEY: key, DATABASE_URL: `${dir.path}/v.db` },
  })
  const vault = await createVault({ databaseUrl: config.databaseUrl, keys: config.encryptionKeys })
  const tokens = {} as TokenManager
  try {
    throwsGhl('receiver', () => new WebhookReceiver({ config: { ...config, webhookEd25519PublicKeys: ['garbage'] }, vault, tokens }), 'GHL_CONFIG_INVALID', /Invalid Ed25519 webhook public key/)
    throwsGhl('receiver', () => new WebhookReceiver({ config: { ...config, webhookRsaPublicKey: 'garbage' }, vault, tokens }), 'GHL_CONFIG_INVALID', /Invalid RSA webhook public key/)
  } finally {
    await vault.close()
    dir.remove()
  }
})
