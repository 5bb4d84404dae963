/**
 * Redis silenced (a hung peer) and then killed (every connection reset, new ones refused) under a
 * running `ghl-connect serve` with REDIS_URL set (the shared rate limiter and cache invalidation).
 * While Redis does not answer, calls that need it answer within their deadline with a clear 503
 * `GHL_REDIS_UNAVAILABLE` (Retry-After), routes that do not need it keep working, and /readyz says
 * Redis is down; seconds after Redis answers again every call works, in the same process. Nothing
 * is printed as `[ioredis] Unhandled error event`.
 *
 * The reproduction this guards (the hardening issue): Redis that stops answering without closing the
 * socket left calls hanging past GHL_REQUEST_TIMEOUT_MS, still hung after Redis was back.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { postgresSkipReason, redisSkipReason } from '../helpers/services.js'
import { timedRequest, type ServeProcess } from '../helpers/serve-process.js'
import { startDeployment, bearer, type Deployment } from './deployment.js'
import { Probe, isRetryable503, type ProbeRoute } from './probe.js'
import { recordFigures, seconds } from './figures.js'
import { assertCleanOutput } from './checks.js'

const REQUEST_TIMEOUT_MS = 5000
const REDIS_TIMEOUT_MS = 1000
const MARGIN_MS = 2500
const RECOVERY_LIMIT_MS = 10_000

const skip = (await postgresSkipReason()) || (await redisSkipReason())

describe('Redis silenced and killed under a running server', { skip }, () => {
  let d: Deployment
  let server: ServeProcess
  let locationId: string

  before(async () => {
    d = await startDeployment({ redis: true, sandbox: { reconnect: 'allow' } })
    server = await d.serve({
      GHL_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
      GHL_REDIS_TIMEOUT_MS: String(REDIS_TIMEOUT_MS),
      GHL_DB_STATEMENT_TIMEOUT_MS: '3000',
      LOG_LEVEL: 'warn',
    })
    locationId = d.sandbox.companies[0]!.locations[0]!.locationId
    await d.install(server, locationId)
  })
  after(async () => {
    await d?.close()
  })

  function routes(): ProbeRoute[] {
    return [
      {
        name: 'proxy call',
        boundMs: REQUEST_TIMEOUT_MS + MARGIN_MS,
        send: (limitMs) => timedRequest(`${server.url}/proxy/locations/${locationId}/locations/${locationId}`, { headers: bearer(d.apiKey), limitMs }),
        ok: (t) => t.status === 200,
        acceptableDuringOutage: (t) => isRetryable503(t, 'GHL_REDIS_UNAVAILABLE'),
      },
      {
        name: '/api/installations',
        boundMs: 3000 + MARGIN_MS,
        send: (limitMs) => timedRequest(`${server.url}/api/installations`, { headers: bearer(d.apiKey), limitMs }),
        ok: (t) => t.status === 200,
        // It does not need Redis: it must keep working.
        acceptableDuringOutage: () => false,
      },
      {
        name: '/readyz',
        boundMs: 3000 + MARGIN_MS,
        send: (limitMs) => timedRequest(`${server.url}/readyz`, { limitMs }),
        ok: (t) => t.status === 200,
        acceptableDuringOutage: (t) => t.status === 503 && t.retryAfter !== undefined,
      },
    ]
  }

  async function outage(name: string, mode: 'silent' | 'reset', outageMs: number): Promise<void> {
    const relay = d.redisRelay!
    const probe = new Probe(routes())
    probe.start()
    await sleep(2500)
    const baseline = probe.results.slice()
    const from = performance.now()
    relay.mode = mode
    await sleep(outageMs)
    relay.mode = 'pass'
    const passAt = performance.now()
    await sleep(RECOVERY_LIMIT_MS + 4000)
    await probe.stop()
    const report = probe.outage(from, passAt)
    const recovery = probe.recovery(passAt)
    const proxyDuring = probe.results.filter((r) => r.route === 'proxy call' && r.start >= from + REDIS_TIMEOUT_MS && r.start < passAt)
    recordFigures(name, {
      'outage (s)': seconds(outageMs),
      'requests during the outage': report.requests,
      'answers during the outage': Object.entries(report.outcomes).map(([k, v]) => `${k}×${v}`).join('; '),
      'longest call during the outage (ms)': Object.entries(report.longestMs).map(([k, v]) => `${k} ${v}`).join('; '),
      'bounds (ms)': `proxy ${REQUEST_TIMEOUT_MS + MARGIN_MS}, api/readyz ${3000 + MARGIN_MS}`,
      'out of bound': report.outOfBound.length,
      'time to full recovery (s, no restart)': recovery.ms === undefined ? `not within ${seconds(RECOVERY_LIMIT_MS + 4000)} s` : seconds(recovery.ms),
    })
    const working = new Set(baseline.filter((r) => r.t.status === 200).map((r) => r.route))
    assert.equal(working.size, 3, 'before the outage every route answered 200')
    assert.ok(proxyDuring.some((r) => r.t.status === 503), 'calls that need Redis failed during the outage (the outage was real)')
    assert.deepEqual(report.outOfBound, [], 'every request during the outage settled within its bound')
    assert.deepEqual(report.unacceptable, [], 'calls needing Redis answered 503 GHL_REDIS_UNAVAILABLE with Retry-After; the others kept working')
    assert.deepEqual(recovery.stillFailing, [], 'every route works again after Redis is back, without a restart')
    assert.ok(recovery.ms !== undefined && recovery.ms <= RECOVERY_LIMIT_MS, `full recovery within ${RECOVERY_LIMIT_MS} ms`)
    assert.equal(server.child.exitCode, null, 'the server kept running')
  }

  test('silent for 5 s (a hung peer): bounded 503s, recovery without a restart', { timeout: 120_000 }, async () => {
    await outage('Redis silent (hung peer)', 'silent', 5000)
  })

  test('killed for 3 s (connections reset, new ones refused): bounded 503s, recovery without a restart', { timeout: 120_000 }, async () => {
    await outage('Redis killed (connections reset)', 'reset', 3000)
    await assertCleanOutput(d.sandbox, [server.stdout, server.stderr])
  })
})
