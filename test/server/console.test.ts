/**
 * The operator console against a real stack (sandbox as HighLevel, SQLite): the JSON API (filters,
 * paging, detail with timeline and last calls, refresh, webhooks and replay), `/metrics`,
 * `/openapi.json` checked against the real routes, the pages (names, filters, detail, actions behind a
 * CSRF token and a confirmation, recorded in the audit log), and production sign-in (Basic auth with
 * the operator password or API key, the login form's session cookie). Never a token in any answer.
 */
import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'undici'
import { createConnector } from '../../src/connector.js'
import { loadConfig } from '../../src/config.js'
import { buildServer } from '../../src/server/app.js'
import { registeredRoutes } from '../../src/server/console/index.js'
import { installViaHttp, sandboxJson, startStack, type Stack } from '../helpers/stack.js'

let stack: Stack
let locA: { locationId: string; name: string }
let locB: { locationId: string; name: string }
let idA: string
let idB: string
const tokens: string[] = []

async function api(method: 'GET' | 'POST', path: string, key: string | undefined = stack.apiKey) {
  const res = await request(`${stack.url}${path}`, { method, headers: key ? { authorization: `Bearer ${key}` } : {} })
  const text = await res.body.text()
  for (const t of tokens) assert.ok(!text.includes(t), `${method} ${path} shows no token`)
  return { status: res.statusCode, headers: res.headers, text, body: res.headers['content-type']?.toString().includes('json') ? JSON.parse(text) : undefined }
}

async function page(path: string, headers: Record<string, string> = {}) {
  const res = await request(`${stack.url}${path}`, { headers })
  const html = await res.body.text()
  for (const t of tokens) assert.ok(!html.includes(t), `${path} shows no token`)
  return { status: res.statusCode, headers: res.headers, html }
}

async function rememberTokens(): Promise<void> {
  for (const i of await stack.connector.installations()) {
    const row = await stack.connector.vault.installations.get(i.id)
    if (row?.tokens) tokens.push(row.tokens.accessToken, ...(row.tokens.refreshToken ? [row.tokens.refreshToken] : []))
  }
}

before(async () => {
  stack = await startStack()
  const company = stack.sandbox.companies[0]!
  locA = { locationId: company.locations[0]!.locationId, name: company.locations[0]!.name }
  locB = { locationId: company.locations[1]!.locationId, name: company.locations[1]!.name }
  assert.equal((await installViaHttp(stack, { locationId: locA.locationId })).status, 200)
  assert.equal((await installViaHttp(stack, { locationId: locB.locationId })).status, 200)
  idA = (await stack.connector.vault.installations.findByLocation(stack.config.clientId, locA.locationId))!.id
  idB = (await stack.connector.vault.installations.findByLocation(stack.config.clientId, locB.locationId))!.id
  await rememberTokens()
})
after(async () => {
  await stack?.close()
})

