/**
 * HighLevel's token endpoint failing during a refresh storm: 500s, answers that never come (longer
 * than GHL_TOKEN_TIMEOUT_MS) and malformed answers, while every installation's token has expired and
 * calls keep arriving through the proxy. Each failure says nothing about the grant: it is retried or
 * reported as a transient error (502/504, never a re-authorization), no grant is lost, nothing is
 * recovered through Reconnect, and once the endpoint answers again every installation works.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseKeys } from '../../src/config.js'
import { createVault } from '../../src/vault/create-vault.js'
import type { Vault } from '../../src/vault/types.js'
import { postgresSkipReason } from '../helpers/services.js'
import { timedRequest, type ServeProcess } from '../helpers/serve-process.js'
import { sandboxJson } from '../helpers/stack.js'
import { startDeployment, bearer, type Deployment } from './deployment.js'
import { recordFigures, Tally } from './figures.js'
import { assertCleanOutput } from './checks.js'

const TOKEN_TIMEOUT_MS = 1500
const TRANSIENT = new Set(['502 GHL_UPSTREAM_UNAVAILABLE', '504 GHL_TIMEOUT', '502 GHL_OAUTH_INVALID_RESPONSE'])

describe('token-endpoint faults during a refresh storm', { skip: await postgresSkipReason() }, () => {
  let d: Deployment
  let server: ServeProcess
  let vault: Vault
  let locations: string[]

  before(async () => {
    d = await startDeployment({ sandbox: { reconnect: 'allow' } })
    server = await d.serve({ GHL_TOKEN_TIMEOUT_MS: String(TOKEN_TIMEOUT_MS), GHL_REQUEST_TIMEOUT_MS: '15000', LOG_LEVEL: 'warn' })
    locations = d.sandbox.companies[0]!.locations.map((l) => l.locationId)
    for (const id of locations) await d.install(server, id)
    vault = await createVault({ databaseUrl: d.directUrl, keys: parseKeys(d.key) })
  })
  after(async () => {
    await vault?.close()
    await d?.close()
  })

  test('500s, hangs and malformed answers: transient failures only, no grant lost', { timeout: 300_000 }, async () => {
    const faults = { error500: 4, hang: 2, malformed: 4 }
    const before = await d.stats()
    const calls = new Tally()
    for (let round = 0; round < 3; round++) {
      // Every token looks expired to the server (a restart drops its cache too: it re-reads the rows).
      for (const r of await vault.installations.list({ clientId: d.sandbox.app.clientId })) {
        const row = (await vault.installations.get(r.id))!
        await vault.installations.updateTokens(row.id, row.version, { ...row.tokens!, expiresAt: new Date(Date.now() - 1000) })
      }
      // The server keeps fresh tokens in memory: HighLevel expiring them is what makes it refresh now
      // (a 401 on the call, then a refresh), as a token past its lifetime does.
      for (const id of locations) await sandboxJson(d.sandbox, 'POST', '/_sandbox/tokens/expire', { locationId: id })
      for (const [kind, count] of Object.entries(faults)) {
        await sandboxJson(d.sandbox, 'POST', '/_sandbox/faults', { endpoint: 'token', kind, count: Math.ceil(count / 3), hangMs: TOKEN_TIMEOUT_MS * 2 })
      }
      const results = await Promise.all(
        Array.from({ length: 60 }, (_, i) => {
          const id = locations[i % locations.length]!
          return timedRequest(`${server.url}/proxy/locations/${id}/locations/${id}`, { headers: bearer(d.apiKey), limitMs: 60_000 })
        }),
      )
      for (const t of results) calls.add(t.status === 200 ? 'ok' : `${t.status} ${t.code ?? ''}`.trim())
      await sleep(200)
    }
    // The endpoint answers again (faults left over are cleared): every installation works.
    const pending = await sandboxJson<Record<string, unknown>>(d.sandbox, 'GET', '/_sandbox/stats')
    const after = await d.stats()
    const afterCalls = new Tally()
    for (const id of locations) {
      const t = await timedRequest(`${server.url}/proxy/locations/${id}/locations/${id}`, { headers: bearer(d.apiKey), limitMs: 60_000 })
      afterCalls.add(t.status === 200 ? 'ok' : `${t.status} ${t.code ?? ''}`)
    }
    const issued = await sandboxJson<Array<{ type: string; value: string; state: string; clientId: string }>>(d.sandbox, 'GET', '/_sandbox/tokens')
    const stored = new Set<string>()
    const statuses = new Tally()
    for (const r of await vault.installations.list({ clientId: d.sandbox.app.clientId })) {
      const row = (await vault.installations.get(r.id))!
      statuses.add(row.status)
      if (row.tokens?.refreshToken) stored.add(row.tokens.refreshToken)
    }
    const lost = issued.filter((t) => t.type === 'refresh' && t.clientId === d.sandbox.app.clientId && t.state !== 'used' && !stored.has(t.value)).length
    const faulted = (after.faults.token ?? 0) - (before.faults.token ?? 0)
    // Token-endpoint errors that were not our faults. A hung answer the connector gave up on is counted
    // as a fault but never as an answer (the client was gone), so this can go below zero, never above.
    const rejected = Math.max(0, after.token.refresh_token.error - before.token.refresh_token.error - faulted)
    recordFigures('token-endpoint faults (500, hang, malformed)', {
      'faults taken by refreshes': faulted,
      'refreshes (HighLevel answered)': after.token.refresh_token.ok - before.token.refresh_token.ok,
      'refreshes rejected (invalid_grant)': rejected,
      'grants lost': lost,
      Reconnects: after.reconnect.ok - before.reconnect.ok,
      'calls ok': calls.counts.ok ?? 0,
      'calls failed (why)': calls.failures(),
      'calls after the faults': afterCalls.failures() === 'none' ? 'all ok' : afterCalls.failures(),
      'installations lost': Object.entries(statuses.counts).filter(([s]) => s !== 'active').reduce((n, [, v]) => n + v, 0),
    })
    void pending
    await assertCleanOutput(d.sandbox, [server.stdout, server.stderr])

    assert.ok(faulted >= 6, `the faults were met by refreshes (${faulted})`)
    assert.equal(lost, 0, 'no grant lost')
    assert.equal(rejected, 0, 'no refresh token was rejected')
    assert.equal(after.reconnect.ok - before.reconnect.ok, 0, 'nothing needed Reconnect')
    assert.deepEqual(Object.keys(calls.counts).filter((k) => k !== 'ok' && !TRANSIENT.has(k)), [], `failures were transient: ${calls.failures()}`)
    assert.deepEqual(afterCalls.counts, { ok: locations.length }, 'every installation works once the endpoint answers')
    assert.deepEqual(statuses.counts, { active: locations.length })
  })
})
