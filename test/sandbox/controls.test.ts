/**
 * Sandbox controls over real HTTP: faults (500, hang, malformed) on the next N calls only, reset,
 * token controls, settings, seeds, state persistence and a clean close.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js'
import { authorize, call, exchange, getApi, installAgency, installLocation, postForm, postJson, refresh, tokens } from './helpers.js'

let sb: Sandbox
let loc: string[]
let companyId: string
const dir = mkdtempSync(join(tmpdir(), 'ghl-sandbox-'))

before(async () => {
  sb = await startSandbox()
  loc = sb.companies[0]!.locations.map((l) => l.locationId)
  companyId = sb.companies[0]!.companyId
})
after(async () => {
  await sb.close()
  rmSync(dir, { recursive: true, force: true })
})

const put = (path: string, body: unknown) =>
  call(`${sb.url}${path}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

describe('faults', () => {
  test('error500 hits the next N token calls only, then the endpoint works', async () => {
    await postJson(`${sb.url}/_sandbox/reset`, {})
    const t = await installLocation(sb, loc[0]!)
    assert.equal((await postJson(`${sb.url}/_sandbox/faults`, { endpoint: 'token', kind: 'error500', count: 2 })).status, 200)
    for (let i = 0; i < 2; i++) {
      const res = await refresh(sb, t.refresh_token)
      assert.equal(res.status, 500)
      assert.equal(res.body.statusCode, 500)
    }
    const ok = await refresh(sb, t.refresh_token)
    assert.equal(ok.status, 200, 'the faulted calls did not consume the refresh token')
    const stats = (await call(`${sb.url}/_sandbox/stats`)).body
    assert.equal(stats.faults.token, 2)
    assert.deepEqual(stats.token.refresh_token, { ok: 1, error: 2 })
  })

  test('malformed answers 200 with an unparsable JSON body, once', async () => {
    const t = await installLocation(sb, loc[0]!)
    await postJson(`${sb.url}/_sandbox/faults`, { endpoint: 'api', kind: 'malformed', count: 1 })
    const res = await fetch(`${sb.url}/locations/${loc[0]}`, { headers: { authorization: `Bearer ${t.access_token}`, version: '2021-07-28' } })
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type')!, /application\/json/)
    await assert.rejects(res.json(), SyntaxError)
    assert.equal((await getApi(`${sb.url}/locations/${loc[0]}`, t.access_token)).status, 200)
  })

  test('hang holds the next call for hangMs (504), the one after answers', async () => {
    const agency = await installAgency(sb)
    await postJson(`${sb.url}/_sandbox/faults`, { endpoint: 'locationToken', kind: 'hang', count: 1, hangMs: 5000 })
    const auth = { authorization: `Bearer ${agency.access_token}`, version: '2021-07-28' }
    const aborted = call(`${sb.url}/oauth/locationToken`, {
      method: 'POST',
      headers: auth,
      body: new URLSearchParams({ companyId, locationId: loc[0]! }),
      signal: AbortSignal.timeout(100),
    })
    await assert.rejects(aborted, /abort|timeout/i)
    const ok = await postForm(`${sb.url}/oauth/locationToken`, { companyId, locationId: loc[0]! }, auth)
    assert.equal(ok.status, 200)
    await postJson(`${sb.url}/_sandbox/faults`, { endpoint: 'reconnect', kind: 'hang', count: 1, hangMs: 50 })
    const late = await postJson(`${sb.url}/oauth/reconnect`, { clientKey: sb.app.clientId, clientSecret: sb.app.clientSecret, companyId })
    assert.equal(late.status, 504)
    await postJson(`${sb.url}/_sandbox/reset`, {}) // releases the 5 s hang
  })

  test('bad fault requests are refused', async () => {
    for (const body of [{ endpoint: 'nope', kind: 'error500' }, { endpoint: 'token', kind: 'explode' }, { endpoint: 'token', kind: 'hang', count: 0 }]) {
      const res = await postJson(`${sb.url}/_sandbox/faults`, body)
      assert.equal(res.status, 400, JSON.stringify(body))
    }
    const t = await installLocation(sb, loc[1]!)
    assert.equal((await refresh(sb, t.refresh_token)).status, 200, 'no fault was queued')
  })

  test('close() releases a hung request and leaves nothing open', async () => {
    const other = await startSandbox()
    // A hang far longer than the test's own timeout: had close() waited for it, the test would fail.
    await postJson(`${other.url}/_sandbox/faults`, { endpoint: 'token', kind: 'hang', count: 1, hangMs: 3_600_000 })
    const pending = postForm(`${other.url}/oauth/token`, { client_id: 'x', client_secret: 'y', grant_type: 'refresh_token' }).then(
      (r) => r.status,
      () => 'socket closed',
    )
    // The request is hanging once the fault has been taken (counted in the stats).
    while ((await call(`${other.url}/_sandbox/stats`)).body.faults.token < 1) await new Promise((r) => setTimeout(r, 10))
    await other.close()
    assert.ok([503, 'socket closed'].includes(await pending))
    await assert.rejects(fetch(`${other.url}/_sandbox/stats`))
  })
})

describe('token controls and settings', () => {
  test('tokens lists every credential with its state; expire and revoke change it', async () => {
    await postJson(`${sb.url}/_sandbox/reset`, {})
    const t = await installLocation(sb, loc[0]!)
    const list = await tokens(sb)
    assert.deepEqual(list.map((x) => [x.type, x.state]).sort(), [['access', 'active'], ['code', 'used'], ['refresh', 'active']])
    const entry = (await call(`${sb.url}/_sandbox/tokens`)).body.find((x: any) => x.type === 'access')
    assert.equal(entry.clientId, sb.app.clientId)
    assert.equal(entry.companyId, companyId)
    assert.equal(entry.locationId, loc[0])
    assert.equal(entry.userType, 'Location')
    assert.ok(Date.parse(entry.expiresAt) > Date.parse(entry.issuedAt))
    assert.deepEqual((await postJson(`${sb.url}/_sandbox/tokens/expire`, { token: t.access_token })).body, { expired: 1 })
    assert.equal((await tokens(sb)).find((x) => x.value === t.access_token)!.state, 'expired')
    assert.deepEqual((await postJson(`${sb.url}/_sandbox/tokens/revoke`, { token: t.refresh_token })).body, { revoked: 1 })
    assert.equal((await refresh(sb, t.refresh_token)).body.error, 'invalid_grant')
    assert.equal((await postJson(`${sb.url}/_sandbox/tokens/expire`, {})).status, 400)
    assert.equal((await postJson(`${sb.url}/_sandbox/tokens/revoke`, { token: 'nope' })).status, 404)
    const agency = await installAgency(sb)
    assert.deepEqual((await postJson(`${sb.url}/_sandbox/tokens/expire`, { companyId })).body, { expired: 1 })
    assert.match((await getApi(`${sb.url}/locations/${loc[0]}`, agency.access_token)).body.message, /expired/)
  })

  test('settings change lifetimes; invalid settings are refused and change nothing', async () => {
    await postJson(`${sb.url}/_sandbox/reset`, {})
    const bad = await put('/_sandbox/settings', { accessTokenTtlSec: -1, reconnect: 'maybe' })
    assert.equal(bad.status, 400)
    assert.match(bad.body.message, /accessTokenTtlSec/)
    assert.match(bad.body.message, /reconnect/)
    assert.equal((await call(`${sb.url}/_sandbox/settings`)).body.accessTokenTtlSec, 86399)
    const ok = await put('/_sandbox/settings', { accessTokenTtlSec: 120, rateLimit: { burstMax: 7 } })
    assert.equal(ok.body.accessTokenTtlSec, 120)
    assert.equal(ok.body.rateLimit.burstMax, 7)
    assert.equal(ok.body.rateLimit.dailyMax, 200000)
    const t = await installLocation(sb, loc[0]!)
    assert.equal(t.expires_in, 120)
  })

  test('apps can be listed and reconfigured (PUT and configureApp)', async () => {
    await postJson(`${sb.url}/_sandbox/reset`, {})
    const apps = (await call(`${sb.url}/_sandbox/apps`)).body
    assert.equal(apps.length, 1)
    assert.equal(apps[0].clientId, sb.app.clientId)
    assert.equal(apps[0].clientSecret, sb.app.clientSecret)
    const res = await put(`/_sandbox/apps/${sb.app.appId}`, { redirectUris: ['https://app.example/cb'] })
    assert.equal(res.status, 200)
    assert.deepEqual(sb.app.redirectUris, ['https://app.example/cb'])
    const page = await call(`${sb.url}/oauth/chooselocation?response_type=code&client_id=${sb.app.clientId}&redirect_uri=${encodeURIComponent('http://127.0.0.1:3000/oauth/callback')}&scope=contacts.readonly`)
    assert.equal(page.status, 400)
    assert.equal((await put(`/_sandbox/apps/${sb.app.appId}`, { redirectUris: ['not a url'] })).status, 400)
    assert.equal((await put('/_sandbox/apps/unknown', {})).status, 404)
    sb.configureApp({ scopes: ['contacts.readonly'] })
    assert.equal((await postJson(`${sb.url}/_sandbox/authorize`, { clientId: sb.app.clientId, redirectUri: 'https://app.example/cb', scope: 'contacts.write', locationId: loc[0] })).status, 400)
    const companies = (await call(`${sb.url}/_sandbox/companies`)).body
    assert.deepEqual(companies, sb.companies)
  })

  test('reset goes back to the seed', async () => {
    sb.configureApp({ redirectUris: ['https://changed.example/cb'] })
    await put('/_sandbox/settings', { accessTokenTtlSec: 5, reconnect: 'refuse' })
    await postJson(`${sb.url}/_sandbox/faults`, { endpoint: 'api', kind: 'error500', count: 3 })
    const res = await postJson(`${sb.url}/_sandbox/reset`, {})
    assert.equal(res.status, 200)
    assert.deepEqual(sb.app.redirectUris, ['http://127.0.0.1:3000/oauth/callback', 'http://localhost:3000/oauth/callback'])
    assert.equal(sb.app.scopes.length, 5)
    assert.equal((await tokens(sb)).length, 0)
    const settings = (await call(`${sb.url}/_sandbox/settings`)).body
    assert.equal(settings.accessTokenTtlSec, 86399)
    assert.equal(settings.reconnect, 'removed')
    const stats = (await call(`${sb.url}/_sandbox/stats`)).body
    assert.equal(stats.token.authorization_code.ok, 0)
    assert.equal((await call(`${sb.url}/_sandbox/installs`)).body.length, 0)
    const t = await installLocation(sb, loc[0]!)
    assert.equal((await getApi(`${sb.url}/locations/${loc[0]}`, t.access_token)).status, 200, 'the api faults were dropped')
  })
})

describe('seed and state', () => {
  test('a seed file fixes ids; state persists tokens and keys across restarts', async () => {
    const seedPath = join(dir, 'seed.json')
    const statePath = join(dir, 'state.json')
    writeFileSync(
      seedPath,
      JSON.stringify({
        apps: [{ appId: 'a'.repeat(24), clientId: `${'a'.repeat(24)}-abcdefgh`, clientSecret: 'cs', sharedSecret: 'ss', webhookUrl: null }],
        companies: [{ companyId: 'C'.repeat(20), name: 'Seeded Co', locations: [{ locationId: 'L'.repeat(20), name: 'Only Location' }] }],
        users: [{ userId: 'U'.repeat(20), name: 'Una User', email: 'una@example.com' }],
      }),
    )
    const first = await startSandbox({ seed: seedPath, statePath })
    assert.equal(first.app.clientId, `${'a'.repeat(24)}-abcdefgh`)
    assert.deepEqual(first.companies, [{ companyId: 'C'.repeat(20), name: 'Seeded Co', locations: [{ locationId: 'L'.repeat(20), name: 'Only Location' }] }])
    const code = await authorize(first, { locationId: 'L'.repeat(20), webhookTiming: 'none' })
    const t = (await exchange(first, code)).body
    assert.equal(t.userId, 'U'.repeat(20))
    const keys = first.publicKeys
    await first.close()
    assert.equal(statSync(statePath).mode & 0o777, 0o600)

    const second = await startSandbox({ statePath })
    try {
      assert.deepEqual(second.publicKeys, keys)
      assert.equal(second.app.clientSecret, 'cs')
      assert.equal((await getApi(`${second.url}/locations/${'L'.repeat(20)}`, t.access_token)).status, 200)
      assert.equal((await refresh(second, t.refresh_token)).status, 200)
      assert.equal((await exchange(second, code)).body.error, 'invalid_grant', 'the used code stayed used')
    } finally {
      await second.close()
    }
  })

  test('invalid seeds and options are reported together', async () => {
    await assert.rejects(startSandbox({ seed: { companies: [{ name: '', locations: [] }], users: [{ name: 'x' } as never] } }), (err: Error) => {
      assert.match(err.message, /companies\.0\.name/)
      assert.match(err.message, /users\.0\.email/)
      return true
    })
    await assert.rejects(startSandbox({ accessTokenTtlSec: 0, codeTtlSec: Number.NaN }), (err: Error) => {
      assert.match(err.message, /accessTokenTtlSec/)
      assert.match(err.message, /codeTtlSec/)
      return true
    })
    await assert.rejects(startSandbox({ seed: join(dir, 'missing.json') }), /could not be read/)
  })
})
