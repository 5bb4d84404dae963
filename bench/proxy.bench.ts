/**
 * `npm run bench:proxy`: what the proxy hop (`/proxy/locations/:id/…`) costs against calling the API
 * directly: the same `GET /contacts/c1`, 64 calls in flight, the sides of each part side by side in every
 * round (rounds rotating which side goes first), medians over the rounds. The sides: direct; through the
 * proxy with `LOG_LEVEL=info` (one line per request, formatted, redacted and written as `serve` does, to
 * /dev/null); through the proxy with logging off. The peers are in `bench/proxy-peers.ts`.
 *
 * The issue's target: "The proxy hop costs ≤ 30 % against a direct call with `LOG_LEVEL=info`", read
 * here as throughput proxy/direct ≥ 0.70, and for latency as an added p50 of at most 30 % of a direct
 * call's p50. The summary says which figures meet it.
 *
 * 1. In one process, CPU-bound: the upstream (answering at once), the proxies and the load generator
 *    all in this process. Throughput proxy/direct — the figure earlier runs reported — and, for
 *    comparison, the same through a bare proxy (`node:http` + undici and nothing else).
 * 2. As a sidecar: the upstream and each proxy in a child process of its own, the load generator here.
 *    a. CPU-bound (the upstream answers at once): the CPU time each process spends per request — the
 *       proxy process's µs per proxied call is what a sidecar costs. The proxies (info, silent, and with
 *       `--baseline` another checkout's) take their calls interleaved, so that they are compared under
 *       the same load at the same moments; the direct calls run before or after them.
 *    b. Latency: the upstream answers after 50 ms (as the scale bench's token endpoint does; HighLevel's
 *       API answers in tens to hundreds of ms over the internet). Throughput proxy/direct at 64 in flight,
 *       and the latency a caller sees, p50 and p99, with what the hop adds to each. The 64 calls move in
 *       step (sent together, answered together 50 ms later), so the proxy meets its answers as a burst:
 *       what the hop adds is about its CPU per call (2a) times the calls ahead in the burst.
 *
 * Why part 1 cannot reach 0.70: in one process a direct call costs the CPU of one HTTP client exchange
 * (C, the load generator's) and one server exchange (U, the upstream's); a proxied call costs both plus
 * the proxy's own server exchange and its client exchange to the upstream (P), all on the same cores.
 * So proxy/direct = (C + U) / (C + U + P), and since P holds one server and one client exchange, P is at
 * least about C + U: the ratio stays near or below 0.5 for any proxy — the bare proxy's figure in part 1
 * shows it. 0.70 would need P ≤ 0.43 × (C + U), a proxy cheaper than half a bare exchange. Part 2a
 * prints C, U and P as measured and the ratio they predict. What a deployment sees is part 2b.
 *
 * Options: `--requests N` per side per round in the CPU-bound parts (default 4000), `--rounds N`
 * (default 5), `--parts 1,2a,2b` (which parts to run), `--baseline DIR` (2a also measures, with
 * `LOG_LEVEL=info`, the proxy of the checkout in DIR — another commit, e.g. from `git archive <commit> |
 * tar -x -C DIR`, its `node_modules` linked to this one's: before and after in one run), `--cpu-prof-dir
 * DIR` (the proxy children write CPU profiles there, sampled every 100 µs). Figures on a shared 2-core
 * machine move by ±10 % from run to run; compare the sides of one run.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Agent, request } from 'undici'
import { ACCESS_TOKEN, LOCATION_ID, startBareProxy, startProxy, startUpstream, type Peer } from './proxy-peers.js'

const { values: args } = parseArgs({
  options: {
    requests: { type: 'string' },
    rounds: { type: 'string' },
    'cpu-prof-dir': { type: 'string' },
    parts: { type: 'string' },
    baseline: { type: 'string' },
  },
})
const PARTS = new Set((args.parts ?? '1,2a,2b').split(',').map((p) => p.trim()))
const CONCURRENCY = 64
const N = Number(args.requests ?? process.env.BENCH_REQUESTS ?? 4000)
const ROUNDS = Number(args.rounds ?? process.env.BENCH_ROUNDS ?? 5)
/** How long the upstream takes to answer in part 2b. */
const LATENCY_MS = 50
/** Requests per side per round in part 2b (at 64 in flight and 50 ms, ~1,300 a second at best). */
const N_LATENCY = Math.max(640, Math.round(N / 2))
const TARGET = 0.7
const apiKey = randomBytes(24).toString('base64url')
const agent = new Agent({ keepAliveTimeout: 60_000, connections: CONCURRENCY })

