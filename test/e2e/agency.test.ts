/**
 * An agency (company) installation used through the connector's public surface: the company client,
 * the installed-locations helper (all pages), location calls served by minted location tokens, and
 * the proxy's company route.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'undici'
import { installViaHttp, sandboxJson, startStack, type Stack } from '../helpers/stack.js'

let stack: Stack
before(async () => {
  stack = await startStack({ env: { GHL_USER_TYPE: 'Company' } })
  const company = stack.sandbox.companies[0]!
  const res = await installViaHttp(stack, { companyId: company.companyId, webhookTiming: 'none' })
  assert.equal(res.status, 200, res.html)
})
after(async () => stack?.close())

test('company client, installed locations helper, and location calls through minted tokens', async () => {
  const company = stack.sandbox.companies[0]!
  const locations = await stack.connector.installedLocations(company.companyId)
  assert.deepEqual(locations.map((l) => l._id).sort(), company.locations.map((l) => l.locationId).sort())

  const direct = await stack.connector.company(company.companyId).get<{ locations: unknown[]; count: number }>('/oauth/installedLocations', {
    query: { companyId: company.companyId, appId: stack.config.appId, limit: 2 },
  })
  assert.equal(direct.status, 200)
  assert.equal(direct.data.locations.length, 2)
  assert.equal(direct.data.count, 3)

  const before = await sandboxJson<{ locationToken: { ok: number } }>(stack.sandbox, 'GET', '/_sandbox/stats')
  for (const { locationId } of company.locations) {
    const res = await Promise.all([1, 2, 3].map(() => stack.connector.location(locationId).get('/contacts/', { query: { locationId } })))
    assert.ok(res.every((r) => r.status === 200))
  }
  const after = await sandboxJson<{ locationToken: { ok: number } }>(stack.sandbox, 'GET', '/_sandbox/stats')
  assert.equal(after.locationToken.ok - before.locationToken.ok, company.locations.length, 'one mint per location')
  const rows = await stack.connector.installations({ source: 'agency' })
  assert.equal(rows.length, company.locations.length)
  assert.ok(rows.every((r) => r.parentId !== null && r.userType === 'Location'))
})

test('the proxy company route uses the agency token', async () => {
  const company = stack.sandbox.companies[0]!
  const res = await request(`${stack.url}/proxy/companies/${company.companyId}/oauth/installedLocations?companyId=${company.companyId}&appId=${stack.config.appId}`, {
    headers: { authorization: `Bearer ${stack.apiKey}` },
  })
  const body = (await res.body.json()) as { locations: unknown[] }
  assert.equal(res.statusCode, 200)
  assert.equal(body.locations.length, 3)
})
