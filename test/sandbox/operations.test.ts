/**
 * The engine that serves every operation: routing, `Version`, token kinds, validation messages,
 * resource checks, and answers generated from the request.
 */
import { after, before, beforeEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js'
import { call, postJson } from './helpers.js'

let sb: Sandbox
let loc: string[]
let companyId: string
let pit: string

const SCOPES = ['contacts.readonly', 'contacts.write', 'calendars.readonly', 'products.readonly', 'users.readonly', 'locations.readonly', 'opportunities.write', 'opportunities.readonly', 'forms.readonly', 'store/setting.readonly', 'payments/orders.readonly', 'charges.readonly', 'products/prices.readonly']

before(async () => {
  sb = await startSandbox({ seed: { apps: [{ scopes: SCOPES }] }, rateLimit: { burstMax: 10_000, burstWindowMs: 10_000, dailyMax: 1_000_000 } })
  loc = sb.companies[0]!.locations.map((l) => l.locationId)
  companyId = sb.companies[0]!.companyId
})
after(() => sb.close())
beforeEach(async () => {
  await postJson(`${sb.url}/_sandbox/reset`, {})
  pit = (await postJson(`${sb.url}/_sandbox/pit`, { locationId: loc[0] })).body.token
})

function get(path: string, token = pit, version: string | null = '2021-07-28') {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` }
  if (version !== null) headers.version = version
  return call(`${sb.url}${path}`, { headers })
}

function send(method: string, path: string, body: unknown, token = pit, version = '2021-07-28') {
  return call(`${sb.url}${path}`, { method, headers: { authorization: `Bearer ${token}`, version, 'content-type': 'application/json' }, body: JSON.stringify(body) })
}

describe('routing and Version', () => {
  test('an unknown path or method is 404 in Nest shape, without a token check', async () => {
    for (const [method, path] of [['GET', '/no/such/api'], ['PATCH', '/contacts/abc'], ['GET', '/contacts']] as const) {
      const res = await call(`${sb.url}${path}`, { method })
      assert.equal(res.status, 404, `${method} ${path}`)
      assert.deepEqual(res.body, { statusCode: 404, message: `Cannot ${method} ${path}`, error: 'Not Found' })
    }
  })

  test("'published' (default) takes any published version on any operation; 'operation' takes only the documented one", async () => {
    // calendars document 2021-04-15; contacts 2021-07-28.
    for (const v of ['2021-04-15', '2021-07-28', '2023-02-21', 'v3']) {
      assert.equal((await get(`/calendars/?locationId=${loc[0]}`, pit, v)).status, 200, v)
    }
    const unknown = await get(`/calendars/?locationId=${loc[0]}`, pit, '2022-01-01')
    assert.equal(unknown.status, 400)
    assert.match(unknown.body.message, /2022-01-01 is not supported/)
    assert.match((await get(`/contacts/?locationId=${loc[0]}`, pit, null)).body.message, /^Version header was not found/)

    await call(`${sb.url}/_sandbox/settings`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ versionCheck: 'operation' }) })
    assert.equal((await get(`/calendars/?locationId=${loc[0]}`, pit, '2021-04-15')).status, 200)
    const wrong = await get(`/calendars/?locationId=${loc[0]}`, pit, '2021-07-28')
    assert.equal(wrong.status, 400)
    assert.deepEqual(wrong.body, { statusCode: 400, message: 'Version header 2021-07-28 is not supported (expected 2021-04-15)', error: 'Bad Request' })
    // Operations that document no Version (store) take none.
    assert.equal((await get(`/store/store-setting?altId=${loc[0]}&altType=location`, pit, null)).status, 200)
  })
})

describe('token kinds', () => {
  test("an agency PIT on a sub-account operation: user type mismatch; a sub-account PIT on an OAuth-only one: wrong class", async () => {
    const agencyPit = (await postJson(`${sb.url}/_sandbox/pit`, { companyId })).body.token
    const res = await get(`/forms/?locationId=${loc[0]}`, agencyPit)
    assert.deepEqual(res.body, { statusCode: 401, message: "Token's user type mismatch!", error: 'Unauthorized' })
    // Marketplace billing charges: Location-Access-Only (an OAuth sub-account token, no PIT).
    const only = await get(`/marketplace/billing/charges/has-funds`, pit)
    assert.equal(only.status, 401)
    assert.match(only.body.message, /^This authClass type is not allowed/)
    // Scopes come first: an agency PIT without the scope hears about the scope.
    const narrow = (await postJson(`${sb.url}/_sandbox/pit`, { companyId, scopes: ['locations.readonly'] })).body.token
    assert.equal((await get(`/forms/?locationId=${loc[0]}`, narrow)).body.message, 'The token is not authorized for this scope: forms.readonly is required')
  })

  test('a location, location_id or altId of another sub-account is 403, before anything is stored', async () => {
    for (const path of [`/forms/?locationId=${loc[1]}`, `/opportunities/search?location_id=${loc[1]}`, `/payments/orders?altId=${loc[1]}&altType=location`]) {
      const res = await get(path)
      assert.equal(res.status, 403, path)
      assert.equal(res.body.message, 'The token does not have access to this location')
    }
    const create = await send('POST', '/contacts/', { locationId: loc[1], firstName: 'Eve' })
    assert.equal(create.status, 403)
    assert.equal((await get(`/contacts/?locationId=${loc[0]}&query=Eve`)).body.contacts.length, 0)
  })
})

describe('validation', () => {
  test('query: required, types coerced and checked, enums; each failing field named', async () => {
    const missing = await get('/products/inventory')
    assert.equal(missing.status, 422)
    assert.deepEqual(missing.body, { statusCode: 422, message: ['altId should not be empty', 'altType should not be empty'], error: 'Unprocessable Entity' })
    const badType = await get(`/contacts/?locationId=${loc[0]}&limit=many`)
    assert.deepEqual(badType.body.message, ['limit must be a number conforming to the specified constraints'])
    const badEnum = await get(`/products/inventory?altId=${loc[0]}&altType=planet`)
    assert.deepEqual(badEnum.body.message, ['altType must be one of the following values: location'])
    assert.equal((await get(`/contacts/?locationId=${loc[0]}&limit=2`)).body.contacts.length, 2, 'a numeric string is a number')
  })

  test('body: nested fields by path, wrong types, enums; a malformed body is 400; nothing is stored', async () => {
    const res = await send('POST', '/opportunities/', { locationId: loc[0], name: 7, status: 'maybe', customFields: [5] })
    assert.equal(res.status, 422)
    assert.deepEqual(res.body.message, [
      'pipelineId should not be empty',
      'contactId should not be empty',
      'name must be a string',
      'status must be one of the following values: open, won, lost, abandoned, all',
      'customFields.0 must match one of the documented shapes',
    ])
    const malformed = await call(`${sb.url}/contacts/`, { method: 'POST', headers: { authorization: `Bearer ${pit}`, version: '2021-07-28', 'content-type': 'application/json' }, body: '{"locationId":' })
    assert.equal(malformed.status, 400)
    assert.equal(malformed.body.statusCode, 400)
    const list = await get(`/opportunities/search?location_id=${loc[0]}`)
    assert.equal(list.body.meta.total, 0)
  })
})

describe('generated answers', () => {
  test('echo the request, are deterministic for a GET, and page a list as asked', async () => {
    const path = `/products/inventory?altId=${loc[0]}&altType=location&limit=2&offset=1`
    const a = await get(path)
    assert.equal(a.status, 200)
    assert.deepEqual(a.body, (await get(path)).body, 'the same GET answers the same data')
    assert.equal(a.body.inventory.length, 2)
    const first = await get(`/products/inventory?altId=${loc[0]}&altType=location&limit=1&offset=1`)
    assert.deepEqual(first.body.inventory[0], a.body.inventory[0], 'pages agree on the item at an offset')
    const user = await get(`/users/${'U'.repeat(20)}`)
    assert.equal(user.status, 400, 'users are stateful: an unknown id is not found')
    const form = await get(`/forms/?locationId=${loc[0]}&limit=1`)
    assert.equal(form.body.forms.length, 1)
    assert.equal(form.body.forms[0].locationId, loc[0], 'the location of the request is echoed')
  })
})
