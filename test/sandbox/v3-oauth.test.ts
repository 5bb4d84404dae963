/**
 * OAuth v3 (oauth-v3.json, `Version: v3`): the camelCase token exchange on /oauth/token,
 * /oauth/location-token, /oauth/installed-locations with cursor paging, and the v2 agency paths
 * called with `Version: v3`. v2 is unchanged (oauth.test.ts).
 */
import { after, before, beforeEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js'
import { authorize, call, exchange, getApi, installAgency, postForm, postJson, refresh, tokens } from './helpers.js'

let sb: Sandbox
let loc: string[]
let companyId: string

before(async () => {
  sb = await startSandbox({ accessTokenTtlSec: 3600 })
  loc = sb.companies[0]!.locations.map((l) => l.locationId)
  companyId = sb.companies[0]!.companyId
})
after(() => sb.close())
beforeEach(async () => {
  await postJson(`${sb.url}/_sandbox/reset`, {})
})

const V3 = { version: 'v3' }
const v3Token = (body: Record<string, unknown>) => postJson(`${sb.url}/oauth/token`, body, V3)
const client = (): Record<string, string> => ({ clientId: sb.app.clientId, clientSecret: sb.app.clientSecret })

describe('v3 token exchange (POST /oauth/token, Version: v3)', () => {
  test('camelCase in, camelCase out, for a code (JSON) and a refresh (form)', async () => {
    const code = await authorize(sb, { locationId: loc[0], webhookTiming: 'none' })
    const res = await v3Token({ ...client(), grantType: 'authorization_code', code, redirectUri: sb.app.redirectUris[0], userType: 'Location' })
    assert.equal(res.status, 200)
    const b = res.body
    assert.deepEqual(Object.keys(b).sort(), ['accessToken', 'companyId', 'expiresIn', 'isBulkInstallation', 'locationId', 'refreshToken', 'scope', 'tokenType', 'userId', 'userType'])
    assert.equal(b.tokenType, 'Bearer')
    assert.equal(b.expiresIn, 3600)
    assert.equal(b.userType, 'Location')
    assert.equal(b.locationId, loc[0])
    assert.equal((await getApi(`${sb.url}/locations/${loc[0]}`, b.accessToken)).status, 200)

    const r = await postForm(`${sb.url}/oauth/token`, { ...client(), grantType: 'refresh_token', refreshToken: b.refreshToken }, V3)
    assert.equal(r.status, 200)
    assert.notEqual(r.body.refreshToken, b.refreshToken)
    const reuse = await v3Token({ ...client(), grantType: 'refresh_token', refreshToken: b.refreshToken })
    assert.equal(reuse.status, 400)
    assert.deepEqual(reuse.body, { statusCode: 400, message: 'Invalid grant: refresh token is invalid' })
  })

  test('an agency grant answers the Company fields in camelCase', async () => {
    const code = await authorize(sb, { companyId, locationIds: [loc[0]], webhookTiming: 'none' })
    const res = await v3Token({ ...client(), grantType: 'authorization_code', code })
    assert.equal(res.body.userType, 'Company')
    assert.deepEqual(res.body.approvedLocations, [loc[0]])
    assert.equal(res.body.installToFutureLocations, false)
    assert.equal('access_token' in res.body, false)
  })

  test("the spec's 400 messages; snake_case fields are not read under v3; nothing is consumed", async () => {
    const code = await authorize(sb, { locationId: loc[0], webhookTiming: 'none' })
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ clientSecret: sb.app.clientSecret, grantType: 'authorization_code', code }, 'Missing parameter: clientId'],
      [{ client_id: sb.app.clientId, client_secret: sb.app.clientSecret, grant_type: 'authorization_code', code }, 'Missing parameter: clientId'],
      [{ clientId: sb.app.clientId, grantType: 'authorization_code', code }, 'Missing parameter: clientSecret'],
      [{ ...client(), code }, 'Missing parameter: grantType'],
      [{ ...client(), grantType: 'password', code }, 'Invalid parameter: grantType'],
      [{ ...client(), grantType: 'client_credentials' }, 'Invalid parameter: grantType'],
      [{ ...client(), grantType: 'authorization_code' }, 'Missing parameter: code'],
      [{ ...client(), grantType: 'refresh_token' }, 'Missing parameter: refreshToken'],
      [{ ...client(), grantType: 'authorization_code', code, userType: 'Agency' }, 'Invalid parameter: userType'],
      [{ ...client(), grantType: 'authorization_code', code, redirectUri: sb.app.redirectUris[1] }, 'Invalid parameter: redirectUri'],
      [{ ...client(), grantType: 'authorization_code', code: 'nope' }, 'Invalid grant: authorization code is invalid'],
    ]
    for (const [body, message] of cases) {
      const res = await v3Token(body)
      assert.equal(res.status, 400, JSON.stringify(body))
      assert.deepEqual(res.body, { statusCode: 400, message }, JSON.stringify(body))
    }
    const wrong = await v3Token({ ...client(), clientSecret: 'wrong', grantType: 'authorization_code', code })
    assert.equal(wrong.status, 401)
    assert.equal(wrong.body.error, 'Unauthorized')
    assert.equal((await tokens(sb)).find((t) => t.value === code)!.state, 'active')
    assert.equal((await v3Token({ ...client(), grantType: 'authorization_code', code })).status, 200, 'control: the code still works')
  })

  test('without Version: v3 the path is v2, snake_case, exactly as before', async () => {
    const code = await authorize(sb, { locationId: loc[0], webhookTiming: 'none' })
    const v2 = await exchange(sb, code)
    assert.equal(v2.status, 200)
    assert.equal(typeof v2.body.access_token, 'string')
    assert.equal('accessToken' in v2.body, false)
    const v3Shaped = await postJson(`${sb.url}/oauth/token`, { ...client(), grantType: 'refresh_token', refreshToken: v2.body.refresh_token })
    assert.equal(v3Shaped.status, 422, 'v2 does not read camelCase fields')
  })
})

