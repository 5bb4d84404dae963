/**
 * SIGTERM in the middle of a refresh storm, per dialect: 3 `ghl-connect serve` processes on one
 * database, 300 calls through their proxies with expired tokens, and SIGTERM to every process at the
 * worst moment — HighLevel has answered a refresh (the grant is rotated) and the answer is still on its
 * way (the sandbox is reached through a relay that delays its answers). Each server must stop taking
 * requests, let the refreshes in flight store their rows, answer the calls under way, close the vault
 * and exit 0: 0 grants lost, 0 Reconnects.
 */
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js'
import { createVault } from '../../src/vault/create-vault.js'
import { parseKeys } from '../../src/config.js'
import type { Vault } from '../../src/vault/types.js'
import { DIALECTS, dialectSkipReason, freshDatabase, testKey } from '../helpers/services.js'
import { connectorEnv, startServe, exitWithin, type ServeProcess } from '../helpers/serve-process.js'
import { approveAt, freePort, sandboxJson } from '../helpers/stack.js'
import { TcpRelay } from '../helpers/tcp-relay.js'
import { recordFigures, Tally } from './figures.js'
import { assertCleanOutput } from './checks.js'
import type { SandboxStatsLite } from './deployment.js'

const PROCESSES = 3
const CALLS = 300
/** How late HighLevel's answers arrive (the window in which SIGTERM lands). */
const DELAY_MS = 1500

