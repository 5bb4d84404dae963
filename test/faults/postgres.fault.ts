/**
 * PostgreSQL silenced (a hung peer: connections held, bytes dropped) and then reset (a restart) under
 * one `ghl-connect serve`, while tokens of a few seconds are refreshed and every route is called.
 * While the database does not answer, every route answers within its bound — 503 with Retry-After
 * (`GHL_DATABASE_UNAVAILABLE`, or `GHL_LOCK_TIMEOUT`), or the call goes through on the cached token —
 * and seconds after the database answers again everything works, in the same process.
 *
 * HighLevel's Reconnect is removed (the sandbox's default, as on HighLevel since September 2026): a
 * grant lost in the outage would need a user, so "no installation lost" means no rotated pair was lost —
 * one HighLevel answered while the database would not take it is kept in memory and stored after.
 *
 * The reproduction this guards (the hardening issue): PostgreSQL silent during a refresh left the
 * refresh lock's connection waiting forever on a statement (the lock pool had no statement bound), so
 * the installation's refresh lock was never released and its calls answered 504 long after the
 * database was back.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { postgresSkipReason } from '../helpers/services.js'
import { timedRequest, type ServeProcess } from '../helpers/serve-process.js'
import { sandboxJson } from '../helpers/stack.js'
import { startDeployment, bearer, type Deployment } from './deployment.js'
import { Probe, isRetryable503, type ProbeRoute } from './probe.js'
import { recordFigures, seconds } from './figures.js'
import { assertCleanOutput, installationStatuses } from './checks.js'

const REQUEST_TIMEOUT_MS = 5000
const DB_TIMEOUT_MS = 2000
/** What a loaded 2-core machine may add to a bound (a bound, not a speed claim). */
const MARGIN_MS = 2500
/** Longest acceptable time from the database answering again to every route working. */
const RECOVERY_LIMIT_MS = 10_000

