/**
 * A deployment for the fault scenarios: the sandbox as HighLevel, a fresh PostgreSQL database reached
 * through a {@link TcpRelay}, optionally Redis through another relay (a unique key prefix is not
 * needed: the connector's keys carry the sandbox's random client id), and `ghl-connect serve`
 * processes on them. Signed webhooks come from the sandbox itself: they are sent to a capture server
 * and then replayed to the connector by the scenario, which times each answer.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import { once } from 'node:events'
import { request } from 'undici'
import { startSandbox, type Sandbox, type SandboxOptions } from '../../src/sandbox/index.js'
import { createPostgresDatabase, POSTGRES_URL, REDIS_URL, testKey } from '../helpers/services.js'
import { TcpRelay } from '../helpers/tcp-relay.js'
import { connectorEnv, startServe, timedRequest, type ServeProcess, type Timed } from '../helpers/serve-process.js'
import { approveAt, freePort, sandboxJson } from '../helpers/stack.js'

/** One signed webhook as HighLevel sent it: exact bytes and headers. */
export interface CapturedWebhook {
  body: Buffer
  headers: Record<string, string>
}

export interface Deployment {
  sandbox: Sandbox
  /** The database's URL straight to PostgreSQL (the test's own reads) and through the relay (the connector's). */
  directUrl: string
  relayedUrl: string
  pgRelay: TcpRelay
  redisRelay: TcpRelay | undefined
  key: string
  apiKey: string
  /** The settings of a `serve` on `port` (same key, API key, database for every process). */
  env(port: number, extra?: Record<string, string>): Record<string, string>
  /** Starts a `serve` on a free port with the deployment's settings plus `extra`. */
  serve(extra?: Record<string, string>): Promise<ServeProcess>
  /** Installs the app on a location through a server's /oauth/install → consent → /oauth/callback. */
  install(server: ServeProcess, locationId: string): Promise<void>
  /** A fresh signed webhook (ContactCreate for the location), as the sandbox signed it. */
  nextWebhook(locationId: string): Promise<CapturedWebhook>
  /** POSTs a captured webhook to a server, timed. */
  postWebhook(server: ServeProcess, hook: CapturedWebhook, limitMs: number): Promise<Timed>
  stats(): Promise<SandboxStatsLite>
  close(): Promise<void>
}

export interface SandboxStatsLite {
  token: { refresh_token: { ok: number; error: number }; authorization_code: { ok: number; error: number } }
  reconnect: { ok: number; error: number }
  api: { ok: number; error: number; rateLimited: number }
  faults: Record<string, number>
}

export interface DeploymentOptions {
  sandbox?: SandboxOptions
  /** Put Redis (through a relay) in the deployment: REDIS_URL is set for every `serve`. */
  redis?: boolean
}

export async function startDeployment(options: DeploymentOptions = {}): Promise<Deployment> {
  const sandbox = await startSandbox({
    port: 0,
    rateLimit: { burstMax: 1_000_000, burstWindowMs: 10_000, dailyMax: 100_000_000 },
    ...options.sandbox,
  })
  const db = await createPostgresDatabase()
  const pgTarget = new URL(POSTGRES_URL)
  const pgRelay = await TcpRelay.start({ host: pgTarget.hostname, port: Number(pgTarget.port || 5432) })
  const relayed = new URL(db.url)
  relayed.hostname = '127.0.0.1'
  relayed.port = String(pgRelay.port)
  let redisRelay: TcpRelay | undefined
  if (options.redis) {
    const r = new URL(REDIS_URL)
    redisRelay = await TcpRelay.start({ host: r.hostname, port: Number(r.port || 6379) })
  }
  const captured: CapturedWebhook[] = []
  const waiting: Array<(hook: CapturedWebhook) => void> = []
  const capture: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const hook = { body: Buffer.concat(chunks), headers: flatHeaders(req.headers) }
      const w = waiting.shift()
      if (w) w(hook)
      else captured.push(hook)
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  capture.listen(0, '127.0.0.1')
  await once(capture, 'listening')
  const captureUrl = `http://127.0.0.1:${(capture.address() as { port: number }).port}/hooks`
  const key = testKey()
  const apiKey = `fault-api-key-${Math.random().toString(36).slice(2)}xxxxxxxx`
  const redirects: string[] = []
  const servers: ServeProcess[] = []

  const env = (port: number, extra: Record<string, string> = {}): Record<string, string> => ({
    ...connectorEnv(sandbox, { databaseUrl: relayed.toString(), key, apiKey, redirectUri: `http://127.0.0.1:${port}/oauth/callback` }),
    ...(redisRelay ? { REDIS_URL: `redis://127.0.0.1:${redisRelay.port}` } : {}),
    ...extra,
  })

  return {
    sandbox,
    directUrl: db.url,
    relayedUrl: relayed.toString(),
    pgRelay,
    redisRelay,
    key,
    apiKey,
    env,
    serve: async (extra = {}) => {
      const port = await freePort()
      redirects.push(`http://127.0.0.1:${port}/oauth/callback`)
      sandbox.configureApp({ redirectUris: redirects, webhookUrl: captureUrl })
      const server = await startServe({ ...env(port, extra), PORT: String(port) })
      servers.push(server)
      return server
    },
    install: async (server, locationId) => {
      const start = await request(`${server.url}/oauth/install`)
      await start.body.dump()
      if (start.statusCode !== 302) throw new Error(`/oauth/install answered ${start.statusCode}`)
      const consentRedirect = await approveAt(sandbox, String(start.headers.location), { locationId, webhookTiming: 'none' })
      const callback = await request(consentRedirect)
      const html = await callback.body.text()
      if (callback.statusCode !== 200) throw new Error(`/oauth/callback answered ${callback.statusCode}: ${html.slice(0, 500)}`)
    },
    nextWebhook: async (locationId) => {
      const got = captured.shift()
      const next = got ? Promise.resolve(got) : new Promise<CapturedWebhook>((resolve) => waiting.push(resolve))
      if (!got) await sandboxJson(sandbox, 'POST', '/_sandbox/webhooks/send', { type: 'ContactCreate', locationId, id: `c-${Math.random().toString(36).slice(2)}` })
      return next
    },
    postWebhook: (server, hook, limitMs) =>
      timedRequest(`${server.url}/webhooks/highlevel`, { method: 'POST', headers: hook.headers, body: hook.body, limitMs }),
    stats: () => sandboxJson<SandboxStatsLite>(sandbox, 'GET', '/_sandbox/stats'),
    close: async () => {
      for (const s of servers) await s.kill()
      pgRelay.mode = 'pass'
      await pgRelay.close()
      await redisRelay?.close()
      capture.closeAllConnections()
      await new Promise<void>((resolve) => capture.close(() => resolve()))
      await sandbox.close()
      await db.drop()
    },
  }
}

/** The headers a webhook is verified with (content type and signatures), as strings. */
function flatHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {}
  for (const name of ['content-type', 'x-ghl-signature', 'x-wh-signature']) {
    const v = headers[name]
    if (typeof v === 'string') out[name] = v
  }
  return out
}

/** Authorization header of the connector API key. */
export function bearer(apiKey: string): Record<string, string> {
  return { authorization: `Bearer ${apiKey}` }
}