for (const dialect of DIALECTS) {
  describe(`SIGTERM mid-storm (${dialect})`, { skip: await dialectSkipReason(dialect) }, () => {
    let sandbox: Sandbox
    let relay: TcpRelay
    let vault: Vault
    let cleanup: (() => Promise<void>) | undefined
    const servers: ServeProcess[] = []
    let shutdown: { exits: Array<number | string>; calls: Tally; stderr: string[] } | undefined
    after(async () => {
      for (const s of servers) await s.kill()
      await vault?.close()
      await relay?.close()
      await sandbox?.close()
      await cleanup?.()
    })

    test(`${PROCESSES} processes, ${CALLS} calls with expired tokens, SIGTERM while refreshes are in flight`, { timeout: 300_000 }, async () => {
      // Reconnect allowed: a lost grant would be recovered silently — and counted, which is the point.
      sandbox = await startSandbox({ port: 0, reconnect: 'allow', rateLimit: { burstMax: 1_000_000, burstWindowMs: 10_000, dailyMax: 100_000_000 } })
      const url = new URL(sandbox.url)
      relay = await TcpRelay.start({ host: url.hostname, port: Number(url.port) })
      const db = await freshDatabase(dialect)
      cleanup = db.cleanup
      const key = testKey()
      const apiKey = `shutdown-api-key-${Math.random().toString(36).slice(2)}xxxx`
      const ports = await Promise.all(Array.from({ length: PROCESSES }, () => freePort()))
      sandbox.configureApp({ redirectUris: ports.map((p) => `http://127.0.0.1:${p}/oauth/callback`) })
      for (const port of ports) {
        const env = connectorEnv(sandbox, { databaseUrl: db.url, key, apiKey, redirectUri: `http://127.0.0.1:${port}/oauth/callback` })
        servers.push(
          await startServe({
            ...env,
            PORT: String(port),
            GHL_API_URL: `http://127.0.0.1:${relay.port}`,
            GHL_TOKEN_TIMEOUT_MS: '15000',
            GHL_REQUEST_TIMEOUT_MS: '30000',
            GHL_SHUTDOWN_TIMEOUT_MS: '20000',
            LOG_LEVEL: 'warn',
          }),
        )
      }
      const locations = sandbox.companies[0]!.locations.map((l) => l.locationId)
      for (const locationId of locations) {
        const start = await request(`${servers[0]!.url}/oauth/install`)
        await start.body.dump()
        const consentRedirect = await approveAt(sandbox, String(start.headers.location), { locationId, webhookTiming: 'none' })
        const callback = await request(consentRedirect)
        assert.equal(callback.statusCode, 200, await callback.body.text())
      }
      // Every stored access token looks expired to every process (HighLevel still accepts them).
      vault = await createVault({ databaseUrl: db.url, keys: parseKeys(key) })
      const rows = await vault.installations.list({ clientId: sandbox.app.clientId })
      assert.equal(rows.length, locations.length)
      for (const r of rows) {
        const row = (await vault.installations.get(r.id))!
        assert.ok(await vault.installations.updateTokens(row.id, row.version, { ...row.tokens!, expiresAt: new Date(Date.now() - 1000) }))
      }
      const versions = new Map(rows.map((r) => [r.id, r.version + 1]))

      relay.delayMs = DELAY_MS
      const before = await sandboxJson<SandboxStatsLite>(sandbox, 'GET', '/_sandbox/stats')
      const calls = new Tally()
      const storm = Array.from({ length: CALLS }, async (_, i) => {
        const server = servers[i % PROCESSES]!
        const locationId = locations[i % locations.length]!
        try {
          const res = await request(`${server.url}/proxy/locations/${locationId}/locations/${locationId}`, {
            headers: { authorization: `Bearer ${apiKey}` },
            signal: AbortSignal.timeout(120_000),
          })
          const text = await res.body.text()
          calls.add(res.statusCode === 200 ? 'ok' : `${res.statusCode} ${(JSON.parse(text) as { code?: string }).code ?? ''}`)
        } catch (err) {
          calls.add(`no answer (${(err as { code?: string }).code ?? (err as Error).name})`)
        }
      })
      // HighLevel has rotated at least one grant; its answer is on the way: SIGTERM every process now.
      const waitUntil = performance.now() + 60_000
      let rotated = 0
      while (performance.now() < waitUntil) {
        rotated = (await sandboxJson<SandboxStatsLite>(sandbox, 'GET', '/_sandbox/stats')).token.refresh_token.ok - before.token.refresh_token.ok
        if (rotated > 0) break
        await sleep(10)
      }
      const inFlightAtSigterm = rotated
      for (const s of servers) s.child.kill('SIGTERM')
      const exits = await Promise.all(servers.map((s) => exitWithin(s, 90_000)))
      await Promise.all(storm)
      relay.delayMs = 0

      const after = await sandboxJson<SandboxStatsLite>(sandbox, 'GET', '/_sandbox/stats')
      // Grants lost: refresh tokens HighLevel issued that nobody used and the vault does not hold.
      const issued = await sandboxJson<Array<{ type: string; value: string; state: string; clientId: string }>>(sandbox, 'GET', '/_sandbox/tokens')
      const stored = new Set<string>()
      const statuses = new Tally()
      let refreshedRows = 0
      for (const r of rows) {
        const row = (await vault.installations.get(r.id))!
        statuses.add(row.status)
        if (row.version > versions.get(r.id)!) refreshedRows++
        if (row.tokens?.refreshToken) stored.add(row.tokens.refreshToken)
      }
      const lost = issued.filter((t) => t.type === 'refresh' && t.clientId === sandbox.app.clientId && t.state !== 'used' && !stored.has(t.value)).length
      const refreshes = after.token.refresh_token.ok - before.token.refresh_token.ok
      recordFigures(`SIGTERM mid-storm (${dialect})`, {
        processes: PROCESSES,
        calls: CALLS,
        'refreshes answered by HighLevel when SIGTERM was sent': inFlightAtSigterm,
        'refreshes (HighLevel answered)': refreshes,
        'rows refreshed and stored': refreshedRows,
        'grants lost': lost,
        Reconnects: after.reconnect.ok - before.reconnect.ok,
        'refreshes rejected (invalid_grant)': after.token.refresh_token.error - before.token.refresh_token.error,
        'calls ok': calls.counts.ok ?? 0,
        'calls failed (why)': calls.failures(),
        'exit codes': exits.join(', '),
      })
      await assertCleanOutput(sandbox, servers.flatMap((s) => [s.stdout, s.stderr]))

      assert.ok(inFlightAtSigterm >= 1, 'SIGTERM came after HighLevel rotated a grant and before its answer arrived')
      assert.equal(lost, 0, 'no grant lost')
      assert.equal(after.reconnect.ok - before.reconnect.ok, 0, 'no Reconnect')
      assert.equal(after.token.refresh_token.error - before.token.refresh_token.error, 0, 'no refresh rejected')
      assert.equal(refreshes, refreshedRows, 'every refresh HighLevel answered was stored')
      assert.deepEqual(statuses.counts, { active: locations.length })
      shutdown = { exits, calls, stderr: servers.map((s) => s.stderr.slice(-1500)) }
    })

    // Each process stops within its limit: keep-alive connections whose request was under way at
    // SIGTERM are closed after their answer (they once held the close until the client's keep-alive
    // ended, past the hard limit: exit 1 and calls cut off).
    test('every process exits 0 and every call under way is answered', () => {
      assert.ok(shutdown, 'the storm ran')
      // Exit 0 means the server's close completed, which waits for every request it accepted to be answered.
      assert.deepEqual(shutdown.exits, Array(PROCESSES).fill(0), `every process exited 0; what they said:\n${shutdown.stderr.join('\n---\n')}`)
      // A call the server no longer took says so (503), or never reached it: sent on a keep-alive
      // connection the server closed as idle at that moment (the race every HTTP server's close has;
      // clients resend such a request) or after it stopped listening. A call that hung is not allowed.
      const refusedBeforeReceipt = new Set(['no answer (UND_ERR_SOCKET)', 'no answer (ECONNRESET)', 'no answer (ECONNREFUSED)'])
      assert.deepEqual(Object.keys(shutdown.calls.counts).filter((k) => k !== 'ok' && k !== '503 GHL_SHUTTING_DOWN' && !refusedBeforeReceipt.has(k)), [], shutdown.calls.failures())
    })
  })
}