const pct = (xs: ArrayLike<number>, p: number): number => Array.from(xs).sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!
const median = (xs: number[]): number => pct(xs, 0.5)
const cpuMicros = (u: NodeJS.CpuUsage): number => u.user + u.system

interface Side {
  name: string
  one: () => Promise<void>
}

interface Run {
  rps: number
  p50: number
  p99: number
  /** CPU µs per request of this process, and of each child asked. */
  cpu: Map<string, number>
}

function direct(upstream: string, query = ''): Side {
  return {
    name: 'direct',
    one: async () => {
      const res = await request(`${upstream}/contacts/c1${query}`, { dispatcher: agent, headers: { authorization: `Bearer ${ACCESS_TOKEN}`, version: '2021-07-28' } })
      await res.body.text()
      if (res.statusCode !== 200) throw new Error(`direct answered ${res.statusCode}`)
    },
  }
}

function proxied(name: string, proxy: string, query = ''): Side {
  return {
    name,
    one: async () => {
      const res = await request(`${proxy}/proxy/locations/${LOCATION_ID}/contacts/c1${query}`, { dispatcher: agent, headers: { 'x-connector-key': apiKey, version: '2021-07-28' } })
      await res.body.text()
      if (res.statusCode !== 200) throw new Error(`proxy answered ${res.statusCode}`)
    },
  }
}

/** A peer in a child process (see proxy-peers.ts), with its CPU time on demand. */
interface ChildPeer extends Peer {
  cpu(): Promise<number>
}

async function spawnPeer(role: 'upstream' | 'proxy', argv: string[] = []): Promise<ChildPeer> {
  const profile = role === 'proxy' && args['cpu-prof-dir'] ? ['--cpu-prof', '--cpu-prof-dir', args['cpu-prof-dir'], '--cpu-prof-interval', '100'] : []
  const child: ChildProcess = fork(fileURLToPath(new URL('./proxy-peers.ts', import.meta.url)), [role, ...argv], { execArgv: ['--import', 'tsx', ...profile] })
  const [first] = (await once(child, 'message')) as [{ url: string }]
  return {
    url: first.url,
    async cpu() {
      child.send({ cpu: true })
      const [m] = (await once(child, 'message')) as [{ cpu: NodeJS.CpuUsage }]
      return cpuMicros(m.cpu)
    },
    async close() {
      child.send({ exit: true })
      await once(child, 'exit')
    },
  }
}

/** `n` calls, 64 at a time: throughput, latency, and CPU µs per request here and in each child given. */
async function run(side: Side, n: number, children: Record<string, ChildPeer> = {}): Promise<Run> {
  const names = Object.keys(children)
  const before = await Promise.all(names.map((k) => children[k]!.cpu()))
  const cpu0 = process.cpuUsage()
  const lat = new Float64Array(n)
  let next = 0
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < n) {
        const i = next++
        const t = performance.now()
        await side.one()
        lat[i] = performance.now() - t
      }
    }),
  )
  const wall = performance.now() - t0
  const cpu = new Map<string, number>([['this process', cpuMicros(process.cpuUsage(cpu0)) / n]])
  const after = await Promise.all(names.map((k) => children[k]!.cpu()))
  names.forEach((k, i) => cpu.set(k, (after[i]! - before[i]!) / n))
  return { rps: (n / wall) * 1000, p50: pct(lat, 0.5), p99: pct(lat, 0.99), cpu }
}

/** ROUNDS rounds of every side, rotating which goes first; each side's runs. */
async function rounds(title: string, sides: Side[], n: number, children: Record<string, ChildPeer> = {}): Promise<Map<string, Run[]>> {
  console.log(`\n${title}: ${n} requests per side per round, concurrency ${CONCURRENCY}, ${ROUNDS} rounds`)
  for (const side of sides) await run(side, Math.min(n, 1000)) // warm-up: connections, JIT
  const runs = new Map<string, Run[]>(sides.map((s) => [s.name, []]))
  for (let r = 0; r < ROUNDS; r++) {
    const line: string[] = []
    for (let i = 0; i < sides.length; i++) {
      const side = sides[(i + r) % sides.length]!
      const got = await run(side, n, children)
      runs.get(side.name)!.push(got)
      line.push(`${side.name} ${got.rps.toFixed(0)} req/s (p50 ${got.p50.toFixed(1)} ms)`)
    }
    console.log(`  round ${r + 1}: ${line.join(', ')}`)
  }
  return runs
}

