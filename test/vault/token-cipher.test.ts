/**
 * TokenCipher alone: AES-256-GCM round trips, binding to row and column, rotation, and errors that
 * never carry a secret.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { GhlError } from '../../src/errors.js'
import { TokenCipher } from '../../src/vault/token-cipher.js'

const A = { id: 'A', key: randomBytes(32) }
const B = { id: 'B', key: randomBytes(32) }
const SECRET = 'plaintext-access-token-0123456789'
const AAD = 'installation:app-1:location:L1:access'

function throwsCode(fn: () => unknown, code: string): GhlError {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof GhlError)
    assert.equal(err.code, code, err.message)
    return err
  }
  assert.fail(`expected ${code}`)
}

test('round trip; format v1.<keyId>.<iv>.<ct>.<tag>; a fresh IV every time', () => {
  const cipher = new TokenCipher([A])
  const one = cipher.encrypt(SECRET, AAD)
  const two = cipher.encrypt(SECRET, AAD)
  assert.notEqual(one, two)
  assert.match(one, /^v1\.A\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/)
  assert.equal(cipher.decrypt(one, AAD), SECRET)
  assert.equal(cipher.decrypt(two, AAD), SECRET)
  assert.equal(one.includes(SECRET), false)
  assert.equal(TokenCipher.keyIdOf(one), 'A')
  assert.equal(TokenCipher.keyIdOf('garbage'), undefined)
  assert.equal(cipher.currentKeyId, 'A')
})

test('another row or column (different AAD) fails authentication', () => {
  const cipher = new TokenCipher([A])
  const value = cipher.encrypt(SECRET, AAD)
  const err = throwsCode(() => cipher.decrypt(value, 'installation:app-1:location:L2:access'), 'GHL_VAULT_DECRYPT_FAILED')
  assert.equal(err.message.includes(SECRET), false)
  throwsCode(() => cipher.decrypt(value, 'installation:app-1:location:L1:refresh'), 'GHL_VAULT_DECRYPT_FAILED')
})

test('any flipped bit in IV, body or tag fails; messages never quote the value', () => {
  const cipher = new TokenCipher([A])
  const value = cipher.encrypt(SECRET, AAD)
  for (const part of [2, 3, 4]) {
    const parts = value.split('.')
    const bytes = Buffer.from(parts[part]!, 'base64url')
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0x80
    parts[part] = bytes.toString('base64url')
    const tampered = parts.join('.')
    const err = throwsCode(() => cipher.decrypt(tampered, AAD), 'GHL_VAULT_DECRYPT_FAILED')
    assert.equal(err.message.includes(parts[part]!), false)
    assert.equal(JSON.stringify(err).includes(parts[3]!), false)
    assert.equal(err.cause, undefined)
  }
})

test('a value relabelled to another configured key fails', () => {
  const cipher = new TokenCipher([A, B])
  const value = cipher.encrypt(SECRET, AAD).replace(/^v1\.A\./, 'v1.B.')
  throwsCode(() => cipher.decrypt(value, AAD), 'GHL_VAULT_DECRYPT_FAILED')
})

test('malformed values → GHL_VAULT_DECRYPT_FAILED', () => {
  const cipher = new TokenCipher([A])
  for (const bad of ['', 'v1.A.x', 'v2.A.a.b.c', 'v1.A.AAAA.AAAA.AAAA', SECRET]) {
    const err = throwsCode(() => cipher.decrypt(bad, AAD), 'GHL_VAULT_DECRYPT_FAILED')
    if (bad) assert.equal(err.message.includes(bad), false)
  }
})

test('rotation: the first key encrypts, every key decrypts; an unknown key id → GHL_VAULT_KEY_MISSING', () => {
  const old = new TokenCipher([A]).encrypt(SECRET, AAD)
  const rotated = new TokenCipher([B, A])
  assert.equal(rotated.decrypt(old, AAD), SECRET)
  assert.equal(TokenCipher.keyIdOf(rotated.encrypt(SECRET, AAD)), 'B')
  const err = throwsCode(() => new TokenCipher([B]).decrypt(old, AAD), 'GHL_VAULT_KEY_MISSING')
  assert.match(err.message, /key "A"/)
  assert.equal(err.message.includes(old.split('.')[3]!), false)
})

test('bad key configuration → GHL_CONFIG_INVALID listing every problem', () => {
  throwsCode(() => new TokenCipher([]), 'GHL_CONFIG_INVALID')
  const err = throwsCode(
    () => new TokenCipher([{ id: 'a.b', key: randomBytes(16) }, A, { id: 'A', key: randomBytes(32) }]),
    'GHL_CONFIG_INVALID',
  )
  assert.match(err.message, /keys\[0\]\.id/)
  assert.match(err.message, /keys\[0\]\.key to be 32 bytes, got 16/)
  assert.match(err.message, /unique, got "A" twice/)
})
