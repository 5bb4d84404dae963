/**
 * One rate-limit budget shared by several connector processes through Redis, against the sandbox
 * enforcing HighLevel's rule with lowered limits: 3 processes send 3× the burst budget for one
 * location at once → zero 429s reach the sandbox, and never more than the burst budget is sent in any
 * window (counted from each request's send time, across the processes). Counts only: how close to the
 * budget the throughput stays is measured by `npm run bench` (bench/ratelimit.bench.ts), not here, on
 * a shared machine. A foreign client of the same app spending part of the budget (seen through
 * X-RateLimit-* headers) is respected too.
 */
import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { resolve } from 'node:path'
import { request } from 'undici'
import { REDIS_URL, redisSkipReason } from '../helpers/services.js'
import { installViaHttp, sandboxJson, startStack, type Stack } from '../helpers/stack.js'

const BURST = 20
// The window is long against a loaded machine's latency, as HighLevel's 10 s are against real latency:
// the limiter times each slot from its answer (never before HighLevel counted it), so latency is what it costs.
const WINDOW_MS = 5000
const PROCESSES = 3
const TOTAL = BURST * 3 // 3× the budget, a multiple of the process count
const WORKER = resolve('test/e2e/fixtures/rate-worker.ts')

interface WorkerSummary {
  started: number
  finished: number
  /** When each request was written to its socket (epoch ms). */
  sent: number[]
  results: Array<{ status: number; code?: string; at: number }>
}

/** Most sends in any window of `windowMs`: a sliding count over the sorted send times. */
function maxInWindow(times: number[], windowMs: number): number {
  const t = [...times].sort((a, b) => a - b)
  let best = 0
  for (let i = 0, j = 0; i < t.length; i++) {
    while (t[i]! - t[j]! >= windowMs) j++
    best = Math.max(best, i - j + 1)
  }
  return best
}

function startWorker(stack: Stack, locationId: string, calls: number): { child: ChildProcessWithoutNullStreams; ready: Promise<void>; done: Promise<WorkerSummary> } {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER], {
    env: {
      ...process.env,
      GHL_CLIENT_ID: stack.config.clientId,
      GHL_CLIENT_SECRET: stack.config.clientSecret,
      GHL_REDIRECT_URI: stack.config.redirectUri,
      GHL_SCOPES: stack.config.scopes.join(' '),
      GHL_API_URL: stack.config.apiUrl,
      GHL_MARKETPLACE_URL: stack.config.marketplaceUrl,
      GHL_ENCRYPTION_KEY: stack.config.encryptionKeys.map((k) => `${k.id}:${k.key.toString('base64')}`).join(','),
      DATABASE_URL: stack.databaseUrl,
      REDIS_URL,
      GHL_RATE_LIMIT_BURST: String(BURST),
      GHL_RATE_LIMIT_BURST_WINDOW_MS: String(WINDOW_MS),
      WORKER_LOCATION_ID: locationId,
      WORKER_CALLS: String(calls),
      LOG_LEVEL: 'silent',
    },
  })
  let out = ''
  let err = ''
  let readyResolve: () => void
  const ready = new Promise<void>((r) => (readyResolve = r))
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString()
    if (out.includes('ready\n')) readyResolve()
  })
  child.stderr.on('data', (d: Buffer) => (err += d.toString()))
  const done = new Promise<WorkerSummary>((resolveDone, reject) => {
    child.once('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('{'))
      if (code !== 0 || !line) reject(new Error(`worker exited ${code}: ${err}`))
      else resolveDone(JSON.parse(line) as WorkerSummary)
    })
  })
  return { child, ready, done }
}