/** Median over the rounds of proxy/direct throughput, each round's own direct as the base. */
function ratio(runs: Map<string, Run[]>, name: string): number {
  const d = runs.get('direct')!
  return median(runs.get(name)!.map((r, i) => r.rps / d[i]!.rps))
}
const cpuOf = (runs: Map<string, Run[]>, name: string, who: string): number => median(runs.get(name)!.map((r) => r.cpu.get(who)!))
const mid = (runs: Map<string, Run[]>, name: string, f: (r: Run) => number): number => median(runs.get(name)!.map(f))
const verdict = (ok: boolean): string => (ok ? 'meets it' : 'does not meet it')
const INFO = 'proxy info'
const SILENT = 'proxy silent'
const BARE = 'bare proxy'
const BASELINE = 'baseline info'

console.log(`bench:proxy — GET /contacts/c1 direct vs /proxy/locations/${LOCATION_ID}/contacts/c1; target: "the proxy hop costs ≤ 30 % against a direct call with LOG_LEVEL=info"`)

// 1. In one process, CPU-bound.
const summary: Array<[string, string, string]> = []
if (PARTS.has('1')) {
  const upstream = await startUpstream()
  const info = await startProxy({ apiUrl: upstream.url, apiKey, level: 'info' })
  const silent = await startProxy({ apiUrl: upstream.url, apiKey, level: 'silent' })
  const bare = await startBareProxy({ apiUrl: upstream.url })
  try {
    const sides = [direct(upstream.url), proxied(INFO, info.url), proxied(SILENT, silent.url), proxied(BARE, bare.url)]
    const runs = await rounds('1. one process, upstream answering at once (CPU-bound)', sides, N)
    const cpu = (name: string) => cpuOf(runs, name, 'this process').toFixed(0)
    console.log(`  CPU of this process per request: direct ${cpu('direct')} µs; proxied ${cpu(INFO)} µs (info), ${cpu(SILENT)} µs (silent), ${cpu(BARE)} µs (bare proxy)`)
    for (const [name, label] of [[INFO, 'LOG_LEVEL=info'], [SILENT, 'silent'], [BARE, 'a bare proxy (node:http + undici)']] as const) {
      const r = ratio(runs, name)
      summary.push([`1. one process, CPU-bound: throughput proxy/direct, ${label}`, r.toFixed(3), name === INFO ? `≥ ${TARGET}: ${verdict(r >= TARGET)}` : ''])
    }
  } finally {
    await info.close()
    await silent.close()
    await bare.close()
    await upstream.close()
  }
}

// 2. As a sidecar: each peer in its own process.
type Children = { upstream: ChildPeer; [INFO]: ChildPeer; [SILENT]: ChildPeer }

/**
 * `n` calls to each side at once, call i to side i mod k, 64 in flight: the sides meet the same machine
 * at the same moments (a shared 2-core machine moves by ±10 % from one second to the next). The CPU µs
 * per call of the child serving each side.
 */
async function interleaved(sides: Side[], n: number, children: Record<string, ChildPeer>): Promise<Map<string, number>> {
  const before = await Promise.all(sides.map((s) => children[s.name]!.cpu()))
  let next = 0
  const total = n * sides.length
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < total) await sides[next++ % sides.length]!.one()
    }),
  )
  const after = await Promise.all(sides.map((s) => children[s.name]!.cpu()))
  return new Map(sides.map((s, i) => [s.name, (after[i]! - before[i]!) / n]))
}

