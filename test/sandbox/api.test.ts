/**
 * The sandbox's resource APIs over real HTTP: Bearer checks (401/403), Version, scopes, rate limits
 * and their headers, PITs, contacts.
 */
import { after, before, beforeEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { ManualClock } from '../../src/clock.js'
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js'
import { call, getApi, installAgency, installLocation, postForm, postJson, refresh } from './helpers.js'

const RATE_HEADERS = [
  'x-ratelimit-limit-daily',
  'x-ratelimit-daily-remaining',
  'x-ratelimit-interval-milliseconds',
  'x-ratelimit-max',
  'x-ratelimit-remaining',
]

const clock = new ManualClock(Date.UTC(2026, 0, 1))
let sb: Sandbox
let loc: string[]
let companyId: string

before(async () => {
  sb = await startSandbox({ clock, accessTokenTtlSec: 60, rateLimit: { burstMax: 5, burstWindowMs: 1000, dailyMax: 8, dailyWindowMs: 60_000 } })
  loc = sb.companies[0]!.locations.map((l) => l.locationId)
  companyId = sb.companies[0]!.companyId
})
after(() => sb.close())
beforeEach(async () => {
  await postJson(`${sb.url}/_sandbox/reset`, {})
})

const put = (path: string, body: unknown) =>
  call(`${sb.url}${path}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

function assertRateHeaders(res: { headers: Headers; status: number }, what: string): void {
  for (const h of RATE_HEADERS) assert.ok(res.headers.get(h) !== null, `${what} (${res.status}) lacks ${h}`)
  assert.ok(res.headers.get('x-trace-id'), `${what} lacks x-trace-id`)
}

describe('authentication', () => {
  test('missing, unknown, revoked and non-access tokens are 401 Invalid JWT', async () => {
    await put('/_sandbox/settings', { rateLimit: { burstMax: 100, dailyMax: 1000 } })
    const t = await installLocation(sb, loc[0]!)
    const url = `${sb.url}/contacts/?locationId=${loc[0]}`
    await postJson(`${sb.url}/_sandbox/tokens/revoke`, { token: t.access_token })
    for (const token of [undefined, 'unknown-token', t.access_token, t.refresh_token]) {
      const res = await getApi(url, token)
      assert.equal(res.status, 401)
      assert.deepEqual(res.body, { statusCode: 401, message: 'Invalid JWT', error: 'Unauthorized' })
      assertRateHeaders(res, 'a 401')
    }
    const malformed = await call(url, { headers: { authorization: 'Basic abc', version: '2021-07-28' } })
    assert.equal(malformed.status, 401)
  })

  test('an expired token is 401 with a message saying so (clock and control)', async () => {
    await put('/_sandbox/settings', { rateLimit: { burstMax: 100, dailyMax: 1000 } })
    const t = await installLocation(sb, loc[0]!)
    const url = `${sb.url}/locations/${loc[0]}`
    assert.equal((await getApi(url, t.access_token)).status, 200)
    clock.advance(60_000)
    const expired = await getApi(url, t.access_token)
    assert.equal(expired.status, 401)
    assert.equal(expired.body.error, 'Unauthorized')
    assert.match(expired.body.message, /expired/)
    const r = await refresh(sb, t.refresh_token)
    assert.equal((await getApi(url, r.body.access_token)).status, 200)
    const exp = await postJson(`${sb.url}/_sandbox/tokens/expire`, { locationId: loc[0] })
    assert.equal(exp.body.expired, 1)
    assert.match((await getApi(url, r.body.access_token)).body.message, /expired/)
  })

  test('tokens of another location are 403; agency tokens on location-only endpoints are 401 (wrong token class)', async () => {
    await put('/_sandbox/settings', { rateLimit: { burstMax: 100, dailyMax: 1000 } })
    const a = await installLocation(sb, loc[0]!)
    const agency = await installAgency(sb)
    const cases: Array<[string, string]> = [
      [`${sb.url}/contacts/?locationId=${loc[1]}`, a.access_token],
      [`${sb.url}/locations/${loc[1]}`, a.access_token],
    ]
    for (const [url, token] of cases) {
      const res = await getApi(url, token)
      assert.equal(res.status, 403, url)
      assert.equal(res.body.statusCode, 403)
      assert.equal(res.body.error, 'Forbidden')
    }
    // HighLevel answers an agency OAuth token on a sub-account endpoint 401 with its IAM message.
    const wrongClass = await getApi(`${sb.url}/contacts/?locationId=${loc[0]}`, agency.access_token)
    assert.equal(wrongClass.status, 401)
    assert.deepEqual(wrongClass.body, {
      statusCode: 401,
      message: 'This authClass type is not allowed to access this scope. Please verify your IAM configuration if this is not the case.',
      error: 'Unauthorized',
    })
    const otherContact = (await getApi(`${sb.url}/contacts/?locationId=${loc[0]}`, a.access_token)).body.contacts[0].id
    const b = await installLocation(sb, loc[1]!)
    assert.equal((await getApi(`${sb.url}/contacts/${otherContact}`, b.access_token)).status, 403)
    // Agency-Access: an agency token reads any location of its own company.
    const own = await getApi(`${sb.url}/locations/${loc[2]}`, agency.access_token)
    assert.equal(own.status, 200)
    assert.equal(own.body.location.id, loc[2])
    assert.equal(own.body.location.companyId, companyId)
    assert.equal(own.body.location.name, 'Harbor Realty')
  })
})

describe('Version and scopes', () => {
  test('the Version header is required and checked', async () => {
    const t = await installLocation(sb, loc[0]!)
    const missing = await getApi(`${sb.url}/contacts/?locationId=${loc[0]}`, t.access_token, null)
    assert.equal(missing.status, 400)
    assert.equal(missing.body.statusCode, 400)
    assert.match(missing.body.message, /Version header/)
    assertRateHeaders(missing, 'a 400')
    const wrong = await getApi(`${sb.url}/contacts/?locationId=${loc[0]}`, t.access_token, '1999-01-01')
    assert.equal(wrong.status, 400)
    assert.match(wrong.body.message, /not supported/)
  })

  test('scopes are enforced, the message names the missing scope', async () => {
    await put('/_sandbox/settings', { rateLimit: { burstMax: 100, dailyMax: 1000 } })
    const t = await installLocation(sb, loc[0]!, 'contacts.readonly')
    assert.equal((await getApi(`${sb.url}/contacts/?locationId=${loc[0]}`, t.access_token)).status, 200)
    const write = await postJson(`${sb.url}/contacts/`, { locationId: loc[0], firstName: 'X' }, { authorization: `Bearer ${t.access_token}`, version: '2021-07-28' })
    assert.equal(write.status, 401)
    assert.match(write.body.message, /contacts\.write/)
    const location = await getApi(`${sb.url}/locations/${loc[0]}`, t.access_token)
    assert.equal(location.status, 401)
    assert.match(location.body.message, /locations\.readonly/)
    const count = (await getApi(`${sb.url}/contacts/?locationId=${loc[0]}&limit=100`, t.access_token)).body.count
    assert.equal(count, 3, 'the refused write stored nothing')
  })
})

describe('rate limits', () => {
  test('every answer carries the headers; past the burst 429 with Retry-After; a 429 is not counted', async () => {
    const t = await installLocation(sb, loc[0]!)
    const url = `${sb.url}/contacts/?locationId=${loc[0]}`
    const remaining: string[] = []
    // Successes and failures count alike: 2 OK, 1 wrong location (403), 1 missing Version (400), 1 OK.
    for (const [u, v] of [[url, '2021-07-28'], [url, '2021-07-28'], [`${sb.url}/contacts/?locationId=${loc[1]}`, '2021-07-28'], [url, null], [url, '2021-07-28']] as const) {
      const res = await getApi(u, t.access_token, v)
      assertRateHeaders(res, u)
      assert.equal(res.headers.get('x-ratelimit-max'), '5')
      assert.equal(res.headers.get('x-ratelimit-interval-milliseconds'), '1000')
      assert.equal(res.headers.get('x-ratelimit-limit-daily'), '8')
      remaining.push(res.headers.get('x-ratelimit-remaining')!)
    }
    assert.deepEqual(remaining, ['4', '3', '2', '1', '0'])
    const limited = await getApi(url, t.access_token)
    assert.equal(limited.status, 429)
    assert.equal(limited.body.statusCode, 429)
    assert.equal(typeof limited.body.message, 'string')
    assert.equal(limited.headers.get('retry-after'), '1')
    assertRateHeaders(limited, 'a 429')
    assert.equal(limited.headers.get('x-ratelimit-daily-remaining'), '3', 'the 429 was not counted')
    // Another location has its own budget.
    const other = await installLocation(sb, loc[1]!)
    assert.equal((await getApi(`${sb.url}/contacts/?locationId=${loc[1]}`, other.access_token)).status, 200)
    // Sliding window: once the window has passed, calls go through again.
    clock.advance(1000)
    const again = await getApi(url, t.access_token)
    assert.equal(again.status, 200)
    assert.equal(again.headers.get('x-ratelimit-remaining'), '4')
    const stats = (await call(`${sb.url}/_sandbox/stats`)).body
    assert.deepEqual(stats.api, { ok: 5, error: 2, rateLimited: 1 })
  })

  test('the daily limit answers 429 until its window ends', async () => {
    await put('/_sandbox/settings', { accessTokenTtlSec: 3600 })
    const t = await installLocation(sb, loc[0]!)
    const url = `${sb.url}/locations/${loc[0]}`
    for (let i = 0; i < 8; i++) {
      assert.equal((await getApi(url, t.access_token)).status, 200)
      clock.advance(1000)
    }
    const res = await getApi(url, t.access_token)
    assert.equal(res.status, 429)
    assert.equal(res.headers.get('x-ratelimit-daily-remaining'), '0')
    assert.ok(Number(res.headers.get('retry-after')) > 1)
    clock.advance(60_000)
    assert.equal((await getApi(url, t.access_token)).status, 200)
  })

  test('limits are settable by control; oauth Bearer endpoints and PITs are limited too', async () => {
    await put('/_sandbox/settings', { rateLimit: { burstMax: 2 } })
    const agency = await installAgency(sb)
    const auth = { authorization: `Bearer ${agency.access_token}`, version: '2021-07-28' }
    const list = `${sb.url}/oauth/installedLocations?companyId=${companyId}&appId=${sb.app.appId}`
    assert.equal((await getApi(list, agency.access_token)).status, 200)
    assert.equal((await postForm(`${sb.url}/oauth/locationToken`, { companyId, locationId: loc[0]! }, auth)).status, 200)
    const limited = await postForm(`${sb.url}/oauth/locationToken`, { companyId, locationId: loc[0]! }, auth)
    assert.equal(limited.status, 429)
    assert.equal(limited.headers.get('x-ratelimit-max'), '2')
    const pit = (await postJson(`${sb.url}/_sandbox/pit`, { locationId: loc[2] })).body.token
    assert.equal((await getApi(`${sb.url}/locations/${loc[2]}`, pit)).status, 200)
    assert.equal((await getApi(`${sb.url}/contacts/?locationId=${loc[2]}`, pit)).status, 200)
    assert.equal((await getApi(`${sb.url}/locations/${loc[2]}`, pit)).status, 429)
    const stats = (await call(`${sb.url}/_sandbox/stats`)).body
    assert.equal(stats.locationToken.rateLimited, 1)
    assert.equal(stats.installedLocations.ok, 1)
  })
})

describe('private integration tokens', () => {
  test('a location PIT reads its location; an agency PIT is refused on Agency-Access-Only', async () => {
    await put('/_sandbox/settings', { rateLimit: { burstMax: 100, dailyMax: 1000 } })
    const pit = (await postJson(`${sb.url}/_sandbox/pit`, { locationId: loc[0], scopes: ['contacts.readonly'] })).body.token
    assert.equal((await getApi(`${sb.url}/contacts/?locationId=${loc[0]}`, pit)).status, 200)
    assert.equal((await getApi(`${sb.url}/contacts/?locationId=${loc[1]}`, pit)).status, 403)
    assert.equal((await getApi(`${sb.url}/locations/${loc[0]}`, pit)).status, 401)
    const agencyPit = (await postJson(`${sb.url}/_sandbox/pit`, { companyId })).body.token
    assert.equal((await getApi(`${sb.url}/locations/${loc[1]}`, agencyPit)).status, 200)
    const lt = await postForm(`${sb.url}/oauth/locationToken`, { companyId, locationId: loc[0]! }, { authorization: `Bearer ${agencyPit}`, version: '2021-07-28' })
    assert.equal(lt.status, 403)
    assert.equal((await postJson(`${sb.url}/_sandbox/pit`, {})).status, 400)
  })
})

describe('contacts', () => {
  test('list, search, get, create, duplicates and validation', async () => {
    await put('/_sandbox/settings', { rateLimit: { burstMax: 100, dailyMax: 1000 } })
    const t = await installLocation(sb, loc[0]!)
    const auth = { authorization: `Bearer ${t.access_token}`, version: '2021-07-28' }
    const list = await getApi(`${sb.url}/contacts/?locationId=${loc[0]}&limit=2`, t.access_token)
    assert.equal(list.status, 200)
    assert.equal(list.body.contacts.length, 2)
    assert.equal(list.body.count, 3)
    const next = await getApi(`${sb.url}/contacts/?locationId=${loc[0]}&startAfterId=${list.body.meta.startAfterId}`, t.access_token)
    assert.equal(next.body.contacts.length, 1)
    const search = await getApi(`${sb.url}/contacts/?locationId=${loc[0]}&query=hopper`, t.access_token)
    assert.deepEqual(search.body.contacts.map((c: any) => c.lastName), ['Hopper'])
    const one = await getApi(`${sb.url}/contacts/${list.body.contacts[0].id}`, t.access_token)
    assert.equal(one.body.contact.id, list.body.contacts[0].id)
    assert.equal((await getApi(`${sb.url}/contacts/nope`, t.access_token)).status, 400)
    assert.equal((await getApi(`${sb.url}/contacts/`, t.access_token)).status, 422)
    assert.equal((await getApi(`${sb.url}/contacts/?locationId=${loc[0]}&limit=500`, t.access_token)).status, 422)

    const created = await postJson(`${sb.url}/contacts/`, { locationId: loc[0], firstName: 'Rosan', lastName: 'Deo', email: 'rosan@deos.com' }, auth)
    assert.equal(created.status, 201)
    assert.equal(created.body.contact.name, 'Rosan Deo')
    assert.equal(created.body.contact.locationId, loc[0])
    const dup = await postJson(`${sb.url}/contacts/`, { locationId: loc[0], email: 'ROSAN@deos.com' }, auth)
    assert.equal(dup.status, 400)
    assert.equal(dup.body.meta.contactId, created.body.contact.id)
    const noLocation = await postJson(`${sb.url}/contacts/`, { firstName: 'A' }, auth)
    assert.equal(noLocation.status, 422)
    assert.deepEqual(noLocation.body.message, ['locationId should not be empty'])
    const badEmail = await postJson(`${sb.url}/contacts/`, { locationId: loc[0], email: 'not-an-email' }, auth)
    assert.equal(badEmail.status, 422)
    assert.match(badEmail.body.message[0], /^email/)
    const otherLocation = await postJson(`${sb.url}/contacts/`, { locationId: loc[1], firstName: 'A' }, auth)
    assert.equal(otherLocation.status, 403)
    const after = await getApi(`${sb.url}/contacts/?locationId=${loc[0]}&limit=100`, t.access_token)
    assert.equal(after.body.count, 4, 'only the valid contact was stored')
  })
})
