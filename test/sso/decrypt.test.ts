/**
 * SSO decryption against real OpenSSL output: `openssl enc -aes-256-cbc -md md5 -salt -base64 -A`
 * produces exactly what CryptoJS.AES.encrypt(text, passphrase) produces (HighLevel's format).
 */
import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { decryptUserContext, handleSsoRequest, SSO_UNDECRYPTABLE_MESSAGE } from '../../src/sso/decrypt.js'
import { GhlError } from '../../src/errors.js'

const SECRET = `sso-${randomBytes(12).toString('hex')}`

/** Encrypts `plaintext` with the openssl CLI (the passphrase goes through an env var, not argv). */
function opensslEncrypt(plaintext: string | Buffer, secret = SECRET): string {
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

/**
 * Asserts a failure AFTER decryption: GHL_SSO_INVALID with exactly the one shared message (no field names,
 * no plaintext, no hint of which check failed — a padding oracle must not exist). Returns the message.
 */
function assertUndecryptable(fn: () => unknown, plaintextValues: string[] = Object.values(LOCATION_USER)): string {
  const err = assertInvalid(fn, /./, plaintextValues)
  assert.equal(err.message, SSO_UNDECRYPTABLE_MESSAGE)
  assert.equal(err.cause, undefined, 'no cause: it could tell which check failed')
  assert.deepEqual(JSON.parse(JSON.stringify(err)), { code: 'GHL_SSO_INVALID', message: SSO_UNDECRYPTABLE_MESSAGE, status: 400 })
  return err.message
}

/** Flips one bit of the byte at `index` (negative: from the end) of a payload and re-encodes it. */
function flip(payload: string, index: number, mask = 0x01): string {
  const raw = Buffer.from(payload, 'base64')
  const i = index < 0 ? raw.length + index : index
  raw[i]! ^= mask
  return raw.toString('base64')
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
    assertUndecryptable(() => decryptUserContext(payload, `${SECRET}-wrong`))
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

  test('a whole block cut off the end → GHL_SSO_INVALID with the one post-decryption message', () => {
    const raw = Buffer.from(opensslEncrypt(JSON.stringify(LOCATION_USER)), 'base64')
    const cut = raw.subarray(0, raw.length - 16).toString('base64')
    assertUndecryptable(() => decryptUserContext(cut, SECRET))
  })

  test('tampered byte in the first ciphertext block → GHL_SSO_INVALID', () => {
    const raw = Buffer.from(opensslEncrypt(JSON.stringify(LOCATION_USER)), 'base64')
    raw[16 + 3]! ^= 0x5a
    assertUndecryptable(() => decryptUserContext(raw.toString('base64'), SECRET))
  })

  test('tampered byte in the last ciphertext block → GHL_SSO_INVALID', () => {
    const raw = Buffer.from(opensslEncrypt(JSON.stringify(LOCATION_USER)), 'base64')
    raw[raw.length - 1]! ^= 0x01
    assertUndecryptable(() => decryptUserContext(raw.toString('base64'), SECRET))
  })

  test('tampered salt → GHL_SSO_INVALID', () => {
    const raw = Buffer.from(opensslEncrypt(JSON.stringify(LOCATION_USER)), 'base64')
    raw[9]! ^= 0xff
    assertUndecryptable(() => decryptUserContext(raw.toString('base64'), SECRET))
  })

  test('not base64 → GHL_SSO_INVALID "not base64"', () => {
    assertInvalid(() => decryptUserContext('this is %%% not base64!', SECRET), /not base64/)
    assertInvalid(() => decryptUserContext('', SECRET), /empty/)
  })

  test('no Salted__ header → GHL_SSO_INVALID "Salted__"', () => {
    const payload = Buffer.concat([Buffer.from('NotSalt!'), randomBytes(40)]).toString('base64')
    assertInvalid(() => decryptUserContext(payload, SECRET), /Salted__/)
  })

  test('non-JSON plaintext (encrypted by openssl with the right secret) → the one post-decryption message', () => {
    const payload = opensslEncrypt('hello, this is not json')
    assertUndecryptable(() => decryptUserContext(payload, SECRET), ['hello, this is not json', 'hello'])
  })

  test('non-UTF-8 plaintext (encrypted by openssl with the right secret) → the one post-decryption message', () => {
    // A valid user context except for the bytes FF FE inside userName: a lenient decoder would turn them
    // into U+FFFD and accept it, so this proves the strict UTF-8 check runs.
    const json = Buffer.from(JSON.stringify({ ...LOCATION_USER, userName: 'Jo##hn' }), 'utf8')
    const at = json.indexOf('##')
    json[at] = 0xff
    json[at + 1] = 0xfe
    const bytes = opensslEncrypt(json)
    assertUndecryptable(() => decryptUserContext(bytes, SECRET))
  })

  test('JSON of the wrong shape → the one post-decryption message, naming neither fields nor values', () => {
    const wrong = { userId: 'u-1-secretish', companyId: 42, role: 'admin', type: 'agency', userName: 'N', email: 'person@example.com' }
    const message = assertUndecryptable(() => decryptUserContext(opensslEncrypt(JSON.stringify(wrong)), SECRET), ['u-1-secretish', 'person@example.com'])
    assert.doesNotMatch(message, /companyId|userId|email|activeLocation/)
    assertUndecryptable(() => decryptUserContext(opensslEncrypt('[1,2,3]'), SECRET))
    assertUndecryptable(() => decryptUserContext(opensslEncrypt('{}'), SECRET))
    assertUndecryptable(() => decryptUserContext(opensslEncrypt('null'), SECRET))
    assertUndecryptable(() => decryptUserContext(opensslEncrypt(JSON.stringify({ ...LOCATION_USER, activeLocation: '' })), SECRET))
  })

  test('no padding oracle: every failure after decryption has the identical error, however it failed', () => {
    const good = opensslEncrypt(JSON.stringify(LOCATION_USER))
    const raw = Buffer.from(good, 'base64')
    // A padding-valid plaintext that is not JSON, and one that is JSON but not a user context: the two
    // outcomes a CBC-R attacker needs to tell apart from a bad padding.
    const cases: Array<[string, () => unknown]> = [
      ['wrong secret', () => decryptUserContext(good, `${SECRET}-wrong`)],
      ['tampered first block', () => decryptUserContext(flip(good, 16 + 3, 0x5a), SECRET)],
      ['tampered last byte (bad padding)', () => decryptUserContext(flip(good, -1), SECRET)],
      ['tampered salt', () => decryptUserContext(flip(good, 9, 0xff), SECRET)],
      ['a whole block cut off', () => decryptUserContext(raw.subarray(0, raw.length - 16).toString('base64'), SECRET)],
      ['non-JSON plaintext', () => decryptUserContext(opensslEncrypt('hello, this is not json'), SECRET)],
      ['JSON array', () => decryptUserContext(opensslEncrypt('[1,2,3]'), SECRET)],
      ['JSON of the wrong shape', () => decryptUserContext(opensslEncrypt('{"userId":"u","companyId":42}'), SECRET)],
    ]
    const seen = new Map<string, string[]>()
    for (const [name, fn] of cases) {
      let caught: unknown
      try {
        fn()
      } catch (err) {
        caught = err
      }
      assert.ok(caught instanceof GhlError, `${name}: expected a GhlError`)
      const key = JSON.stringify({ code: caught.code, status: caught.status, message: caught.message, cause: String(caught.cause), body: caught.toJSON() })
      seen.set(key, [...(seen.get(key) ?? []), name])
    }
    assert.equal(seen.size, 1, `the failures must be indistinguishable, got ${seen.size} kinds: ${JSON.stringify([...seen.values()])}`)
    // And through the HTTP handler: identical status and body.
    const bodies = new Set(
      [good, flip(good, -1), opensslEncrypt('hello'), opensslEncrypt('{}')].map((p) =>
        JSON.stringify(handleSsoRequest({ encryptedData: p }, p === good ? `${SECRET}-wrong` : SECRET)),
      ),
    )
    assert.deepEqual([...bodies], [JSON.stringify({ status: 400, body: { ok: false, code: 'GHL_SSO_INVALID', message: SSO_UNDECRYPTABLE_MESSAGE, status: 400 } })])
  })

  test('a forged last block with valid padding but garbage plaintext is refused like any other failure', () => {
    // Emulates one step of a padding-oracle attack: change the IV-side block so the last plaintext
    // block ends in 0x01 — valid padding, garbage content. It must look exactly like bad padding.
    const raw = Buffer.from(opensslEncrypt(JSON.stringify(LOCATION_USER)), 'base64')
    assert.ok(raw.length >= 16 + 32, 'needs two ciphertext blocks')
    const outcomes = new Set<string>()
    for (let guess = 1; guess < 256; guess++) {
      const t = Buffer.from(raw)
      t[t.length - 17]! ^= guess
      try {
        decryptUserContext(t.toString('base64'), SECRET)
        outcomes.add('accepted')
      } catch (err) {
        assert.ok(err instanceof GhlError)
        outcomes.add(`${err.code} ${err.status} ${err.message} ${String(err.cause)}`)
      }
    }
    // 255 variants, some with valid padding and some not: one single observable outcome.
    assert.deepEqual([...outcomes], [`GHL_SSO_INVALID 400 ${SSO_UNDECRYPTABLE_MESSAGE} undefined`])
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
    assert.deepEqual(res.body, { ok: false, code: 'GHL_SSO_INVALID', message: 'Invalid SSO payload: the body has no "encryptedData" (or "payload") field', status: 400 })
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
