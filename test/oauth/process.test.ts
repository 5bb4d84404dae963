/**
 * The OAuth request/process pairs against real loopback servers (every answer shape, good and bad)
 * and against the sandbox (HighLevel's side).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { GhlError, OAuthError } from '../../src/errors.js'
import { buildAuthorizeUrl } from '../../src/oauth/authorize-url.js'
import type { OAuthHttp } from '../../src/oauth/http.js'
import { listInstalledLocations, installedLocationsRequest, processInstalledLocationsResponse } from '../../src/oauth/installed-locations.js'
import { locationTokenRequest, processLocationTokenResponse } from '../../src/oauth/location-token.js'
import { processReconnectResponse, reconnectRequest } from '../../src/oauth/reconnect.js'
import {
  authorizationCodeGrantRequest,
  processTokenResponse,
  refreshTokenGrantRequest,
} from '../../src/oauth/token-endpoint.js'
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js'

const SECRET_TOKEN = 'rt_SECRET_abcdefghijklmnopqrstuvwxyz0123456789'

interface Seen {
  method: string
  url: string
  headers: IncomingMessage['headers']
  body: string
}

/** A loopback server that answers the next requests with the given replies and records what it got. */
async function replyServer(reply: (seen: Seen) => { status: number; body: string; headers?: Record<string, string>; hangMs?: number }) {
  const seen: Seen[] = []
  const server: Server = createServer((req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => (body += c.toString()))
    req.on('end', () => {
      const s = { method: req.method!, url: req.url!, headers: req.headers, body }
      seen.push(s)
      const r = reply(s)
      const send = (): void => {
        res.writeHead(r.status, { 'content-type': 'application/json', ...r.headers })
        res.end(r.body)
      }
      if (r.hangMs) setTimeout(send, r.hangMs).unref()
      else send()
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    seen,
    http: { apiUrl: url, timeoutMs: 2000 } satisfies OAuthHttp,
    close: async () => {
      server.closeAllConnections()
      server.close()
      await once(server, 'close')
    },
  }
}

const goodToken = {
  access_token: 'at_1',
  token_type: 'Bearer',
  expires_in: 86399,
  refresh_token: 'rt_1',
  scope: 'contacts.readonly locations.readonly',
  userType: 'Location',
  companyId: 'C1',
  locationId: 'L1',
  userId: 'U1',
  isBulkInstallation: false,
}

const raw = (status: number, body: unknown) => ({
  status,
  headers: {},
  body: typeof body === 'string' ? body : JSON.stringify(body),
})

function assertNoSecret(err: unknown): void {
  const e = err as Error
  assert.ok(!e.message.includes(SECRET_TOKEN), 'message must not contain a token')
  assert.ok(!JSON.stringify(e).includes(SECRET_TOKEN), 'serialised error must not contain a token')
}

describe('buildAuthorizeUrl', () => {
  test('builds the chooselocation URL with space-separated scopes', () => {
    const url = new URL(
      buildAuthorizeUrl({
        marketplaceUrl: 'https://marketplace.gohighlevel.com/',
        clientId: 'app1-xyz',
        redirectUri: 'https://app.example/cb',
        scopes: ['contacts.readonly', 'locations.readonly'],
        state: 'S',
        loginWindowOpenMode: 'self',
      }),
    )
    assert.equal(url.origin + url.pathname, 'https://marketplace.gohighlevel.com/v2/oauth/chooselocation')
    assert.equal(url.searchParams.get('response_type'), 'code')
    assert.equal(url.searchParams.get('client_id'), 'app1-xyz')
    assert.equal(url.searchParams.get('redirect_uri'), 'https://app.example/cb')
    assert.equal(url.searchParams.get('scope'), 'contacts.readonly locations.readonly')
    assert.equal(url.searchParams.get('state'), 'S')
    assert.equal(url.searchParams.get('loginWindowOpenMode'), 'self')
  })
})

describe('processTokenResponse', () => {
  test('accepts the documented shape', () => {
    const t = processTokenResponse(raw(200, goodToken))
    assert.equal(t.access_token, 'at_1')
    assert.equal(t.locationId, 'L1')
    assert.equal(t.planId, undefined)
  })
  test('accepts a Company token without locationId, with approvedLocations', () => {
    const t = processTokenResponse(raw(200, { ...goodToken, userType: 'Company', locationId: undefined, approvedLocations: ['L1', 'L2'] }))
    assert.deepEqual(t.approvedLocations, ['L1', 'L2'])
  })
  test('schema mismatch → GHL_OAUTH_INVALID_RESPONSE naming the fields, not the values', () => {
    assert.throws(
      () => processTokenResponse(raw(200, { ...goodToken, refresh_token: 42, access_token: SECRET_TOKEN, expires_in: 'soon' })),
      (e: unknown) => {
        assert.ok(e instanceof OAuthError && e.code === 'GHL_OAUTH_INVALID_RESPONSE')
        assert.match(e.message, /refresh_token/)
        assert.match(e.message, /expires_in/)
        assertNoSecret(e)
        return true
      },
    )
  })
  test('a Location token without locationId → GHL_OAUTH_INVALID_RESPONSE', () => {
    assert.throws(() => processTokenResponse(raw(200, { ...goodToken, locationId: undefined })), { code: 'GHL_OAUTH_INVALID_RESPONSE' })
  })
  test('non-JSON → GHL_OAUTH_INVALID_RESPONSE', () => {
    assert.throws(() => processTokenResponse(raw(200, '{"access_token":"trunc')), { code: 'GHL_OAUTH_INVALID_RESPONSE', message: /not JSON/ })
  })
  test('400 invalid_grant → GHL_OAUTH_GRANT_REJECTED, oauthError invalid_grant', () => {
    assert.throws(
      () => processTokenResponse(raw(400, { statusCode: 400, error: 'invalid_grant', error_description: 'The refresh token has already been used' })),
      (e: unknown) => e instanceof OAuthError && e.code === 'GHL_OAUTH_GRANT_REJECTED' && e.oauthError === 'invalid_grant' && e.upstreamStatus === 400,
    )
  })
  test('401 with an "invalid refresh token" message and no OAuth code → invalid_grant', () => {
    assert.throws(
      () => processTokenResponse(raw(401, { statusCode: 401, message: 'Invalid grant: refresh token is invalid', error: 'Unauthorized' })),
      (e: unknown) => e instanceof OAuthError && e.code === 'GHL_OAUTH_GRANT_REJECTED' && e.oauthError === 'invalid_grant',
    )
  })
  test('422 "code should not be empty" → GHL_OAUTH_GRANT_REJECTED', () => {
    assert.throws(
      () => processTokenResponse(raw(422, { statusCode: 422, message: ['code should not be empty'], error: 'Unprocessable Entity' })),
      (e: unknown) => e instanceof OAuthError && e.code === 'GHL_OAUTH_GRANT_REJECTED' && e.upstreamStatus === 422,
    )
  })
  test('401 bad client → GHL_OAUTH_CLIENT_REJECTED', () => {
    assert.throws(
      () => processTokenResponse(raw(401, { statusCode: 401, message: 'Invalid client credentials', error: 'Unauthorized' })),
      (e: unknown) => e instanceof OAuthError && e.code === 'GHL_OAUTH_CLIENT_REJECTED' && e.oauthError === 'invalid_client',
    )
  })
  test('500 → GHL_UPSTREAM_UNAVAILABLE', () => {
    assert.throws(() => processTokenResponse(raw(500, 'oops')), { code: 'GHL_UPSTREAM_UNAVAILABLE', status: 502 })
  })
  test('an error message echoing a token is redacted', () => {
    try {
      processTokenResponse(raw(400, { statusCode: 400, message: `Invalid refresh token ${SECRET_TOKEN}` }))
      assert.fail('should throw')
    } catch (e) {
      assert.equal((e as GhlError).code, 'GHL_OAUTH_GRANT_REJECTED')
      assertNoSecret(e)
      assert.match((e as Error).message, /\[redacted\]/)
    }
  })
})

describe('process* of the other endpoints', () => {
  test('processLocationTokenResponse: good, 400, 401, 500, non-JSON, mismatch', () => {
    const lt = processLocationTokenResponse(raw(200, { access_token: 'lt', token_type: 'Bearer', expires_in: 100, scope: 'a b', locationId: 'L1', userId: 'U' }))
    assert.equal(lt.access_token, 'lt')
    assert.throws(() => processLocationTokenResponse(raw(400, { statusCode: 400, message: 'Location not found in this company' })), {
      code: 'GHL_OAUTH_GRANT_REJECTED',
    })
    assert.throws(
      () => processLocationTokenResponse(raw(401, { statusCode: 401, message: 'Unauthorized', error: 'Unauthorized' })),
      (e: unknown) => e instanceof OAuthError && e.upstreamStatus === 401 && e.oauthError === 'invalid_token',
    )
    assert.throws(() => processLocationTokenResponse(raw(503, {})), { code: 'GHL_UPSTREAM_UNAVAILABLE' })
    assert.throws(() => processLocationTokenResponse(raw(200, 'nope')), { code: 'GHL_OAUTH_INVALID_RESPONSE' })
    assert.throws(() => processLocationTokenResponse(raw(200, { access_token: 'x' })), { code: 'GHL_OAUTH_INVALID_RESPONSE', message: /expires_in/ })
  })
  test('processReconnectResponse: good, refused, 500, mismatch', () => {
    const r = processReconnectResponse(raw(200, { authorizationCode: 'c', expiresAt: '2026-01-01T00:00:00.000Z', traceId: 't' }))
    assert.equal(r.authorizationCode, 'c')
    assert.equal(r.expiresAt?.toISOString(), '2026-01-01T00:00:00.000Z')
    assert.equal(r.traceId, 't')
    assert.throws(() => processReconnectResponse(raw(400, { statusCode: 400, message: 'Reconnect is not allowed' })), { code: 'GHL_OAUTH_GRANT_REJECTED' })
    assert.throws(() => processReconnectResponse(raw(500, {})), { code: 'GHL_UPSTREAM_UNAVAILABLE' })
    assert.throws(() => processReconnectResponse(raw(200, { code: 'c' })), { code: 'GHL_OAUTH_INVALID_RESPONSE' })
  })
  test('processInstalledLocationsResponse: good, mismatch', () => {
    const page = processInstalledLocationsResponse(raw(200, { locations: [{ _id: 'L1', name: 'A', address: 'x', isInstalled: true }], count: 1 }))
    assert.equal(page.locations[0]!._id, 'L1')
    assert.throws(() => processInstalledLocationsResponse(raw(200, { locations: [{ name: 'A' }] })), { code: 'GHL_OAUTH_INVALID_RESPONSE' })
    assert.throws(() => processInstalledLocationsResponse(raw(403, { statusCode: 403, message: 'no access', error: 'Forbidden' })), {
      code: 'GHL_OAUTH_GRANT_REJECTED',
    })
  })
})

describe('requests on the wire (loopback server)', () => {
  test('refreshTokenGrantRequest: form body, Accept json, POST /oauth/token', async () => {
    const srv = await replyServer(() => ({ status: 200, body: JSON.stringify(goodToken) }))
    try {
      const res = await refreshTokenGrantRequest(srv.http, { clientId: 'a-b', clientSecret: 's', refreshToken: 'r', userType: 'Location' })
      assert.equal(res.status, 200)
      const s = srv.seen[0]!
      assert.equal(s.method, 'POST')
      assert.equal(s.url, '/oauth/token')
      assert.equal(s.headers['content-type'], 'application/x-www-form-urlencoded')
      assert.equal(s.headers.accept, 'application/json')
      assert.deepEqual(Object.fromEntries(new URLSearchParams(s.body)), {
        client_id: 'a-b',
        client_secret: 's',
        grant_type: 'refresh_token',
        refresh_token: 'r',
        user_type: 'Location',
      })
    } finally {
      await srv.close()
    }
  })
  test('authorizationCodeGrantRequest leaves out redirect_uri when not given', async () => {
    const srv = await replyServer(() => ({ status: 200, body: JSON.stringify(goodToken) }))
    try {
      await authorizationCodeGrantRequest(srv.http, { clientId: 'a-b', clientSecret: 's', code: 'c', userType: 'Company' })
      const body = Object.fromEntries(new URLSearchParams(srv.seen[0]!.body))
      assert.equal(body.grant_type, 'authorization_code')
      assert.equal(body.code, 'c')
      assert.equal(body.user_type, 'Company')
      assert.equal('redirect_uri' in body, false)
    } finally {
      await srv.close()
    }
  })
  test('a hang → GHL_TIMEOUT (bounded by timeoutMs), without the secret in the error', async () => {
    const srv = await replyServer(() => ({ status: 200, body: '{}', hangMs: 5000 }))
    try {
      await assert.rejects(
        refreshTokenGrantRequest({ ...srv.http, timeoutMs: 100 }, { clientId: 'a-b', clientSecret: SECRET_TOKEN, refreshToken: SECRET_TOKEN, userType: 'Location' }),
        (e: unknown) => {
          assert.ok(e instanceof GhlError && e.code === 'GHL_TIMEOUT')
          assertNoSecret(e)
          return true
        },
      )
    } finally {
      await srv.close()
    }
  })
  test('connection refused → GHL_NETWORK', async () => {
    const srv = await replyServer(() => ({ status: 200, body: '{}' }))
    await srv.close()
    await assert.rejects(
      refreshTokenGrantRequest(srv.http, { clientId: 'a-b', clientSecret: 's', refreshToken: SECRET_TOKEN, userType: 'Location' }),
      (e: unknown) => e instanceof GhlError && e.code === 'GHL_NETWORK' && !e.message.includes(SECRET_TOKEN),
    )
  })
  test('caller abort → GHL_ABORTED', async () => {
    const srv = await replyServer(() => ({ status: 200, body: '{}', hangMs: 5000 }))
    try {
      const ac = new AbortController()
      setTimeout(() => ac.abort(), 50)
      await assert.rejects(refreshTokenGrantRequest({ ...srv.http, signal: ac.signal }, { clientId: 'a-b', clientSecret: 's', refreshToken: 'r', userType: 'Location' }), {
        code: 'GHL_ABORTED',
      })
    } finally {
      await srv.close()
    }
  })
  test('locationTokenRequest: Bearer, Version, form body', async () => {
    const srv = await replyServer(() => ({ status: 200, body: JSON.stringify({ access_token: 'lt', expires_in: 10, locationId: 'L1', userId: 'U' }) }))
    try {
      await locationTokenRequest(srv.http, { agencyAccessToken: 'AG', companyId: 'C1', locationId: 'L1', version: '2021-07-28' })
      const s = srv.seen[0]!
      assert.equal(s.url, '/oauth/locationToken')
      assert.equal(s.headers.authorization, 'Bearer AG')
      assert.equal(s.headers.version, '2021-07-28')
      assert.deepEqual(Object.fromEntries(new URLSearchParams(s.body)), { companyId: 'C1', locationId: 'L1' })
    } finally {
      await srv.close()
    }
  })
  test('reconnectRequest: JSON {clientKey, clientSecret, locationId}', async () => {
    const srv = await replyServer(() => ({ status: 200, body: JSON.stringify({ authorizationCode: 'c' }) }))
    try {
      await reconnectRequest(srv.http, { clientId: 'a-b', clientSecret: 's', locationId: 'L1' })
      assert.equal(srv.seen[0]!.url, '/oauth/reconnect')
      assert.deepEqual(JSON.parse(srv.seen[0]!.body), { clientKey: 'a-b', clientSecret: 's', locationId: 'L1' })
    } finally {
      await srv.close()
    }
  })
  test('listInstalledLocations walks skip/limit pages until count', async () => {
    const all = Array.from({ length: 7 }, (_, i) => ({ _id: `L${i}`, name: `n${i}`, address: 'a' }))
    const srv = await replyServer((s) => {
      const q = new URL(s.url, 'http://x').searchParams
      const skip = Number(q.get('skip'))
      const limit = Number(q.get('limit'))
      return { status: 200, body: JSON.stringify({ locations: all.slice(skip, skip + limit), count: all.length }) }
    })
    try {
      const got = await listInstalledLocations(srv.http, { agencyAccessToken: 'AG', companyId: 'C', appId: 'A', version: '2021-07-28', pageSize: 3 })
      assert.deepEqual(got.map((l) => l._id), all.map((l) => l._id))
      assert.equal(srv.seen.length, 3)
      assert.equal(new URL(srv.seen[2]!.url, 'http://x').searchParams.get('skip'), '6')
    } finally {
      await srv.close()
    }
  })
})

describe('against the sandbox', () => {
  let sandbox: Sandbox
  let http: OAuthHttp
  before(async () => {
    sandbox = await startSandbox({ port: 0, reconnect: 'allow' })
    sandbox.configureApp({ redirectUris: ['http://127.0.0.1:1/cb'] })
    http = { apiUrl: sandbox.url, timeoutMs: 5000 }
  })
  after(() => sandbox.close())

  async function code(target: Record<string, unknown>): Promise<string> {
    const res = await fetch(`${sandbox.url}/_sandbox/authorize`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ clientId: sandbox.app.clientId, redirectUri: 'http://127.0.0.1:1/cb', scope: 'contacts.readonly oauth.readonly oauth.write', state: 's', webhookTiming: 'none', ...target }),
    })
    const { redirect } = (await res.json()) as { redirect: string }
    return new URL(redirect).searchParams.get('code')!
  }

  test('code exchange, refresh rotation, used refresh token → invalid_grant', async () => {
    const app = sandbox.app
    const locationId = sandbox.companies[0]!.locations[0]!.locationId
    const c = await code({ locationId })
    const t1 = processTokenResponse(
      await authorizationCodeGrantRequest(http, { clientId: app.clientId, clientSecret: app.clientSecret, code: c, redirectUri: 'http://127.0.0.1:1/cb', userType: 'Location' }),
    )
    assert.equal(t1.locationId, locationId)
    const t2 = processTokenResponse(await refreshTokenGrantRequest(http, { clientId: app.clientId, clientSecret: app.clientSecret, refreshToken: t1.refresh_token, userType: 'Location' }))
    assert.notEqual(t2.refresh_token, t1.refresh_token)
    const again = await refreshTokenGrantRequest(http, { clientId: app.clientId, clientSecret: app.clientSecret, refreshToken: t1.refresh_token, userType: 'Location' })
    assert.throws(
      () => processTokenResponse(again),
      (e: unknown) => e instanceof OAuthError && e.code === 'GHL_OAUTH_GRANT_REJECTED' && e.oauthError === 'invalid_grant' && typeof e.traceId === 'string',
    )
    // A wrong secret is the client's fault, not the grant's.
    const bad = await refreshTokenGrantRequest(http, { clientId: app.clientId, clientSecret: 'wrong', refreshToken: t2.refresh_token, userType: 'Location' })
    assert.throws(() => processTokenResponse(bad), { code: 'GHL_OAUTH_CLIENT_REJECTED' })
    // Reconnect gives a code that exchanges without redirect_uri.
    const rc = processReconnectResponse(await reconnectRequest(http, { clientId: app.clientId, clientSecret: app.clientSecret, locationId }))
    const t3 = processTokenResponse(await authorizationCodeGrantRequest(http, { clientId: app.clientId, clientSecret: app.clientSecret, code: rc.authorizationCode, userType: 'Location' }))
    assert.equal(t3.locationId, locationId)
  })

  test('agency: location token and installed locations', async () => {
    const app = sandbox.app
    const company = sandbox.companies[0]!
    const c = await code({ companyId: company.companyId })
    const agency = processTokenResponse(
      await authorizationCodeGrantRequest(http, { clientId: app.clientId, clientSecret: app.clientSecret, code: c, redirectUri: 'http://127.0.0.1:1/cb', userType: 'Company' }),
    )
    assert.equal(agency.userType, 'Company')
    const loc = company.locations[0]!.locationId
    const lt = processLocationTokenResponse(
      await locationTokenRequest(http, { agencyAccessToken: agency.access_token, companyId: company.companyId, locationId: loc, version: '2021-07-28' }),
    )
    assert.equal(lt.locationId, loc)
    const foreign = await locationTokenRequest(http, { agencyAccessToken: agency.access_token, companyId: company.companyId, locationId: 'nope', version: '2021-07-28' })
    assert.throws(() => processLocationTokenResponse(foreign), (e: unknown) => e instanceof OAuthError && e.upstreamStatus === 400)
    const listed = await listInstalledLocations(http, { agencyAccessToken: agency.access_token, companyId: company.companyId, appId: app.appId, version: '2021-07-28', pageSize: 1 })
    assert.deepEqual(listed.map((l) => l._id).sort(), company.locations.map((l) => l.locationId).sort())
    const first = processInstalledLocationsResponse(
      await installedLocationsRequest(http, { agencyAccessToken: agency.access_token, companyId: company.companyId, appId: app.appId, skip: 0, limit: 1, version: '2021-07-28' }),
    )
    assert.equal(first.locations.length, Math.min(1, company.locations.length))
  })
})
