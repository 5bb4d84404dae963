/**
 * A token endpoint for scale runs: `POST /oauth/token` (refresh-token grant) on a loopback server on
 * port 0, answering after `latencyMs` like HighLevel's, rotating refresh tokens — a used one is refused
 * with `invalid_grant`, as HighLevel does — and counting what it was asked. The sandbox is HighLevel's
 * side everywhere else; here the installations are seeded straight into the vault (100,000 of them), so
 * the refresh tokens are ones this server can read: `rt.<locationId>.<companyId>.<n>`. Every other path
 * answers `200 {"ok":true}` at once (an API call).
 */
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

export interface ScaleTokenEndpoint {
  url: string
  /** Refresh grants answered with new tokens. */
  readonly refreshed: number
  /** Refresh tokens presented a second time (a double refresh): must stay 0. */
  readonly reused: number
  /** Refreshes per location id. */
  readonly perLocation: Map<string, number>
  /** Most requests in flight at once. */
  readonly peakInFlight: number
  /** Requests in flight now. */
  readonly inFlight: number
  close(): Promise<void>
}

/** A refresh token this endpoint accepts for a seeded installation. */
export function seededRefreshToken(locationId: string, companyId: string): string {
  return `rt.${locationId}.${companyId}.0`
}

export async function startTokenEndpoint(options: { latencyMs: number }): Promise<ScaleTokenEndpoint> {
  const used = new Set<string>()
  const perLocation = new Map<string, number>()
  let refreshed = 0
  let reused = 0
  let inFlight = 0
  let peakInFlight = 0
  let serial = 0
  const server: Server = createServer((req, res) => {
    if (!req.url?.startsWith('/oauth/')) {
      // Any other path stands for a HighLevel API answering at once (the calls of the benchmark).
      req.resume()
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': 11 }).end('{"ok":true}')
      return
    }
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', async () => {
      inFlight++
      peakInFlight = Math.max(peakInFlight, inFlight)
      try {
        await sleep(options.latencyMs)
        const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'))
        const token = form.get('refresh_token') ?? ''
        const [, locationId, companyId] = token.split('.')
        if (req.url !== '/oauth/token' || form.get('grant_type') !== 'refresh_token' || !locationId || !companyId) {
          res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"invalid_request"}')
          return
        }
        if (used.has(token)) {
          reused++
          res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"invalid_grant","error_description":"refresh token already used"}')
          return
        }
        used.add(token)
        refreshed++
        perLocation.set(locationId, (perLocation.get(locationId) ?? 0) + 1)
        const n = ++serial
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            access_token: `at.${locationId}.${n}`,
            token_type: 'Bearer',
            expires_in: 86_399,
            refresh_token: `rt.${locationId}.${companyId}.${n}`,
            scope: 'contacts.readonly locations.readonly',
            userType: 'Location',
            companyId,
            locationId,
            userId: 'user-scale',
          }),
        )
      } finally {
        inFlight--
      }
    })
  })
  server.keepAliveTimeout = 60_000
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get refreshed() {
      return refreshed
    },
    get reused() {
      return reused
    },
    perLocation,
    get peakInFlight() {
      return peakInFlight
    },
    get inFlight() {
      return inFlight
    },
    async close() {
      server.closeAllConnections()
      server.close()
      await once(server, 'close').catch(() => {})
    },
  }
}
