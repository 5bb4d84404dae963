/**
 * The connector API key check, in constant time. The key comes only from configuration
 * (`GHL_CONNECTOR_API_KEY`); requests send it as `Authorization: Bearer <key>` or `x-connector-key`
 * (or, for the operator page, as the Basic auth password).
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyRequest } from 'fastify'

const digest = (s: string): Buffer => createHash('sha256').update(s).digest()

/** What a request without the right connector API key is told (401 `GHL_UNAUTHORIZED`). */
export const API_KEY_REFUSED = 'Missing or wrong connector API key (send it as "Authorization: Bearer <key>" or "x-connector-key")'

export { safeEqual } from '../secrets.js'

/** The key a request presents, if any. */
export function presentedKey(req: Pick<FastifyRequest, 'headers'>, options: { basic?: boolean } = {}): string | undefined {
  const header = req.headers['x-connector-key']
  if (typeof header === 'string' && header) return header
  const auth = req.headers.authorization
  if (typeof auth !== 'string') return undefined
  const bearer = /^Bearer\s+(.+)$/i.exec(auth)
  if (bearer) return bearer[1]!.trim()
  if (options.basic) {
    const basic = /^Basic\s+(.+)$/i.exec(auth)
    if (basic) {
      const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8')
      const i = decoded.indexOf(':')
      return i >= 0 ? decoded.slice(i + 1) : undefined
    }
  }
  return undefined
}

/**
 * Whether a request carries the configured key, for one configured key hashed once: a request costs
 * one hash (of what it presents) and a constant-time comparison of the two digests. No key configured
 * → always false (closed by default).
 */
export function apiKeyChecker(configured: string | undefined): (req: Pick<FastifyRequest, 'headers'>) => boolean {
  if (!configured) return () => false
  const expected = digest(configured)
  return (req) => {
    const key = presentedKey(req)
    return key !== undefined && timingSafeEqual(digest(key), expected)
  }
}
