/**
 * SSO decryption against real OpenSSL output: `openssl enc -aes-256-cbc -md md5 -salt -base64 -A`
 * produces exactly what CryptoJS.AES.encrypt(text, passphrase) produces (HighLevel's format).
 */
import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { decryptUserContext, handleSsoRequest } from '../../src/sso/decrypt.js'
import { GhlError } from '../../src/errors.js'

const SECRET = `sso-${randomBytes(12).toString('hex')}`

/** Encrypts `plaintext` with the openssl CLI (the passphrase goes through an env var, not argv). */
function opensslEncrypt(plaintext: string, secret = SECRET): string {
  return execFileSync('openssl', ['enc', '-aes-256-cbc', '-md', 'md5', '-salt', '-base64', '-A', '-pass', 'env:GHL_TEST_SSO_PASS'], {
    input: plaintext,
    env: { ...process.env, GHL_TEST_SSO_PASS: secret },
  })
    .toString('utf8')
    .trim()
}

const LOCATION_USER = {
  userId: 'MKQJ7wOVVmNOMvrnKKKK',
  companyId: 'GNb7aIv4rQFVb9iwNl5K',
  role: 'admin',
  type: 'agency',
  activeLocation: 'yLKVZpNppIdYpah4RjNE',
  userName: 'Jöhn Doe',
  email: 'johndoe@example.com',
}
const AGENCY_USER = { ...LOCATION_USER, activeLocation: undefined }
delete (AGENCY_USER as Record<string, unknown>).activeLocation

/** Asserts GHL_SSO_INVALID, status 400, the message contains `fragment`, and neither the secret nor any plaintext value. */
function assertInvalid(fn: () => unknown, fragment: RegExp, plaintextValues: string[] = Object.values(LOCATION_USER)): GhlError {
  let caught: unknown
  try {
    fn()
  } catch (err) {
    caught = err
  }
  assert.ok(caught instanceof GhlError, `expected a GhlError, got ${String(caught)}`)
  assert.equal(caught.code, 'GHL_SSO_INVALID')
  assert.equal(caught.status, 400)
  assert.match(caught.message, fragment)
  const dumped = `${caught.message} ${JSON.stringify(caught)} ${String(caught.stack)}`
  assert.ok(!dumped.includes(SECRET), 'the secret leaked into the error')
  for (const v of plaintextValues) assert.ok(!dumped.includes(v), `plaintext value ${v} leaked into the error`)
  return caught
}