describe('JSON API', () => {
  test('list: API key required; names looked up once; filters, search and keyset paging', async () => {
    assert.equal((await api('GET', '/api/installations', '')).status, 401)
    assert.equal((await api('GET', '/api/installations', 'wrong-key-wrong-key')).status, 401)
    const first = await api('GET', '/api/installations')
    assert.equal(first.status, 200)
    assert.equal(first.body.total, 2)
    // The names are looked up in the background (GET /locations/{id}) and stored.
    await stack.connector.calls?.flush()
    for (let i = 0; i < 100 && (await stack.connector.vault.installations.get(idA))?.locationName !== locA.name; i++) await new Promise((r) => setTimeout(r, 20))
    const named = await api('GET', '/api/installations')
    const a = named.body.installations.find((i: { id: string }) => i.id === idA)
    assert.equal(a.name, locA.name)
    assert.equal(a.kind, 'location')
    assert.equal(a.dailyBudget, stack.config.rateLimit.dailyMax)

    assert.equal((await api('GET', `/api/installations?search=${encodeURIComponent(locA.name.slice(0, 4).toUpperCase())}`)).body.installations.some((i: { id: string }) => i.id === idA), true)
    const byId = await api('GET', `/api/installations?search=${locB.locationId}`)
    assert.deepEqual(byId.body.installations.map((i: { id: string }) => i.id), [idB])
    assert.equal((await api('GET', '/api/installations?kind=agency')).body.total, 0)
    assert.equal((await api('GET', '/api/installations?status=active&kind=location')).body.total, 2)
    const p1 = await api('GET', '/api/installations?limit=1')
    assert.equal(p1.body.installations.length, 1)
    assert.ok(p1.body.next)
    const p2 = await api('GET', `/api/installations?limit=1&cursor=${encodeURIComponent(p1.body.next)}`)
    assert.equal(p2.body.installations.length, 1)
    assert.equal(p2.body.next, undefined)
    assert.notEqual(p2.body.installations[0].id, p1.body.installations[0].id)
    const bad = await api('GET', '/api/installations?status=bogus')
    assert.equal(bad.status, 400)
    assert.equal(bad.body.code, 'GHL_BAD_REQUEST')
  })

  test('detail: last calls (no token), counters, timeline; refresh is audited; unknown id is 404', async () => {
    const res = await stack.connector.location(locA.locationId).get(`/locations/${locA.locationId}`, { query: { secret: 'not-in-path' } })
    assert.equal(res.status, 200)
    const d = (await api('GET', `/api/installations/${idA}`)).body
    assert.equal(d.installation.id, idA)
    const call = d.calls.find((c: { path: string }) => c.path === `/locations/${locA.locationId}`)
    assert.ok(call, 'the call is in the last calls')
    assert.equal(call.status, 200)
    assert.equal(call.method, 'GET')
    assert.ok(!JSON.stringify(d.calls).includes('not-in-path'), 'no query string kept')
    assert.ok(d.installation.callsToday >= 1)
    assert.deepEqual(d.timeline.map((t: { action: string }) => t.action).slice(0, 1), ['installed'])
    assert.equal(d.budget.daily.max, stack.config.rateLimit.dailyMax)

    const before = (await stack.connector.vault.installations.get(idA))!.version
    const r = await api('POST', `/api/installations/${idA}/refresh`)
    assert.equal(r.status, 200)
    assert.ok((await stack.connector.vault.installations.get(idA))!.version > before)
    await rememberTokens()
    const actions = (await stack.connector.vault.audit.list(idA)).map((e) => e.action)
    assert.ok(actions.includes('refreshed'))
    assert.deepEqual((await stack.connector.vault.audit.list(idA)).filter((e) => e.action === 'operator.refresh').map((e) => [e.detail.actor, e.detail.ok]), [['api', true]])
    assert.equal((await api('GET', '/api/installations/no-such-id')).status, 404)
    assert.equal((await api('POST', '/api/installations/no-such-id/refresh')).status, 404)
  })

  test('webhooks: listed newest first, replayed (audited), unknown is 404', async () => {
    const list = await api('GET', '/api/webhooks')
    assert.equal(list.status, 200)
    const install = list.body.webhooks.find((w: { type: string; locationId: string }) => w.type === 'INSTALL' && w.locationId === locA.locationId)
    assert.ok(install, 'the INSTALL webhook of A is stored')
    assert.equal((await api('GET', '/api/webhooks?type=INSTALL')).body.webhooks.every((w: { type: string }) => w.type === 'INSTALL'), true)
    const replay = await api('POST', `/api/webhooks/${install.webhookId}/replay`)
    assert.equal(replay.status, 200)
    assert.equal(replay.body.outcome, 'processed')
    const audit = (await stack.connector.vault.audit.list(idA)).filter((e) => e.action === 'operator.webhook_replay')
    assert.equal(audit.length, 1)
    assert.equal(audit[0]!.detail.webhookId, install.webhookId)
    assert.equal((await api('POST', '/api/webhooks/nope/replay')).status, 404)
  })

  test('/metrics: calls by status class, installations by status, token events, webhooks; bounded labels', async () => {
    await stack.connector.location(locB.locationId).get(`/locations/${locB.locationId}`)
    const m = await api('GET', '/metrics', '')
    assert.equal(m.status, 200)
    assert.match(String(m.headers['content-type']), /text\/plain/)
    assert.match(m.text, /ghl_highlevel_requests_total\{operation="untyped",status_class="2xx"\} [1-9]/)
    assert.match(m.text, /ghl_highlevel_request_duration_seconds_count\{status_class="2xx"\} [1-9]/)
    assert.match(m.text, /ghl_installations\{status="active"\} 2/)
    assert.match(m.text, /ghl_token_events_total\{event="refresh",outcome="ok"\} [1-9]/)
    assert.match(m.text, /ghl_webhook_events\{type="INSTALL",status="processed"\} [1-9]/)
    // Webhook requests by outcome: a redelivered event is a duplicate; a forged one is refused.
    const before = (outcome: string) => Number(new RegExp(`ghl_webhook_requests_total\\{outcome="${outcome}"\\} (\\d+)`).exec(m.text)?.[1] ?? 0)
    const delivered = (await sandboxJson<Array<{ webhookId: string; status: string }>>(stack.sandbox, 'GET', '/_sandbox/webhooks')).find((w) => w.status === 'delivered')!
    await sandboxJson(stack.sandbox, 'POST', '/_sandbox/webhooks/redeliver', { webhookId: delivered.webhookId })
    const forged = await request(`${stack.url}${stack.config.webhookPath}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-ghl-signature': 'forged' }, body: '{"type":"INSTALL"}' })
    await forged.body.dump()
    assert.equal(forged.statusCode, 401)
    const after = await api('GET', '/metrics', '')
    const now = (outcome: string) => Number(new RegExp(`ghl_webhook_requests_total\\{outcome="${outcome}"\\} (\\d+)`).exec(after.text)?.[1] ?? 0)
    assert.ok(before('accepted') >= 1, m.text)
    assert.deepEqual([now('accepted') - before('accepted'), now('duplicate') - before('duplicate'), now('refused') - before('refused')], [0, 1, 1])
    assert.match(m.text, /ghl_dependency_up\{dependency="database"\} 1/)
    assert.ok(!m.text.includes(idA) && !m.text.includes(locA.locationId), 'no per-installation label')
  })
})

describe('OpenAPI', () => {
  test('GET /openapi.json is OpenAPI 3.1 and lists exactly the real routes', async () => {
    const app = await buildServer(stack.connector, {})
    await app.ready()
    try {
      const res = await app.inject({ method: 'GET', url: '/openapi.json' })
      assert.equal(res.statusCode, 200)
      const doc = res.json() as { openapi: string; paths: Record<string, Record<string, unknown>> }
      assert.equal(doc.openapi, '3.1.0')
      const documented = new Set(Object.entries(doc.paths).flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`)))
      const asDocumented = (url: string) => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}').replace(/\*$/, '{path}')
      const real = new Set(registeredRoutes(app).map((r) => `${r.method} ${asDocumented(r.url)}`))
      assert.ok(real.size > 10)
      assert.deepEqual([...documented].filter((r) => !real.has(r)), [], 'documented routes that do not exist')
      assert.deepEqual([...real].filter((r) => !documented.has(r)), [], 'routes missing from the document')
      for (const route of ['GET /api/installations', 'GET /api/installations/{id}', 'POST /api/installations/{id}/refresh', 'GET /api/webhooks', 'POST /api/webhooks/{id}/replay', 'GET /metrics', 'GET /healthz', 'GET /readyz', 'POST /sso/decrypt', `POST ${stack.config.webhookPath}`]) {
        assert.ok(documented.has(route), route)
      }
      for (const r of registeredRoutes(app)) assert.ok(app.hasRoute({ method: r.method as 'GET', url: r.url }), `${r.method} ${r.url} is served`)
      const list = doc.paths['/api/installations']!.get as { parameters: Array<{ name: string }> }
      assert.deepEqual(list.parameters.map((p) => p.name).sort(), ['cursor', 'kind', 'limit', 'plan', 'search', 'status'])
      const docs = await app.inject({ method: 'GET', url: '/docs' })
      assert.equal(docs.statusCode, 200)
      assert.match(docs.body, /GET \/api\/installations/)
    } finally {
      await app.close()
    }
  })
})

