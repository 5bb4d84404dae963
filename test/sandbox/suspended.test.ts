/**
 * Suspended (paused) locations: refreshes answer 400 "Location is not active" without consuming the
 * refresh token, which works again once the location is reactivated (oauth-v3.json); API calls with
 * the location's tokens are refused.
 */
import { after, before, beforeEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js'
import { authorize, call, exchange, getApi, installAgency, installLocation, postForm, postJson, putSettings, refresh, tokens } from './helpers.js'

let sb: Sandbox
let loc: string[]
let companyId: string

before(async () => {
  sb = await startSandbox()
  loc = sb.companies[0]!.locations.map((l) => l.locationId)
  companyId = sb.companies[0]!.companyId
})
after(() => sb.close())
beforeEach(async () => {
  await postJson(`${sb.url}/_sandbox/reset`, {})
})

const suspend = (locationId: string) => postJson(`${sb.url}/_sandbox/locations/${locationId}/suspend`, {})
const reactivate = (locationId: string) => postJson(`${sb.url}/_sandbox/locations/${locationId}/reactivate`, {})
const stateOf = async (value: string): Promise<string> => (await tokens(sb)).find((t) => t.value === value)!.state

describe('suspended locations', () => {
  test('refresh: 400 "Location is not active", the refresh token is kept and works after reactivation', async () => {
    const t = await installLocation(sb, loc[0]!)
    const s = await suspend(loc[0]!)
    assert.equal(s.status, 200)
    assert.deepEqual(s.body, { locationId: loc[0], suspended: true })
    for (let i = 0; i < 2; i++) {
      const res = await refresh(sb, t.refresh_token)
      assert.equal(res.status, 400)
      assert.deepEqual(res.body, { statusCode: 400, message: 'Location is not active' })
    }
    assert.equal(await stateOf(t.refresh_token), 'active')
    assert.deepEqual((await reactivate(loc[0]!)).body, { locationId: loc[0], suspended: false })
    const ok = await refresh(sb, t.refresh_token)
    assert.equal(ok.status, 200)
    assert.equal(ok.body.locationId, loc[0])
    assert.equal(await stateOf(t.refresh_token), 'used')
  })

  test('API calls: 401 "Location is not active" by default; the same token works after reactivation', async () => {
    const t = await installLocation(sb, loc[0]!)
    await suspend(loc[0]!)
    const res = await getApi(`${sb.url}/locations/${loc[0]}`, t.access_token)
    assert.equal(res.status, 401)
    assert.deepEqual(res.body, { statusCode: 401, message: 'Location is not active', error: 'Unauthorized' })
    assert.ok(res.headers.get('x-ratelimit-remaining'), 'the answer still carries the rate-limit headers')
    const other = await installLocation(sb, loc[1]!)
    assert.equal((await getApi(`${sb.url}/locations/${loc[1]}`, other.access_token)).status, 200, 'another location is not affected')
    await reactivate(loc[0]!)
    assert.equal((await getApi(`${sb.url}/locations/${loc[0]}`, t.access_token)).status, 200)
  })

  test('suspendedApiStatus 403: API calls answer 403 Forbidden', async () => {
    await putSettings(sb, { suspendedApiStatus: 403 })
    const t = await installLocation(sb, loc[0]!)
    await suspend(loc[0]!)
    const res = await getApi(`${sb.url}/contacts/?locationId=${loc[0]}`, t.access_token)
    assert.equal(res.status, 403)
    assert.deepEqual(res.body, { statusCode: 403, message: 'Location is not active', error: 'Forbidden' })
  })

  test('code exchange of a suspended location: 400, the code stays usable until it is reactivated', async () => {
    const code = await authorize(sb, { locationId: loc[2], webhookTiming: 'none' })
    await suspend(loc[2]!)
    const res = await exchange(sb, code)
    assert.equal(res.status, 400)
    assert.equal(res.body.message, 'Location is not active')
    assert.equal(await stateOf(code), 'active')
    await reactivate(loc[2]!)
    assert.equal((await exchange(sb, code)).status, 200)
  })

  test('agency: no location token for a suspended location; the agency token itself refreshes', async () => {
    const agency = await installAgency(sb)
    await suspend(loc[1]!)
    const auth = { authorization: `Bearer ${agency.access_token}`, version: '2021-07-28' }
    const refused = await postForm(`${sb.url}/oauth/locationToken`, { companyId, locationId: loc[1]! }, auth)
    assert.equal(refused.status, 400)
    assert.equal(refused.body.message, 'Location is not active')
    assert.equal((await postForm(`${sb.url}/oauth/locationToken`, { companyId, locationId: loc[0]! }, auth)).status, 200, 'control: an active location')
    assert.equal((await refresh(sb, agency.refresh_token)).status, 200)
  })

  test('v3 refresh answers the same', async () => {
    const t = await installLocation(sb, loc[0]!)
    await suspend(loc[0]!)
    const res = await postJson(
      `${sb.url}/oauth/token`,
      { clientId: sb.app.clientId, clientSecret: sb.app.clientSecret, grantType: 'refresh_token', refreshToken: t.refresh_token },
      { version: 'v3' },
    )
    assert.equal(res.status, 400)
    assert.deepEqual(res.body, { statusCode: 400, message: 'Location is not active' })
    assert.equal(await stateOf(t.refresh_token), 'active')
  })

  test('unknown locations are 404; reset reactivates every location', async () => {
    assert.equal((await suspend('nope')).status, 404)
    assert.equal((await reactivate('nope')).status, 404)
    const t = await installLocation(sb, loc[0]!)
    await suspend(loc[0]!)
    assert.equal((await refresh(sb, t.refresh_token)).status, 400)
    await postJson(`${sb.url}/_sandbox/reset`, {})
    const fresh = await installLocation(sb, loc[0]!)
    assert.equal((await refresh(sb, fresh.refresh_token)).status, 200)
    assert.equal((await call(`${sb.url}/_sandbox/settings`)).body.suspendedApiStatus, 401)
  })
})
