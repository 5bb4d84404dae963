/**
 * The install flow end to end over real HTTP: connector server and sandbox on loopback, for SQLite and
 * PostgreSQL. Then every bad input at the callback — each with a clear page and nothing stored — and a
 * final search of logs and the raw database for every token the sandbox issued.
 */
import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, existsSync } from 'node:fs'
import { request } from 'undici'
import pg from 'pg'
import { DIALECTS, dialectSkipReason } from '../helpers/services.js'
import { installViaHttp, sandboxJson, startStack, type Stack } from '../helpers/stack.js'

for (const dialect of DIALECTS) {
  describe(`install flow over HTTP (${dialect})`, { skip: await dialectSkipReason(dialect) }, () => {
    let stack: Stack
    before(async () => {
      stack = await startStack({ dialect })
    })
    after(async () => stack?.close())

    test('install → consent → callback → stored and listed; re-install updates the same row', async () => {
      const [company] = stack.sandbox.companies
      const location = company!.locations[0]!
      const first = await installViaHttp(stack, { locationId: location.locationId })
      assert.equal(first.status, 200, first.html)
      assert.match(first.html, /Installed/)
      assert.match(first.html, new RegExp(location.locationId))

      const rows = await stack.connector.installations()
      assert.equal(rows.length, 1)
      assert.equal(rows[0]!.locationId, location.locationId)
      assert.equal(rows[0]!.companyId, company!.companyId)
      assert.equal(rows[0]!.status, 'active')
      assert.deepEqual([...rows[0]!.scopes].sort(), [...stack.sandbox.app.scopes].sort())
      assert.ok(rows[0]!.expiresAt && rows[0]!.expiresAt.getTime() > Date.now())
      const stored = await stack.connector.vault.installations.get(rows[0]!.id)
      assert.ok(stored?.tokens?.accessToken && stored.tokens.refreshToken)

      const page = await request(`${stack.url}/`)
      const html = await page.body.text()
      assert.equal(page.statusCode, 200)
      assert.match(html, new RegExp(`data-installation-id="${rows[0]!.id}"`))
      assert.match(html, new RegExp(location.locationId))
      assert.ok(!html.includes(stored!.tokens!.accessToken), 'the page never shows a token')
      assert.ok(!html.includes(stored!.tokens!.refreshToken!), 'the page never shows a token')

      const again = await installViaHttp(stack, { locationId: location.locationId })
      assert.equal(again.status, 200)
      const after = await stack.connector.installations()
      assert.equal(after.length, 1, 're-installing the same location does not duplicate it')
      assert.equal(after[0]!.id, rows[0]!.id)
      assert.ok(after[0]!.version > rows[0]!.version)
    })

    test('the API key protects /api/installations', async () => {
      const denied = await request(`${stack.url}/api/installations`)
      assert.equal(denied.statusCode, 401)
      assert.equal((await denied.body.json() as { code: string }).code, 'GHL_UNAUTHORIZED')
      const ok = await request(`${stack.url}/api/installations`, { headers: { authorization: `Bearer ${stack.apiKey}` } })
      assert.equal(ok.statusCode, 200)
      const body = JSON.stringify(await ok.body.json())
      assert.ok(!/"(access_token|refresh_token|accessToken|refreshToken|tokens)"/.test(body), 'no token fields in the API answer')
    })

    test('no token the sandbox issued appears in the logs or the raw database', async () => {
      const issued = (await sandboxJson<Array<{ type: string; value: string }>>(stack.sandbox, 'GET', '/_sandbox/tokens'))
        .filter((t) => t.type === 'access' || t.type === 'refresh')
        .map((t) => t.value)
      assert.ok(issued.length >= 4, 'the flow issued tokens')
      const haystacks: Array<[string, string]> = [['logs', stack.logs.join('\n')]]
      if (dialect === 'sqlite') {
        for (const suffix of ['', '-wal', '-shm']) {
          const file = `${stack.databaseUrl}${suffix}`
          if (existsSync(file)) haystacks.push([file, readFileSync(file).toString('latin1')])
        }
      } else {
        const client = new pg.Client({ connectionString: stack.databaseUrl })
        await client.connect()
        const tables = await client.query(`select table_name from information_schema.tables where table_schema = 'public'`)
        for (const { table_name } of tables.rows as Array<{ table_name: string }>) {
          const rows = await client.query(`select * from "${table_name}"`)
          haystacks.push([table_name, JSON.stringify(rows.rows)])
        }
        await client.end()
      }
      assert.ok(stack.logs.length > 0, 'the connector logged something')
      for (const token of issued) {
        for (const [where, text] of haystacks) {
          assert.ok(!text.includes(token), `a token appears in ${where}`)
          assert.ok(!text.includes(Buffer.from(token).toString('base64')), `a token's base64 appears in ${where}`)
        }
      }
    })
  })
}

