import { test, describe, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import type { AddressInfo } from 'node:net'
import { HighLevelClient } from '../../src/client/index.js'
import { matchOperation } from '../../src/api/matcher.js'
import { createConnector } from '../../src/connector.js'
import { loadConfig } from '../../src/config.js'
import { GhlError, ScopeMissingError } from '../../src/errors.js'
import { createLogger } from '../../src/logger.js'
import type { AccessGrant, Target, TokenProvider } from '../../src/tokens/types.js'
import { installViaHttp, sandboxJson, startStack } from '../helpers/stack.js'
import { testKey } from '../helpers/services.js'

interface Hit { method: string; url: string; headers: IncomingMessage['headers']; body: string }

/** A loopback HighLevel stand-in that records every request it receives. */
async function recordingServer(answer: (hit: Hit, res: ServerResponse) => void = (_h, res) => json(res, 200, { ok: true })) {
  const hits: Hit[] = []
  const server = createServer(async (req, res) => {
    let body = ''
    for await (const chunk of req) body += chunk
    const hit = { method: req.method!, url: req.url!, headers: req.headers, body }
    hits.push(hit)
    answer(hit, res)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

/** A real TokenProvider handing out one grant (with or without scopes), counting the asks. */
class OneGrant implements TokenProvider {
  asked = 0
  constructor(readonly scopes: readonly string[] | undefined, readonly token = 'typed-test-token') {}
  async getAccessToken(target: Target): Promise<AccessGrant> {
    this.asked++
    const resourceId = target.kind === 'static' ? target.resourceId : target.id
    const base: AccessGrant = {
      accessToken: this.token,
      installationId: 'inst-typed',
      version: 1,
      expiresAt: Date.now() + 3600_000,
      resourceId,
      scopes: [],
      userType: target.kind === 'company' ? 'Company' : 'Location',
    }
    return this.scopes === undefined ? base : { ...base, scopes: this.scopes }
  }
  async onUnauthorized(target: Target): Promise<AccessGrant> {
    return this.getAccessToken(target)
  }
  invalidate(): void {}
}

/** A pino logger whose lines are collected as parsed JSON. */
function capturingLogger(): { logger: ReturnType<typeof createLogger>; lines: Array<Record<string, any>>; text: () => string } {
  const raw: string[] = []
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      raw.push(...chunk.toString('utf8').split('\n').filter(Boolean))
      cb()
    },
  })
  const logger = createLogger({ level: 'debug', destination })
  return { logger, get lines() { return raw.map((l) => JSON.parse(l)) }, text: () => raw.join('\n') }
}

describe('typed calls against the sandbox', () => {
  test('typed POST and GET by path and by name; HighLevel errors come back as `error` with status and trace id', async () => {
    const stack = await startStack()
    try {
      const locationId = stack.sandbox.companies[0]!.locations[0]!.locationId
      assert.equal((await installViaHttp(stack, { locationId })).status, 200)
      const loc = stack.connector.location(locationId)

      const created = await loc.POST('/contacts/', { body: { locationId, firstName: 'Ada', lastName: 'Lovelace', email: 'ada@example.com' } })
      assert.equal(created.response.status, 201)
      assert.ok(created.data?.contact?.id, 'the created contact has an id')
      const contactId = created.data.contact.id

      const byPath = await loc.GET('/contacts/{contactId}', { params: { path: { contactId } } })
      assert.equal(byPath.error, undefined)
      assert.equal(byPath.data?.contact?.email, 'ada@example.com')
      const byName = await loc.contacts.getContact({ params: { path: { contactId } } })
      assert.deepEqual(byName.data, byPath.data)

      const list = await loc.GET('/contacts/', { params: { query: { locationId, limit: 10 } } })
      assert.ok(list.data?.contacts?.some((c) => c.id === contactId), 'the list has the created contact')

      const location = await loc.locations.getLocation({ params: { path: { locationId } } })
      assert.equal(location.data?.location?.id, locationId)

      const missing = await loc.GET('/contacts/{contactId}', { params: { path: { contactId: 'no-such-contact' } } })
      assert.equal(missing.data, undefined)
      assert.equal(missing.response.status, 400)
      assert.equal(missing.error?.statusCode, 400)
      assert.ok(missing.response.traceId, 'the error answer has a trace id')
    } finally {
      await stack.close()
    }
  })

  test('a wrong token kind and a missing scope are refused with zero requests at the sandbox', async () => {
    // An agency install (the location token is minted from it) whose app asks for — and so is granted — no contacts.write.
    const stack = await startStack({ env: { GHL_USER_TYPE: 'Company', GHL_SCOPES: 'contacts.readonly locations.readonly oauth.readonly oauth.write' } })
    try {
      const company = stack.sandbox.companies[0]!
      const locationId = company.locations[0]!.locationId
      assert.equal((await installViaHttp(stack, { companyId: company.companyId, webhookTiming: 'none' })).status, 200)
      const loc = stack.connector.location(locationId)
      const agency = stack.connector.company(company.companyId)
      // Warm both grants so the counters below only see API calls.
      assert.equal((await loc.GET('/contacts/', { params: { query: { locationId } } })).response.status, 200)
      assert.equal((await agency.GET('/locations/{locationId}', { params: { path: { locationId } } })).response.status, 200)
      const before = await sandboxJson(stack.sandbox, 'GET', '/_sandbox/stats')

      const scope = await loc.POST('/contacts/', { body: { locationId, firstName: 'Ada' } }).catch((e: unknown) => e)
      assert.ok(scope instanceof ScopeMissingError, `expected ScopeMissingError, got ${String(scope)}`)
      assert.equal(scope.code, 'GHL_SCOPE_MISSING')
      assert.equal(scope.status, 403)
      assert.deepEqual(scope.needed, ['contacts.write'])
      assert.deepEqual([...scope.granted].sort(), ['contacts.readonly', 'locations.readonly', 'oauth.readonly', 'oauth.write'])
      assert.match(scope.message, /contacts\.createContact \(POST \/contacts\/\) needs the scope contacts\.write/)
      assert.match(scope.message, /granted: .*contacts\.readonly/)
      assert.match(scope.message, /Add contacts\.write to GHL_SCOPES .* install the app again/)

      const agencyOnly = await loc.GET('/oauth/installedLocations', { params: { query: { companyId: company.companyId, appId: stack.config.appId } } }).catch((e: unknown) => e)
      assert.ok(agencyOnly instanceof GhlError, `expected a GhlError, got ${String(agencyOnly)}`)
      assert.equal(agencyOnly.code, 'GHL_WRONG_TOKEN_KIND')
      assert.match(agencyOnly.message, /oauth\.getInstalledLocation .* takes an agency \(company\) token: call it through ghl\.company\(companyId\)/)

      const locationOnly = await agency.contacts.getContact({ params: { path: { contactId: 'c1' } } }).catch((e: unknown) => e)
      assert.ok(locationOnly instanceof GhlError, `expected a GhlError, got ${String(locationOnly)}`)
      assert.equal(locationOnly.code, 'GHL_WRONG_TOKEN_KIND')
      assert.match(locationOnly.message, /takes a sub-account \(location\) token: call it through ghl\.location\(locationId\)/)

      const after = await sandboxJson(stack.sandbox, 'GET', '/_sandbox/stats')
      assert.deepEqual(after, before, 'no request reached the sandbox (API, token or location-token endpoints)')

      // Control: an allowed call is counted by the same stats.
      await agency.GET('/oauth/installedLocations', { params: { query: { companyId: company.companyId, appId: stack.config.appId } } })
      const control = await sandboxJson(stack.sandbox, 'GET', '/_sandbox/stats')
      assert.equal(control.installedLocations.ok, before.installedLocations.ok + 1)
    } finally {
      await stack.close()
    }
  })
})

describe('typed calls against a loopback server', () => {
  const servers: Array<{ close: () => Promise<void> }> = []
  const clients: HighLevelClient[] = []
  after(async () => {
    for (const c of clients) await c.close()
    for (const s of servers) await s.close()
  })
  async function setup(scopes: readonly string[] | undefined, answer?: Parameters<typeof recordingServer>[0], extra: { validate?: boolean; logger?: ReturnType<typeof createLogger> } = {}) {
    const server = await recordingServer(answer)
    servers.push(server)
    const tokens = new OneGrant(scopes)
    const client = new HighLevelClient({ baseUrl: server.url, apiVersion: '2099-01-01', tokens, retry: { maxRetries: 0 }, ...extra })
    clients.push(client)
    return { server, tokens, client }
  }

  test('each call sends the Version its operation declares (the client default where it declares none)', async () => {
    const { server, client } = await setup(['contacts.readonly', 'calendars.readonly', 'charges.readonly'])
    const loc = client.forTarget({ kind: 'location', id: 'L1' })
    await loc.GET('/contacts/{contactId}', { params: { path: { contactId: 'c 1/2' } } })
    await loc.GET('/calendars/', { params: { query: { locationId: 'L1' } } })
    await loc.GET('/marketplace/billing/charges/has-funds')
    // Untyped calls given an operation (the proxy's way) send its Version unless the caller sent one.
    await loc.request('GET', '/calendars/?locationId=L1', { operation: matchOperation('GET', '/calendars/') })
    await loc.request('GET', '/calendars/?locationId=L1', { operation: matchOperation('GET', '/calendars/'), headers: { Version: '2021-07-28' } })
    await loc.get('/calendars/', { query: { locationId: 'L1' } })
    assert.deepEqual(
      server.hits.map((h) => [h.url, h.headers.version]),
      [
        ['/contacts/c%201%2F2', '2021-07-28'],
        ['/calendars/?locationId=L1', '2021-04-15'],
        ['/marketplace/billing/charges/has-funds', '2099-01-01'],
        ['/calendars/?locationId=L1', '2021-04-15'],
        ['/calendars/?locationId=L1', '2021-07-28'],
        ['/calendars/?locationId=L1', '2099-01-01'],
      ],
    )
    assert.ok(server.hits.every((h) => h.headers.authorization === 'Bearer typed-test-token'), 'every call carries the token')
  })

  test('wrong token kind, missing scope and bad params fail before any request (and before any token is fetched)', async () => {
    const { server, tokens, client } = await setup(['contacts.readonly'])
    const loc = client.forTarget({ kind: 'location', id: 'L1' })
    const agency = client.forTarget({ kind: 'company', id: 'C1' })
    const pit = client.forTarget({ kind: 'static', token: 'pit-typed-test', resourceId: 'L1' })
    const codeOf = (p: Promise<unknown>): Promise<string> => p.then(() => 'resolved', (e: unknown) => (e instanceof GhlError ? e.code : String(e)))

    assert.equal(await codeOf(loc.GET('/oauth/installedLocations', { params: { query: { companyId: 'C1', appId: 'A' } } })), 'GHL_WRONG_TOKEN_KIND')
    assert.equal(await codeOf(agency.GET('/contacts/{contactId}', { params: { path: { contactId: 'c1' } } })), 'GHL_WRONG_TOKEN_KIND')
    // Location-Access-Only: an OAuth token, never a PIT.
    const noPit = await pit.GET('/marketplace/billing/charges/has-funds').catch((e: unknown) => e)
    assert.ok(noPit instanceof GhlError && noPit.code === 'GHL_WRONG_TOKEN_KIND', `expected GHL_WRONG_TOKEN_KIND, got ${String(noPit)}`)
    assert.match(noPit.message, /not a Private Integration Token: call it through ghl\.location\(locationId\)/)
    assert.equal(await codeOf(loc.request('GET', '/oauth/installedLocations', { operation: matchOperation('GET', '/oauth/installedLocations') })), 'GHL_WRONG_TOKEN_KIND')
    assert.equal(tokens.asked, 0, 'a wrong token kind is refused before a token is asked for')

    assert.equal(await codeOf(loc.POST('/contacts/', { body: { locationId: 'L1' } })), 'GHL_SCOPE_MISSING')
    assert.equal(await codeOf(loc.contacts.deleteContact({ params: { path: { contactId: 'c1' } } })), 'GHL_SCOPE_MISSING')
    assert.equal(await codeOf(loc.request('POST', '/contacts/', { body: {}, operation: matchOperation('POST', '/contacts/') })), 'GHL_SCOPE_MISSING')

    const bad = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as GhlError)
    const noParam = await bad(loc.GET('/contacts/{contactId}', { params: { path: { contactId: '' } } }))
    assert.equal(noParam?.code, 'GHL_BAD_REQUEST')
    assert.match(noParam!.message, /needs params\.path\.contactId \(a non-empty string\), got an empty string/)
    const notAnOperation = await bad(loc.GET('/contacts/{id}' as '/contacts/{contactId}', { params: { path: { contactId: 'c1' } } }))
    assert.match(notAnOperation!.message, /GET \/contacts\/\{id\} is not an operation of HighLevel's API .* use get\(\)/)
    const noBody = await bad(loc.DELETE('/contacts/{contactId}', { params: { path: { contactId: 'c1' } }, body: { x: 1 } } as never))
    assert.match(noBody!.message, /takes no request body/)
    const badForm = await bad(agency.POST('/oauth/locationToken', { body: 'companyId=C1' as never }))
    assert.match(badForm!.message, /takes a form body: an object of fields, got string/)

    assert.equal(server.hits.length, 0, 'nothing reached the server')

    // Controls: what the grant and the kinds allow goes through.
    await loc.GET('/contacts/{contactId}', { params: { path: { contactId: 'c1' } } })
    await pit.GET('/contacts/{contactId}', { params: { path: { contactId: 'c1' } } }) // a PIT may call a bearer operation
    assert.equal(server.hits.length, 2)
    // The right kind with a scope the grant lacks is still refused.
    assert.equal(await codeOf(agency.GET('/locations/{locationId}', { params: { path: { locationId: 'L1' } } })), 'GHL_SCOPE_MISSING')
    assert.equal(server.hits.length, 2)
  })

  test('an operation without scopes, or a grant without known scopes, is not scope-checked', async () => {
    const unknown = await setup(undefined)
    await unknown.client.forTarget({ kind: 'location', id: 'L1' }).POST('/contacts/', { body: { locationId: 'L1' } })
    assert.equal(unknown.server.hits.length, 1)
    const empty = await setup([])
    await empty.client.forTarget({ kind: 'location', id: 'L1' }).POST('/contacts/', { body: { locationId: 'L1' } })
    assert.equal(empty.server.hits.length, 1)
    // GET /locations/{locationId}/recurring-tasks/{id} lists no scope in the spec (and no override).
    const few = await setup(['contacts.readonly'])
    await few.client.forTarget({ kind: 'location', id: 'L1' }).GET('/locations/{locationId}/recurring-tasks/{id}', { params: { path: { locationId: 'L1', id: 't1' } } })
    assert.equal(few.server.hits.length, 1)
  })

  test('bodies are encoded as the operation declares: JSON, form, multipart', async () => {
    const { server, client } = await setup(undefined)
    const loc = client.forTarget({ kind: 'location', id: 'L1' })
    await loc.POST('/contacts/', { body: { locationId: 'L1', firstName: 'Ada' } })
    await client.forTarget({ kind: 'company', id: 'C1' }).POST('/oauth/locationToken', { body: { companyId: 'C1', locationId: 'L1' } })
    await loc.POST('/medias/upload-file', { body: { file: new Blob(['file bytes']), name: 'a.txt' } })
    const fd = new FormData() // Node's global FormData (not undici 7's): re-read part by part
    fd.append('file', new Blob(['more bytes']), 'b.txt')
    await loc.POST('/medias/upload-file', { body: fd })
    const [asJson, asForm, asMultipart, asFormData] = server.hits
    assert.equal(asJson!.headers['content-type'], 'application/json')
    assert.deepEqual(JSON.parse(asJson!.body), { locationId: 'L1', firstName: 'Ada' })
    assert.equal(asForm!.headers['content-type'], 'application/x-www-form-urlencoded')
    assert.equal(asForm!.body, 'companyId=C1&locationId=L1')
    assert.match(String(asMultipart!.headers['content-type']), /^multipart\/form-data; boundary=/)
    assert.match(asMultipart!.body, /name="file"[\s\S]*file bytes/)
    assert.match(asMultipart!.body, /name="name"\r\n\r\na\.txt/)
    assert.match(String(asFormData!.headers['content-type']), /^multipart\/form-data; boundary=/)
    assert.match(asFormData!.body, /name="file"; filename="b\.txt"[\s\S]*more bytes/)
  })

  test('validate mode warns on a mismatching answer and request, naming the operation and field, never the value', async () => {
    const answer = (hit: Hit, res: ServerResponse): void => {
      if (hit.url.startsWith('/contacts/bad')) json(res, 200, { contact: { id: 12345, dnd: 'sensitive-value-1' } })
      else if (hit.method === 'POST') json(res, 201, { contact: { id: 'c9' } })
      else json(res, 200, { contact: { id: 'c1', dnd: true } })
    }
    const captured = capturingLogger()
    const { client } = await setup(undefined, answer, { validate: true, logger: captured.logger })
    const loc = client.forTarget({ kind: 'location', id: 'L1' })

    await loc.GET('/contacts/{contactId}', { params: { path: { contactId: 'good' } } })
    assert.equal(captured.lines.filter((l) => l.level === 40).length, 0, 'a matching answer gives no warning')

    const bad = await loc.GET('/contacts/{contactId}', { params: { path: { contactId: 'bad' } } })
    assert.equal(bad.response.status, 200, 'a mismatch is reported, not refused')
    const answerWarning = captured.lines.find((l) => l.level === 40 && l.status === 200)
    assert.ok(answerWarning, 'the mismatching answer is reported')
    assert.equal(answerWarning.operationId, 'get-contact')
    assert.equal(answerWarning.operation, 'contacts.getContact')
    assert.deepEqual(answerWarning.problems.map((p: { field: string }) => p.field).sort(), ['/contact/dnd', '/contact/id'])

    await loc.POST('/contacts/', { body: { locationId: 'L1', firstName: 42 } as never })
    const requestWarning = captured.lines.find((l) => l.level === 40 && l.status === undefined)
    assert.ok(requestWarning, 'the mismatching request is reported')
    assert.equal(requestWarning.operationId, 'create-contact')
    assert.deepEqual(requestWarning.problems.map((p: { field: string }) => p.field), ['/body/firstName'])

    assert.ok(!captured.text().includes('sensitive-value-1'), 'values are never logged')
    assert.ok(!captured.text().includes('typed-test-token'), 'the token is never logged')

    // The same mismatch without validate mode: silence.
    const quiet = capturingLogger()
    const off = await setup(undefined, answer, { logger: quiet.logger })
    await off.client.forTarget({ kind: 'location', id: 'L1' }).GET('/contacts/{contactId}', { params: { path: { contactId: 'bad' } } })
    assert.equal(quiet.lines.filter((l) => l.level === 40).length, 0)
  })
})

test('through a connector: grants carry the installation\'s scopes from the vault, and validate is a connector option', async () => {
  const server = await recordingServer((hit, res) => json(res, 200, { contact: { id: 7 } }))
  const dir = mkdtempSync(join(tmpdir(), 'ghl-typed-'))
  const captured = capturingLogger()
  const ghl = await createConnector({
    background: false,
    validate: true,
    logger: captured.logger,
    config: loadConfig({
      env: {
        GHL_CLIENT_ID: 'typedapp00000000000000a-typed123',
        GHL_CLIENT_SECRET: 'typed-secret',
        GHL_REDIRECT_URI: 'http://127.0.0.1:1/oauth/callback',
        GHL_SCOPES: 'contacts.readonly',
        GHL_API_URL: server.url,
        GHL_ENCRYPTION_KEY: testKey(),
        DATABASE_URL: join(dir, 'typed.db'),
        GHL_RATE_LIMIT: 'false',
      },
    }),
  })
  try {
    await ghl.vault.installations.upsert({
      clientId: ghl.config.clientId, companyId: 'C1', locationId: 'L1', userType: 'Location', scopes: ['contacts.readonly'], source: 'oauth',
      tokens: { accessToken: 'vault-access-token', refreshToken: 'vault-refresh-token', expiresAt: new Date(Date.now() + 24 * 3600_000) },
    })
    const loc = ghl.location('L1')
    const got = await loc.GET('/contacts/{contactId}', { params: { path: { contactId: 'c1' } } })
    assert.equal(got.response.status, 200)
    const refused = await loc.contacts.createContact({ body: { locationId: 'L1' } }).catch((e: unknown) => e)
    assert.ok(refused instanceof ScopeMissingError, `expected ScopeMissingError, got ${String(refused)}`)
    assert.deepEqual(refused.granted, ['contacts.readonly'])
    assert.match(refused.message, /installation [0-9a-f-]{36} was not granted/)
    assert.equal(server.hits.length, 1)
    assert.ok(captured.lines.some((l) => l.level === 40 && l.operationId === 'get-contact' && l.problems[0].field === '/contact/id'), 'the mismatching answer is reported')
    assert.ok(!captured.text().includes('vault-access-token'), 'the token is never logged')
  } finally {
    await ghl.close()
    await server.close()
    rmSync(dir, { recursive: true, force: true })
  }
})