describe('pages', () => {
  test('list shows names, kind, status, expiry and calls; filters and search are server-side', async () => {
    const home = await page('/')
    assert.equal(home.status, 200)
    assert.match(home.html, new RegExp(`data-installation-id="${idA}"`))
    assert.ok(home.html.includes(locA.name), 'the name')
    assert.match(home.html, /Sub-account/)
    assert.match(home.html, /in \d+ (h|min)/)
    assert.match(home.html, /id="chart-calls"/)
    const search = await page(`/?search=${encodeURIComponent(locB.locationId)}`)
    assert.ok(search.html.includes(`data-installation-id="${idB}"`))
    assert.ok(!search.html.includes(`data-installation-id="${idA}"`))
    const none = await page('/?kind=agency')
    assert.match(none.html, /id="no-match"/)
    assert.match(String(home.headers['content-security-policy']), /script-src 'nonce-/)
  })

  test('an action needs the CSRF token, then a confirmation; it is recorded in the audit log', async () => {
    const detail = await page(`/installations/${idB}`)
    assert.equal(detail.status, 200)
    assert.match(detail.html, /id="timeline"/)
    const cookie = String([detail.headers['set-cookie']].flat().find((c) => String(c).startsWith('ghl_csrf='))).split(';')[0]!
    const csrf = /name="csrf" value="([^"]+)"/.exec(detail.html)![1]!
    const post = (body: string, headers: Record<string, string> = {}) =>
      request(`${stack.url}/installations/${idB}/refresh`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body })
    const count = async () => (await stack.connector.vault.audit.list(idB)).filter((e) => e.action === 'operator.refresh').length

    const noToken = await post('confirm=yes', { cookie })
    assert.equal(noToken.statusCode, 403)
    await noToken.body.dump()
    const wrong = await post(`confirm=yes&csrf=${encodeURIComponent(csrf)}x`, { cookie })
    assert.equal(wrong.statusCode, 403)
    await wrong.body.dump()
    const noCookie = await post(`confirm=yes&csrf=${encodeURIComponent(csrf)}`)
    assert.equal(noCookie.statusCode, 403)
    await noCookie.body.dump()
    assert.equal(await count(), 0, 'nothing done without the token')

    const ask = await post(`csrf=${encodeURIComponent(csrf)}`, { cookie })
    assert.equal(ask.statusCode, 200)
    assert.match(await ask.body.text(), /id="confirm"/)
    assert.equal(await count(), 0, 'the first POST only asks')

    const done = await post(`confirm=yes&csrf=${encodeURIComponent(csrf)}`, { cookie })
    assert.equal(done.statusCode, 303)
    assert.equal(done.headers.location, `/installations/${idB}?done=refresh`)
    await done.body.dump()
    assert.equal(await count(), 1)
    await rememberTokens()
    const after = await page(`/installations/${idB}?done=refresh`, { cookie })
    assert.match(after.html, /id="notice"[^>]*>Refreshed/)
    assert.match(after.html, /data-action="operator.refresh"/)
    assert.match(after.html, /data-action="refreshed"/)
  })

  test('test call and mark uninstalled: each audited; uninstall wipes the tokens and the row stays', async () => {
    const detail = await page(`/installations/${idB}`)
    const cookie = String([detail.headers['set-cookie']].flat().find((c) => String(c).startsWith('ghl_csrf='))).split(';')[0]!
    const csrf = /name="csrf" value="([^"]+)"/.exec(detail.html)![1]!
    const act = async (action: string) => {
      const res = await request(`${stack.url}/installations/${idB}/${action}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
        body: `confirm=yes&csrf=${encodeURIComponent(csrf)}`,
      })
      await res.body.dump()
      return res
    }
    const called = await act('test-call')
    assert.equal(called.statusCode, 303)
    const testCalls = (await stack.connector.vault.audit.list(idB)).filter((e) => e.action === 'operator.test_call')
    assert.deepEqual(testCalls.map((e) => [e.detail.ok, e.detail.status, e.detail.path]), [[true, 200, `/locations/${locB.locationId}`]])
    const shown = await page(String(called.headers.location), { cookie })
    assert.match(shown.html, /id="notice"[^>]*>Test call \/locations\/[^:]+: HTTP 200/)

    const gone = await act('uninstall')
    assert.equal(gone.statusCode, 303)
    const row = await stack.connector.vault.installations.get(idB)
    assert.equal(row!.status, 'uninstalled')
    assert.equal(row!.tokens, null)
    assert.equal((await stack.connector.vault.audit.list(idB)).filter((e) => e.action === 'operator.uninstall').length, 1)
    await assert.rejects(stack.connector.location(locB.locationId).get(`/locations/${locB.locationId}`))
    const after = await page(`/installations/${idB}`)
    assert.match(after.html, /class="status-uninstalled"/)
    assert.ok(!after.html.includes('id="uninstall"'), 'no uninstall button once uninstalled')
  })

  test('unknown installation page is a 404 page', async () => {
    const res = await page('/installations/nope')
    assert.equal(res.status, 404)
    assert.match(res.html, /Unknown installation/)
    assert.match(res.html, /<a href="\/">All installations<\/a>/)
    assert.ok(!res.html.includes('/oauth/install'), 'not "try the installation again"')
  })
})

/** The stack's settings as environment variables (for loadConfig). */
function configEnv(): Record<string, string> {
  return {
    GHL_CLIENT_ID: stack.config.clientId,
    GHL_CLIENT_SECRET: stack.config.clientSecret,
    GHL_REDIRECT_URI: stack.config.redirectUri,
    GHL_SCOPES: stack.config.scopes.join(' '),
    GHL_ENCRYPTION_KEY: Buffer.alloc(32, 1).toString('base64'),
    DATABASE_URL: stack.databaseUrl,
  }
}

describe('production sign-in', () => {
  test('Basic auth with the operator password or the API key, or the login form\'s session cookie; constant-time checks refuse the rest', async () => {
    assert.throws(() => loadConfig({ env: { ...configEnv(), GHL_OPERATOR_PASSWORD: 'short' } }), /GHL_OPERATOR_PASSWORD/)
    const password = 'operator-password-123'
    const connector = await createConnector({ config: { ...stack.config, production: true, operatorPassword: password }, background: false, checkKeys: false })
    const app = await buildServer(connector, {})
    await app.ready()
    try {
      const basic = (p: string) => `Basic ${Buffer.from(`op:${p}`).toString('base64')}`
      const anon = await app.inject({ method: 'GET', url: '/' })
      assert.equal(anon.statusCode, 401)
      assert.match(String(anon.headers['www-authenticate']), /^Basic/)
      assert.match(anon.body, /<a href="\/login">Sign in<\/a>/, 'the sign-in page is the way on')
      assert.ok(!anon.body.includes('/oauth/install'), 'not "try the installation again"')
      assert.equal((await app.inject({ method: 'GET', url: '/', headers: { authorization: basic('wrong-password') } })).statusCode, 401)
      assert.equal((await app.inject({ method: 'GET', url: '/', headers: { authorization: basic(password) } })).statusCode, 200)
      assert.equal((await app.inject({ method: 'GET', url: '/', headers: { authorization: basic(stack.apiKey) } })).statusCode, 200)
      assert.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 401)
      assert.equal((await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${stack.apiKey}` } })).statusCode, 200)

      const refused = await app.inject({ method: 'POST', url: '/login', payload: 'password=nope', headers: { 'content-type': 'application/x-www-form-urlencoded' } })
      assert.equal(refused.headers.location, '/login?failed=1')
      assert.equal(refused.headers['set-cookie'], undefined)
      const login = await app.inject({ method: 'POST', url: '/login', payload: `password=${password}`, headers: { 'content-type': 'application/x-www-form-urlencoded' } })
      assert.equal(login.statusCode, 303)
      const session = String(login.headers['set-cookie']).split(';')[0]!
      assert.match(String(login.headers['set-cookie']), /HttpOnly; SameSite=Strict/)
      assert.equal((await app.inject({ method: 'GET', url: '/', headers: { cookie: session } })).statusCode, 200)
      const forged = session.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'))
      assert.equal((await app.inject({ method: 'GET', url: '/', headers: { cookie: forged } })).statusCode, 401)
    } finally {
      await app.close()
      await connector.close()
    }
  })
})
