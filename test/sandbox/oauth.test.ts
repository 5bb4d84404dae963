/**
 * The sandbox's OAuth side over real HTTP: consent page, authorize, token endpoint (codes, refresh
 * rotation, client authentication, bodies), location tokens, installed locations, reconnect.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { ManualClock } from '../../src/clock.js'
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js'
import { authorize, call, exchange, getApi, installAgency, installLocation, postForm, postJson, refresh, tokens } from './helpers.js'

const clock = new ManualClock(Date.UTC(2026, 0, 1))
let sb: Sandbox
let loc: string[]
let companyId: string

before(async () => {
  // Reconnect is 'removed' by default (HighLevel since September 2026); these tests exercise it working.
  sb = await startSandbox({ clock, codeTtlSec: 600, accessTokenTtlSec: 3600, reconnect: 'allow' })
  loc = sb.companies[0]!.locations.map((l) => l.locationId)
  companyId = sb.companies[0]!.companyId
})
after(() => sb.close())

describe('seed', () => {
  test('default seed has the documented shape', () => {
    assert.match(sb.app.appId, /^[0-9a-f]{24}$/)
    assert.match(sb.app.clientId, new RegExp(`^${sb.app.appId}-[a-z0-9]{8}$`))
    assert.deepEqual(sb.app.redirectUris, ['http://127.0.0.1:3000/oauth/callback', 'http://localhost:3000/oauth/callback'])
    assert.deepEqual(sb.app.scopes, ['contacts.readonly', 'contacts.write', 'locations.readonly', 'oauth.readonly', 'oauth.write'])
    assert.equal(sb.app.distribution, 'both')
    assert.equal(sb.companies[0]!.name, 'Sandbox Agency')
    assert.match(companyId, /^[A-Za-z0-9]{20}$/)
    assert.deepEqual(sb.companies[0]!.locations.map((l) => l.name), ['Downtown Dental', 'Uptown Fitness', 'Harbor Realty'])
  })
})

describe('consent page', () => {
  const pageUrl = (params: Record<string, string>): string => `${sb.url}/oauth/chooselocation?${new URLSearchParams(params)}`
  const good = (): Record<string, string> => ({
    response_type: 'code',
    client_id: sb.app.clientId,
    redirect_uri: sb.app.redirectUris[0]!,
    scope: 'contacts.readonly locations.readonly',
    state: 's t&ate',
  })

  test('renders radios, bulk checkboxes and buttons (also under /v2)', async () => {
    for (const path of ['/oauth/chooselocation', '/v2/oauth/chooselocation']) {
      const res = await call(`${sb.url}${path}?${new URLSearchParams(good())}`)
      assert.equal(res.status, 200)
      assert.match(res.headers.get('content-type')!, /text\/html/)
      for (const l of loc) assert.ok(res.text.includes(`name="target" id="target-location-${l}" value="location:${l}"`))
      assert.ok(res.text.includes(`value="company:${companyId}"`))
      assert.ok(res.text.includes(`id="bulk-${loc[0]}"`))
      assert.ok(res.text.includes(`id="install-future-${companyId}"`))
      assert.ok(res.text.includes('id="approve"') && res.text.includes('id="deny"'))
      assert.ok(!res.text.includes(sb.app.clientSecret))
    }
  })

  test('an unknown redirect_uri gets a 400 error page, never a redirect', async () => {
    const res = await call(pageUrl({ ...good(), redirect_uri: 'https://evil.example/cb' }))
    assert.equal(res.status, 400)
    assert.equal(res.headers.get('location'), null)
    assert.match(res.text, /redirect_uri is not registered/)
  })

  test('each bad parameter gets its own error page', async () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ client_id: 'nope-12345678' }, /Unknown client_id/],
      [{ client_id: '' }, /client_id is required/],
      [{ redirect_uri: `${sb.app.redirectUris[0]}/x` }, /redirect_uri is not registered/],
      [{ response_type: 'token' }, /response_type/],
      [{ scope: 'contacts.readonly calendars.write' }, /scope not enabled for this app: calendars\.write/],
      [{ scope: '' }, /scope is required/],
    ]
    for (const [change, message] of cases) {
      const res = await call(pageUrl({ ...good(), ...change }))
      assert.equal(res.status, 400, JSON.stringify(change))
      assert.equal(res.headers.get('location'), null)
      assert.match(res.text, message)
    }
  })

  test('Approve redirects with code and the state echoed; Deny with access_denied', async () => {
    const form = { client_id: sb.app.clientId, redirect_uri: sb.app.redirectUris[1]!, response_type: 'code', scope: 'contacts.readonly', state: 's t&ate' }
    const approve = await postForm(`${sb.url}/oauth/chooselocation/decision`, { ...form, target: `location:${loc[1]}`, action: 'approve' })
    assert.equal(approve.status, 302)
    const to = new URL(approve.headers.get('location')!)
    assert.equal(`${to.origin}${to.pathname}`, sb.app.redirectUris[1])
    assert.equal(to.searchParams.get('state'), 's t&ate')
    const token = await exchange(sb, to.searchParams.get('code')!, { redirect_uri: sb.app.redirectUris[1]! })
    assert.equal(token.status, 200)
    assert.equal(token.body.locationId, loc[1])
    assert.equal(token.body.scope, 'contacts.readonly')

    const deny = await postForm(`${sb.url}/oauth/chooselocation/decision`, { ...form, target: `location:${loc[1]}`, action: 'deny' })
    assert.equal(deny.status, 302)
    const denied = new URL(deny.headers.get('location')!)
    assert.equal(denied.searchParams.get('error'), 'access_denied')
    assert.equal(denied.searchParams.get('state'), 's t&ate')
    assert.equal(denied.searchParams.get('code'), null)

    const noState = { ...form } as Record<string, string>
    delete noState.state
    const res = await postForm(`${sb.url}/oauth/chooselocation/decision`, { ...noState, target: `location:${loc[1]}`, action: 'approve' })
    assert.equal(new URL(res.headers.get('location')!).searchParams.has('state'), false)
  })

  test('the agency radio with bulk checkboxes installs on the agency', async () => {
    const res = await postForm(
      `${sb.url}/oauth/chooselocation/decision`,
      { client_id: sb.app.clientId, redirect_uri: sb.app.redirectUris[0]!, response_type: 'code', scope: sb.app.scopes.join(' '), target: `company:${companyId}`, action: 'approve', locationIds: loc[2]!, installToFutureLocations: companyId },
    )
    assert.equal(res.status, 302)
    const token = await exchange(sb, new URL(res.headers.get('location')!).searchParams.get('code')!)
    assert.equal(token.body.userType, 'Company')
    assert.deepEqual(token.body.approvedLocations, [loc[2]])
    assert.equal(token.body.installToFutureLocations, true)
    assert.equal(token.body.isBulkInstallation, true)
    assert.equal(token.body.approveAllLocations, false)
    await postJson(`${sb.url}/_sandbox/reset`, {})
  })

  test('several bulk checkboxes arrive as a list', async () => {
    const form = new URLSearchParams({ client_id: sb.app.clientId, redirect_uri: sb.app.redirectUris[0]!, response_type: 'code', scope: 'oauth.readonly', target: `company:${companyId}`, action: 'approve' })
    form.append('locationIds', loc[0]!)
    form.append('locationIds', loc[1]!)
    form.append('locationIds', loc[2]!)
    const res = await call(`${sb.url}/oauth/chooselocation/decision`, { method: 'POST', body: form })
    assert.equal(res.status, 302)
    const token = await exchange(sb, new URL(res.headers.get('location')!).searchParams.get('code')!)
    assert.deepEqual(token.body.approvedLocations, loc)
    assert.equal(token.body.approveAllLocations, true)
    assert.equal(token.body.installToFutureLocations, false)
    const none = await postForm(`${sb.url}/oauth/chooselocation/decision`, { client_id: sb.app.clientId, redirect_uri: sb.app.redirectUris[0]!, response_type: 'code', scope: 'oauth.readonly', action: 'approve' })
    assert.equal(none.status, 400)
    assert.equal(none.headers.get('location'), null)
    assert.match(none.text, /Choose a location or the agency/)
    await postJson(`${sb.url}/_sandbox/reset`, {})
  })
})

describe('/_sandbox/authorize', () => {
  test('deny returns the error redirect and issues no code', async () => {
    const before = (await tokens(sb)).length
    const res = await postJson(`${sb.url}/_sandbox/authorize`, { clientId: sb.app.clientId, redirectUri: sb.app.redirectUris[0], scope: 'contacts.readonly', locationId: loc[0], deny: true, state: 'q' })
    assert.equal(res.status, 200)
    assert.equal(res.body.redirect, `${sb.app.redirectUris[0]}?error=access_denied&state=q`)
    assert.equal((await tokens(sb)).length, before)
  })

  test('bad requests answer 400 JSON and issue nothing', async () => {
    const before = (await tokens(sb)).length
    const base = { clientId: sb.app.clientId, redirectUri: sb.app.redirectUris[0], scope: 'contacts.readonly', locationId: loc[0] }
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ redirectUri: 'http://127.0.0.1:3000/other' }, /redirect_uri is not registered/],
      [{ clientId: 'x-y' }, /Unknown client_id/],
      [{ scope: 'users.write' }, /scope not enabled/],
      [{ locationId: 'nope' }, /Unknown location/],
      [{ locationId: undefined }, /Choose a location or the agency/],
      [{ locationId: undefined, companyId, locationIds: ['foreign'] }, /Locations not in this agency/],
    ]
    for (const [change, message] of cases) {
      const res = await postJson(`${sb.url}/_sandbox/authorize`, { ...base, ...change })
      assert.equal(res.status, 400, JSON.stringify(change))
      assert.equal(res.body.statusCode, 400)
      assert.match(res.body.message, message)
    }
    assert.equal((await tokens(sb)).length, before)
  })
})

describe('token endpoint', () => {
  test('authorization_code with a form body returns the documented fields', async () => {
    const code = await authorize(sb, { locationId: loc[0], state: 'abc', webhookTiming: 'none' })
    const res = await exchange(sb, code, { user_type: 'Location' })
    assert.equal(res.status, 200)
    assert.ok(res.headers.get('x-trace-id'))
    const b = res.body
    assert.equal(b.token_type, 'Bearer')
    assert.equal(b.expires_in, 3600)
    assert.equal(typeof b.access_token, 'string')
    assert.equal(typeof b.refresh_token, 'string')
    assert.equal(b.scope, sb.app.scopes.join(' '))
    assert.equal(b.userType, 'Location')
    assert.equal(b.locationId, loc[0])
    assert.equal(b.companyId, companyId)
    assert.equal(typeof b.userId, 'string')
    assert.equal(b.isBulkInstallation, false)
    assert.equal('approvedLocations' in b, false)
  })

  test('authorization_code with a JSON body works too', async () => {
    const code = await authorize(sb, { locationId: loc[0], webhookTiming: 'none' })
    const res = await postJson(`${sb.url}/oauth/token`, { client_id: sb.app.clientId, client_secret: sb.app.clientSecret, grant_type: 'authorization_code', code })
    assert.equal(res.status, 200)
    assert.equal(res.body.locationId, loc[0])
  })

  test('a code is single use; the second use fails and revokes what the first issued', async () => {
    const code = await authorize(sb, { locationId: loc[0], webhookTiming: 'none' })
    const first = await exchange(sb, code)
    assert.equal(first.status, 200)
    assert.equal((await getApi(`${sb.url}/locations/${loc[0]}`, first.body.access_token)).status, 200)
    const second = await exchange(sb, code)
    assert.equal(second.status, 400)
    assert.equal(second.body.statusCode, 400)
    assert.equal(second.body.error, 'invalid_grant')
    assert.match(second.body.error_description, /already been used/)
    assert.equal((await getApi(`${sb.url}/locations/${loc[0]}`, first.body.access_token)).status, 401)
    const r = await refresh(sb, first.body.refresh_token)
    assert.equal(r.status, 400)
    assert.equal(r.body.error, 'invalid_grant')
  })

  test('a code expires after codeTtlSec (injected clock) and is not consumed', async () => {
    const code = await authorize(sb, { locationId: loc[0], webhookTiming: 'none' })
    const before = (await tokens(sb)).length
    clock.advance(600_000)
    const res = await exchange(sb, code)
    assert.equal(res.status, 400)
    assert.equal(res.body.error, 'invalid_grant')
    assert.match(res.body.message, /expired/)
    const list = await tokens(sb)
    assert.equal(list.length, before)
    assert.equal(list.find((t) => t.value === code)!.state, 'expired')
  })

  test('a redirect_uri different from the authorize one is rejected and the code stays usable', async () => {
    const code = await authorize(sb, { locationId: loc[0], webhookTiming: 'none' })
    const bad = await exchange(sb, code, { redirect_uri: sb.app.redirectUris[1]! })
    assert.equal(bad.status, 400)
    assert.equal(bad.body.error, 'invalid_grant')
    assert.match(bad.body.message, /redirect_uri/)
    assert.equal((await tokens(sb)).find((t) => t.value === code)!.state, 'active')
    assert.equal((await exchange(sb, code)).status, 200)
  })

  test('by default user_type is a hint: the answer follows the grant', async () => {
    const code = await authorize(sb, { locationId: loc[0], webhookTiming: 'none' })
    const res = await exchange(sb, code, { user_type: 'Company' })
    assert.equal(res.status, 200)
    assert.equal(res.body.userType, 'Location')
    assert.equal(res.body.locationId, loc[0])
  })

  test('a wrong client secret or unknown client is 401 Unauthorized and consumes nothing', async () => {
    const code = await authorize(sb, { locationId: loc[0], webhookTiming: 'none' })
    const before = await tokens(sb)
    for (const change of [{ client_secret: 'wrong' }, { client_id: `${sb.app.appId}-zzzzzzzz` }] as Array<Record<string, string>>) {
      const res = await exchange(sb, code, change)
      assert.equal(res.status, 401)
      assert.deepEqual(Object.keys(res.body).sort(), ['error', 'message', 'statusCode'])
      assert.equal(res.body.statusCode, 401)
      assert.equal(res.body.error, 'Unauthorized')
    }
    assert.deepEqual(await tokens(sb), before)
  })

  test('missing fields are 422 with a message per field', async () => {
    const res = await postJson(`${sb.url}/oauth/token`, { client_id: sb.app.clientId })
    assert.equal(res.status, 422)
    assert.equal(res.body.error, 'Unprocessable Entity')
    assert.deepEqual(res.body.message, ['client_secret should not be empty', 'grant_type should not be empty'])
    const noCode = await postForm(`${sb.url}/oauth/token`, { client_id: sb.app.clientId, client_secret: sb.app.clientSecret, grant_type: 'authorization_code' })
    assert.equal(noCode.status, 422)
    assert.deepEqual(noCode.body.message, ['code should not be empty'])
    const badGrant = await postForm(`${sb.url}/oauth/token`, { client_id: sb.app.clientId, client_secret: sb.app.clientSecret, grant_type: 'password' })
    assert.equal(badGrant.status, 422)
    assert.match(badGrant.body.message[0], /^grant_type/)
  })

  test('unknown codes and refresh tokens are invalid_grant', async () => {
    for (const res of [await exchange(sb, 'not-a-code'), await refresh(sb, 'not-a-refresh-token')]) {
      assert.equal(res.status, 400)
      assert.equal(res.body.error, 'invalid_grant')
      assert.equal(typeof res.body.error_description, 'string')
    }
  })

  test('refresh rotates: the old refresh token is dead, the new one works, the old access token lives on', async () => {
    const t0 = await installLocation(sb, loc[0]!)
    const r1 = await refresh(sb, t0.refresh_token, { user_type: 'Location' })
    assert.equal(r1.status, 200)
    assert.notEqual(r1.body.refresh_token, t0.refresh_token)
    assert.notEqual(r1.body.access_token, t0.access_token)
    assert.equal(r1.body.locationId, loc[0])
    const reuse = await refresh(sb, t0.refresh_token)
    assert.equal(reuse.status, 400)
    assert.equal(reuse.body.error, 'invalid_grant')
    assert.match(reuse.body.error_description, /already been used/)
    const r2 = await refresh(sb, r1.body.refresh_token)
    assert.equal(r2.status, 200)
    assert.equal((await getApi(`${sb.url}/locations/${loc[0]}`, t0.access_token)).status, 200)
    assert.equal((await getApi(`${sb.url}/locations/${loc[0]}`, r2.body.access_token)).status, 200)
    const jsonRefresh = await postJson(`${sb.url}/oauth/token`, { client_id: sb.app.clientId, client_secret: sb.app.clientSecret, grant_type: 'refresh_token', refresh_token: r2.body.refresh_token })
    assert.equal(jsonRefresh.status, 200)
  })

  test('ten parallel refreshes of one refresh token: exactly one succeeds', async () => {
    const t = await installLocation(sb, loc[0]!)
    const answers = await Promise.all(Array.from({ length: 10 }, () => refresh(sb, t.refresh_token)))
    assert.equal(answers.filter((a) => a.status === 200).length, 1)
    assert.equal(answers.filter((a) => a.status === 400 && a.body.error === 'invalid_grant').length, 9)
  })

  test('stats count token calls by grant type and outcome', async () => {
    await postJson(`${sb.url}/_sandbox/reset`, {})
    const t = await installLocation(sb, loc[0]!)
    await refresh(sb, t.refresh_token)
    await refresh(sb, t.refresh_token)
    const stats = (await call(`${sb.url}/_sandbox/stats`)).body
    assert.deepEqual(stats.token.authorization_code, { ok: 1, error: 0 })
    assert.deepEqual(stats.token.refresh_token, { ok: 1, error: 1 })
  })
})

describe('location tokens and installed locations', () => {
  test('an agency token mints location tokens for installed locations only', async () => {
    await postJson(`${sb.url}/_sandbox/reset`, {})
    const agency = await installAgency(sb, { locationIds: [loc[0], loc[1]] })
    assert.equal(agency.userType, 'Company')
    assert.equal('locationId' in agency, false)
    assert.deepEqual(agency.approvedLocations, [loc[0], loc[1]])
    assert.equal(agency.isBulkInstallation, true)
    assert.equal(agency.approveAllLocations, false)
    assert.equal(agency.installToFutureLocations, false)
    const url = `${sb.url}/oauth/locationToken`
    const auth = { authorization: `Bearer ${agency.access_token}`, version: '2021-07-28' }

    const ok = await postForm(url, { companyId, locationId: loc[0]! }, auth)
    assert.equal(ok.status, 200)
    assert.equal(ok.body.locationId, loc[0])
    assert.equal(ok.body.token_type, 'Bearer')
    assert.equal(ok.body.expires_in, 3600)
    assert.equal(typeof ok.body.userId, 'string')
    assert.equal('refresh_token' in ok.body, false)
    assert.ok(ok.headers.get('x-ratelimit-remaining'))
    const contacts = await getApi(`${sb.url}/contacts/?locationId=${loc[0]}`, ok.body.access_token)
    assert.equal(contacts.status, 200)

    const json = await postJson(url, { companyId, locationId: loc[1] }, auth)
    assert.equal(json.status, 200)

    const notInstalled = await postForm(url, { companyId, locationId: loc[2]! }, auth)
    assert.equal(notInstalled.status, 400)
    assert.match(notInstalled.body.message, /not installed/)
    const otherCompany = await postForm(url, { companyId: 'someOtherCompany1234', locationId: loc[0]! }, auth)
    assert.equal(otherCompany.status, 403)
    const missing = await postForm(url, { companyId }, auth)
    assert.equal(missing.status, 422)
    assert.deepEqual(missing.body.message, ['locationId should not be empty'])
    const noVersion = await postForm(url, { companyId, locationId: loc[0]! }, { authorization: auth.authorization })
    assert.equal(noVersion.status, 400)
    const withLocationToken = await postForm(url, { companyId, locationId: loc[0]! }, { ...auth, authorization: `Bearer ${ok.body.access_token}` })
    assert.equal(withLocationToken.status, 403)

    const stats = (await call(`${sb.url}/_sandbox/stats`)).body
    assert.deepEqual(stats.locationToken, { ok: 2, error: 5, rateLimited: 0 })
  })

  test('installToFutureLocations covers every location of the agency', async () => {
    await postJson(`${sb.url}/_sandbox/reset`, {})
    const agency = await installAgency(sb, { locationIds: [], installToFutureLocations: true })
    assert.equal(agency.isBulkInstallation, false)
    const res = await postForm(`${sb.url}/oauth/locationToken`, { companyId, locationId: loc[2]! }, { authorization: `Bearer ${agency.access_token}`, version: '2021-07-28' })
    assert.equal(res.status, 200)
  })

  test('installedLocations pages, filters and counts', async () => {
    await postJson(`${sb.url}/_sandbox/reset`, {})
    const agency = await installAgency(sb, { locationIds: [loc[0], loc[2]] })
    const list = (q: Record<string, string>) =>
      getApi(`${sb.url}/oauth/installedLocations?${new URLSearchParams({ companyId, appId: sb.app.appId, ...q })}`, agency.access_token)
    const p1 = await list({ limit: '2' })
    assert.equal(p1.status, 200)
    assert.equal(p1.body.count, 3)
    assert.equal(p1.body.installToFutureLocations, false)
    assert.deepEqual(p1.body.locations.map((l: any) => [l._id, l.isInstalled]), [[loc[0], true], [loc[1], false]])
    assert.equal(typeof p1.body.locations[0].installedAt, 'string')
    assert.equal(typeof p1.body.locations[0].address, 'string')
    assert.equal(p1.body.locations[0].name, 'Downtown Dental')
    const p2 = await list({ limit: '2', skip: '2' })
    assert.deepEqual(p2.body.locations.map((l: any) => l._id), [loc[2]])
    const installed = await list({ isInstalled: 'true' })
    assert.equal(installed.body.count, 2)
    const q = await list({ query: 'harbor' })
    assert.deepEqual(q.body.locations.map((l: any) => l.name), ['Harbor Realty'])
    assert.equal((await list({ skip: '-1' })).status, 422)
    const missing = await getApi(`${sb.url}/oauth/installedLocations?companyId=${companyId}`, agency.access_token)
    assert.equal(missing.status, 422)
    assert.deepEqual(missing.body.message, ['appId should not be empty'])
    assert.equal((await list({ companyId: 'x' })).status, 403)
    assert.equal((await getApi(`${sb.url}/oauth/installedLocations?companyId=${companyId}&appId=${sb.app.appId}`, agency.access_token, null)).status, 400)
  })
})

describe('reconnect', () => {
  test('a reconnect code replaces the installation refresh tokens', async () => {
    await postJson(`${sb.url}/_sandbox/reset`, {})
    const t0 = await installLocation(sb, loc[0]!)
    const res = await postJson(`${sb.url}/oauth/reconnect`, { clientKey: sb.app.clientId, clientSecret: sb.app.clientSecret, locationId: loc[0] })
    assert.equal(res.status, 200)
    assert.equal(typeof res.body.authorizationCode, 'string')
    assert.ok(Date.parse(res.body.expiresAt) > clock.now())
    assert.equal(res.body.traceId, res.headers.get('x-trace-id'))
    // Until the code is exchanged, the old refresh token still works.
    assert.equal((await tokens(sb)).find((t) => t.value === t0.refresh_token)!.state, 'active')
    const ex = await postForm(`${sb.url}/oauth/token`, { client_id: sb.app.clientId, client_secret: sb.app.clientSecret, grant_type: 'authorization_code', code: res.body.authorizationCode })
    assert.equal(ex.status, 200)
    assert.equal(ex.body.locationId, loc[0])
    const old = await refresh(sb, t0.refresh_token)
    assert.equal(old.status, 400)
    assert.equal(old.body.error, 'invalid_grant')
    assert.equal((await refresh(sb, ex.body.refresh_token)).status, 200)
    assert.equal((await getApi(`${sb.url}/locations/${loc[0]}`, t0.access_token)).status, 200)
  })

  test('reconnect for an agency install', async () => {
    await installAgency(sb)
    const res = await postJson(`${sb.url}/oauth/reconnect`, { clientKey: sb.app.clientId, clientSecret: sb.app.clientSecret, companyId })
    assert.equal(res.status, 200)
    const ex = await exchange(sb, res.body.authorizationCode, { user_type: 'Company' })
    assert.equal(ex.status, 200)
    assert.equal(ex.body.userType, 'Company')
  })

  test('refusals: bad credentials 401, not installed 404, forced 400, missing 422', async () => {
    await postJson(`${sb.url}/_sandbox/reset`, {})
    await installLocation(sb, loc[0]!)
    const url = `${sb.url}/oauth/reconnect`
    const bad = await postJson(url, { clientKey: sb.app.clientId, clientSecret: 'nope', locationId: loc[0] })
    assert.equal(bad.status, 401)
    assert.equal(bad.body.error, 'Unauthorized')
    const none = await postJson(url, { clientKey: sb.app.clientId, clientSecret: sb.app.clientSecret, locationId: loc[1] })
    assert.equal(none.status, 404)
    assert.match(none.body.message, /not installed/)
    const missing = await postJson(url, { clientKey: sb.app.clientId, clientSecret: sb.app.clientSecret })
    assert.equal(missing.status, 422)
    await call(`${sb.url}/_sandbox/settings`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ reconnect: 'refuse' }) })
    const refused = await postJson(url, { clientKey: sb.app.clientId, clientSecret: sb.app.clientSecret, locationId: loc[0] })
    assert.equal(refused.status, 400)
    assert.equal(refused.body.statusCode, 400)
    await call(`${sb.url}/_sandbox/settings`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ reconnect: 'allow' }) })
    assert.equal((await postJson(`${sb.url}/_sandbox/uninstall`, { locationId: loc[0] })).status, 200)
    const gone = await postJson(url, { clientKey: sb.app.clientId, clientSecret: sb.app.clientSecret, locationId: loc[0] })
    assert.equal(gone.status, 404)
    const stats = (await call(`${sb.url}/_sandbox/stats`)).body
    assert.deepEqual(stats.reconnect, { ok: 0, error: 5 })
  })
})