async function cpuBound(c: Children, baseline: ChildPeer | undefined): Promise<void> {
  const title = `2a. sidecar, upstream answering at once (CPU-bound): ${N} direct calls, then ${N} calls to each proxy interleaved (or the other way round), ${ROUNDS} rounds`
  console.log(`\n${title}`)
  const directSide = direct(c.upstream.url)
  const proxies = [proxied(INFO, c[INFO].url), proxied(SILENT, c[SILENT].url), ...(baseline ? [proxied(BASELINE, baseline.url)] : [])]
  const children: Record<string, ChildPeer> = { upstream: c.upstream, [INFO]: c[INFO], [SILENT]: c[SILENT], ...(baseline ? { [BASELINE]: baseline } : {}) }
  await run(directSide, 1000)
  await interleaved(proxies, 1000, children)
  const caller: number[] = []
  const upstream: number[] = []
  const proxy = new Map<string, number[]>(proxies.map((s) => [s.name, []]))
  for (let r = 0; r < ROUNDS; r++) {
    const measureDirect = async () => {
      const d = await run(directSide, N, { upstream: c.upstream })
      caller.push(d.cpu.get('this process')!)
      upstream.push(d.cpu.get('upstream')!)
    }
    if (r % 2 === 0) await measureDirect()
    const p = await interleaved(proxies, N, children)
    for (const [name, us] of p) proxy.get(name)!.push(us)
    if (r % 2 === 1) await measureDirect()
    console.log(`  round ${r + 1}: direct: caller ${caller.at(-1)!.toFixed(0)} µs, upstream ${upstream.at(-1)!.toFixed(0)} µs; ${[...p].map(([k, v]) => `${k} ${v.toFixed(0)} µs`).join(', ')}`)
  }
  const C = median(caller)
  const U = median(upstream)
  const p = median(proxy.get(INFO)!)
  const ps = median(proxy.get(SILENT)!)
  console.log(`  CPU per call: caller ${C.toFixed(0)} µs and upstream ${U.toFixed(0)} µs for a direct call; the proxy process ${p.toFixed(0)} µs (info), ${ps.toFixed(0)} µs (silent) per proxied call`)
  console.log(`  in one process that predicts proxy/direct = (C + U) / (C + U + P) = ${((C + U) / (C + U + p)).toFixed(3)} (info); ${TARGET} would need P ≤ ${(((C + U) * (1 - TARGET)) / TARGET).toFixed(0)} µs`)
  const perRound = (name: string) => median(proxy.get(name)!.map((x, i) => x / proxy.get(INFO)![i]!))
  summary.push(["2a. sidecar: the proxy process's CPU per proxied call, LOG_LEVEL=info", `${p.toFixed(0)} µs`, ''])
  summary.push(['2a. sidecar: the same, silent', `${ps.toFixed(0)} µs (${perRound(SILENT).toFixed(3)} × info)`, ''])
  if (baseline) {
    const b = median(proxy.get(BASELINE)!)
    summary.push([`2a. sidecar: the same, LOG_LEVEL=info, the baseline (${args.baseline})`, `${b.toFixed(0)} µs (this checkout: ${(1 / perRound(BASELINE)).toFixed(3)} × the baseline)`, ''])
  }
  summary.push(["2a. sidecar: a direct call's CPU, caller + upstream (C + U)", `${(C + U).toFixed(0)} µs`, ''])
}

async function latency(c: Children): Promise<void> {
  const q = `?delayMs=${LATENCY_MS}`
  const runs = await rounds(`2b. sidecar, upstream answering after ${LATENCY_MS} ms`, [direct(c.upstream.url, q), proxied(INFO, c[INFO].url, q), proxied(SILENT, c[SILENT].url, q)], N_LATENCY)
  const d = runs.get('direct')!
  const d50 = mid(runs, 'direct', (x) => x.p50)
  for (const [name, level] of [[INFO, 'info'], [SILENT, 'silent']] as const) {
    const r = ratio(runs, name)
    const added50 = median(runs.get(name)!.map((x, i) => x.p50 - d[i]!.p50))
    const added99 = median(runs.get(name)!.map((x, i) => x.p99 - d[i]!.p99))
    const isInfo = level === 'info'
    summary.push([`2b. ${LATENCY_MS} ms upstream: throughput proxy/direct, LOG_LEVEL=${level}`, r.toFixed(3), isInfo ? `≥ ${TARGET}: ${verdict(r >= TARGET)}` : ''])
    summary.push([
      `2b. ${LATENCY_MS} ms upstream: latency the hop adds, p50 / p99, LOG_LEVEL=${level}`,
      `+${added50.toFixed(1)} / +${added99.toFixed(1)} ms (direct p50 ${d50.toFixed(1)} ms)`,
      isInfo ? `p50 ≤ +${(d50 * (1 - TARGET)).toFixed(1)} ms (30 %): ${verdict(added50 <= d50 * (1 - TARGET))}` : '',
    ])
  }
}

if (PARTS.has('2a') || PARTS.has('2b')) {
  const upstream = await spawnPeer('upstream')
  const children: Children = { upstream, [INFO]: await spawnPeer('proxy', [upstream.url, apiKey, 'info']), [SILENT]: await spawnPeer('proxy', [upstream.url, apiKey, 'silent']) }
  const baseline = args.baseline && PARTS.has('2a') ? await spawnPeer('proxy', [upstream.url, apiKey, 'info', args.baseline]) : undefined
  try {
    if (PARTS.has('2a')) await cpuBound(children, baseline)
    await baseline?.close()
    if (PARTS.has('2b')) await latency(children)
  } finally {
    for (const child of Object.values(children)) await child.close()
  }
}
await agent.close()

console.log('\n| figure (medians over the rounds) | measured | target |\n|---|---|---|')
for (const [name, value, target] of summary) console.log(`| ${name} | ${value} | ${target} |`)
