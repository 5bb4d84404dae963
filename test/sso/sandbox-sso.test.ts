/**
 * Cross-check with the sandbox's independent implementation of HighLevel's side: a user context it
 * encrypts with the app's Shared Secret decrypts here; with another secret it is refused.
 */
import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'undici'
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js'
import { decryptUserContext, handleSsoRequest } from '../../src/sso/decrypt.js'

describe('SSO with the sandbox', () => {
  let sandbox: Sandbox
  before(async () => {
    sandbox = await startSandbox({ port: 0 })
  })
  after(() => sandbox.close())

  async function ssoPayload(body: Record<string, unknown>): Promise<string> {
    const res = await request(`${sandbox.url}/_sandbox/sso`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    assert.equal(res.statusCode, 200)
    return ((await res.body.json()) as { payload: string }).payload
  }

  test('a location context decrypts with the shared secret and carries activeLocation', async () => {
    const company = sandbox.companies[0]!
    const locationId = company.locations[0]!.locationId
    const user = decryptUserContext(await ssoPayload({ locationId }), sandbox.app.sharedSecret)
    assert.equal(user.activeLocation, locationId)
    assert.equal(user.companyId, company.companyId)
    assert.ok(user.userId && user.email && user.userName && user.role && user.type)
  })

  test('an agency context has no activeLocation; handleSsoRequest answers it as the body', async () => {
    const payload = await ssoPayload({})
    const res = handleSsoRequest({ encryptedData: payload }, sandbox.app.sharedSecret)
    assert.equal(res.status, 200)
    assert.equal('activeLocation' in res.body, false)
    assert.equal((res.body as { companyId: string }).companyId, sandbox.companies[0]!.companyId)
  })

  test('another secret → 400 GHL_SSO_INVALID', async () => {
    const res = handleSsoRequest({ payload: await ssoPayload({}) }, `${sandbox.app.sharedSecret}x`)
    assert.equal(res.status, 400)
    assert.equal((res.body as { code: string }).code, 'GHL_SSO_INVALID')
  })
})
