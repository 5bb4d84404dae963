/**
 * The operator commands (`installations`, `call`, `refresh`, `webhooks`) run as real processes on the
 * SQLite file of a running connector, with the sandbox as HighLevel: a sub-account installed through
 * the HTTP install flow, an agency installed through the library, webhooks delivered by the sandbox.
 * No command may print a token the sandbox issued.
 */
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import { loadConfig } from '../../src/config.js'
import { createConnector, type Connector } from '../../src/connector.js'
import type { InstallationSummary } from '../../src/vault/types.js'
import { installViaHttp, sandboxJson, startStack, type Stack } from '../helpers/stack.js'
import { tempDir } from '../helpers/services.js'
import { appEnv, parseJson, runCli, transcript } from './run-cli.js'

describe('operator commands on a running connector\'s database', () => {
  let stack: Stack
  let agencyConnector: Connector
  let env: Record<string, string>
  let cwd: ReturnType<typeof tempDir>
  const FORWARD_SECRET = `whsec_${Buffer.alloc(32, 9).toString('base64')}`
  /** The app's own endpoint (GHL_WEBHOOK_FORWARD_URL): answers `forwardStatus`, records what reached it. */
  let forward: Server
  let forwardStatus = 200
  const forwarded: { webhookId: string; status: number }[] = []
  let company: Stack['sandbox']['companies'][number]
  let ownLocation: string
  let mintedLocation: string
  const cli = (...args: string[]) => runCli(args, { env, cwd: cwd.path })

  before(async () => {
    forward = createServer((req, res) => {
      req.resume()
      req.once('end', () => {
        forwarded.push({ webhookId: String(req.headers['x-ghl-connect-webhook-id']), status: forwardStatus })
        res.writeHead(forwardStatus).end()
      })
    })
    forward.listen(0, '127.0.0.1')
    await once(forward, 'listening')
    const forwardUrl = `http://127.0.0.1:${(forward.address() as { port: number }).port}/events`

    stack = await startStack({ env: { GHL_WEBHOOK_FORWARD_URL: forwardUrl, GHL_WEBHOOK_FORWARD_SECRET: FORWARD_SECRET } })
    company = stack.sandbox.companies[0]!
    ownLocation = company.locations[0]!.locationId
    mintedLocation = company.locations[1]!.locationId
    const key = stack.config.encryptionKeys[0]!.key.toString('base64')
    env = { ...appEnv(stack.sandbox, stack.config, stack.databaseUrl, key), GHL_WEBHOOK_FORWARD_URL: forwardUrl, GHL_WEBHOOK_FORWARD_SECRET: FORWARD_SECRET }
    cwd = tempDir()

    // A sub-account's own installation, through the connector's HTTP install flow.
    const installed = await installViaHttp(stack, { locationId: ownLocation, webhookTiming: 'early' })
    assert.equal(installed.status, 200, installed.html)
    // The agency's, through the library (a Company app config on the same database and sandbox).
    agencyConnector = await createConnector({
      config: loadConfig({ env: { ...env, GHL_USER_TYPE: 'Company' } }),
      background: false,
    })
    const { url } = await agencyConnector.startInstall()
    const authorize = new URL(url)
    const consent = await sandboxJson<{ redirect: string }>(stack.sandbox, 'POST', '/_sandbox/authorize', {
      clientId: authorize.searchParams.get('client_id'),
      redirectUri: authorize.searchParams.get('redirect_uri'),
      scope: authorize.searchParams.get('scope'),
      state: authorize.searchParams.get('state'),
      companyId: company.companyId,
      locationIds: [mintedLocation],
      webhookTiming: 'none',
    })
    await agencyConnector.completeInstall(Object.fromEntries(new URL(consent.redirect).searchParams))
    await stack.connector.webhooks.idle()
  })

  after(async () => {
    await agencyConnector?.close()
    await stack?.close()
    forward?.close()
    cwd?.remove()
  })

  test('call: a location with its own installation, JSON body on stdout and "HTTP 200" on stderr', async () => {
    const r = await cli('call', ownLocation, 'GET', '/contacts/', '--query', `locationId=${ownLocation}`, '--query', 'limit=2')
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stderr, /^HTTP 200/)
    const body = parseJson<{ contacts: { locationId: string }[] }>(r)
    assert.equal(body.contacts.length, 2, 'the limit query parameter reached HighLevel')
    assert.ok(body.contacts.every((c) => c.locationId === ownLocation))
  })

  test('call: POST with --body creates a contact that a later GET finds', async () => {
    const email = `cli-${Date.now()}@example.com`
    const created = await cli('call', ownLocation, 'post', '/contacts/', '--body', JSON.stringify({ locationId: ownLocation, email }))
    assert.equal(created.code, 0, created.stderr)
    assert.match(created.stderr, /^HTTP 20[01]/)
    const list = await cli('call', ownLocation, 'GET', '/contacts/', '--query', `locationId=${ownLocation}`, '--query', `query=${email}`)
    assert.equal(list.code, 0, list.stderr)
    assert.deepEqual(parseJson<{ contacts: { email: string }[] }>(list).contacts.map((c) => c.email), [email])
  })

  test('call: a location under the agency gets a minted token; --company calls with the agency token', async () => {
    const before = await sandboxJson<{ locationToken: { ok: number } }>(stack.sandbox, 'GET', '/_sandbox/stats')
    const r = await cli('call', mintedLocation, 'GET', '/contacts/', '--query', `locationId=${mintedLocation}`)
    assert.equal(r.code, 0, r.stderr)
    assert.ok(parseJson<{ contacts: unknown[] }>(r).contacts.length > 0)
    const afterStats = await sandboxJson<{ locationToken: { ok: number } }>(stack.sandbox, 'GET', '/_sandbox/stats')
    assert.equal(afterStats.locationToken.ok - before.locationToken.ok, 1, 'one location token minted')

    const c = await cli('call', company.companyId, 'GET', '/oauth/installedLocations', '--company', '--query', `companyId=${company.companyId}`, '--query', `appId=${stack.config.appId}`)
    assert.equal(c.code, 0, c.stderr)
    assert.deepEqual(parseJson<{ locations: { _id: string }[] }>(c).locations.map((l) => l._id).sort(), company.locations.map((l) => l.locationId).sort())
  })

  test('call: HighLevel errors print the error code, message and HighLevel\'s body; a location without installation says so', async () => {
    const missing = await cli('call', ownLocation, 'GET', '/contacts/no-such-contact')
    assert.equal(missing.code, 1)
    assert.match(missing.stderr, /HTTP 400/)
    assert.match(missing.stderr, /GHL_API_ERROR: /)
    assert.match(parseJson<{ message: string }>(missing).message, /Contact not found/)

    const foreign = await cli('call', 'LocNobodyInstalled', 'GET', '/contacts/', '--query', 'locationId=LocNobodyInstalled')
    assert.equal(foreign.code, 1)
    assert.match(foreign.stderr, /^GHL_NOT_INSTALLED: /m)
  })

  test('installations: a table with every kind, --json, --kind and --status filters, show by id and by location id', async () => {
    const rows = await stack.connector.installations()
    const kinds = (i: InstallationSummary) => (i.userType === 'Company' ? 'agency' : i.source === 'agency' ? 'minted' : 'sub-account')
    assert.deepEqual(rows.map(kinds).sort(), ['agency', 'minted', 'sub-account'], 'the setup made one of each')

    const list = await cli('installations')
    assert.equal(list.code, 0, list.stderr)
    const lines = list.stdout.split('\n')
    assert.match(lines[0]!, /^ID\s+KIND\s+LOCATION\s+COMPANY\s+STATUS\s+TOKEN EXPIRES\s+UPDATED$/)
    for (const row of rows) {
      const line = lines.find((l) => l.startsWith(row.id))
      assert.ok(line, `row ${row.id} is listed`)
      assert.match(line!, new RegExp(`^${row.id}\\s+${kinds(row)}\\s+${row.locationId ?? '—'}\\s+${row.companyId}\\s+active\\s+in \\d+ h`))
    }
    assert.match(list.stdout, /3 installations\./)

    const json = parseJson<InstallationSummary[]>(await cli('installations', 'list', '--json'))
    assert.deepEqual(json.map((i) => i.id).sort(), rows.map((i) => i.id).sort())
    for (const i of json) assert.deepEqual(Object.keys(i).sort(), Object.keys(rows[0]!).sort(), 'the summary fields, nothing more (no tokens)')

    const minted = parseJson<InstallationSummary[]>(await cli('installations', '--kind', 'minted', '--json'))
    assert.deepEqual(minted.map((i) => i.locationId), [mintedLocation])
    assert.deepEqual(parseJson(await cli('installations', '--status', 'uninstalled', '--json')), [])
    assert.match((await cli('installations', '--status', 'uninstalled')).stdout, /^No installations\.$/m)

    const own = rows.find((i) => i.locationId === ownLocation)!
    const show = await cli('installations', 'show', own.id)
    assert.equal(show.code, 0, show.stderr)
    assert.match(show.stdout, new RegExp(`^id\\s+${own.id}$`, 'm'))
    assert.match(show.stdout, /^kind\s+sub-account$/m)
    assert.match(show.stdout, new RegExp(`^scopes\\s+${own.scopes.join(' ')}$`, 'm'))
    const byLocation = parseJson<InstallationSummary>(await cli('installations', 'show', ownLocation, '--json'))
    assert.equal(byLocation.id, own.id)
    assert.equal(byLocation.version, own.version)

    const unknown = await cli('installations', 'show', 'no-such-installation')
    assert.equal(unknown.code, 1)
    assert.match(unknown.stderr, /GHL_NOT_INSTALLED: No installation with id, location id or company id "no-such-installation"/)
  })

  test('refresh: one refresh at HighLevel, a new version and expiry in the vault, the expiry printed', async () => {
    const own = (await stack.connector.installations()).find((i) => i.locationId === ownLocation)!
    const before = await sandboxJson<{ token: { refresh_token: { ok: number } } }>(stack.sandbox, 'GET', '/_sandbox/stats')
    const r = await cli('refresh', own.id)
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, new RegExp(`^Refreshed installation ${own.id} \\(sub-account, location ${ownLocation}\\): the access token expires in \\d+ h\\.$`, 'm'))
    const afterStats = await sandboxJson<{ token: { refresh_token: { ok: number } } }>(stack.sandbox, 'GET', '/_sandbox/stats')
    assert.equal(afterStats.token.refresh_token.ok - before.token.refresh_token.ok, 1, 'exactly one refresh')
    const now = (await stack.connector.installations()).find((i) => i.id === own.id)!
    assert.ok(now.version > own.version, 'the rotated tokens were stored')

    const nope = await cli('refresh', 'no-such-installation')
    assert.equal(nope.code, 1)
    assert.match(nope.stderr, /GHL_NOT_INSTALLED/)
  })

  test('webhooks: a failed event is listed, replayed to the app, and then listed processed; a processed one can be replayed again', async () => {
    forwardStatus = 500
    const sent = await sandboxJson<{ webhookId: string }>(stack.sandbox, 'POST', '/_sandbox/webhooks/send', {
      type: 'ContactCreate',
      locationId: ownLocation,
      id: 'contact-from-webhook',
    })
    await stack.connector.webhooks.idle()
    assert.deepEqual(forwarded.filter((f) => f.webhookId === sent.webhookId), [{ webhookId: sent.webhookId, status: 500 }], 'the server tried once and failed')

    const failed = parseJson<{ webhookId: string; status: string; attempts: number; lastError: string }[]>(await cli('webhooks', '--status', 'failed', '--json'))
    // (The sandbox also sends webhooks for the contacts created by earlier calls: look at this one.)
    const ours = failed.filter((e) => e.webhookId === sent.webhookId)
    assert.deepEqual(ours.map((e) => [e.webhookId, e.status, e.attempts]), [[sent.webhookId, 'failed', 1]])
    assert.match(ours[0]!.lastError, /answered 500/)

    const table = await cli('webhooks')
    assert.equal(table.code, 0, table.stderr)
    assert.match(table.stdout, /^WEBHOOK ID\s+TYPE\s+STATUS\s+ATTEMPTS\s+RECEIVED\s+LOCATION\s+COMPANY\s+LAST ERROR$/m)
    assert.match(table.stdout, new RegExp(`^${sent.webhookId}\\s+ContactCreate\\s+failed\\s+1\\s+.*answered 500`, 'm'))
    assert.match(table.stdout, /^\S+\s+INSTALL\s+processed\s+0\s/m, 'the INSTALL event of the sub-account install is there too')

    forwardStatus = 200
    const replay = await cli('webhooks', 'replay', sent.webhookId)
    assert.equal(replay.code, 0, replay.stderr)
    assert.equal(replay.stdout, `Replayed ${sent.webhookId} (ContactCreate): processed.\n`)
    assert.deepEqual(forwarded.filter((f) => f.webhookId === sent.webhookId).map((f) => f.status), [500, 200], 'the replay reached the app once')
    const processed = parseJson<{ webhookId: string }[]>(await cli('webhooks', 'list', '--status', 'processed', '--json'))
    assert.ok(processed.some((e) => e.webhookId === sent.webhookId))

    const again = await cli('webhooks', 'replay', sent.webhookId)
    assert.equal(again.code, 0, again.stderr)
    assert.deepEqual(forwarded.filter((f) => f.webhookId === sent.webhookId).map((f) => f.status), [500, 200, 200], 'replayed whatever its status')

    forwardStatus = 503
    const failing = await cli('webhooks', 'replay', sent.webhookId)
    assert.equal(failing.code, 1)
    assert.match(failing.stderr, new RegExp(`Replayed ${sent.webhookId} \\(ContactCreate\\): failed \\(attempt \\d+\\): .*answered 503`))

    const unknown = await cli('webhooks', 'replay', 'no-such-webhook')
    assert.equal(unknown.code, 1)
    assert.match(unknown.stderr, /No stored webhook event with id "no-such-webhook"/)
  })

  test('no command printed a token the sandbox issued', async () => {
    const tokens = await sandboxJson<{ type: string; value: string }[]>(stack.sandbox, 'GET', '/_sandbox/tokens')
    const secrets = tokens.filter((t) => t.type === 'access' || t.type === 'refresh').map((t) => t.value)
    assert.ok(secrets.length >= 5, `the runs above used several tokens (${secrets.length})`)
    assert.ok(transcript.length >= 30, 'the outputs of every run were collected')
    const all = transcript.join('\n')
    for (const secret of [...secrets, stack.sandbox.app.clientSecret, env.GHL_ENCRYPTION_KEY!]) {
      assert.ok(!all.includes(secret), 'a secret appears in the output of a command')
    }
  })
})
