/**
 * The console's data: the call recorder (last calls, per-minute counts, counters written in batches,
 * never a token) and the vault's console store (counters added up, aggregates by status, time and type)
 * on every backend.
 */
import { describe, test, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { createVault } from '../../src/vault/create-vault.js'
import { parseKeys } from '../../src/config.js'
import { ManualClock } from '../../src/clock.js'
import { silentLogger } from '../../src/logger.js'
import { CallRecorder } from '../../src/operator/call-recorder.js'
import { ConnectorMetrics } from '../../src/operator/connector-metrics.js'
import { needsName } from '../../src/operator/name-resolver.js'
import type { InstallationSummary } from '../../src/vault/types.js'
import { MemoryRateLimiter } from '../../src/ratelimit/index.js'
import type { CallRecord } from '../../src/client/steps/record.js'
import type { CallStatsDelta, ConsoleStore, Vault } from '../../src/vault/types.js'
import { DIALECTS, freshDatabase, testKey, dialectSkipReason } from '../helpers/services.js'
import { createServer } from 'node:http'
import { once } from 'node:events'
import { HighLevelClient } from '../../src/client/index.js'
import type { AccessGrant, TokenProvider } from '../../src/tokens/types.js'

const T0 = Date.UTC(2026, 0, 1, 10, 0, 0)

function call(over: Partial<CallRecord> = {}): CallRecord {
  return { at: T0, installationId: 'inst-1', method: 'GET', path: '/contacts/c1', operation: undefined, status: 200, durationMs: 5, traceId: 't-1', errorCode: undefined, burstRemaining: 99, dailyRemaining: 199_999, ...over }
}

/** A console store that records what it was asked to write. */
function recordingStore(): ConsoleStore & { batches: Array<{ day: string; deltas: CallStatsDelta[] }>; purges: string[] } {
  const batches: Array<{ day: string; deltas: CallStatsDelta[] }> = []
  const purges: string[] = []
  return {
    batches,
    purges,
    addCalls: async (day, deltas) => void batches.push({ day, deltas: [...deltas] }),
    calls: async () => new Map(),
    purgeCallsBefore: async (day) => (purges.push(day), 0),
    countByStatus: async () => ({ active: 0, suspended: 0, needs_reauthorization: 0, uninstalled: 0 }),
    auditCounts: async () => [],
    webhookCounts: async () => [],
  }
}

describe('record step', () => {
  test('the client tells the observer each call once: status, path without query, trace id, HighLevel\'s budget headers; no answer is status 0 with its code; never the token', async () => {
    const server = createServer((req, res) => {
      if (req.url!.startsWith('/fail')) return void res.writeHead(404, { 'content-type': 'application/json', 'x-trace-id': 'trace-404' }).end('{"message":"nope"}')
      res.writeHead(200, { 'content-type': 'application/json', 'x-trace-id': 'trace-ok', 'x-ratelimit-remaining': '97', 'x-ratelimit-daily-remaining': '199000' }).end('{"ok":true}')
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`
    const grant: AccessGrant = { accessToken: 'secret-token-value', installationId: 'inst-9', version: 1, expiresAt: Date.now() + 3_600_000, resourceId: 'loc-9', scopes: [], userType: 'Location' }
    const tokens: TokenProvider = { getAccessToken: async () => grant, onUnauthorized: async () => grant, invalidate: () => {} }
    const calls: CallRecord[] = []
    const client = new HighLevelClient({ baseUrl: base, apiVersion: '2021-07-28', tokens, observer: { record: (c) => calls.push(c) }, retry: { maxRetries: 0 } })
    const unreachable = new HighLevelClient({ baseUrl: 'http://127.0.0.1:9', apiVersion: '2021-07-28', tokens, observer: { record: (c) => calls.push(c) }, retry: { maxRetries: 0 } })
    try {
      await client.forTarget({ kind: 'location', id: 'loc-9' }).get('/contacts/c1', { query: { locationId: 'loc-9', q: 'private' } })
      await assert.rejects(client.forTarget({ kind: 'location', id: 'loc-9' }).get('/fail/x'))
      await assert.rejects(unreachable.forTarget({ kind: 'location', id: 'loc-9' }).get('/contacts/c2'))
      assert.equal(calls.length, 3)
      assert.deepEqual(
        calls.map((c) => [c.installationId, c.method, c.path, c.status, c.traceId, c.errorCode]),
        [
          ['inst-9', 'GET', '/contacts/c1', 200, 'trace-ok', undefined],
          ['inst-9', 'GET', '/fail/x', 404, 'trace-404', undefined],
          ['inst-9', 'GET', '/contacts/c2', 0, undefined, 'GHL_NETWORK'],
        ],
      )
      assert.equal(calls[0]!.burstRemaining, 97)
      assert.equal(calls[0]!.dailyRemaining, 199_000)
      assert.ok(!JSON.stringify(calls).includes('secret-token-value') && !JSON.stringify(calls).includes('private'))
    } finally {
      await client.close()
      await unreachable.close()
      server.close()
    }
  })
})

test('a name is looked up only for an active row without one whose token is good for another minute', () => {
  const now = T0
  const row = (over: Partial<InstallationSummary>) => ({ status: 'active', locationId: 'l', companyId: 'c', locationName: null, companyName: null, expiresAt: new Date(now + 3_600_000), ...over }) as InstallationSummary
  assert.equal(needsName(row({}), now), true)
  assert.equal(needsName(row({ locationName: 'Known' }), now), false)
  assert.equal(needsName(row({ locationId: null, companyName: null }), now), true)
  assert.equal(needsName(row({ locationId: null, companyName: 'Agency' }), now), false)
  assert.equal(needsName(row({ expiresAt: new Date(now + 30_000) }), now), false, 'would need a refresh first')
  assert.equal(needsName(row({ expiresAt: null }), now), false, 'a covered location not minted yet')
  assert.equal(needsName(row({ status: 'needs_reauthorization' }), now), false)
})

describe('CallRecorder', () => {
  test('keeps the last N calls per installation, newest first, and counts per minute by status class', async () => {
    const clock = new ManualClock(T0)
    const store = recordingStore()
    const recorder = new CallRecorder({ store, clock, logger: silentLogger(), perInstallation: 3, flushMs: 3_600_000 })
    for (let i = 0; i < 5; i++) recorder.record(call({ path: `/contacts/c${i}`, at: T0 + i }))
    recorder.record(call({ installationId: 'inst-2', status: 429, at: T0 }))
    recorder.record(call({ installationId: 'inst-2', status: 0, errorCode: 'GHL_NETWORK', at: T0 }))
    recorder.record(call({ installationId: null, status: 503, at: T0 }))
    assert.deepEqual(recorder.recent('inst-1').map((c) => c.path), ['/contacts/c4', '/contacts/c3', '/contacts/c2'])
    assert.equal(recorder.recent('inst-2').length, 2)
    assert.deepEqual(recorder.recent('unknown'), [])
    const series = recorder.series(60, 1)
    assert.equal(series.buckets.length, 60)
    const last = series.buckets.at(-1)!
    assert.deepEqual(last, { '2xx': 5, '3xx': 0, '4xx': 0, '429': 1, '5xx': 1, none: 1 })
    assert.equal(series.buckets.slice(0, -1).reduce((n, b) => n + b['2xx'], 0), 0)
    // An hour later the minute is outside the window.
    clock.advance(61 * 60_000)
    assert.equal(recorder.series(60, 1).buckets.reduce((n, b) => n + b['2xx'], 0), 0)
    await recorder.close()
  })

  test('counters go to the vault in one batch per flush, not per call; pending ones are readable before', async () => {
    const store = recordingStore()
    const recorder = new CallRecorder({ store, clock: new ManualClock(T0), logger: silentLogger(), flushMs: 3_600_000 })
    for (let i = 0; i < 1000; i++) recorder.record(call({ installationId: `inst-${i % 3}`, status: i % 10 === 0 ? 429 : 200, at: T0 + i }))
    assert.equal(store.batches.length, 0, 'nothing written per call')
    assert.deepEqual(recorder.pending('inst-0'), { calls: 334, errors: 34, throttled: 34, lastCallAt: T0 + 999 })
    await recorder.flush()
    assert.equal(store.batches.length, 1)
    assert.equal(store.batches[0]!.day, '2026-01-01')
    assert.deepEqual(store.batches[0]!.deltas.map((d) => [d.installationId, d.calls]).sort(), [['inst-0', 334], ['inst-1', 333], ['inst-2', 333]])
    assert.equal(recorder.pending('inst-0'), undefined)
    await recorder.flush()
    assert.equal(store.batches.length, 1, 'an empty flush writes nothing')
    await recorder.close()
  })

  test('calls that waited for a rate-limit slot are counted as queued (429s avoided) beside the 429s received', async () => {
    const recorder = new CallRecorder({ store: recordingStore(), clock: { now: () => Date.now() }, logger: silentLogger(), flushMs: 3_600_000 })
    const metrics = new ConnectorMetrics({ installationsByStatus: async () => ({}), webhookEvents: async () => [], readiness: async () => ({ checks: {} }) })
    const inner = new MemoryRateLimiter({ enabled: true, burstMax: 1, burstWindowMs: 100, dailyMax: 1000, dailyWindowMs: 86_400_000, maxQueue: 10 })
    const limiter = metrics.instrument(inner, (at) => recorder.noteQueued(at))
    void (await limiter.acquire('loc-1')).release({})
    // the burst of 1 is spent: this one waits for the window
    void (await limiter.acquire('loc-1')).release({})
    recorder.record(call({ at: Date.now(), status: 429 }))
    const s = recorder.series(60, 1)
    assert.equal(s.queued.reduce((a, b) => a + b, 0), 1, 'one call queued, the first went at once')
    assert.equal(s.buckets.reduce((a, b) => a + b['429'], 0), 1)
    const text = (await metrics.text()).body
    assert.match(text, /ghl_ratelimit_wait_seconds_count 2/)
    assert.match(text, /ghl_ratelimit_queue_length 0/)
    await limiter.close()
    await recorder.close()
  })

  test('counters older than keepDays are deleted once per UTC day, after a flush; a failed delete is tried again', async () => {
    const store = recordingStore()
    const clock = new ManualClock(T0)
    const recorder = new CallRecorder({ store, clock, logger: silentLogger(), flushMs: 3_600_000, keepDays: 30 })
    await recorder.flush()
    assert.deepEqual(store.purges, [], 'nothing written, nothing deleted')
    recorder.record(call())
    await recorder.flush()
    recorder.record(call())
    await recorder.flush()
    assert.deepEqual(store.purges, ['2025-12-03'], 'once on the first day: the 30 days kept are 2025-12-03 … 2026-01-01')
    const purge = store.purgeCallsBefore
    store.purgeCallsBefore = async () => {
      throw new Error('database down')
    }
    clock.advance(86_400_000)
    recorder.record(call({ at: clock.now() }))
    await recorder.flush()
    store.purgeCallsBefore = purge
    recorder.record(call({ at: clock.now() }))
    await recorder.flush()
    assert.deepEqual(store.purges, ['2025-12-03', '2025-12-04'], 'the next day, again; the failed delete retried at the next flush')
    await recorder.close()
  })

  test('a failed write keeps the counters for the next flush', async () => {
    const store = recordingStore()
    let fail = true
    const add = store.addCalls
    store.addCalls = async (day, deltas) => {
      if (fail) throw new Error('database down')
      return add(day, deltas)
    }
    const recorder = new CallRecorder({ store, clock: new ManualClock(T0), logger: silentLogger(), flushMs: 3_600_000 })
    recorder.record(call())
    recorder.record(call())
    await recorder.flush()
    recorder.record(call())
    fail = false
    await recorder.flush()
    assert.equal(store.batches.length, 1)
    assert.equal(store.batches[0]!.deltas[0]!.calls, 3)
    await recorder.close()
  })
})

for (const dialect of DIALECTS) {
  describe(`console store (${dialect})`, { skip: await dialectSkipReason(dialect) }, () => {
    let database: { url: string; cleanup: () => Promise<void> }
    let vault: Vault
    let clock: ManualClock
    beforeEach(async () => {
      database = await freshDatabase(dialect)
      clock = new ManualClock(T0)
      vault = await createVault({ databaseUrl: database.url, keys: parseKeys(`k1:${testKey()}`), clock })
    })
    afterEach(async () => {
      await vault.close()
      await database.cleanup()
    })

    test('batches add up per installation and day; today and the last call of any day are read back', async () => {
      await vault.console.addCalls('2025-12-31', [{ installationId: 'a', calls: 4, errors: 1, throttled: 0, lastCallAt: T0 - 86_400_000 }])
      await vault.console.addCalls('2026-01-01', [
        { installationId: 'a', calls: 2, errors: 0, throttled: 0, lastCallAt: T0 + 10 },
        { installationId: 'b', calls: 1, errors: 1, throttled: 1, lastCallAt: T0 + 5 },
      ])
      await vault.console.addCalls('2026-01-01', [{ installationId: 'a', calls: 3, errors: 2, throttled: 1, lastCallAt: T0 + 7 }])
      await vault.console.addCalls('2025-12-30', [{ installationId: 'd', calls: 9, errors: 0, throttled: 0, lastCallAt: T0 - 2 * 86_400_000 }])
      const stats = await vault.console.calls(['a', 'b', 'c', 'd'], '2026-01-01')
      assert.deepEqual(stats.get('d'), { today: undefined, lastCallAt: new Date(T0 - 2 * 86_400_000) }, 'no call today: only the last call of an earlier day')
      assert.equal(stats.get('a')!.today!.day, '2026-01-01')
      assert.equal(stats.get('a')!.today!.lastCallAt.getTime(), T0 + 10)
      assert.equal(stats.get('a')!.today!.calls, 5)
      assert.equal(stats.get('a')!.today!.errors, 2)
      assert.equal(stats.get('a')!.today!.throttled, 1)
      assert.equal(stats.get('a')!.lastCallAt!.getTime(), T0 + 10, 'the newest call wins, not the last batch')
      assert.equal(stats.get('b')!.today!.throttled, 1)
      assert.equal(stats.has('c'), false)
      assert.equal(await vault.console.purgeCallsBefore('2026-01-01'), 2)
      assert.equal((await vault.console.calls(['a'], '2026-01-01')).get('a')!.lastCallAt!.getTime(), T0 + 10)
      await assert.rejects(vault.console.addCalls('yesterday', []), /YYYY-MM-DD/)
    })

    test('installation search: the start of a name in any case, exact ids, wildcards taken literally; capped count; paging', async () => {
      const clientId = 'app-1'
      const tokens = { accessToken: 'a', refreshToken: 'r', expiresAt: new Date(T0 + 3_600_000) }
      const names = ['Acme Dental', 'acme roofing', 'ACMEX Spa', 'Zeta 100% Realty', 'Zeta_Law', 'Ünïcode Café', 'Beta']
      const ids: string[] = []
      for (const [n, name] of names.entries()) {
        clock.advance(1000)
        ids.push((await vault.installations.upsert({ clientId, companyId: `co-${n}`, locationId: `loc-${n}`, userType: 'Location', scopes: [], source: 'oauth', locationName: name, tokens })).id)
      }
      await vault.installations.upsert({ clientId: 'other-app', companyId: 'co-x', locationId: 'loc-x', userType: 'Location', scopes: [], source: 'oauth', locationName: 'Acme Other App', tokens })
      const search = async (text: string) => (await vault.installations.page({ clientId, search: text })).items.map((i) => i.locationName).sort()
      assert.deepEqual(await search('acme'), ['ACMEX Spa', 'Acme Dental', 'acme roofing'])
      assert.deepEqual(await search('ACME R'), ['acme roofing'])
      assert.deepEqual(await search('acme d'), ['Acme Dental'])
      assert.deepEqual(await search('Zeta 100%'), ['Zeta 100% Realty'])
      assert.deepEqual(await search('Zeta_'), ['Zeta_Law'])
      assert.deepEqual(await search('zeta%'), [])
      assert.deepEqual(await search('Ünï'), ['Ünïcode Café'])
      assert.deepEqual(await search('loc-6'), ['Beta'])
      assert.deepEqual(await search(ids[1]!), ['acme roofing'])
      assert.deepEqual(await search('co-3'), ['Zeta 100% Realty'])
      assert.deepEqual(await search('cme'), [], 'a prefix, not a substring')
      assert.equal(await vault.installations.count({ clientId }), 7)
      assert.equal(await vault.installations.count({ clientId }, { max: 3 }), 3)
      assert.equal(await vault.installations.count({ clientId, search: 'acme' }, { max: 100 }), 3)
      const first = await vault.installations.page({ clientId, limit: 4 })
      assert.deepEqual(first.items.map((i) => i.id), ids.slice(3).reverse(), 'newest first')
      const second = await vault.installations.page({ clientId, limit: 4, cursor: first.next! })
      assert.deepEqual(second.items.map((i) => i.id), ids.slice(0, 3).reverse())
      assert.equal(second.next, undefined)
      const needs = await vault.installations.setStatus(ids[0]!, 'needs_reauthorization', { reason: 'x' })
      assert.ok(needs)
      assert.deepEqual((await vault.installations.page({ clientId, status: 'needs_reauthorization' })).items.map((i) => i.id), [ids[0]])
    })

    test('installations by status, audit actions and webhook events per bucket', async () => {
      const clientId = 'app-1'
      const tokens = { accessToken: 'a', refreshToken: 'r', expiresAt: new Date(T0 + 3_600_000) }
      const one = await vault.installations.upsert({ clientId, companyId: 'co', locationId: 'l1', userType: 'Location', scopes: [], source: 'oauth', tokens })
      await vault.installations.upsert({ clientId, companyId: 'co', locationId: 'l2', userType: 'Location', scopes: [], source: 'oauth', tokens })
      await vault.installations.upsert({ clientId: 'other-app', companyId: 'co', locationId: 'l3', userType: 'Location', scopes: [], source: 'oauth', tokens })
      await vault.installations.setStatus(one.id, 'needs_reauthorization', { reason: 'test' })
      assert.deepEqual(await vault.console.countByStatus(clientId), { active: 1, suspended: 0, needs_reauthorization: 1, uninstalled: 0 })

      await vault.audit.append({ installationId: one.id, action: 'refreshed' })
      clock.advance(60_000)
      await vault.audit.append({ installationId: one.id, action: 'refreshed' })
      await vault.audit.append({ installationId: one.id, action: 'reauthorization_required' })
      await vault.audit.append({ installationId: one.id, action: 'plan_changed' })
      const audit = await vault.console.auditCounts(new Date(T0), 60_000, ['refreshed', 'reauthorization_required'])
      assert.deepEqual(
        audit.map((r) => [r.bucket - T0, r.key, r.n]).sort(),
        [[0, 'refreshed', 1], [60_000, 'reauthorization_required', 1], [60_000, 'refreshed', 1]].sort(),
      )

      for (const [id, type, at] of [['w1', 'ContactCreate', T0], ['w2', 'ContactCreate', T0 + 1000], ['w3', 'INSTALL', T0 + 120_000], ['w4', 'ContactCreate', T0 - 3_600_000]] as const) {
        await vault.webhooks.record({ webhookId: id, type, payload: {}, locationId: null, companyId: null, receivedAt: new Date(at), expiresAt: new Date(at + 86_400_000) })
      }
      const hooks = await vault.console.webhookCounts(new Date(T0), 60_000)
      assert.deepEqual(hooks.map((r) => [r.bucket - T0, r.key, r.state, r.n]).sort(), [[0, 'ContactCreate', 'pending', 2], [120_000, 'INSTALL', 'pending', 1]].sort())
    })
  })
}