describe('install flow: bad input gets a clear page and stores nothing', () => {
  let stack: Stack
  before(async () => {
    stack = await startStack()
  })
  after(async () => stack?.close())

  const locationId = () => stack.sandbox.companies[0]!.locations[1]!.locationId

  async function startInstall(): Promise<URL> {
    const res = await request(`${stack.url}/oauth/install`)
    await res.body.dump()
    assert.equal(res.statusCode, 302)
    return new URL(String(res.headers.location))
  }

  async function consent(authorize: URL, extra: Record<string, unknown> = {}): Promise<URL> {
    const { redirect } = await sandboxJson<{ redirect: string }>(stack.sandbox, 'POST', '/_sandbox/authorize', {
      clientId: authorize.searchParams.get('client_id'),
      redirectUri: authorize.searchParams.get('redirect_uri'),
      scope: authorize.searchParams.get('scope'),
      state: authorize.searchParams.get('state'),
      locationId: locationId(),
      ...extra,
    })
    return new URL(redirect)
  }

  async function callback(query: Record<string, string>): Promise<{ status: number; html: string; code: string | undefined; reference: string | undefined }> {
    const url = new URL(`${stack.url}/oauth/callback`)
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v)
    const res = await request(url)
    const html = await res.body.text()
    return {
      status: res.statusCode,
      html,
      code: /data-code="([A-Z_]+)"/.exec(html)?.[1],
      reference: /id="reference">([0-9a-f]+)</.exec(html)?.[1],
    }
  }

  async function assertNothingStored(): Promise<void> {
    assert.deepEqual(await stack.connector.installations(), [], 'nothing stored')
  }

  test('/oauth/install redirects to the marketplace with a fresh state', async () => {
    const a = await startInstall()
    const b = await startInstall()
    assert.equal(a.pathname, '/v2/oauth/chooselocation')
    assert.equal(a.searchParams.get('response_type'), 'code')
    assert.equal(a.searchParams.get('client_id'), stack.sandbox.app.clientId)
    assert.equal(a.searchParams.get('redirect_uri'), `${stack.url}/oauth/callback`)
    assert.equal(a.searchParams.get('scope'), stack.sandbox.app.scopes.join(' '))
    assert.ok((a.searchParams.get('state') ?? '').length >= 32)
    assert.notEqual(a.searchParams.get('state'), b.searchParams.get('state'))
  })

  test('missing code', async () => {
    const authorize = await startInstall()
    const r = await callback({ state: authorize.searchParams.get('state')! })
    assert.equal(r.status, 400)
    assert.equal(r.code, 'GHL_OAUTH_CODE_MISSING')
    await assertNothingStored()
  })

  test('forged state', async () => {
    const authorize = await startInstall()
    const redirect = await consent(authorize)
    const r = await callback({ code: redirect.searchParams.get('code')!, state: 'forged-' + authorize.searchParams.get('state')!.slice(7) })
    assert.equal(r.status, 400)
    assert.equal(r.code, 'GHL_OAUTH_STATE_INVALID')
    assert.match(r.html, /Installation link expired or invalid/)
    await assertNothingStored()
  })

  test('no state (an install started on HighLevel) with a code HighLevel never issued → refused at the exchange', async () => {
    const r = await callback({ code: 'whatever' })
    assert.equal(r.status, 400)
    assert.equal(r.code, 'GHL_OAUTH_GRANT_REJECTED')
    await assertNothingStored()
  })

  test('unknown code', async () => {
    const authorize = await startInstall()
    const r = await callback({ code: 'not-a-code-the-sandbox-issued', state: authorize.searchParams.get('state')! })
    assert.equal(r.status, 400)
    assert.equal(r.code, 'GHL_OAUTH_GRANT_REJECTED')
    await assertNothingStored()
  })

  test('user denied the installation', async () => {
    const authorize = await startInstall()
    const redirect = await consent(authorize, { deny: true })
    assert.equal(redirect.searchParams.get('error'), 'access_denied')
    const r = await callback(Object.fromEntries(redirect.searchParams))
    assert.equal(r.status, 400)
    assert.equal(r.code, 'GHL_OAUTH_DENIED')
    assert.match(r.html, /declined/i)
    await assertNothingStored()
  })

  for (const [kind, expected] of [
    ['error500', 'GHL_UPSTREAM_UNAVAILABLE'],
    ['hang', 'GHL_TIMEOUT'],
    ['malformed', 'GHL_OAUTH_INVALID_RESPONSE'],
  ] as const) {
    test(`token endpoint fault: ${kind}`, async () => {
      const authorize = await startInstall()
      const redirect = await consent(authorize)
      await sandboxJson(stack.sandbox, 'POST', '/_sandbox/faults', { endpoint: 'token', kind, count: 1, hangMs: 4000 })
      const r = await callback(Object.fromEntries(redirect.searchParams))
      assert.ok(r.status >= 500, `status ${r.status}`)
      assert.equal(r.code, expected)
      assert.ok(r.reference, 'the page shows a reference id')
      const line = stack.logs.find((l) => l.includes(r.reference!) && l.includes('install failed'))
      assert.ok(line, 'the operator finds the cause under the reference id in the log')
      assert.match(line!, new RegExp(expected))
      await assertNothingStored()
    })
  }

  test('state and code are single-use: a replayed callback is rejected', async () => {
    const authorize = await startInstall()
    const redirect = await consent(authorize)
    const query = Object.fromEntries(redirect.searchParams)
    const first = await callback(query)
    assert.equal(first.status, 200, first.html)
    const rows = await stack.connector.installations()
    assert.equal(rows.length, 1)

    const replay = await callback(query)
    assert.equal(replay.status, 400)
    assert.equal(replay.code, 'GHL_OAUTH_STATE_INVALID', 'reused state')

    // The same code with a fresh, valid state: refused before it reaches HighLevel.
    const exchanges = (await sandboxJson(stack.sandbox, 'GET', '/_sandbox/stats')).token.authorization_code
    const other = await startInstall()
    const reused = await callback({ code: query.code!, state: other.searchParams.get('state')! })
    assert.equal(reused.status, 400)
    assert.equal(reused.code, 'GHL_OAUTH_CODE_REUSED', 'reused code')
    assert.match(reused.html, /already used/)
    assert.deepEqual((await sandboxJson(stack.sandbox, 'GET', '/_sandbox/stats')).token.authorization_code, exchanges)
    const after = await stack.connector.installations()
    assert.deepEqual(after.map((r) => [r.id, r.version]), rows.map((r) => [r.id, r.version]), 'the stored row is untouched')
  })
})

