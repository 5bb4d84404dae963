/**
 * `POST /sso/decrypt` on the server: the sandbox issues an encrypted user context (as HighLevel does
 * for custom pages), the connector decrypts it with the app's Shared Secret.
 */
import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'undici'
import { sandboxJson, startStack, type Stack } from '../helpers/stack.js'

describe('POST /sso/decrypt', () => {
  let stack: Stack
  before(async () => {
    stack = await startStack()
  })
  after(async () => stack?.close())

  const post = async (body: unknown) => {
    const res = await request(`${stack.url}/sso/decrypt`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> }
  }

  test('decrypts a payload the sandbox issued for a location user', async () => {
    const locationId = stack.sandbox.companies[0]!.locations[1]!.locationId
    const { payload } = await sandboxJson<{ payload: string }>(stack.sandbox, 'POST', '/_sandbox/sso', { locationId })
    const r = await post({ encryptedData: payload })
    assert.equal(r.status, 200)
    assert.equal(r.body.activeLocation, locationId)
    assert.equal(r.body.companyId, stack.sandbox.companies[0]!.companyId)
    for (const k of ['userId', 'role', 'type', 'userName', 'email']) assert.equal(typeof r.body[k], 'string', k)
  })

  test('bad payloads → 400 GHL_SSO_INVALID with a clear message and no plaintext in the logs', async () => {
    const { payload } = await sandboxJson<{ payload: string }>(stack.sandbox, 'POST', '/_sandbox/sso', {})
    const raw = Buffer.from(payload, 'base64')
    const tampered = Buffer.from(raw)
    tampered[tampered.length - 5] = tampered[tampered.length - 5]! ^ 0x01
    for (const bad of [{ encryptedData: raw.subarray(0, 20).toString('base64') }, { encryptedData: tampered.toString('base64') }, { encryptedData: '%%%not base64%%%' }, {}, { encryptedData: 42 }]) {
      const r = await post(bad)
      assert.equal(r.status, 400, JSON.stringify(bad))
      assert.equal(r.body.code, 'GHL_SSO_INVALID')
      assert.equal(typeof r.body.message, 'string')
      assert.ok(!('stack' in r.body))
    }
    assert.ok(!stack.logs.join('\n').includes('"email"'), 'no decrypted user context in the logs')
  })
})
