/**
 * One app, agency and sub-account installs: `user_type` as a hint or checked strictly, and the
 * Company token an agency user's pick of one location can yield (locationPickToken).
 */
import { after, before, beforeEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js'
import { authorize, call, deliveries, exchange, getApi, installAgency, installLocation, postForm, postJson, putSettings, refresh, tokens } from './helpers.js'

let sb: Sandbox
let loc: string[]
let companyId: string
let agencyUser: string
let accountUser: string
const OTHER_AGENCY = 'OtherAgency000000000'
const OTHER_USER = 'OtherUser00000000000'

before(async () => {
  sb = await startSandbox({
    seed: {
      companies: [
        { name: 'Sandbox Agency', locations: [{ name: 'Downtown Dental' }, { name: 'Uptown Fitness' }, { name: 'Harbor Realty' }] },
        { companyId: OTHER_AGENCY, name: 'Other Agency', locations: [{ name: 'Elsewhere' }] },
      ],
      users: [
        { name: 'Sam Admin', email: 'sam@agency.example', role: 'admin', type: 'agency' },
        { name: 'Ana Account', email: 'ana@location.example', role: 'admin', type: 'account' },
        { userId: OTHER_USER, name: 'Olga Other', email: 'olga@other.example', type: 'agency', companyId: OTHER_AGENCY },
      ],
    },
  })
  loc = sb.companies[0]!.locations.map((l) => l.locationId)
  companyId = sb.companies[0]!.companyId
  const users = (await call(`${sb.url}/_sandbox/users`)).body as Array<{ userId: string; type: string }>
  agencyUser = users.find((u) => u.type === 'agency' && u.userId !== OTHER_USER)!.userId
  accountUser = users.find((u) => u.type === 'account')!.userId
})
after(() => sb.close())
beforeEach(async () => {
  await postJson(`${sb.url}/_sandbox/reset`, {})
})

const stateOf = async (value: string): Promise<string> => (await tokens(sb)).find((t) => t.value === value)!.state
const locationToken = (agencyToken: string, locationId: string) =>
  postForm(`${sb.url}/oauth/locationToken`, { companyId, locationId }, { authorization: `Bearer ${agencyToken}`, version: '2021-07-28' })

describe('user_type', () => {
  test('hint (default): the answer follows the grant whatever user_type asks, for codes and refreshes', async () => {
    assert.equal((await call(`${sb.url}/_sandbox/settings`)).body.userTypeCheck, 'hint')
    const locationCode = await authorize(sb, { locationId: loc[0], webhookTiming: 'none' })
    const asCompany = await exchange(sb, locationCode, { user_type: 'Company' })
    assert.equal(asCompany.status, 200)
    assert.equal(asCompany.body.userType, 'Location')
    assert.equal(asCompany.body.locationId, loc[0])
    const agencyCode = await authorize(sb, { companyId, webhookTiming: 'none' })
    const asLocation = await exchange(sb, agencyCode, { user_type: 'Location' })
    assert.equal(asLocation.status, 200)
    assert.equal(asLocation.body.userType, 'Company')
    assert.equal('locationId' in asLocation.body, false)
    const refreshed = await refresh(sb, asLocation.body.refresh_token, { user_type: 'Location' })
    assert.equal(refreshed.status, 200)
    assert.equal(refreshed.body.userType, 'Company')
  })

  test('strict: a mismatch is 400 invalid_request, consumes nothing, and the right type then works', async () => {
    await putSettings(sb, { userTypeCheck: 'strict' })
    const code = await authorize(sb, { locationId: loc[0], webhookTiming: 'none' })
    const wrong = await exchange(sb, code, { user_type: 'Company' })
    assert.equal(wrong.status, 400)
    assert.deepEqual(wrong.body, { statusCode: 400, message: 'user_type Company does not match the grant (Location)', error: 'invalid_request' })
    assert.equal(await stateOf(code), 'active', 'the code was not consumed')
    const right = await exchange(sb, code, { user_type: 'Location' })
    assert.equal(right.status, 200)
    assert.equal(right.body.userType, 'Location')

    const wrongRefresh = await refresh(sb, right.body.refresh_token, { user_type: 'Company' })
    assert.equal(wrongRefresh.status, 400)
    assert.equal(wrongRefresh.body.error, 'invalid_request')
    assert.equal(await stateOf(right.body.refresh_token), 'active', 'the refresh token was not consumed')
    assert.equal((await refresh(sb, right.body.refresh_token)).status, 200, 'without user_type it works')
  })

  test('strict: the agency grant refuses Location and takes Company', async () => {
    await putSettings(sb, { userTypeCheck: 'strict' })
    const code = await authorize(sb, { companyId, webhookTiming: 'none' })
    const wrong = await exchange(sb, code, { user_type: 'Location' })
    assert.equal(wrong.status, 400)
    assert.equal(wrong.body.message, 'user_type Location does not match the grant (Company)')
    assert.equal((await exchange(sb, code, { user_type: 'Company' })).body.userType, 'Company')
  })
})

describe('locationPickToken', () => {
  test("'location' (default): an agency user's pick of one location gets a Location token", async () => {
    const t = await installLocation(sb, loc[1]!)
    assert.equal(t.userType, 'Location')
    assert.equal(t.locationId, loc[1])
    assert.equal(t.userId, agencyUser)
  })

  test("'company': the pick gets a Company token without locationId or approvedLocations; the app is installed on that location", async () => {
    await putSettings(sb, { locationPickToken: 'company' })
    const code = await authorize(sb, { locationId: loc[1], webhookTiming: 'none' })
    const res = await exchange(sb, code, { user_type: 'Location' })
    assert.equal(res.status, 200)
    const t = res.body
    assert.equal(t.userType, 'Company')
    assert.equal(t.companyId, companyId)
    assert.equal(t.userId, agencyUser)
    assert.equal('locationId' in t, false)
    assert.equal('approvedLocations' in t, false)
    assert.equal(t.isBulkInstallation, true)

    const minted = await locationToken(t.access_token, loc[1]!)
    assert.equal(minted.status, 200)
    assert.equal(minted.body.locationId, loc[1])
    assert.equal((await getApi(`${sb.url}/contacts/?locationId=${loc[1]}`, minted.body.access_token)).status, 200)
    const other = await locationToken(t.access_token, loc[0]!)
    assert.equal(other.status, 400, 'only the picked location is installed')
    assert.match(other.body.message, /not installed/)

    const list = await getApi(`${sb.url}/oauth/installedLocations?${new URLSearchParams({ companyId, appId: sb.app.appId })}`, t.access_token)
    assert.equal(list.status, 200)
    assert.deepEqual(list.body.locations.map((l: any) => [l._id, l.isInstalled]), [[loc[0], false], [loc[1], true], [loc[2], false]])

    const refreshed = await refresh(sb, t.refresh_token)
    assert.equal(refreshed.body.userType, 'Company')
    assert.equal('approvedLocations' in refreshed.body, false)
  })

  test("'company': a second pick adds its location to the same agency install", async () => {
    await putSettings(sb, { locationPickToken: 'company' })
    const first = (await exchange(sb, await authorize(sb, { locationId: loc[0], webhookTiming: 'none' }))).body
    const second = (await exchange(sb, await authorize(sb, { locationId: loc[2], webhookTiming: 'none' }))).body
    assert.equal(second.userType, 'Company')
    const installs = (await call(`${sb.url}/_sandbox/installs`)).body.filter((i: any) => i.uninstalledAt === null)
    assert.equal(installs.length, 1)
    assert.deepEqual(installs[0].approvedLocations, [loc[0], loc[2]])
    for (const l of [loc[0]!, loc[2]!]) assert.equal((await locationToken(first.access_token, l)).status, 200, l)
    assert.equal((await locationToken(first.access_token, loc[1]!)).status, 400)
  })

  test("'company': an account (sub-account) user's pick still gets a Location token", async () => {
    await putSettings(sb, { locationPickToken: 'company' })
    const code = await authorize(sb, { locationId: loc[0], userId: accountUser, webhookTiming: 'none' })
    const t = (await exchange(sb, code)).body
    assert.equal(t.userType, 'Location')
    assert.equal(t.locationId, loc[0])
    assert.equal(t.userId, accountUser)
  })

  test("'company' with strict user_type: asking Location for the Company grant is refused and consumes nothing", async () => {
    await putSettings(sb, { locationPickToken: 'company', userTypeCheck: 'strict' })
    const code = await authorize(sb, { locationId: loc[0], webhookTiming: 'none' })
    const wrong = await exchange(sb, code, { user_type: 'Location' })
    assert.equal(wrong.status, 400)
    assert.equal(wrong.body.message, 'user_type Location does not match the grant (Company)')
    assert.equal((await exchange(sb, code, { user_type: 'Company' })).body.userType, 'Company')
  })

  test("'company': INSTALL webhooks are the agency event and the picked location's event only", async () => {
    await putSettings(sb, { locationPickToken: 'company' })
    await authorize(sb, { locationId: loc[1], webhookTiming: 'early' })
    const sent = (await deliveries(sb)).map((d) => d.payload)
    assert.deepEqual(sent.map((p) => [p.type, p.installType, p.locationId ?? null]), [['INSTALL', 'Company', null], ['INSTALL', 'Location', loc[1]]])
  })

  test('an unknown installer, or one of another agency, is refused and issues nothing', async () => {
    const before = (await tokens(sb)).length
    const base = { clientId: sb.app.clientId, redirectUri: sb.app.redirectUris[0], scope: 'contacts.readonly', locationId: loc[0] }
    const unknown = await postJson(`${sb.url}/_sandbox/authorize`, { ...base, userId: 'nobody' })
    assert.equal(unknown.status, 400)
    assert.match(unknown.body.message, /Unknown user/)
    const foreign = await postJson(`${sb.url}/_sandbox/authorize`, { ...base, userId: OTHER_USER })
    assert.equal(foreign.status, 400)
    assert.match(foreign.body.message, /does not belong to this agency/)
    assert.equal((await tokens(sb)).length, before)
    const agency = await installAgency(sb, { userId: agencyUser })
    assert.equal(agency.userId, agencyUser, 'control: a known installer of this agency is accepted')
  })

  test('bad settings values are refused and change nothing', async () => {
    const bad = await call(`${sb.url}/_sandbox/settings`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userTypeCheck: 'lenient', locationPickToken: 'agency' }),
    })
    assert.equal(bad.status, 400)
    assert.match(bad.body.message, /userTypeCheck/)
    assert.match(bad.body.message, /locationPickToken/)
    const now = (await call(`${sb.url}/_sandbox/settings`)).body
    assert.equal(now.userTypeCheck, 'hint')
    assert.equal(now.locationPickToken, 'location')
    await assert.rejects(startSandbox({ userTypeCheck: 'lenient' as never, locationPickToken: 'agency' as never }), (err: Error) => {
      assert.match(err.message, /userTypeCheck/)
      assert.match(err.message, /locationPickToken/)
      return true
    })
  })
})
