/**
 * `npm run bench:console`: the operator console with 100,000 installations (SQLite by default;
 * `BENCH_DATABASE_URL=postgres://…` for PostgreSQL): the first screen (`GET /`), search by the start
 * of a name, by an id, filters, the next page, and the JSON API — each request timed end to end over
 * HTTP against a real server, 20 times after a warm-up, median and p95 printed.
 * Targets (issue 10): first screen < 200 ms, search < 300 ms.
 *
 * The rows are written straight into the table in one transaction (a real install row as the
 * template; copies hold no token): the page reads summaries only, never tokens.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { createConnector } from '../src/connector.js'
import { loadConfig } from '../src/config.js'
import { buildServer } from '../src/server/app.js'

const N = Number(process.env.BENCH_INSTALLATIONS ?? 100_000)
const RUNS = Number(process.env.BENCH_RUNS ?? 20)
const WORDS = ['Acme', 'Blue', 'Cedar', 'Delta', 'Echo', 'Falcon', 'Granite', 'Harbor', 'Indigo', 'Juniper', 'Kestrel', 'Lumen', 'Maple', 'Nova', 'Orchid', 'Pioneer']
const TRADES = ['Dental', 'Fitness', 'Roofing', 'Realty', 'Law', 'Spa', 'Auto', 'Bakery']

const dir = mkdtempSync(join(tmpdir(), 'ghl-console-bench-'))
const databaseUrl = process.env.BENCH_DATABASE_URL ?? join(dir, 'console.db')
const server = createServer()
server.listen(0, '127.0.0.1')
await once(server, 'listening')
const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
const config = loadConfig({
  env: {
    GHL_CLIENT_ID: 'benchapp000000000000000b-console1',
    GHL_CLIENT_SECRET: 'bench-secret',
    GHL_REDIRECT_URI: `${url}/oauth/callback`,
    GHL_SCOPES: 'contacts.readonly',
    GHL_API_URL: 'http://127.0.0.1:9',
    GHL_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    GHL_CONNECTOR_API_KEY: 'bench-api-key-0123456789',
    DATABASE_URL: databaseUrl,
    LOG_LEVEL: 'silent',
  },
})
const connector = await createConnector({ config, background: false })
const vault = connector.vault
const template = await vault.installations.upsert({
  clientId: config.clientId,
  companyId: 'co-template',
  locationId: 'loc-template',
  userType: 'Location',
  scopes: ['contacts.readonly'],
  source: 'oauth',
  locationName: 'Template Location',
  tokens: { accessToken: 'a', refreshToken: 'r', expiresAt: new Date(Date.now() + 86_400_000) },
})

// A second connection for the bulk insert (a benchmark's shortcut, not an API).
const kysely = await openKysely(databaseUrl)
const base = await kysely.selectFrom('installations').selectAll().where('id', '=', template.id).executeTakeFirstOrThrow()
const t0 = performance.now()
const now = Date.now()
const statuses = ['active', 'active', 'active', 'active', 'active', 'active', 'active', 'needs_reauthorization', 'suspended', 'uninstalled'] as const
let sample = { name: '', locationId: '', id: '' }
await kysely.transaction().execute(async (trx) => {
for (let start = 0; start < N; start += 200) {
  const rows = []
  for (let i = start; i < Math.min(N, start + 200); i++) {
    const id = randomUUID()
    const agency = i % 50 === 0
    const locationId = agency ? null : `loc${String(i).padStart(7, '0')}`
    const companyId = `co${String(Math.floor(i / 20)).padStart(6, '0')}`
    const name = `${WORDS[i % WORDS.length]} ${TRADES[(i >> 4) % TRADES.length]} ${i}`
    if (i === Math.floor(N / 2) + 1) sample = { name, locationId: locationId ?? companyId, id }
    rows.push({
      ...base,
      id,
      company_id: companyId,
      location_id: locationId,
      resource_key: agency ? `company:${companyId}` : `location:${locationId}`,
      user_type: agency ? ('Company' as const) : ('Location' as const),
      source: i % 7 === 0 && !agency ? ('agency' as const) : ('oauth' as const),
      status: statuses[i % statuses.length]!,
      plan_id: `plan-${i % 5}`,
      access_token: null,
      refresh_token: null,
      key_id: null,
      location_name: agency ? null : name,
      company_name: `${WORDS[(i >> 2) % WORDS.length]} Agency ${Math.floor(i / 20)}`,
      expires_at: now + (i % 86_400) * 1000,
      created_at: now - (N - i) * 1000,
      updated_at: now,
    })
  }
  await trx.insertInto('installations').values(rows as never).execute()
}
})
await kysely.destroy()
console.log(`${N.toLocaleString('en-US')} installations written in ${((performance.now() - t0) / 1000).toFixed(1)} s (${vault.dialect})`)

const app = await buildServer(connector, { server })
await app.ready()

async function time(path: string, headers: Record<string, string> = {}): Promise<{ median: number; p95: number; bytes: number; status: number }> {
  const get = async () => {
    const res = await request(`${url}${path}`, { headers })
    const body = await res.body.text()
    return { status: res.statusCode, bytes: body.length }
  }
  for (let i = 0; i < 3; i++) await get()
  const ms: number[] = []
  let last = { status: 0, bytes: 0 }
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now()
    last = await get()
    ms.push(performance.now() - t)
  }
  ms.sort((a, b) => a - b)
  return { median: ms[Math.floor(ms.length / 2)]!, p95: ms[Math.floor(ms.length * 0.95)]!, ...last }
}

const first = await request(`${url}/`)
const cursor = /id="next-page" rel="next" href="\/\?cursor=([^"&]+)/.exec(await first.body.text())?.[1]
const key = { authorization: 'Bearer bench-api-key-0123456789' }
const cases: Array<[string, string, Record<string, string>?, number?]> = [
  ['first screen  GET /', '/', undefined, 200],
  ['search: two-word prefix', `/?search=${encodeURIComponent(sample.name.split(' ').slice(0, 2).join(' '))}`, undefined, 300],
  ['search: exact name', `/?search=${encodeURIComponent(sample.name)}`, undefined, 300],
  ['search: location id', `/?search=${sample.locationId}`, undefined, 300],
  ['search: installation id', `/?search=${sample.id}`, undefined, 300],
  ['search: no match', '/?search=zzzz', undefined, 300],
  ['filter: status', '/?status=needs_reauthorization', undefined, 300],
  ['filter: kind agency', '/?kind=agency', undefined, 300],
  ['filter: plan + status', '/?plan=plan-3&status=active', undefined, 300],
  ['next page', `/?cursor=${cursor ?? ''}`, undefined, 300],
  ['API: list', '/api/installations', key, 300],
  ['API: search (one word)', `/api/installations?search=${encodeURIComponent(sample.name.split(' ')[0]!)}`, key, 300],
]
console.log(`\n${RUNS} requests each after 3 warm-up, over HTTP (median / p95):`)
for (const [name, path, headers, target] of cases) {
  const r = await time(path, headers)
  console.log(`  ${name.padEnd(26)} ${r.median.toFixed(1).padStart(7)} ms  p95 ${r.p95.toFixed(1).padStart(7)} ms   ${String(r.status)} ${(r.bytes / 1024).toFixed(0)} KiB   target < ${target} ms ${r.median < (target ?? 0) ? 'ok' : 'MISSED'}`)
}

await app.close()
server.closeAllConnections()
server.close()
await connector.close()
if (process.env.BENCH_KEEP) console.log(`kept ${databaseUrl}`)
else rmSync(dir, { recursive: true, force: true })

async function openKysely(databaseUrl: string) {
  const { Kysely, SqliteDialect, PostgresDialect } = await import('kysely')
  type DB = import('../src/vault/schema.js').VaultDatabase
  if (/^postgres(ql)?:/.test(databaseUrl)) {
    const pg = (await import('pg')).default
    return new Kysely<DB>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: databaseUrl, max: 2 }) }) })
  }
  const Database = (await import('better-sqlite3')).default
  return new Kysely<DB>({ dialect: new SqliteDialect({ database: new Database(databaseUrl) }) })
}