describe('v3 location token (POST /oauth/location-token)', () => {
  test('answers camelCase with a refresh token for the location; refused without Version: v3', async () => {
    const agency = await installAgency(sb, { locationIds: [loc[0], loc[1]] })
    const url = `${sb.url}/oauth/location-token`
    const auth = { authorization: `Bearer ${agency.access_token}` }
    const res = await postForm(url, { companyId, locationId: loc[0]! }, { ...auth, ...V3 })
    assert.equal(res.status, 200)
    assert.deepEqual(Object.keys(res.body).sort(), ['accessToken', 'appId', 'expiresIn', 'locationId', 'refreshToken', 'scope', 'tokenType', 'userId', 'versionId'])
    assert.equal(res.body.locationId, loc[0])
    assert.equal(res.body.appId, sb.app.appId)
    assert.ok(res.headers.get('x-ratelimit-remaining'))
    assert.equal((await getApi(`${sb.url}/contacts/?locationId=${loc[0]}`, res.body.accessToken)).status, 200)
    const refreshed = await refresh(sb, res.body.refreshToken)
    assert.equal(refreshed.status, 200)
    assert.equal(refreshed.body.userType, 'Location')
    assert.equal(refreshed.body.locationId, loc[0])

    assert.equal((await postJson(url, { companyId, locationId: loc[1] }, { ...auth, ...V3 })).status, 200, 'JSON works too')
    const notInstalled = await postForm(url, { companyId, locationId: loc[2]! }, { ...auth, ...V3 })
    assert.equal(notInstalled.status, 400)
    assert.match(notInstalled.body.message, /not installed/)
    for (const version of [undefined, '2021-07-28']) {
      const res2 = await postForm(url, { companyId, locationId: loc[0]! }, version ? { ...auth, version } : auth)
      assert.equal(res2.status, 400, String(version))
      assert.match(res2.body.message, /Version header/)
    }
  })
})