describe('install flow: agency, mismatched redirect URI', () => {
  test('an agency install (GHL_USER_TYPE=Company) is stored as a company installation and listed', async () => {
    const stack = await startStack({ env: { GHL_USER_TYPE: 'Company' } })
    try {
      const company = stack.sandbox.companies[0]!
      const res = await installViaHttp(stack, { companyId: company.companyId, webhookTiming: 'none' })
      assert.equal(res.status, 200, res.html)
      const rows = await stack.connector.installations({ userType: 'Company' })
      assert.equal(rows.length, 1)
      assert.equal(rows[0]!.locationId, null)
      assert.equal(rows[0]!.companyId, company.companyId)
      assert.equal(rows[0]!.userType, 'Company')
      const html = await (await request(`${stack.url}/`)).body.text()
      assert.match(html, /<td>Agency<\/td>/)
    } finally {
      await stack.close()
    }
  })

  test('a code issued for another redirect URI is refused at the exchange; nothing stored', async () => {
    const stack = await startStack()
    try {
      const other = `${stack.url}/elsewhere/callback`
      stack.sandbox.configureApp({ redirectUris: [`${stack.url}/oauth/callback`, other] })
      const start = await request(`${stack.url}/oauth/install`)
      await start.body.dump()
      const authorize = new URL(String(start.headers.location))
      const { redirect } = await sandboxJson<{ redirect: string }>(stack.sandbox, 'POST', '/_sandbox/authorize', {
        clientId: stack.sandbox.app.clientId,
        redirectUri: other,
        scope: authorize.searchParams.get('scope'),
        state: authorize.searchParams.get('state'),
        locationId: stack.sandbox.companies[0]!.locations[0]!.locationId,
      })
      const r = new URL(redirect)
      const res = await request(`${stack.url}/oauth/callback?${r.searchParams}`)
      const html = await res.body.text()
      assert.equal(res.statusCode, 400)
      assert.match(html, /data-code="GHL_OAUTH_GRANT_REJECTED"/)
      assert.deepEqual(await stack.connector.installations(), [])

      // An unregistered redirect URI never gets a redirect from the consent page.
      const page = await request(`${stack.sandbox.url}/v2/oauth/chooselocation?response_type=code&client_id=${stack.sandbox.app.clientId}&redirect_uri=${encodeURIComponent('http://evil.example/cb')}&scope=contacts.readonly`)
      const body = await page.body.text()
      assert.equal(page.statusCode, 400)
      assert.equal(page.headers.location, undefined)
      assert.match(body, /redirect/i)
    } finally {
      await stack.close()
    }
  })
})