describe('rate limits shared through Redis by 3 processes', { skip: await redisSkipReason() }, () => {
  let stack: Stack
  let locationId: string
  before(async () => {
    stack = await startStack({
      sandbox: { rateLimit: { burstMax: BURST, burstWindowMs: WINDOW_MS, dailyMax: 1_000_000 } },
      env: { GHL_RATE_LIMIT_BURST: String(BURST), GHL_RATE_LIMIT_BURST_WINDOW_MS: String(WINDOW_MS), REDIS_URL },
    })
    locationId = stack.sandbox.companies[0]!.locations[0]!.locationId
    const res = await installViaHttp(stack, { locationId, webhookTiming: 'none' })
    assert.equal(res.status, 200, res.html)
    // Let the install's own calls (if any) leave the window.
    await new Promise((r) => setTimeout(r, WINDOW_MS + 50))
  })
  after(async () => stack?.close())

  async function runWorkers(perWorker: number): Promise<WorkerSummary[]> {
    const workers = Array.from({ length: PROCESSES }, () => startWorker(stack, locationId, perWorker))
    await Promise.all(workers.map((w) => w.ready))
    await new Promise((r) => setTimeout(r, WINDOW_MS + 50)) // the warm-up calls leave the window
    for (const w of workers) w.child.stdin.write('go\n')
    return Promise.all(workers.map((w) => w.done))
  }

  test(`3 processes send ${TOTAL} calls (3× the burst budget) → zero 429s, never more than ${BURST} sent in any window`, { timeout: 300_000 }, async () => {
    const before = await sandboxJson<{ api: { rateLimited: number; ok: number } }>(stack.sandbox, 'GET', '/_sandbox/stats')
    const summaries = await runWorkers(Math.ceil(TOTAL / PROCESSES))
    const after = await sandboxJson<{ api: { rateLimited: number; ok: number } }>(stack.sandbox, 'GET', '/_sandbox/stats')
    const results = summaries.flatMap((s) => s.results)
    assert.equal(results.length, TOTAL)
    assert.equal(results.filter((r) => r.status !== 200).length, 0, JSON.stringify(results.filter((r) => r.status !== 200).slice(0, 3)))
    assert.equal(after.api.rateLimited - before.api.rateLimited, 0, 'no 429 reached the sandbox')
    // Every call was sent once (no 429, so no resend), and the sends of the 3 processes together never
    // exceed the budget in any window. The times are whole ms: a window 1 ms shorter leaves room for
    // the rounding, and still catches one send too many.
    const sent = summaries.flatMap((s) => s.sent)
    assert.equal(sent.length, TOTAL)
    const most = maxInWindow(sent, WINDOW_MS - 1)
    // (Processes that did not share the budget would each send their 20 at once: 60 in one window.)
    assert.ok(most <= BURST, `${most} calls sent within one window of ${WINDOW_MS} ms (budget ${BURST})`)
  })

  test('a foreign client of the same app spending part of the budget is respected', { timeout: 300_000 }, async () => {
    await new Promise((r) => setTimeout(r, WINDOW_MS + 50))
    const [row] = await stack.connector.installations()
    const stored = await stack.connector.vault.installations.get(row!.id)
    const foreign = async () => {
      const res = await request(`${stack.sandbox.url}/contacts/?locationId=${locationId}&limit=1`, {
        headers: { authorization: `Bearer ${stored!.tokens!.accessToken}`, version: '2021-07-28' },
      })
      await res.body.dump()
      return res.statusCode
    }
    const before = await sandboxJson<{ api: { rateLimited: number } }>(stack.sandbox, 'GET', '/_sandbox/stats')
    // The foreign client spends 3/4 of the window's budget. Our next answer's X-RateLimit-Remaining
    // tells the shared limiter (in Redis) so, and the 3 processes then wait for the window instead of
    // collecting 429s.
    const spent = await Promise.all(Array.from({ length: Math.floor(BURST * 0.75) }, foreign))
    assert.ok(spent.every((s) => s === 200))
    const probe = await stack.connector.location(locationId).get('/contacts/', { query: { locationId, limit: 1 } })
    assert.equal(Number(probe.headers['x-ratelimit-remaining']), BURST - Math.floor(BURST * 0.75) - 1)
    const summaries = await runWorkers(Math.ceil((BURST * 2) / PROCESSES))
    const results = summaries.flatMap((s) => s.results)
    const after = await sandboxJson<{ api: { rateLimited: number } }>(stack.sandbox, 'GET', '/_sandbox/stats')
    assert.equal(results.filter((r) => r.status !== 200).length, 0, 'every call succeeds')
    assert.equal(after.api.rateLimited - before.api.rateLimited, 0, 'no 429 reached the sandbox')
  })
})