describe('decryptUserContext', () => {
  test('round trip: a location context encrypted by openssl decrypts and validates', () => {
    const payload = opensslEncrypt(JSON.stringify(LOCATION_USER))
    assert.ok(Buffer.from(payload, 'base64').subarray(0, 8).toString('latin1') === 'Salted__')
    assert.deepEqual(decryptUserContext(payload, SECRET), LOCATION_USER)
  })

  test('round trip: an agency context has no activeLocation; unknown fields are dropped', () => {
    const payload = opensslEncrypt(JSON.stringify({ ...AGENCY_USER, extra: 'x' }))
    const user = decryptUserContext(payload, SECRET)
    assert.deepEqual(user, AGENCY_USER)
    assert.equal('activeLocation' in user, false)
  })

  test('a long payload spanning many blocks and whitespace-wrapped base64 still decrypts', () => {
    const user = { ...LOCATION_USER, userName: 'x'.repeat(500) }
    const payload = opensslEncrypt(JSON.stringify(user))
    const wrapped = payload.replace(/(.{64})/g, '$1\n')
    assert.deepEqual(decryptUserContext(wrapped, SECRET), user)
  })

  test('wrong secret → GHL_SSO_INVALID', () => {
    const payload = opensslEncrypt(JSON.stringify(LOCATION_USER))
    // Bad padding almost always; in the rare case the padding happens to be valid the garbage is not UTF-8/JSON.
    assertInvalid(() => decryptUserContext(payload, `${SECRET}-wrong`), /wrong shared secret|tampered/)
  })

  test('truncated ciphertext (not a whole block) → GHL_SSO_INVALID "truncated"', () => {
    const raw = Buffer.from(opensslEncrypt(JSON.stringify(LOCATION_USER)), 'base64')
    const cut = raw.subarray(0, raw.length - 5).toString('base64')
    assertInvalid(() => decryptUserContext(cut, SECRET), /truncated/)
  })

  test('truncated to the header only → GHL_SSO_INVALID "too short"', () => {
    const raw = Buffer.from(opensslEncrypt(JSON.stringify(LOCATION_USER)), 'base64')
    assertInvalid(() => decryptUserContext(raw.subarray(0, 20).toString('base64'), SECRET), /too short/)
    assertInvalid(() => decryptUserContext(raw.subarray(0, 4).toString('base64'), SECRET), /too short/)
  })

  test('a whole block cut off the end → GHL_SSO_INVALID (bad padding or not JSON)', () => {
    const raw = Buffer.from(opensslEncrypt(JSON.stringify(LOCATION_USER)), 'base64')
    const cut = raw.subarray(0, raw.length - 16).toString('base64')
    assertInvalid(() => decryptUserContext(cut, SECRET), /wrong shared secret|tampered|not JSON|not UTF-8/)
  })

  test('tampered byte in the first ciphertext block → GHL_SSO_INVALID', () => {
    const raw = Buffer.from(opensslEncrypt(JSON.stringify(LOCATION_USER)), 'base64')
    raw[16 + 3]! ^= 0x5a
    assertInvalid(() => decryptUserContext(raw.toString('base64'), SECRET), /tampered/)
  })

  test('tampered byte in the last ciphertext block → GHL_SSO_INVALID', () => {
    const raw = Buffer.from(opensslEncrypt(JSON.stringify(LOCATION_USER)), 'base64')
    raw[raw.length - 1]! ^= 0x01
    assertInvalid(() => decryptUserContext(raw.toString('base64'), SECRET), /tampered/)
  })

  test('tampered salt → GHL_SSO_INVALID', () => {
    const raw = Buffer.from(opensslEncrypt(JSON.stringify(LOCATION_USER)), 'base64')
    raw[9]! ^= 0xff
    assertInvalid(() => decryptUserContext(raw.toString('base64'), SECRET), /tampered/)
  })

  test('not base64 → GHL_SSO_INVALID "not base64"', () => {
    assertInvalid(() => decryptUserContext('this is %%% not base64!', SECRET), /not base64/)
    assertInvalid(() => decryptUserContext('', SECRET), /empty/)
  })

  test('no Salted__ header → GHL_SSO_INVALID "Salted__"', () => {
    const payload = Buffer.concat([Buffer.from('NotSalt!'), randomBytes(40)]).toString('base64')
    assertInvalid(() => decryptUserContext(payload, SECRET), /Salted__/)
  })

  test('non-JSON plaintext (encrypted by openssl with the right secret) → GHL_SSO_INVALID "not JSON"', () => {
    const payload = opensslEncrypt('hello, this is not json')
    assertInvalid(() => decryptUserContext(payload, SECRET), /not JSON/, ['hello, this is not json'])
  })

  test('JSON of the wrong shape → GHL_SSO_INVALID naming the fields, not their values', () => {
    const wrong = { userId: 'u-1-secretish', companyId: 42, role: 'admin', type: 'agency', userName: 'N', email: 'person@example.com' }
    const err = assertInvalid(() => decryptUserContext(opensslEncrypt(JSON.stringify(wrong)), SECRET), /companyId/, ['u-1-secretish', 'person@example.com'])
    assert.doesNotMatch(err.message, /userId/)
    assertInvalid(() => decryptUserContext(opensslEncrypt('[1,2,3]'), SECRET), /not an object/)
    assertInvalid(() => decryptUserContext(opensslEncrypt('{}'), SECRET), /userId.*email|missing or invalid/)
  })

  test('an empty secret is a configuration error, not an input error', () => {
    const payload = opensslEncrypt(JSON.stringify(LOCATION_USER))
    assert.throws(() => decryptUserContext(payload, ''), (err: unknown) => err instanceof GhlError && err.code === 'GHL_CONFIG_INVALID')
  })
})

describe('handleSsoRequest', () => {
  test('200 with the user context for {encryptedData} and for {payload}', () => {
    const payload = opensslEncrypt(JSON.stringify(LOCATION_USER))
    assert.deepEqual(handleSsoRequest({ encryptedData: payload }, SECRET), { status: 200, body: LOCATION_USER })
    assert.deepEqual(handleSsoRequest({ payload }, SECRET), { status: 200, body: LOCATION_USER })
  })

  test('501 GHL_CONFIG_INVALID when no shared secret is configured', () => {
    const res = handleSsoRequest({ encryptedData: 'abc' }, undefined)
    assert.equal(res.status, 501)
    assert.equal((res.body as { code: string }).code, 'GHL_CONFIG_INVALID')
    assert.match((res.body as { message: string }).message, /GHL_SHARED_SECRET/)
  })

  test('400 for a body that is not an object', () => {
    for (const body of [null, undefined, 'str', 42, [1]]) {
      const res = handleSsoRequest(body, SECRET)
      assert.equal(res.status, 400)
      assert.equal((res.body as { code: string }).code, 'GHL_SSO_INVALID')
      assert.match((res.body as { message: string }).message, /JSON object/)
    }
  })

  test('400 for a missing field', () => {
    const res = handleSsoRequest({ other: 'x' }, SECRET)
    assert.equal(res.status, 400)
    assert.deepEqual(res.body, { ok: false, code: 'GHL_SSO_INVALID', message: 'Invalid SSO payload: the body has no "encryptedData" (or "payload") field' })
  })

  test('400 for a field of the wrong type', () => {
    const res = handleSsoRequest({ encryptedData: 12 }, SECRET)
    assert.equal(res.status, 400)
    assert.match((res.body as { message: string }).message, /"encryptedData" must be a string, got number/)
  })

  test('400 for a payload encrypted with another secret; the answer carries neither secret nor plaintext', () => {
    const payload = opensslEncrypt(JSON.stringify(LOCATION_USER), 'another-secret')
    const res = handleSsoRequest({ encryptedData: payload }, SECRET)
    assert.equal(res.status, 400)
    assert.equal((res.body as { code: string }).code, 'GHL_SSO_INVALID')
    const text = JSON.stringify(res.body)
    assert.ok(!text.includes(SECRET) && !text.includes('another-secret') && !text.includes(LOCATION_USER.email))
  })
})
