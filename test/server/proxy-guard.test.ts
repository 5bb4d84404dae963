/**
 * The proxy never hands out or misuses a credential: every spelling of a HighLevel OAuth endpoint that
 * issues or exchanges credentials, and every path with a dot segment, is refused over real HTTP before
 * any token is read — and nothing reaches HighLevel.
 *
 * "Nothing reaches HighLevel" is seen two ways: the sandbox's own counters (`/_sandbox/stats`: token,
 * locationToken, reconnect, installedLocations, api) do not move, and a pass-through front between the
 * connector and the sandbox (GHL_API_URL points at it) records no request at all — it would also see
 * calls the sandbox does not count, such as `/oauth/authorize`. The raw paths are sent with undici's
 * `Client` and an explicit `path`, which goes on the wire exactly as written (no URL normalisation, as
 * `curl --path-as-is`).
 */
import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { Client, request } from 'undici'
import { installViaHttp, sandboxJson, startStack, type Stack } from '../helpers/stack.js'

/** A pass-through HTTP front for the sandbox that records every request it forwards. */
async function startFront(target: () => string): Promise<{ url: string; seen: string[]; close: () => Promise<void> }> {
  const seen: string[] = []
  const server: Server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`)
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const headers = Object.fromEntries(
        Object.entries(req.headers).filter(([k, v]) => v !== undefined && !['host', 'connection', 'content-length', 'transfer-encoding', 'keep-alive'].includes(k)),
      ) as Record<string, string | string[]>
      const body = chunks.length > 0 ? Buffer.concat(chunks) : undefined
      request(`${target()}${req.url}`, { method: req.method as 'GET', headers, body })
        .then(async (up) => {
          const payload = Buffer.from(await up.body.arrayBuffer())
          const out: Record<string, string | string[]> = {}
          for (const [k, v] of Object.entries(up.headers)) {
            if (v !== undefined && !['connection', 'keep-alive', 'transfer-encoding', 'content-length'].includes(k)) out[k] = v
          }
          res.writeHead(up.statusCode, { ...out, 'content-length': String(payload.length) })
          res.end(payload)
        })
        .catch((err: Error) => {
          res.writeHead(502, { 'content-type': 'text/plain' })
          res.end(err.message)
        })
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

describe('proxy guard: OAuth credential endpoints and dot segments are refused before any token is read', () => {
  let front: Awaited<ReturnType<typeof startFront>>
  let stack: Stack
  let client: Client
  let companyId: string
  let locationId: string

  before(async () => {
    // The front forwards to the stack's sandbox, which exists only once the stack does (and the stack
    // needs the front's URL): nothing is sent through the front before `stack` is set.
    front = await startFront(() => stack.sandbox.url)
    // An agency install: its token could mint a location token for any of its locations.
    stack = await startStack({ env: { GHL_USER_TYPE: 'Company', GHL_API_URL: front.url } })
    companyId = stack.sandbox.companies[0]!.companyId
    locationId = stack.sandbox.companies[0]!.locations[0]!.locationId
    const res = await installViaHttp(stack, { companyId, webhookTiming: 'none' })
    assert.equal(res.status, 200, res.html)
    // The agency install learns its locations in the background; let that finish before counting.
    await waitForBackground()
    client = new Client(stack.url)
  })
  after(async () => {
    await client?.close()
    await stack?.close()
    await front?.close()
  })

  /**
   * An agency install lists its installed locations in the background (one call to HighLevel); wait for
   * that call to be answered, so that it is not counted as one of the requests below.
   */
  async function waitForBackground(): Promise<void> {
    for (let i = 0; i < 400; i++) {
      if ((await stats()).installedLocations.ok >= 1) return
      await new Promise((r) => setTimeout(r, 25))
    }
    assert.fail('the agency install never listed its installed locations')
  }

  /** One request with the path exactly as given. */
  async function send(method: 'GET' | 'POST', path: string, body?: string, contentType = 'application/x-www-form-urlencoded') {
    const res = await client.request({
      method,
      path,
      headers: { authorization: `Bearer ${stack.apiKey}`, ...(body === undefined ? {} : { 'content-type': contentType }) },
      body,
    })
    const text = await res.body.text()
    return { status: res.statusCode, text }
  }

  const stats = () => sandboxJson(stack.sandbox, 'GET', '/_sandbox/stats')

  /** Sends the request and asserts: refused with `status`/`code`, the message says why, nothing reached HighLevel. */
  async function refused(method: 'GET' | 'POST', path: string, status: 400 | 403, why: RegExp, body?: string): Promise<void> {
    const before = await stats()
    const seen = front.seen.length
    const res = await send(method, path, body)
    const parsed = JSON.parse(res.text) as { code: string; message: string; status: number }
    assert.equal(res.status, status, `${method} ${path} → ${res.status} ${res.text}`)
    assert.deepEqual(Object.keys(parsed).sort(), ['code', 'message', 'status'])
    assert.equal(parsed.code, status === 403 ? 'GHL_FORBIDDEN' : 'GHL_BAD_REQUEST')
    assert.equal(parsed.status, status)
    assert.match(parsed.message, why)
    assert.doesNotMatch(res.text, /access_token|refresh_token/)
    assert.deepEqual(front.seen.slice(seen), [], `${method} ${path} reached HighLevel`)
    assert.deepEqual(await stats(), before, `${method} ${path} changed the sandbox's counters`)
  }

  const company = (p: string): string => `/proxy/companies/${companyId}${p}`
  const location = (p: string): string => `/proxy/locations/${locationId}${p}`

  test('positive control: GET /oauth/installedLocations through the company route reaches HighLevel and answers', async () => {
    const before = await stats()
    const seen = front.seen.length
    const res = await send('GET', company(`/oauth/installedLocations?companyId=${companyId}&appId=${stack.config.appId}`))
    assert.equal(res.status, 200, res.text)
    assert.equal((JSON.parse(res.text) as { locations: unknown[] }).locations.length, 3)
    assert.deepEqual(front.seen.slice(seen), [`GET /oauth/installedLocations?companyId=${companyId}&appId=${stack.config.appId}`])
    assert.equal((await stats()).installedLocations.ok, before.installedLocations.ok + 1)
  })

  /**
   * One row per spelling: [what, method, route ('company' or 'location'), the path after the route's id,
   * expected status, body]. 403: an OAuth credential endpoint; 400: a dot segment or an unreadable path.
   */
  const REFUSED: Array<[string, 'GET' | 'POST', 'company' | 'location', string, 400 | 403, (() => string) | undefined]> = [
    ['POST /oauth/token with a refresh grant in the form body', 'POST', 'company', '/oauth/token', 403, () => `grant_type=refresh_token&client_id=${stack.config.clientId}&client_secret=x&refresh_token=y`],
    ['GET /oauth/token', 'GET', 'company', '/oauth/token', 403, undefined],
    ['POST /oauth/token on the location route', 'POST', 'location', '/oauth/token', 403, () => 'grant_type=authorization_code&code=abc'],
    ['POST /oauth/locationToken with the form body (would mint a location token)', 'POST', 'company', '/oauth/locationToken', 403, () => mintForm()],
    ['POST /oauth/locationToken on the location route', 'POST', 'location', '/oauth/locationToken', 403, () => mintForm()],
    ['POST /oauth/location-token (v3)', 'POST', 'company', '/oauth/location-token', 403, () => mintForm()],
    ['POST /oauth/reconnect', 'POST', 'company', '/oauth/reconnect', 403, () => JSON.stringify({ clientKey: stack.config.clientId, clientSecret: 'x', companyId })],
    ['GET /oauth/authorize', 'GET', 'company', '/oauth/authorize?response_type=code', 403, undefined],
    ['GET /oauth/chooselocation', 'GET', 'company', '/oauth/chooselocation', 403, undefined],
    ['GET /oauth', 'GET', 'company', '/oauth', 403, undefined],
    ['POST /oauth/installedLocations (only GET is forwarded)', 'POST', 'company', '/oauth/installedLocations', 403, () => ''],
    ['mixed case /OAuth/Token', 'POST', 'company', '/OAuth/Token', 403, () => 'grant_type=refresh_token'],
    ['upper case /OAUTH/LOCATIONTOKEN', 'POST', 'company', '/OAUTH/LOCATIONTOKEN', 403, () => mintForm()],
    ['percent-encoded slashes %2Foauth%2Ftoken', 'POST', 'company', '/%2Foauth%2Ftoken', 403, () => 'grant_type=refresh_token'],
    ['percent-encoded letter /%6Fauth/token', 'POST', 'company', '/%6Fauth/token', 403, () => 'grant_type=refresh_token'],
    ['every letter percent-encoded (locationToken)', 'POST', 'company', '/%6f%61%75%74%68/%6c%6f%63%61%74%69%6f%6e%54%6f%6b%65%6e', 403, () => mintForm()],
    ['encoded slash inside: /oauth%2Ftoken', 'POST', 'company', '/oauth%2Ftoken', 403, () => 'grant_type=refresh_token'],
    ['double-encoded /%256Fauth/token', 'POST', 'company', '/%256Fauth/token', 403, () => 'grant_type=refresh_token'],
    ['double-encoded slashes %252Foauth%252Ftoken', 'POST', 'company', '/%252Foauth%252Ftoken', 403, () => 'grant_type=refresh_token'],
    ['raw backslash /oauth\\token', 'POST', 'company', '/oauth\\token', 403, () => 'grant_type=refresh_token'],
    ['encoded backslash /oauth%5Ctoken', 'POST', 'company', '/oauth%5Ctoken', 403, () => 'grant_type=refresh_token'],
    ['backslashes only: /\\oauth\\locationToken', 'POST', 'company', '/\\oauth\\locationToken', 403, () => mintForm()],
    [';params in a segment: /oauth;v=1/token', 'POST', 'company', '/oauth;v=1/token', 403, () => 'grant_type=refresh_token'],
    [';params at the end: /oauth/token;x=y', 'POST', 'company', '/oauth/token;x=y', 403, () => 'grant_type=refresh_token'],
    ['an empty ;param: /oauth/locationToken;', 'POST', 'company', '/oauth/locationToken;', 403, () => mintForm()],
    ['repeated slashes and a query: //oauth//token?x=1', 'POST', 'company', '//oauth//token?x=1', 403, () => 'grant_type=refresh_token'],
    ['../../oauth/token as sent (--path-as-is)', 'POST', 'company', '/../../oauth/token', 400, () => 'grant_type=refresh_token'],
    ['contacts/../../oauth/token on the location route', 'POST', 'location', '/contacts/../../oauth/token', 400, () => 'grant_type=refresh_token'],
    ['a single-dot segment: /./oauth/token', 'GET', 'location', '/./oauth/token', 400, undefined],
    ['a dot segment that resolves to an allowed path', 'GET', 'company', '/locations/../oauth/installedLocations', 400, undefined],
    ['encoded dot segments %2e%2e/%2e%2e/oauth/token', 'POST', 'company', '/%2e%2e/%2e%2e/oauth/token', 400, () => 'grant_type=refresh_token'],
    ['double-encoded dot segment %252e%252e', 'POST', 'company', '/%252e%252e/oauth/token', 400, () => 'grant_type=refresh_token'],
    ['dots with encoded slashes ..%2f..%2foauth%2ftoken', 'POST', 'company', '/contacts/..%2f..%2foauth%2ftoken', 400, () => 'grant_type=refresh_token'],
    ['mixed-case encoded dot and a backslash: .%2E\\', 'POST', 'company', '/contacts/.%2E\\oauth/token', 400, () => 'grant_type=refresh_token'],
    ['a dot segment with ;params: ..;x', 'POST', 'company', '/contacts/..;x/oauth/token', 400, () => 'grant_type=refresh_token'],
    ['an encoded control character: /oauth%00/token', 'GET', 'company', '/oauth%00/token', 400, undefined],
    ['a double-encoded control character: /oauth%2500/token', 'GET', 'company', '/oauth%2500/token', 400, undefined],
    ['a broken percent-encoding (refused by the router)', 'GET', 'company', '/contacts/%E0%A4%A', 400, undefined],
    ['a percent-encoding broken once decoded (refused by the guard)', 'GET', 'company', '/contacts/%25E0%25A4%25A', 400, undefined],
  ]
  const mintForm = (): string => new URLSearchParams({ companyId, locationId }).toString()
  const WHY: Record<400 | 403, RegExp> = {
    403: /does not forward .*OAuth endpoints issue or exchange credentials/,
    400: /"\." or "\.\." segment|control characters|invalid percent-encoding/,
  }

  for (const [what, method, route, path, status, body] of REFUSED) {
    test(`${what} → ${status}, nothing reaches HighLevel`, async () => {
      await refused(method, route === 'company' ? company(path) : location(path), status, WHY[status], body?.())
    })
  }

  test('after all of that the proxy still serves ordinary calls (and the guard let them through unchanged)', async () => {
    const seen = front.seen.length
    const res = await send('GET', location(`/contacts/?locationId=${locationId}&limit=1`))
    assert.equal(res.status, 200, res.text)
    assert.ok(front.seen.slice(seen).includes(`GET /contacts/?locationId=${locationId}&limit=1`), front.seen.slice(seen).join('\n'))
  })
})
