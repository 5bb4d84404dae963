/**
 * App lifecycle end to end with the sandbox as HighLevel: real signed INSTALL/UNINSTALL webhooks POSTed
 * to a real HTTP server that hands the raw body to the receiver, the real install flow (code exchange),
 * the real token manager and a real SQLite vault.
 */
import { test, describe, before, after, beforeEach } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { loadConfig, type Config } from '../../src/config.js'
import { createVault } from '../../src/vault/create-vault.js'
import type { Installation, InstallationSummary, Vault } from '../../src/vault/types.js'
import { TokenService } from '../../src/tokens/token-service.js'
import { InstallFlow } from '../../src/oauth/install-flow.js'
import { NotInstalledError } from '../../src/errors.js'
import { WebhookReceiver } from '../../src/webhooks/webhook-receiver.js'
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js'
import type { SandboxStats } from '../../src/sandbox/index.js'
import { freshDatabase, testKey } from '../helpers/services.js'
import { openRaw } from '../vault/helpers.js'

interface World {
  sandbox: Sandbox
  server: Server
  vault: Vault
  tokens: TokenService
  receiver: WebhookReceiver
  config: Config
  databaseUrl: string
  /** Every status the receiver answered the sandbox with. */
  answers: number[]
  close(): Promise<void>
}