describe('v3 installed locations (GET /oauth/installed-locations)', () => {
  const list = (token: string, q: Record<string, string>) =>
    call(`${sb.url}/oauth/installed-locations?${new URLSearchParams({ companyId, appId: sb.app.appId, ...q })}`, {
      headers: { authorization: `Bearer ${token}`, ...V3 },
    })

  test('cursor paging: pageSize and the nextPageToken / prevPageToken it returns', async () => {
    const agency = await installAgency(sb, { locationIds: [loc[0], loc[2]] })
    const p1 = await list(agency.access_token, { pageSize: '2' })
    assert.equal(p1.status, 200)
    assert.deepEqual(p1.body.items.map((l: any) => [l._id, l.isInstalled]), [[loc[0], true], [loc[1], false]])
    assert.equal(typeof p1.body.items[0].installedAt, 'string')
    assert.equal(typeof p1.body.items[0].versionId, 'string')
    assert.equal(p1.body.pagination.totalRecords, 3)
    assert.equal(p1.body.pagination.hasNextPage, true)
    assert.equal(p1.body.pagination.hasPrevPage, false)
    assert.equal(p1.body.pagination.currentPageSize, 2)
    assert.equal('prevPageToken' in p1.body.pagination, false)
    assert.deepEqual(p1.body.metadata.filterApplied, { companyId, appId: sb.app.appId })
    assert.equal(p1.body.installToFutureLocations, false)

    const p2 = await list(agency.access_token, { pageSize: '2', pageToken: p1.body.pagination.nextPageToken })
    assert.deepEqual(p2.body.items.map((l: any) => l._id), [loc[2]])
    assert.equal(p2.body.pagination.hasNextPage, false)
    assert.equal(p2.body.pagination.hasPrevPage, true)
    assert.equal('nextPageToken' in p2.body.pagination, false)
    const back = await list(agency.access_token, { pageSize: '2', pageToken: p2.body.pagination.prevPageToken })
    assert.deepEqual(back.body.items, p1.body.items)

    const installed = await list(agency.access_token, { isInstalled: 'true' })
    assert.deepEqual(installed.body.items.map((l: any) => l._id), [loc[0], loc[2]])
    assert.equal(installed.body.metadata.filterApplied.isInstalled, true)
    assert.deepEqual((await list(agency.access_token, { query: 'HARBOR' })).body.items.map((l: any) => l.name), ['Harbor Realty'])
  })

  test('errors: AIP envelope for bad arguments (400) and another app (404), 422 for a missing field', async () => {
    const agency = await installAgency(sb)
    for (const [q, field] of [[{ pageSize: '0' }, 'pageSize'], [{ pageSize: '101' }, 'pageSize'], [{ pageToken: 'not-ours' }, 'pageToken'], [{ isInstalled: 'yes' }, 'isInstalled']] as const) {
      const res = await list(agency.access_token, q)
      assert.equal(res.status, 400, JSON.stringify(q))
      assert.deepEqual(Object.keys(res.body), ['error'])
      assert.deepEqual(Object.keys(res.body.error), ['code', 'message', 'details', 'resolution'])
      assert.equal(res.body.error.code, 'INVALID_ARGUMENT')
      assert.equal(res.body.error.details.field, field)
    }
    const otherApp = await list(agency.access_token, { appId: 'f'.repeat(24) })
    assert.equal(otherApp.status, 404)
    assert.equal(otherApp.body.error.code, 'RESOURCE_NOT_FOUND')
    assert.deepEqual(otherApp.body.error.details, { resource: 'App', identifier: 'f'.repeat(24) })
    const missing = await call(`${sb.url}/oauth/installed-locations?companyId=${companyId}`, { headers: { authorization: `Bearer ${agency.access_token}`, ...V3 } })
    assert.equal(missing.status, 422)
    assert.deepEqual(missing.body.message, ['appId should not be empty'])
    assert.equal((await list(agency.access_token, { companyId: 'someoneElse' })).status, 403)
  })
})

describe('v2 agency paths with Version: v3', () => {
  test('answer 400 "removed in version v3" in the AIP envelope; with 2021-07-28 they work', async () => {
    const agency = await installAgency(sb)
    const auth = `Bearer ${agency.access_token}`
    const lt = await postForm(`${sb.url}/oauth/locationToken`, { companyId, locationId: loc[0]! }, { authorization: auth, ...V3 })
    assert.equal(lt.status, 400)
    assert.deepEqual(lt.body, {
      error: {
        code: 'INVALID_ARGUMENT',
        message: 'POST /oauth/locationToken is removed in version v3',
        details: { header: 'Version', value: 'v3', replacement: 'POST /oauth/location-token' },
        resolution: 'Call POST /oauth/location-token with Version: v3, or call POST /oauth/locationToken with Version: 2021-07-28.',
      },
    })
    const il = await getApi(`${sb.url}/oauth/installedLocations?${new URLSearchParams({ companyId, appId: sb.app.appId })}`, agency.access_token, 'v3')
    assert.equal(il.status, 400)
    assert.equal(il.body.error.message, 'GET /oauth/installedLocations is removed in version v3')
    assert.equal(il.body.error.details.replacement, 'GET /oauth/installed-locations')

    assert.equal((await postForm(`${sb.url}/oauth/locationToken`, { companyId, locationId: loc[0]! }, { authorization: auth, version: '2021-07-28' })).status, 200)
    assert.equal((await getApi(`${sb.url}/oauth/installedLocations?${new URLSearchParams({ companyId, appId: sb.app.appId })}`, agency.access_token)).status, 200)
    const stats = (await call(`${sb.url}/_sandbox/stats`)).body
    assert.deepEqual([stats.locationToken.ok, stats.locationToken.error], [1, 1])
    assert.deepEqual([stats.installedLocations.ok, stats.installedLocations.error], [1, 1])
  })
})
