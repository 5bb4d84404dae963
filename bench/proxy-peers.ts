/**
 * The two peers of `bench/proxy.bench.ts`, usable in the bench's own process or each in a child process
 * of its own (`node --import tsx bench/proxy-peers.ts upstream|proxy`, talking to the parent over IPC):
 *
 * - the upstream: a stand-in for HighLevel's API. Every path answers `200 {"ok":true}`, at once, or after
 *   `?delayMs=N` milliseconds (HighLevel answers in tens to hundreds of ms over the internet).
 * - the proxy: a connector (SQLite vault holding one location installation, limiter off) served by
 *   `buildServer()` as `ghl-connect serve` does, its log lines formatted, redacted and written as in
 *   production, to /dev/null.
 * - a bare proxy, for comparison: `node:http` and undici and nothing else.
 *
 * A child answers `{ cpu: true }` with its `process.cpuUsage()` and `{ exit: true }` by closing and
 * exiting (so that `--cpu-prof` writes its profile). A proxy child given a fifth argument loads the
 * library from that checkout instead of this one.
 */
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { destination } from 'pino'
import { Agent, request } from 'undici'

/** The installation the proxy serves, and the token it holds. */
export const LOCATION_ID = 'loc-proxy'
export const ACCESS_TOKEN = 'at.proxy'

export interface Peer {
  url: string
  close(): Promise<void>
}

const BODY = '{"ok":true}'

/** The upstream (see the file comment). */
export async function startUpstream(): Promise<Peer> {
  const server = createServer((req, res) => {
    req.resume()
    const answer = (): void => void res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length }).end(BODY)
    const q = req.url!.indexOf('?delayMs=')
    const delay = q < 0 ? 0 : Number(req.url!.slice(q + 9))
    if (delay > 0) setTimeout(answer, delay)
    else answer()
  })
  return listenPeer(server, 60_000)
}

/** Listens on a loopback port; the peer's close() drops its connections, then `after` runs. */
async function listenPeer(server: Server, keepAliveTimeout: number, after?: () => Promise<void>): Promise<Peer> {
  server.keepAliveTimeout = keepAliveTimeout
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections()
      server.close()
      await after?.()
    },
  }
}

/**
 * The floor any HTTP proxy stands on: a bare `node:http` server forwarding each request with undici's
 * `request()` and writing the answer back whole — no route table, API key, guard, token, limiter, log
 * line or error shapes. What it costs is what one more server exchange and one more client exchange cost.
 */
export async function startBareProxy(options: { apiUrl: string }): Promise<Peer> {
  const agent = new Agent({ keepAliveTimeout: 30_000, connections: 128 })
  const server = createServer(async (req, res) => {
    const path = req.url!.slice(req.url!.indexOf('/', '/proxy/locations/'.length))
    const answer = await request(`${options.apiUrl}${path}`, { dispatcher: agent, headers: { authorization: `Bearer ${ACCESS_TOKEN}`, version: String(req.headers.version) } })
    const body = Buffer.from(await answer.body.arrayBuffer())
    res.writeHead(answer.statusCode, { 'content-type': String(answer.headers['content-type']), 'content-length': body.length }).end(body)
  })
  return listenPeer(server, 72_000, () => agent.close())
}

/**
 * The proxy (see the file comment), in front of `apiUrl`, requiring `apiKey`: this checkout's, or, with
 * `root`, the one of another checkout of the project (its `src/`), to compare two versions side by side.
 */
export async function startProxy(options: { apiUrl: string; apiKey: string; level: 'info' | 'silent'; root?: string }): Promise<Peer> {
  const src = options.root === undefined ? new URL('../src/', import.meta.url) : pathToFileURL(join(options.root, 'src/'))
  const { loadConfig } = (await import(new URL('config.js', src).href)) as typeof import('../src/config.js')
  const { createConnector } = (await import(new URL('connector.js', src).href)) as typeof import('../src/connector.js')
  const { createLogger, batchedDestination } = (await import(new URL('logger.js', src).href)) as Partial<typeof import('../src/logger.js')> & Pick<typeof import('../src/logger.js'), 'createLogger'>
  const { buildServer } = (await import(new URL('server/index.js', src).href)) as typeof import('../src/server/index.js')
  const dir = mkdtempSync(join(tmpdir(), 'ghl-proxy-bench-'))
  const config = loadConfig({
    env: {
      GHL_CLIENT_ID: 'proxyapp0000000000000000-bench123',
      GHL_CLIENT_SECRET: 'bench-secret',
      GHL_REDIRECT_URI: 'http://127.0.0.1:1/oauth/callback',
      GHL_SCOPES: 'contacts.readonly locations.readonly',
      GHL_API_URL: options.apiUrl,
      GHL_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      DATABASE_URL: join(dir, 'proxy.db'),
      // HighLevel's budget (100 calls per 10 s per location) would be the bottleneck, not the hop.
      GHL_RATE_LIMIT: 'false',
      GHL_CONNECTOR_API_KEY: options.apiKey,
      LOG_LEVEL: options.level,
    },
  })
  // Lines are formatted, redacted and written as `ghl-connect serve` does, to /dev/null instead of stdout
  // (a checkout from before batchedDestination wrote them through pino's asynchronous destination).
  const logger = createLogger({ level: options.level, destination: batchedDestination ? batchedDestination('/dev/null') : destination({ dest: '/dev/null', sync: false }) })
  const connector = await createConnector({ config, logger, background: false })
  await connector.vault.installations.upsert({
    clientId: config.clientId,
    companyId: 'co-proxy',
    locationId: LOCATION_ID,
    userType: 'Location',
    scopes: ['contacts.readonly', 'locations.readonly'],
    source: 'oauth',
    tokens: { accessToken: ACCESS_TOKEN, refreshToken: 'rt.loc-proxy.co-proxy.0', expiresAt: new Date(Date.now() + 20 * 3600_000) },
  })
  const app = await buildServer(connector)
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  return {
    url,
    async close() {
      await app.close()
      await connector.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

// As a child process: start the peer named on the command line, report its URL, answer the parent.
if (process.argv[1] === fileURLToPath(import.meta.url) && process.send) {
  const [role, apiUrl, apiKey, level, root] = process.argv.slice(2)
  const peer = role === 'upstream' ? await startUpstream() : await startProxy({ apiUrl: apiUrl!, apiKey: apiKey!, level: level as 'info' | 'silent', root })
  process.on('message', async (m: { cpu?: boolean; exit?: boolean }) => {
    if (m.cpu) process.send!({ cpu: process.cpuUsage() })
    if (m.exit) {
      await peer.close()
      process.disconnect()
      process.exit(0)
    }
  })
  process.send({ url: peer.url })
}