async function sandboxCall<T = unknown>(sandbox: Sandbox, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const res = await request(`${sandbox.url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.body.text()
  assert.ok(res.statusCode < 300, `${path} answered ${res.statusCode}: ${text}`)
  return JSON.parse(text) as T
}

async function startWorld(userType: 'Location' | 'Company'): Promise<World> {
  const sandbox = await startSandbox({ port: 0 })
  const db = await freshDatabase('sqlite')
  let receiver: WebhookReceiver | undefined
  const answers: number[] = []
  // The route: the raw bytes as received go to the receiver, its answer goes back as JSON.
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      void receiver!.receive({ rawBody: Buffer.concat(chunks), headers: req.headers }).then(({ status, body }) => {
        answers.push(status)
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
      })
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  sandbox.configureApp({ redirectUris: [`${base}/oauth/callback`], webhookUrl: `${base}/webhooks/highlevel` })
  const config = loadConfig({
    env: {
      GHL_CLIENT_ID: sandbox.app.clientId,
      GHL_CLIENT_SECRET: sandbox.app.clientSecret,
      GHL_REDIRECT_URI: `${base}/oauth/callback`,
      GHL_SCOPES: sandbox.app.scopes.join(' '),
      GHL_USER_TYPE: userType,
      GHL_API_URL: sandbox.url,
      GHL_MARKETPLACE_URL: sandbox.url,
      GHL_ENCRYPTION_KEY: testKey(),
      GHL_WEBHOOK_ED25519_PUBLIC_KEY: sandbox.publicKeys.ed25519,
      GHL_WEBHOOK_RSA_PUBLIC_KEY: sandbox.publicKeys.rsa,
      GHL_REFRESH_JITTER_MS: '0',
      GHL_TOKEN_TIMEOUT_MS: '3000',
      DATABASE_URL: db.url,
    },
  })
  const vault = await createVault({ databaseUrl: db.url, keys: config.encryptionKeys })
  // One attempt per mint: a fault injected at the sandbox fails the mint, and the receiver's retry is what recovers.
  const tokens = new TokenService({ config, vault, retry: { attempts: 1 } })
  receiver = new WebhookReceiver({ config, vault, tokens, retry: { intervalMs: 60_000, maxAttempts: 5 } })
  return {
    sandbox,
    server,
    vault,
    tokens,
    receiver,
    config,
    databaseUrl: db.url,
    answers,
    async close() {
      await receiver!.stop()
      await sandbox.close()
      server.close()
      await tokens.close()
      await vault.close()
      await db.cleanup()
    },
  }
}

/** Consent at the sandbox and the callback: the code exchange stores the installation, then the receiver is told. */
async function install(
  w: World,
  target: { locationId: string } | { companyId: string; locationIds?: string[]; installToFutureLocations?: boolean },
  webhookTiming: 'early' | 'after-exchange' | 'none',
  options: { notifyReceiver?: boolean } = {},
): Promise<Installation> {
  const flow = new InstallFlow({ config: w.config, vault: w.vault })
  const { state } = await flow.start()
  const { redirect } = await sandboxCall<{ redirect: string }>(w.sandbox, 'POST', '/_sandbox/authorize', {
    clientId: w.config.clientId,
    redirectUri: w.config.redirectUri,
    scope: w.config.scopes.join(' '),
    state,
    webhookTiming,
    ...target,
  })
  const url = new URL(redirect)
  const installation = await flow.complete(Object.fromEntries(url.searchParams))
  w.tokens.invalidate(installation.id)
  if (options.notifyReceiver ?? true) {
    const { tokens: _t, ...summary } = installation
    await w.receiver.onInstallationStored(summary as InstallationSummary)
  }
  return installation
}

/** Waits until the sandbox delivered every webhook, then until the receiver processed them. */
async function settle(w: World): Promise<void> {
  const deadline = Date.now() + 10_000
  for (;;) {
    const log = await sandboxCall<Array<{ status: string }>>(w.sandbox, 'GET', '/_sandbox/webhooks')
    if (!log.some((d) => d.status === 'pending')) break
    if (Date.now() > deadline) throw new Error('sandbox webhooks still pending')
    await new Promise((r) => setTimeout(r, 10))
  }
  await w.receiver.idle()
}

/**
 * Lifecycle events whose every field (timestamp, webhookId) the test chooses are signed here, with a key
 * of the test's own, and given
 * to a second receiver (same code, same vault and token manager) that trusts that key.
 */
const ownKey = generateKeyPairSync('ed25519')
async function sendSigned(w: World, receiver: WebhookReceiver, event: Record<string, unknown>): Promise<void> {
  // `timestamp`/`webhookId` default to now / a fresh id; a test may pass its own (e.g. an UNINSTALL sent earlier).
  const rawBody = Buffer.from(JSON.stringify({ timestamp: new Date().toISOString(), webhookId: randomUUID(), ...event }))
  const res = await receiver.receive({ rawBody, headers: { 'x-ghl-signature': sign(null, rawBody, ownKey.privateKey).toString('base64') } })
  assert.equal(res.status, 200, JSON.stringify(res.body))
  await receiver.idle()
}
function ownReceiver(w: World): WebhookReceiver {
  const config = { ...w.config, webhookEd25519PublicKeys: [ownKey.publicKey.export({ type: 'spki', format: 'pem' }).toString()] }
  return new WebhookReceiver({ config, vault: w.vault, tokens: w.tokens, retry: { intervalMs: 60_000, maxAttempts: 5 } })
}

const stats = (w: World): Promise<SandboxStats> => sandboxCall<SandboxStats>(w.sandbox, 'GET', '/_sandbox/stats')

describe('lifecycle: location install, UNINSTALL webhook, re-install', () => {
  let w: World
  before(async () => {
    w = await startWorld('Location')
  })
  after(() => w.close())

  test('INSTALL → nothing to mint; UNINSTALL → uninstalled, tokens wiped, NotInstalledError; re-install → works', async () => {
    const locationId = w.sandbox.companies[0]!.locations[0]!.locationId
    const installs: string[] = []
    w.receiver.on('INSTALL', (e) => void installs.push(e.locationId ?? e.companyId ?? '?'))
    const first = await install(w, { locationId }, 'after-exchange')
    await settle(w)
    assert.deepEqual(installs, [locationId], 'the INSTALL webhook reached subscribers once')
    assert.ok((await w.vault.audit.list(first.id)).some((a) => a.action === 'webhook.install.already_installed'))
    assert.equal((await stats(w)).locationToken.ok, 0, 'a location with its own OAuth install is not minted')
    const grant = await w.tokens.getAccessToken({ kind: 'location', id: locationId })
    assert.equal(grant.installationId, first.id)

    const uninstalled = await sandboxCall<{ webhookIds: string[] }>(w.sandbox, 'POST', '/_sandbox/uninstall', { locationId })
    assert.equal(uninstalled.webhookIds.length, 1)
    await settle(w)
    const row = await w.vault.installations.get(first.id)
    assert.equal(row?.status, 'uninstalled')
    assert.equal(row?.statusReason, 'UNINSTALL webhook')
    assert.equal(row?.tokens, null)
    assert.equal(row?.expiresAt, null)
    // No ciphertext left in the row itself.
    const raw = await openRaw('sqlite', w.databaseUrl)
    try {
      const [stored] = await raw.query<{ access_token: string | null; refresh_token: string | null }>(
        'select access_token, refresh_token from installations where id = ?',
        [first.id],
      )
      assert.deepEqual(stored, { access_token: null, refresh_token: null })
    } finally {
      await raw.close()
    }
    assert.ok((await w.vault.audit.list(first.id)).some((a) => a.action === 'webhook.uninstall'))
    await assert.rejects(w.tokens.getAccessToken({ kind: 'location', id: locationId }), NotInstalledError)

    // A redelivery of the same UNINSTALL is acknowledged as a duplicate and changes nothing.
    const version = await w.vault.installations.getVersion(first.id)
    const redelivered = await sandboxCall<{ responseStatus: number }>(w.sandbox, 'POST', '/_sandbox/webhooks/redeliver', { webhookId: uninstalled.webhookIds[0] })
    assert.equal(redelivered.responseStatus, 200)
    await w.receiver.idle()
    assert.equal(await w.vault.installations.getVersion(first.id), version)

    const again = await install(w, { locationId }, 'after-exchange')
    await settle(w)
    assert.equal(again.id, first.id, 're-install reuses the row')
    const fresh = await w.vault.installations.get(first.id)
    assert.equal(fresh?.status, 'active')
    assert.equal(fresh?.statusReason, null)
    assert.ok(fresh?.tokens?.accessToken)
    const grant2 = await w.tokens.getAccessToken({ kind: 'location', id: locationId })
    assert.notEqual(grant2.accessToken, grant.accessToken)
    assert.ok(w.answers.every((s) => s === 200), `answers: ${w.answers.join(',')}`)
  })

  test('INSTALL sent early (before the code exchange) waits, and completes on onInstallationStored', async () => {
    const locationId = w.sandbox.companies[0]!.locations[1]!.locationId
    const seen: string[] = []
    w.receiver.on('INSTALL', (e) => void seen.push(e.webhookId))
    const flow = new InstallFlow({ config: w.config, vault: w.vault })
    const { state } = await flow.start()
    // 'early': the sandbox delivers the INSTALL webhook before answering the consent.
    const { redirect } = await sandboxCall<{ redirect: string }>(w.sandbox, 'POST', '/_sandbox/authorize', {
      clientId: w.config.clientId,
      redirectUri: w.config.redirectUri,
      scope: w.config.scopes.join(' '),
      state,
      locationId,
      webhookTiming: 'early',
    })
    await w.receiver.idle()
    const waiting = await w.vault.webhooks.list({ status: 'waiting', locationId })
    assert.equal(waiting.length, 1, 'the early INSTALL waits for the exchange')
    assert.equal(seen.length, 0, 'a waiting INSTALL is not dispatched yet')
    assert.equal((await w.vault.webhooks.list({ status: 'failed', limit: 1000 })).length, 0, 'waiting is not failed')

    const installation = await flow.complete(Object.fromEntries(new URL(redirect).searchParams))
    const { tokens: _t, ...summary } = installation
    await w.receiver.onInstallationStored(summary as InstallationSummary)
    await w.receiver.idle()
    assert.equal((await w.vault.webhooks.list({ status: 'waiting', locationId })).length, 0)
    assert.ok((await w.vault.webhooks.list({ status: 'processed', locationId, limit: 1000 })).some((r) => r.webhookId === waiting[0]!.webhookId))
    assert.deepEqual(seen, [waiting[0]!.webhookId])
    assert.equal((await w.tokens.getAccessToken({ kind: 'location', id: locationId })).installationId, installation.id)
  })

  test('an INSTALL subscriber that throws once: the event is failed, then retried and processed', async () => {
    const locationId = w.sandbox.companies[0]!.locations[2]!.locationId
    let calls = 0
    const off = w.receiver.on('INSTALL', () => {
      calls++
      if (calls === 1) throw new Error('subscriber down')
    })
    await install(w, { locationId }, 'after-exchange')
    await settle(w)
    const failed = await w.vault.webhooks.list({ status: 'failed', locationId })
    assert.equal(failed.length, 1)
    assert.equal(failed[0]!.lastError, 'subscriber down')
    await w.receiver.runMaintenance()
    await w.receiver.idle()
    off()
    assert.equal(calls, 2)
    assert.equal((await w.vault.webhooks.list({ status: 'failed', locationId })).length, 0)
    assert.equal((await w.vault.webhooks.list({ status: 'processed', locationId })).length, 1)
  })
})

describe('lifecycle: agency (bulk) install', () => {
  let w: World
  beforeEach(async () => {
    w = await startWorld('Company')
  })
  const done = async (): Promise<void> => w.close()

  test('agency INSTALL mints a token for every approved location, each exactly once; agency UNINSTALL wipes them all', async () => {
    try {
      const company = w.sandbox.companies[0]!
      const agency = await install(w, { companyId: company.companyId }, 'after-exchange')
      await settle(w)
      const minted = await w.vault.installations.list({ parentId: agency.id })
      assert.deepEqual(minted.map((m) => m.locationId).sort(), company.locations.map((l) => l.locationId).sort())
      assert.ok(minted.every((m) => m.status === 'active' && m.source === 'agency'))
      const s = await stats(w)
      assert.equal(s.locationToken.ok, company.locations.length, 'each location minted exactly once')
      assert.equal(s.locationToken.error, 0)
      for (const l of company.locations) {
        const grant = await w.tokens.getAccessToken({ kind: 'location', id: l.locationId })
        assert.equal(grant.resourceId, l.locationId)
      }
      assert.equal((await stats(w)).locationToken.ok, company.locations.length, 'using them mints nothing more')

      await sandboxCall(w.sandbox, 'POST', '/_sandbox/uninstall', { companyId: company.companyId })
      await settle(w)
      for (const row of [await w.vault.installations.get(agency.id), ...(await Promise.all(minted.map((m) => w.vault.installations.get(m.id))))]) {
        assert.equal(row?.status, 'uninstalled')
        assert.equal(row?.tokens, null)
      }
      await assert.rejects(w.tokens.getAccessToken({ kind: 'company', id: company.companyId }), NotInstalledError)
      await assert.rejects(w.tokens.getAccessToken({ kind: 'location', id: company.locations[0]!.locationId }), NotInstalledError)
    } finally {
      await done()
    }
  })

  test('agency INSTALL sent early waits; after the exchange and onInstallationStored every location is minted once', async () => {
    try {
      const company = w.sandbox.companies[0]!
      const flow = new InstallFlow({ config: w.config, vault: w.vault })
      const { state } = await flow.start()
      const { redirect } = await sandboxCall<{ redirect: string }>(w.sandbox, 'POST', '/_sandbox/authorize', {
        clientId: w.config.clientId,
        redirectUri: w.config.redirectUri,
        scope: w.config.scopes.join(' '),
        state,
        companyId: company.companyId,
        installToFutureLocations: true,
        webhookTiming: 'early',
      })
      await w.receiver.idle()
      const waiting = await w.vault.webhooks.list({ status: 'waiting', limit: 1000 })
      assert.equal(waiting.length, 1 + company.locations.length, 'the agency INSTALL and one per location wait')
      assert.equal((await stats(w)).locationToken.ok, 0)

      const agency = await flow.complete(Object.fromEntries(new URL(redirect).searchParams))
      assert.equal(agency.installToFutureLocations, true)
      const { tokens: _t, ...summary } = agency
      await w.receiver.onInstallationStored(summary as InstallationSummary)
      await w.receiver.idle()
      assert.equal((await w.vault.webhooks.list({ status: 'waiting', limit: 1000 })).length, 0)
      assert.equal((await w.vault.webhooks.list({ status: 'processed', limit: 1000 })).length, 1 + company.locations.length)
      const minted = await w.vault.installations.list({ parentId: agency.id, status: 'active' })
      assert.equal(minted.length, company.locations.length)
      assert.equal(minted.filter((r) => r.expiresAt !== null).length, company.locations.length, 'each holds a token now')
      assert.equal((await stats(w)).locationToken.ok, company.locations.length, 'each location minted exactly once')
    } finally {
      await done()
    }
  })

  test('with the consent\'s own webhooks (agency + one per location at once) and two failing mints: retried, each location minted once', async () => {
    try {
      const company = w.sandbox.companies[0]!
      await sandboxCall(w.sandbox, 'POST', '/_sandbox/faults', { endpoint: 'locationToken', kind: 'error500', count: 2 })
      const agency = await install(w, { companyId: company.companyId }, 'after-exchange')
      await settle(w)
      // Whichever events owned the failing mints are failed (which ones depends on arrival order).
      assert.ok((await w.vault.webhooks.list({ status: 'failed', limit: 1000 })).length >= 1)
      await w.receiver.runMaintenance()
      await w.receiver.idle()
      assert.equal((await w.vault.webhooks.list({ status: 'failed', limit: 1000 })).length, 0)
      assert.equal((await w.vault.webhooks.list({ status: 'processed', limit: 1000 })).length, 1 + company.locations.length)
      assert.equal((await w.vault.installations.list({ parentId: agency.id, status: 'active' })).length, company.locations.length)
      const s = await stats(w)
      assert.equal(s.locationToken.ok, company.locations.length, 'each location minted exactly once')
      assert.equal(s.faults.locationToken, 2)
    } finally {
      await done()
    }
  })

  test('mints that fail (HighLevel 500) fail the event, never block the other locations; the retry mints only what is missing', async () => {
    try {
      const company = w.sandbox.companies[0]!
      // No webhooks from the consent: the one agency INSTALL below is the only thing that mints.
      const agency = await install(w, { companyId: company.companyId }, 'none')
      await sandboxCall(w.sandbox, 'POST', '/_sandbox/faults', { endpoint: 'locationToken', kind: 'error500', count: 2 })
      const receiver = ownReceiver(w)
      await sendSigned(w, receiver, { type: 'INSTALL', appId: w.config.appId, companyId: company.companyId })
      const afterFirst = await w.vault.installations.list({ parentId: agency.id, status: 'active' })
      // Every location is recorded as covered by the agency; only the one whose mint succeeded holds a token.
      assert.equal(afterFirst.length, company.locations.length, 'every listed location is covered')
      assert.equal(afterFirst.filter((r) => r.expiresAt !== null).length, company.locations.length - 2, 'the location whose mint succeeded is installed')
      const failed = await w.vault.webhooks.list({ status: 'failed', limit: 1000 })
      assert.equal(failed.length, 1)
      assert.equal(failed[0]!.attempts, 1)
      assert.match(failed[0]!.lastError ?? '', /failed for 2 of 3 locations/)
      await receiver.runMaintenance()
      await receiver.idle()
      assert.equal((await w.vault.webhooks.list({ status: 'failed', limit: 1000 })).length, 0)
      assert.equal((await w.vault.webhooks.list({ status: 'processed', limit: 1000 }))[0]?.attempts, 1)
      const minted = await w.vault.installations.list({ parentId: agency.id, status: 'active' })
      assert.equal(minted.length, company.locations.length)
      assert.equal(minted.filter((r) => r.expiresAt !== null).length, company.locations.length, 'each holds a token now')
      const s = await stats(w)
      assert.equal(s.locationToken.ok, company.locations.length, 'each location minted exactly once')
      assert.equal(s.faults.locationToken, 2)
    } finally {
      await done()
    }
  })

  test('a location INSTALL for a future location mints from the agency — with or without companyId (AppInstall.md)', async () => {
    try {
      const company = w.sandbox.companies[0]!
      const [a, b] = company.locations
      const agency = await install(w, { companyId: company.companyId, locationIds: [], installToFutureLocations: true }, 'none')
      assert.equal((await stats(w)).locationToken.ok, 0)
      const receiver = ownReceiver(w)
      await sendSigned(w, receiver, { type: 'INSTALL', appId: w.config.appId, locationId: a!.locationId, companyId: company.companyId })
      assert.equal((await w.vault.installations.findByLocation(w.config.clientId, a!.locationId))?.parentId, agency.id)
      assert.equal((await stats(w)).locationToken.ok, 1)
      // "In case of app installation via future locations, you may not get these fields": no companyId.
      await sendSigned(w, receiver, { type: 'INSTALL', appId: w.config.appId, locationId: b!.locationId })
      const row = await w.vault.installations.findByLocation(w.config.clientId, b!.locationId)
      assert.equal(row?.status, 'active')
      assert.equal(row?.parentId, agency.id)
      assert.equal((await stats(w)).locationToken.ok, 2, 'only the two announced locations were minted')
    } finally {
      await done()
    }
  })
})

/** Waits until the clock has moved past `ms` (so rows written from now on are strictly later). */
async function waitPast(ms: number): Promise<void> {
  while (Date.now() <= ms) await new Promise((r) => setTimeout(r, 1))
}

describe('lifecycle: a late UNINSTALL never wipes a newer (re-)install', () => {
  test('UNINSTALL retried after a failure, once the user has re-installed: skipped, the re-install keeps working', async () => {
    const w = await startWorld('Location')
    try {
      const locationId = w.sandbox.companies[0]!.locations[0]!.locationId
      const first = await install(w, { locationId }, 'after-exchange')
      await settle(w)
      // The UNINSTALL wipes, then a subscriber fails: the event is failed and will be retried.
      let calls = 0
      w.receiver.on('UNINSTALL', () => {
        calls++
        if (calls === 1) throw new Error('subscriber down')
      })
      const { webhookIds } = await sandboxCall<{ webhookIds: string[] }>(w.sandbox, 'POST', '/_sandbox/uninstall', { locationId })
      await settle(w)
      assert.equal((await w.vault.webhooks.list({ status: 'failed', locationId }))[0]?.webhookId, webhookIds[0])
      assert.equal((await w.vault.installations.get(first.id))?.status, 'uninstalled')

      // The user installs again before the retry.
      const [failedEvent] = await w.vault.webhooks.list({ status: 'failed', locationId })
      await waitPast(Date.parse(String((failedEvent!.payload as { timestamp: string }).timestamp)))
      const again = await install(w, { locationId }, 'after-exchange')
      await settle(w)
      const before = await w.vault.installations.get(first.id)
      assert.equal(before?.status, 'active')

      await w.receiver.runMaintenance()
      await w.receiver.idle()
      assert.equal(calls, 2, 'the retried UNINSTALL was processed')
      assert.equal((await w.vault.webhooks.list({ status: 'failed', locationId })).length, 0)
      assert.ok((await w.vault.webhooks.list({ status: 'processed', locationId, limit: 1000 })).some((r) => r.webhookId === webhookIds[0]))
      const row = await w.vault.installations.get(first.id)
      assert.equal(row?.status, 'active')
      assert.equal(row?.version, before?.version, 'the retried UNINSTALL changed nothing')
      assert.equal(row?.tokens?.accessToken, again.tokens?.accessToken)
      assert.equal((await w.tokens.getAccessToken({ kind: 'location', id: locationId })).installationId, first.id)
      const skipped = (await w.vault.audit.list(first.id)).filter((a) => a.action === 'webhook.uninstall.skipped')
      assert.equal(skipped.length, 1)
      assert.equal(skipped[0]!.detail.webhookId, webhookIds[0])
      assert.match(String(skipped[0]!.detail.reason), /after the UNINSTALL event was sent/)
    } finally {
      await w.close()
    }
  })

  test('location: an UNINSTALL sent before the re-install and delivered after it is skipped; a current one still wipes', async () => {
    const w = await startWorld('Location')
    try {
      const locationId = w.sandbox.companies[0]!.locations[1]!.locationId
      const first = await install(w, { locationId }, 'none')
      const uninstalledAt = Date.now()
      await waitPast(uninstalledAt)
      const again = await install(w, { locationId }, 'none')
      assert.equal(again.id, first.id)
      const before = await w.vault.installations.get(first.id)
      assert.ok(before!.updatedAt.getTime() > uninstalledAt)

      const receiver = ownReceiver(w)
      const late = randomUUID()
      await sendSigned(w, receiver, { type: 'UNINSTALL', appId: w.config.appId, locationId, timestamp: new Date(uninstalledAt).toISOString(), webhookId: late })
      const kept = await w.vault.installations.get(first.id)
      assert.equal(kept?.status, 'active')
      assert.equal(kept?.version, before?.version)
      assert.equal(kept?.tokens?.accessToken, again.tokens?.accessToken)
      assert.equal(kept?.tokens?.refreshToken, again.tokens?.refreshToken)
      assert.equal((await w.vault.webhooks.list({ status: 'processed', locationId, limit: 1000 })).find((r) => r.webhookId === late)?.attempts, 0)
      assert.ok((await w.vault.audit.list(first.id)).some((a) => a.action === 'webhook.uninstall.skipped' && a.detail.webhookId === late))
      assert.ok(!(await w.vault.audit.list(first.id)).some((a) => a.action === 'webhook.uninstall'))

      // An UNINSTALL sent now (after the last install) wipes as always.
      await sendSigned(w, receiver, { type: 'UNINSTALL', appId: w.config.appId, locationId })
      const wiped = await w.vault.installations.get(first.id)
      assert.equal(wiped?.status, 'uninstalled')
      assert.equal(wiped?.tokens, null)
      await assert.rejects(w.tokens.getAccessToken({ kind: 'location', id: locationId }), NotInstalledError)
    } finally {
      await w.close()
    }
  })

  test('agency: a late UNINSTALL keeps the re-installed agency and its minted locations; a current one wipes them all', async () => {
    const w = await startWorld('Company')
    try {
      const company = w.sandbox.companies[0]!
      const agency = await install(w, { companyId: company.companyId }, 'after-exchange')
      await settle(w)
      const minted = await w.vault.installations.list({ parentId: agency.id, status: 'active' })
      assert.equal(minted.length, company.locations.length)
      assert.equal(minted.filter((r) => r.expiresAt !== null).length, company.locations.length, 'each holds a token now')
      const uninstalledAt = Date.now()
      await waitPast(uninstalledAt)
      // The re-install rewrites the agency row only; the minted locations keep their (older) rows.
      const again = await install(w, { companyId: company.companyId }, 'none')
      assert.equal(again.id, agency.id)
      const versions = new Map((await w.vault.installations.list({ clientId: w.config.clientId })).map((r) => [r.id, r.version]))

      const receiver = ownReceiver(w)
      await sendSigned(w, receiver, { type: 'UNINSTALL', appId: w.config.appId, companyId: company.companyId, timestamp: new Date(uninstalledAt).toISOString() })
      const agencyRow = await w.vault.installations.get(agency.id)
      assert.equal(agencyRow?.status, 'active')
      assert.equal(agencyRow?.tokens?.accessToken, again.tokens?.accessToken)
      for (const m of minted) {
        const row = await w.vault.installations.get(m.id)
        assert.ok(row!.updatedAt.getTime() <= uninstalledAt, 'the child itself is older than the event')
        assert.equal(row?.status, 'active', 'a skipped agency UNINSTALL keeps its children')
        assert.ok(row?.tokens?.accessToken)
      }
      for (const [id, version] of versions) assert.equal(await w.vault.installations.getVersion(id), version, `row ${id} unchanged`)
      assert.ok((await w.vault.audit.list(agency.id)).some((a) => a.action === 'webhook.uninstall.skipped'))
      assert.equal((await w.tokens.getAccessToken({ kind: 'location', id: company.locations[0]!.locationId })).installationId, minted.find((m) => m.locationId === company.locations[0]!.locationId)!.id)

      await sendSigned(w, receiver, { type: 'UNINSTALL', appId: w.config.appId, companyId: company.companyId })
      for (const row of [await w.vault.installations.get(agency.id), ...(await Promise.all(minted.map((m) => w.vault.installations.get(m.id))))]) {
        assert.equal(row?.status, 'uninstalled')
        assert.equal(row?.tokens, null)
      }
      await assert.rejects(w.tokens.getAccessToken({ kind: 'company', id: company.companyId }), NotInstalledError)
      await assert.rejects(w.tokens.getAccessToken({ kind: 'location', id: company.locations[0]!.locationId }), NotInstalledError)
    } finally {
      await w.close()
    }
  })
})
