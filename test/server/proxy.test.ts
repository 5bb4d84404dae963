/**
 * The proxy: `/proxy/locations/{id}/<path>` and `/proxy/companies/{id}/<path>` add the installation's
 * token and pass HighLevel's status, headers and body back. Authenticated with the connector API key.
 */
import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'undici'
import { installViaHttp, sandboxJson, startStack, type Stack } from '../helpers/stack.js'

describe('proxy', () => {
  let stack: Stack
  let locationId: string
  before(async () => {
    stack = await startStack()
    locationId = stack.sandbox.companies[0]!.locations[0]!.locationId
    const res = await installViaHttp(stack, { locationId, webhookTiming: 'none' })
    assert.equal(res.status, 200, res.html)
  })
  after(async () => stack?.close())

  const proxy = (path: string, init: { method?: 'GET' | 'POST' | 'PUT' | 'DELETE'; key?: string | null; body?: unknown; headers?: Record<string, string> } = {}) =>
    request(`${stack.url}/proxy${path}`, {
      method: init.method ?? 'GET',
      headers: {
        ...(init.key === null ? {} : { authorization: `Bearer ${init.key ?? stack.apiKey}` }),
        ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...init.headers,
      },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    })

  test('GET through the proxy reaches HighLevel with the token and returns its answer', async () => {
    const res = await proxy(`/locations/${locationId}/contacts/?locationId=${locationId}&limit=2`)
    const body = (await res.body.json()) as { contacts: unknown[] }
    assert.equal(res.statusCode, 200)
    assert.ok(Array.isArray(body.contacts))
    assert.ok(body.contacts.length <= 2)
    assert.ok(res.headers['x-ratelimit-remaining'] !== undefined, 'HighLevel rate-limit headers are passed back')
  })

  test('POST with a JSON body is passed through; HighLevel errors keep their status and body', async () => {
    const created = await proxy(`/locations/${locationId}/contacts/`, {
      method: 'POST',
      body: { locationId, firstName: 'Ada', lastName: 'Lovelace', email: `ada-${Date.now()}@example.com` },
    })
    const createdBody = (await created.body.json()) as { contact?: { id: string } }
    assert.ok(created.statusCode === 200 || created.statusCode === 201, `status ${created.statusCode}`)
    assert.ok(createdBody.contact?.id)

    const missing = await proxy(`/locations/${locationId}/contacts/does-not-exist`)
    const missingBody = (await missing.body.json()) as { statusCode?: number; message?: unknown }
    assert.ok(missing.statusCode >= 400 && missing.statusCode < 500, `status ${missing.statusCode}`)
    assert.equal(missingBody.statusCode, missing.statusCode, "HighLevel's own error body")
  })

  test('missing or wrong API key → 401, and HighLevel is not called', async () => {
    const before = await sandboxJson<{ api: { ok: number; error: number } }>(stack.sandbox, 'GET', '/_sandbox/stats')
    for (const key of [null, 'wrong-key-wrong-key-wrong', `${stack.apiKey}x`]) {
      const res = await proxy(`/locations/${locationId}/contacts/?locationId=${locationId}`, { key })
      const body = (await res.body.json()) as { code: string; message: string }
      assert.equal(res.statusCode, 401)
      assert.equal(body.code, 'GHL_UNAUTHORIZED')
      assert.match(body.message, /API key/)
    }
    const after = await sandboxJson<{ api: { ok: number; error: number } }>(stack.sandbox, 'GET', '/_sandbox/stats')
    assert.deepEqual(after.api, before.api)
  })

  test('unknown installation → 404 with a clear body', async () => {
    const res = await proxy(`/locations/NoSuchLocation123/contacts/?locationId=NoSuchLocation123`)
    const body = (await res.body.json()) as { code: string; message: string }
    assert.equal(res.statusCode, 404)
    assert.equal(body.code, 'GHL_NOT_INSTALLED')
    assert.match(body.message, /NoSuchLocation123/)
    const company = await proxy(`/companies/NoSuchCompany/locations/search`)
    assert.equal(company.statusCode, 404)
    assert.equal(((await company.body.json()) as { code: string }).code, 'GHL_NOT_INSTALLED')
  })

  test('the answer is streamed: body bytes equal a direct call', async () => {
    const [installation] = await stack.connector.installations()
    const stored = await stack.connector.vault.installations.get(installation!.id)
    const direct = await request(`${stack.sandbox.url}/locations/${locationId}`, {
      headers: { authorization: `Bearer ${stored!.tokens!.accessToken}`, version: '2021-07-28' },
    })
    const directText = await direct.body.text()
    const viaProxy = await proxy(`/locations/${locationId}/locations/${locationId}`)
    assert.equal(viaProxy.statusCode, direct.statusCode)
    assert.equal(await viaProxy.body.text(), directText)
  })

  test('the HighLevel path is passed as sent: encoded characters are not decoded into another path or query', async () => {
    const res = await proxy(`/locations/${locationId}/contacts/a%2Fb%3Fx%3D1%20c?locationId=${locationId}`)
    const body = (await res.body.json()) as { statusCode?: number; message?: string; contacts?: unknown }
    // HighLevel (the sandbox) answers for the one contact id "a/b?x=1 c" — "Contact not found", as for
    // any unknown id — not a 500 from us, and not the contacts list a decoded "?" would have asked for.
    const unknown = await proxy(`/locations/${locationId}/contacts/no-such-contact?locationId=${locationId}`)
    assert.equal(res.statusCode, unknown.statusCode)
    assert.deepEqual(body, await unknown.body.json())
    assert.equal(body.contacts, undefined)
  })
})
