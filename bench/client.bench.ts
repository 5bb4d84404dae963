/**
 * `npm run bench`: raw undici `request()` vs the connector's untyped `ghl.location(id).get()` vs its
 * typed `ghl.location(id).GET('/contacts/{contactId}', …)` (operation lookup, Version, token-kind and
 * scope checks) — a real connector (token service over a SQLite vault holding an installation with its
 * scopes, limiter off) — and the client on a static token, against a local keep-alive server,
 * concurrency 64, rounds rotating which side goes first; then the limiter's own cost and the proxy's
 * operation lookup (matchOperation); then the limiter's cost, raw undici and the client without a
 * limiter, with the in-memory one and with the Redis-shared one side by side in each round; then the
 * console's call recorder on vs off (`recordCalls`), by CPU per call, with an off-vs-off control.
 * Targets: typed ≥ 0.95 × untyped, typed and untyped ≥ 0.85 × raw undici; the Redis limiter costs
 * ≤ 15 % of the client's throughput (redis/off ≥ 0.85) with at most one Redis round trip per call;
 * recorder on ≥ 0.97 × off.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createConnector } from '../src/connector.js'
import { loadConfig } from '../src/config.js'
import { createServer } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { Agent, request } from 'undici'
import { Redis } from 'ioredis'
import { HighLevelClient } from '../src/client/index.js'
import { matchOperation } from '../src/api/matcher.js'
import { API_OPERATIONS } from '../src/api/operation.js'
import { MemoryRateLimiter, RedisRateLimiter, type RateLimiter } from '../src/ratelimit/index.js'
import type { RateLimitSettings } from '../src/config.js'
import type { AccessGrant, TokenProvider } from '../src/tokens/types.js'

const CONCURRENCY = 64
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 20_000)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)

const body = '{"ok":true}'
const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length })
  res.end(body)
})
server.keepAliveTimeout = 60_000
server.listen(0, '127.0.0.1')
await once(server, 'listening')
const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

const grant: AccessGrant = { accessToken: 'bench-token', installationId: 'i', version: 1, expiresAt: Date.now() + 3600_000, resourceId: 'loc-bench', scopes: [], userType: 'Location' }
const tokens: TokenProvider = { getAccessToken: async () => grant, onUnauthorized: async () => grant, invalidate: () => {} }
const huge: RateLimitSettings = { enabled: true, burstMax: 1e9, burstWindowMs: 10_000, dailyMax: 1e9, dailyWindowMs: 864e5, maxQueue: 1e6 }

async function run(name: string, one: () => Promise<unknown>, n = REQUESTS): Promise<{ name: string; rps: number; p50: number; p99: number }> {
  const lat = new Float64Array(n)
  let next = 0
  const start = performance.now()
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < n) {
      const i = next++
      const t = performance.now()
      await one()
      lat[i] = performance.now() - t
    }
  }))
  const total = performance.now() - start
  lat.sort()
  return { name, rps: (n / total) * 1000, p50: lat[Math.floor(n * 0.5)]!, p99: lat[Math.floor(n * 0.99)]! }
}
const show = (r: { name: string; rps: number; p50: number; p99: number }): string =>
  `${r.name.padEnd(30)} ${r.rps.toFixed(0).padStart(7)} req/s   p50 ${r.p50.toFixed(2)} ms   p99 ${r.p99.toFixed(2)} ms`

const rawAgent = new Agent({ keepAliveTimeout: 60_000 })
// The same request on every side: GET /contacts/{contactId} (get-contact, Version 2021-07-28).
const raw = async (): Promise<unknown> => {
  const res = await request(`${origin}/contacts/c-bench`, { dispatcher: rawAgent, headers: { authorization: 'Bearer bench-token', version: '2021-07-28', accept: 'application/json' } })
  return res.body.json()
}
function clientCall(limiter?: RateLimiter): { call: () => Promise<unknown>; close: () => Promise<void> } {
  const client = new HighLevelClient({ baseUrl: origin, apiVersion: '2021-07-28', tokens, limiter })
  const loc = client.forTarget({ kind: 'location', id: 'loc-bench' })
  return { call: () => loc.get('/contacts/c-bench'), close: () => client.close() }
}

const plain = clientCall()

// The real path: createConnector() with a SQLite vault holding one installation whose token is fresh.
const dataDir = mkdtempSync(join(tmpdir(), 'ghl-bench-'))
const ghl = await createConnector({
  background: false,
  config: loadConfig({
    env: {
      GHL_CLIENT_ID: 'benchapp000000000000000a-bench123',
      GHL_CLIENT_SECRET: 'bench-secret',
      GHL_REDIRECT_URI: 'http://127.0.0.1:1/oauth/callback',
      GHL_SCOPES: 'contacts.readonly',
      GHL_API_URL: origin,
      GHL_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      DATABASE_URL: join(dataDir, 'bench.db'),
      GHL_RATE_LIMIT: 'false',
    },
  }),
})
await ghl.vault.installations.upsert({
  clientId: ghl.config.clientId, companyId: 'co-bench', locationId: 'loc-bench', userType: 'Location', scopes: ['locations.readonly', 'contacts.write', 'contacts.readonly'], source: 'oauth',
  tokens: { accessToken: 'bench-token', refreshToken: 'bench-refresh', expiresAt: new Date(Date.now() + 24 * 3600_000) },
})
const untypedCall = (): Promise<unknown> => ghl.location('loc-bench').get('/contacts/c-bench')
const typedCall = (): Promise<unknown> => ghl.location('loc-bench').GET('/contacts/{contactId}', { params: { path: { contactId: 'c-bench' } } })
const check = (await ghl.location('loc-bench').GET('/contacts/{contactId}', { params: { path: { contactId: 'c-bench' } } })) as { response: { status: number } }
if (check.response.status !== 200) throw new Error(`typed call answered ${check.response.status}`)

const sides: Array<[string, () => Promise<unknown>]> = [
  ['raw undici request()', raw],
  ['ghl.location(id).get()', untypedCall],
  ['ghl.location(id).GET() typed', typedCall],
  ['client, static token', plain.call],
]
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

console.log(`server ${origin}; ${REQUESTS} requests per round, concurrency ${CONCURRENCY}, ${ROUNDS} rounds (after warm-up)`)
for (const [name, one] of sides) await run(`warm-up ${name}`, one, 5000)
const ratios = { typedUntyped: [] as number[], typedRaw: [] as number[], untypedRaw: [] as number[] }
for (let round = 1; round <= ROUNDS; round++) {
  // Rotate which side goes first, so none always runs on the warmer (or noisier) part of the round.
  const order = sides.map((_, i) => sides[(i + round - 1) % sides.length]!)
  const results = new Map<string, Awaited<ReturnType<typeof run>>>()
  for (const [name, one] of order) results.set(name, await run(name, one))
  const [r, u, t, c] = sides.map(([name]) => results.get(name)!)
  ratios.typedUntyped.push(t!.rps / u!.rps)
  ratios.typedRaw.push(t!.rps / r!.rps)
  ratios.untypedRaw.push(u!.rps / r!.rps)
  console.log(
    `round ${round} (first: ${order[0]![0]})\n  ${show(r!)}\n  ${show(u!)}\n  ${show(t!)}\n  ${show(c!)}\n` +
      `  typed/untyped: ${(t!.rps / u!.rps).toFixed(3)}   typed/raw: ${(t!.rps / r!.rps).toFixed(3)}   untyped/raw: ${(u!.rps / r!.rps).toFixed(3)}`,
  )
}
console.log(`median typed/untyped: ${median(ratios.typedUntyped).toFixed(3)} (target ≥ 0.95)`)
console.log(`median typed/raw:     ${median(ratios.typedRaw).toFixed(3)} (target ≥ 0.85)`)
console.log(`median untyped/raw:   ${median(ratios.untypedRaw).toFixed(3)} (target ≥ 0.85)`)

// The console's call recorder (last calls, per-minute counts, counters flushed in batches, metrics):
// the same connector set-up on the same database with `recordCalls: false`, side by side, and a second
// connector without it as a control (the noise floor: two identical sides differ by this much). Besides
// req/s, the process's CPU time per call: on a machine shared with other work wall-clock rates swing by
// ±20 % from round to round, while CPU per call (client + the local server, the same on every side) is
// what bounds the throughput of a busy process.
console.log('\nrecorder cost (ghl.location(id).get(), recordCalls on vs off, and off vs off as a control)')
const ghlOff = await createConnector({ background: false, recordCalls: false, config: ghl.config })
const ghlControl = await createConnector({ background: false, recordCalls: false, config: ghl.config })
const offCall = (): Promise<unknown> => ghlOff.location('loc-bench').get('/contacts/c-bench')
const controlCall = (): Promise<unknown> => ghlControl.location('loc-bench').get('/contacts/c-bench')
await run('warm-up', offCall, 5000)
await run('warm-up', controlCall, 5000)
const withCpu = async (name: string, one: () => Promise<unknown>) => {
  const c0 = process.cpuUsage()
  const r = await run(name, one)
  const c = process.cpuUsage(c0)
  return { ...r, cpuUs: (c.user + c.system) / REQUESTS }
}
const recorderSides: Array<[string, () => Promise<unknown>]> = [['recorder on', untypedCall], ['recorder off', offCall], ['control (off)', controlCall]]
const onOff: number[] = []
const controlOff: number[] = []
for (let round = 1; round <= ROUNDS * 2; round++) {
  const order = recorderSides.map((_, i) => recorderSides[(i + round - 1) % recorderSides.length]!)
  const results = new Map<string, Awaited<ReturnType<typeof withCpu>>>()
  for (const [name, one] of order) results.set(name, await withCpu(name, one))
  const [on, off, control] = recorderSides.map(([name]) => results.get(name)!)
  onOff.push(off!.cpuUs / on!.cpuUs)
  controlOff.push(off!.cpuUs / control!.cpuUs)
  console.log(
    `  ${show(on!)}   cpu ${on!.cpuUs.toFixed(1)} µs/call\n  ${show(off!)}   cpu ${off!.cpuUs.toFixed(1)} µs/call\n  ${show(control!)}   cpu ${control!.cpuUs.toFixed(1)} µs/call\n` +
      `  throughput by CPU per call: on/off ${(off!.cpuUs / on!.cpuUs).toFixed(3)}, control/off ${(off!.cpuUs / control!.cpuUs).toFixed(3)}`,
  )
}
console.log(`median recorder on/off by CPU per call: ${median(onOff).toFixed(3)} (target ≥ 0.97); control/off: ${median(controlOff).toFixed(3)} (the noise floor)`)
await ghlControl.close()
await ghlOff.close()
await ghl.close()
rmSync(dataDir, { recursive: true, force: true })

// The limiter's cost, side by side in each round: raw undici, the client without a limiter, with the
// in-memory limiter, and with the Redis-shared one (a huge budget, so only the cost is measured).
console.log('\nlimiter cost (client on a static token; limiter off, in memory, in Redis with a huge budget)')
const memLimiter = new MemoryRateLimiter(huge)
const withMem = clientCall(memLimiter)
const redis = new Redis(process.env.GHL_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
const redisPrefix = `ghl:bench:${Date.now()}:`
let redisLimiter: RedisRateLimiter | undefined
let withRedis: ReturnType<typeof clientCall> | undefined
let scriptCalls = 0
try {
  await redis.connect()
  redisLimiter = new RedisRateLimiter(huge, redis, { clientId: 'bench', keyPrefix: redisPrefix })
  // Count the limiter's Redis round trips (its one script).
  const sync = redis.ghlRateSync.bind(redis)
  redis.ghlRateSync = ((...args: Array<string | number>) => {
    scriptCalls++
    return sync(...args)
  }) as typeof redis.ghlRateSync
  withRedis = clientCall(redisLimiter)
} catch (err) {
  console.log(`  redis limiter: skipped (${(err as Error).message})`)
}
const limiterSides: Array<[string, () => Promise<unknown>]> = [
  ['raw undici request()', raw],
  ['client, limiter off', plain.call],
  ['client, memory limiter', withMem.call],
  ...(withRedis ? [['client, redis limiter', withRedis.call] as [string, () => Promise<unknown>]] : []),
]
for (const [name, one] of limiterSides) await run(`warm-up ${name}`, one, 5000)
const limiterRatios = { memOff: [] as number[], redisOff: [] as number[], redisRaw: [] as number[], memRaw: [] as number[], perCall: [] as number[] }
// Each round runs the sides in short slices, one after the other, many times over: a burst of noise
// from the rest of the machine then falls on every side alike instead of on one whole run.
const SLICES = 10
for (let round = 1; round <= ROUNDS; round++) {
  const order = limiterSides.map((_, i) => limiterSides[(i + round - 1) % limiterSides.length]!)
  const slices = new Map<string, Array<Awaited<ReturnType<typeof run>>>>(limiterSides.map(([name]) => [name, []]))
  const before = scriptCalls
  for (let slice = 0; slice < SLICES; slice++) {
    for (const [name, one] of order) slices.get(name)!.push(await run(name, one, REQUESTS / SLICES))
  }
  if (withRedis) limiterRatios.perCall.push((scriptCalls - before) / REQUESTS)
  const results = new Map<string, Awaited<ReturnType<typeof run>>>()
  for (const [name, parts] of slices) {
    // Throughput over the summed time of the slices; latency percentiles: their medians.
    const seconds = parts.reduce((t, p) => t + REQUESTS / SLICES / p.rps, 0)
    results.set(name, { name, rps: REQUESTS / seconds, p50: median(parts.map((p) => p.p50)), p99: median(parts.map((p) => p.p99)) })
  }
  const r = results.get('raw undici request()')!
  const off = results.get('client, limiter off')!
  const mem = results.get('client, memory limiter')!
  const red = results.get('client, redis limiter')
  limiterRatios.memOff.push(mem.rps / off.rps)
  limiterRatios.memRaw.push(mem.rps / r.rps)
  let line = `  memory/off: ${(mem.rps / off.rps).toFixed(3)}   memory/raw: ${(mem.rps / r.rps).toFixed(3)}`
  if (red) {
    limiterRatios.redisOff.push(red.rps / off.rps)
    limiterRatios.redisRaw.push(red.rps / r.rps)
    line += `   redis/off: ${(red.rps / off.rps).toFixed(3)}   redis/raw: ${(red.rps / r.rps).toFixed(3)}   Redis calls per call: ${limiterRatios.perCall.at(-1)!.toFixed(3)}`
  }
  console.log(`round ${round} (first: ${order[0]![0]})\n${limiterSides.map(([name]) => `  ${show(results.get(name)!)}`).join('\n')}\n${line}`)
}
console.log(`median memory/off: ${median(limiterRatios.memOff).toFixed(3)}   memory/raw: ${median(limiterRatios.memRaw).toFixed(3)}`)
if (withRedis) {
  console.log(`median redis/off:  ${median(limiterRatios.redisOff).toFixed(3)} (target ≥ 0.85)   redis/raw: ${median(limiterRatios.redisRaw).toFixed(3)}   Redis calls per call: ${median(limiterRatios.perCall).toFixed(3)} (target ≤ 1)`)
}
await withMem.close()
await memLimiter.close()
if (withRedis) await withRedis.close()
if (redisLimiter) await redisLimiter.close()
if (redis.status === 'ready') {
  const keys = await redis.keys(`${redisPrefix}*`)
  if (keys.length) await redis.del(...keys)
}
redis.disconnect()

// The proxy's lookup: one match per proxied request.
const probes = API_OPERATIONS.map((op) => [op.method, `${op.path.replace(/\{[^}]+\}/g, 'x1')}?locationId=loc-bench`] as const)
const LOOKUPS = 1_000_000
for (let i = 0; i < 100_000; i++) matchOperation(probes[i % probes.length]![0], probes[i % probes.length]![1])
let found = 0
const t0 = performance.now()
for (let i = 0; i < LOOKUPS; i++) if (matchOperation(probes[i % probes.length]![0], probes[i % probes.length]![1])) found++
const perLookup = ((performance.now() - t0) * 1e6) / LOOKUPS
console.log(`\nmatchOperation: ${LOOKUPS} lookups over the ${probes.length} operations' paths, ${perLookup.toFixed(0)} ns each (${found} found)`)

await plain.close()
await rawAgent.close()
server.closeAllConnections()
server.close()