describe('PostgreSQL silenced and restarted under a running server', { skip: await postgresSkipReason() }, () => {
  let d: Deployment
  let server: ServeProcess
  let locations: string[]

  before(async () => {
    d = await startDeployment({ sandbox: { accessTokenTtlSec: 4 } })
    server = await d.serve({
      GHL_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
      GHL_TOKEN_TIMEOUT_MS: '1000',
      GHL_DB_STATEMENT_TIMEOUT_MS: String(DB_TIMEOUT_MS),
      GHL_DB_CONNECT_TIMEOUT_MS: String(DB_TIMEOUT_MS),
      GHL_REFRESH_MARGIN_MS: '1000',
      GHL_REFRESHER_INTERVAL_MS: '1000',
      GHL_SHUTDOWN_TIMEOUT_MS: '5000',
      LOG_LEVEL: 'warn',
    })
    locations = d.sandbox.companies[0]!.locations.slice(0, 2).map((l) => l.locationId)
    for (const id of locations) await d.install(server, id)
  })
  after(async () => {
    await d?.close()
  })

  function routes(): ProbeRoute[] {
    const proxy = (locationId: string, n: number): ProbeRoute => ({
      name: `proxy call ${n}`,
      boundMs: REQUEST_TIMEOUT_MS + MARGIN_MS,
      send: (limitMs) => timedRequest(`${server.url}/proxy/locations/${locationId}/locations/${locationId}`, { headers: bearer(d.apiKey), limitMs }),
      ok: (t) => t.status === 200,
      // The cached token still served (200), or a clear 503; 504 only if the call's own deadline passed.
      acceptableDuringOutage: (t) => isRetryable503(t, 'GHL_DATABASE_UNAVAILABLE', 'GHL_LOCK_TIMEOUT') || (t.status === 504 && t.code === 'GHL_TIMEOUT'),
    })
    return [
      proxy(locations[0]!, 1),
      proxy(locations[1]!, 2),
      {
        name: '/api/installations',
        boundMs: 2 * DB_TIMEOUT_MS + MARGIN_MS,
        send: (limitMs) => timedRequest(`${server.url}/api/installations`, { headers: bearer(d.apiKey), limitMs }),
        ok: (t) => t.status === 200,
        acceptableDuringOutage: (t) => isRetryable503(t, 'GHL_DATABASE_UNAVAILABLE'),
      },
      {
        name: 'webhook POST',
        boundMs: 2 * DB_TIMEOUT_MS + MARGIN_MS,
        send: async (limitMs) => d.postWebhook(server, await d.nextWebhook(locations[0]!), limitMs),
        ok: (t) => t.status === 200,
        acceptableDuringOutage: (t) => isRetryable503(t, 'GHL_DATABASE_UNAVAILABLE'),
      },
      {
        name: '/readyz',
        boundMs: DB_TIMEOUT_MS + MARGIN_MS,
        send: (limitMs) => timedRequest(`${server.url}/readyz`, { limitMs }),
        ok: (t) => t.status === 200,
        acceptableDuringOutage: (t) => t.status === 503 && t.retryAfter !== undefined,
      },
    ]
  }

  async function outage(name: string, mode: 'silent' | 'reset', outageMs: number, options: { expectKept?: boolean } = {}): Promise<void> {
    const before = await d.stats()
    const outputFrom = { stdout: server.stdout.length, stderr: server.stderr.length }
    const probe = new Probe(routes())
    probe.start()
    await sleep(2500)
    const baseline = probe.results.length
    // The outage begins in the middle of a refresh: the token endpoint holds the next refresh (the
    // refresh lock held, its transaction open) and the database goes away right then.
    await sandboxJson(d.sandbox, 'POST', '/_sandbox/faults', { endpoint: 'token', kind: 'hang', count: 1, hangMs: 1500 })
    const waitUntil = performance.now() + 15_000
    const faults = async (): Promise<number> => (await d.stats()).faults.token ?? 0
    while ((await faults()) === (before.faults.token ?? 0) && performance.now() < waitUntil) await sleep(20)
    const refreshInFlight = (await faults()) > (before.faults.token ?? 0)
    const from = performance.now()
    d.pgRelay.mode = mode
    await sleep(outageMs)
    d.pgRelay.mode = 'pass'
    const passAt = performance.now()
    await sleep(RECOVERY_LIMIT_MS + 4000)
    await probe.stop()
    const after = await d.stats()

    const base = probe.results.slice(0, baseline)
    const report = probe.outage(from, passAt)
    const recovery = probe.recovery(passAt)
    const statuses = await installationStatuses(d.directUrl)
    // A rotated pair HighLevel answered while the database would not take it is kept, then stored.
    const output = server.stdout.slice(outputFrom.stdout) + server.stderr.slice(outputFrom.stderr)
    const kept = output.split('kept in memory until the database answers').length - 1
    const storedLate = output.split('stored: the grant is safe again').length - 1
    const readyzDown = probe.results.some((r) => r.route === '/readyz' && r.start >= from && r.start < passAt && r.t.status === 503)
    recordFigures(name, {
      'outage (s)': seconds(outageMs),
      'began during a refresh': refreshInFlight,
      'failed before the outage (machine noise)': base.filter((r) => r.t.status !== 200).length,
      'refreshes (HighLevel answered)': after.token.refresh_token.ok - before.token.refresh_token.ok,
      'refresh rejected (invalid_grant)': after.token.refresh_token.error - before.token.refresh_token.error,
      Reconnects: after.reconnect.ok - before.reconnect.ok,
      'requests during the outage': report.requests,
      'answers during the outage': Object.entries(report.outcomes).map(([k, v]) => `${k}×${v}`).join('; '),
      'longest call during the outage (ms)': Object.entries(report.longestMs).map(([k, v]) => `${k} ${v}`).join('; '),
      'bounds (ms)': `proxy ${REQUEST_TIMEOUT_MS + MARGIN_MS}, api/webhook ${2 * DB_TIMEOUT_MS + MARGIN_MS}, readyz ${DB_TIMEOUT_MS + MARGIN_MS}`,
      'out of bound': report.outOfBound.length,
      'time to full recovery (s, no restart)': recovery.ms === undefined ? `not within ${seconds(RECOVERY_LIMIT_MS + 4000)} s` : seconds(recovery.ms),
      'rotated pairs kept in memory (database silent past the store retries)': kept,
      'kept pairs stored once it answered': storedLate,
      'installations lost': Object.entries(statuses).filter(([s]) => s !== 'active').reduce((n, [, v]) => n + v, 0),
    })

    // A positive control: everything worked before, and the outage was real (readiness said so).
    // (A statement slower than its bound on a loaded machine is a 503 too: each route must have worked, not every request.)
    const working = new Set(base.filter((r) => r.t.status === 200).map((r) => r.route))
    assert.equal(working.size, 5, `before the outage every route answered 200: ${JSON.stringify(base.filter((r) => r.t.status !== 200).map((r) => [r.route, r.t.status, r.t.code, r.t.body]))}`)
    assert.ok(refreshInFlight, 'the outage began while a refresh was in flight')
    assert.ok(readyzDown, '/readyz reported the database down during the outage')
    assert.deepEqual(report.outOfBound, [], 'every request during the outage settled within its bound')
    assert.deepEqual(report.unacceptable, [], 'every failure during the outage was a clear, retryable answer')
    assert.deepEqual(recovery.stillFailing, [], 'every route works again after the database is back, without a restart')
    assert.ok(recovery.ms !== undefined && recovery.ms <= RECOVERY_LIMIT_MS, `full recovery within ${RECOVERY_LIMIT_MS} ms (took ${recovery.ms} ms)`)
    assert.deepEqual(statuses, { active: locations.length }, 'no installation lost (Reconnect is removed: a lost grant would need a user)')
    assert.equal(storedLate, kept, 'every pair kept in memory was stored once the database answered')
    if (options.expectKept) assert.ok(kept >= 1, 'the refresh under way when the database went silent kept its rotated pair (the path this scenario is for)')
    assert.ok(after.token.refresh_token.ok > before.token.refresh_token.ok, 'tokens were refreshed around the outage')
    assert.equal(server.child.exitCode, null, 'the server kept running')
  }

  test('silent for 6 s (a hung peer) during refreshes: bounded answers, recovery without a restart', { timeout: 120_000 }, async () => {
    await outage('PostgreSQL silent (hung peer)', 'silent', 6000)
  })

  test('silent for 10 s, longer than the store retries a rotated pair (6 s): the pair is kept in memory and stored once it answers; no grant lost', { timeout: 120_000 }, async () => {
    await outage('PostgreSQL silent past the store retries', 'silent', 10_000, { expectKept: true })
  })

  test('reset for 3 s (a restart) during refreshes: bounded answers, recovery without a restart', { timeout: 120_000 }, async () => {
    await outage('PostgreSQL restarted (connections reset)', 'reset', 3000)
    await assertCleanOutput(d.sandbox, [server.stdout, server.stderr])
  })
})
