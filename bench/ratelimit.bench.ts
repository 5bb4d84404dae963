/**
 * `npm run bench` (second part): how much of HighLevel's burst budget the limiters use. A loopback
 * server enforces `BURST` requests per `WINDOW` ms (a sliding window over arrivals, 429 beyond it,
 * `X-RateLimit-*` headers); callers send `ROUNDS_OF_BUDGET` × the budget at once — through the
 * in-memory limiter in this process, then through the Redis-shared limiter from 3 processes that
 * start together. Throughput is the requests after the first burst over the time from the first
 * arrival to the last, in requests per window.
 * Targets: zero 429s; at most BURST arrivals in any window; throughput within 10 % of the budget
 * (≥ 0.9 × BURST per window). The tests assert the counts; only this bench judges the speed.
 *
 * `node --import tsx bench/ratelimit.bench.ts worker <json>` is one Redis process (internal).
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { Agent, request } from 'undici'
import { Redis } from 'ioredis'
import type { RateLimitSettings } from '../src/config.js'
import { MemoryRateLimiter, RedisRateLimiter, type RateLimiter } from '../src/ratelimit/index.js'
import { maxInWindow, startLimitedServer } from '../test/ratelimit/fixtures/limited-server.js'

const BURST = Number(process.env.BENCH_RL_BURST ?? 20)
const WINDOW = Number(process.env.BENCH_RL_WINDOW_MS ?? 1000)
const ROUNDS_OF_BUDGET = Number(process.env.BENCH_RL_BUDGETS ?? 6)
const RUNS = Number(process.env.BENCH_RL_RUNS ?? 3)
const PROCESSES = 3
const REDIS_URL = process.env.GHL_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
const settings: RateLimitSettings = { enabled: true, burstMax: BURST, burstWindowMs: WINDOW, dailyMax: 1e9, dailyWindowMs: 864e5, maxQueue: 1e6 }

/** Sends `count` requests at once through `limiter`; returns how many were answered 429. */
async function send(limiter: RateLimiter, url: string, resource: string, count: number): Promise<number> {
  const dispatcher = new Agent({ keepAliveTimeout: 30_000 })
  let limited = 0
  await Promise.all(Array.from({ length: count }, async () => {
    const permit = await limiter.acquire(resource, { deadline: Date.now() + 600_000 })
    let headers = {}
    try {
      const res = await request(`${url}/r/${resource}`, { dispatcher })
      await res.body.dump()
      headers = res.headers
      if (res.statusCode === 429) limited++
    } finally {
      await permit.release(headers)
    }
  }))
  await dispatcher.close()
  return limited
}

if (process.argv[2] === 'worker') {
  const args = JSON.parse(process.argv[3]!) as { url: string; prefix: string; resource: string; count: number }
  const redis = new Redis(REDIS_URL)
  const limiter = new RedisRateLimiter(settings, redis, { clientId: 'bench', keyPrefix: args.prefix })
  await redis.ping()
  process.stdout.write('ready\n')
  for await (const line of createInterface({ input: process.stdin })) if (line.trim() === 'go') break
  const limited = await send(limiter, args.url, args.resource, args.count)
  process.stdout.write(`${JSON.stringify({ limited })}\n`)
  await limiter.close()
  redis.disconnect()
  process.exit(0)
}

interface Outcome {
  limited: number
  arrivals: number[]
}

function summarize(name: string, o: Outcome): number {
  const t = o.arrivals
  const perWindow = ((t.length - BURST) / (t.at(-1)! - t[0]!)) * WINDOW
  const most = maxInWindow(t, WINDOW)
  console.log(`  ${name.padEnd(34)} ${t.length} accepted, ${o.limited} × 429, at most ${most} in a window; ${perWindow.toFixed(1)} per window of ${BURST} (${((perWindow / BURST) * 100).toFixed(1)} %)`)
  return perWindow / BURST
}

async function memoryRun(): Promise<Outcome> {
  const server = await startLimitedServer({ max: BURST, windowMs: WINDOW })
  const limiter = new MemoryRateLimiter(settings)
  try {
    const limited = await send(limiter, server.url, 'loc', BURST * ROUNDS_OF_BUDGET)
    return { limited, arrivals: server.accepted.get('loc') ?? [] }
  } finally {
    await limiter.close()
    await server.close()
  }
}

async function redisRun(): Promise<Outcome> {
  const server = await startLimitedServer({ max: BURST, windowMs: WINDOW })
  const prefix = `ghl:bench:${randomBytes(4).toString('hex')}:`
  const count = Math.ceil((BURST * ROUNDS_OF_BUDGET) / PROCESSES)
  const self = fileURLToPath(import.meta.url)
  try {
    const workers = Array.from({ length: PROCESSES }, () => {
      const child = spawn(process.execPath, ['--import', 'tsx', self, 'worker', JSON.stringify({ url: server.url, prefix, resource: 'loc', count })], { stdio: ['pipe', 'pipe', 'inherit'] })
      let out = ''
      let onReady: () => void
      const ready = new Promise<void>((r) => (onReady = r))
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString()
        if (out.includes('ready\n')) onReady()
      })
      const done = new Promise<number>((resolve, reject) => child.once('exit', (code) => {
        const line = out.split('\n').find((l) => l.startsWith('{'))
        if (code !== 0 || !line) reject(new Error(`worker exited ${code}`))
        else resolve((JSON.parse(line) as { limited: number }).limited)
      }))
      return { child, ready, done }
    })
    await Promise.all(workers.map((w) => w.ready))
    for (const w of workers) w.child.stdin.write('go\n')
    const limited = (await Promise.all(workers.map((w) => w.done))).reduce((a, b) => a + b, 0)
    return { limited, arrivals: server.accepted.get('loc') ?? [] }
  } finally {
    const redis = new Redis(REDIS_URL)
    const keys = await redis.keys(`${prefix}*`)
    if (keys.length) await redis.del(...keys)
    redis.disconnect()
    await server.close()
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
console.log(`\nrate-limit budget use: ${BURST} per ${WINDOW} ms, ${BURST * ROUNDS_OF_BUDGET} requests at once, ${RUNS} runs`)
const ratios = { memory: [] as number[], redis: [] as number[] }
let redisSkipped: string | undefined
const probe = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
try {
  await probe.connect()
} catch (err) {
  redisSkipped = (err as Error).message
} finally {
  probe.disconnect()
}
for (let run = 1; run <= RUNS; run++) {
  console.log(`run ${run}`)
  ratios.memory.push(summarize('memory limiter, 1 process', await memoryRun()))
  if (redisSkipped === undefined) ratios.redis.push(summarize(`redis limiter, ${PROCESSES} processes`, await redisRun()))
}
const verdict = (r: number): string => (r >= 0.9 && r <= 1.02 ? 'within 10 % of the budget' : r > 1.02 ? 'FASTER than the budget' : 'NOT within 10 % of the budget')
console.log(`median memory: ${(median(ratios.memory) * 100).toFixed(1)} % of the budget (${verdict(median(ratios.memory))})`)
if (redisSkipped === undefined) console.log(`median redis:  ${(median(ratios.redis) * 100).toFixed(1)} % of the budget (${verdict(median(ratios.redis))})`)
else console.log(`redis limiter: skipped (${redisSkipped})`)
