/**
 * The connector API key check, in constant time. The key comes only from configuration
 * (`GHL_CONNECTOR_API_KEY`); requests send it as `Authorization: Bearer <key>` or `x-connector-key`
 * (or, for the operator page, as the Basic auth password).
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyRequest } from 'fastify'

const digest = (s: string): Buffer => createHash('sha256').update(s).digest()

/** Constant-time string comparison: both sides are hashed first so lengths do not leak. */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b))
}

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

/** True when the request carries the configured key. No key configured → always false (closed by default). */
export function checkApiKey(req: Pick<FastifyRequest, 'headers'>, configured: string | undefined, options: { basic?: boolean } = {}): boolean {
  if (!configured) return false
  const key = presentedKey(req, options)
  return key !== undefined && safeEqual(key, configured)
}

/**
 * {@link checkApiKey} for one configured key, hashed once: a request then costs one hash (of what it
 * presents) and the constant-time comparison of the two digests — the same comparison, since the
 * configured key's digest does not depend on the request. For routes that check the key on every call
 * (the proxy).
 */
export function apiKeyChecker(configured: string | undefined): (req: Pick<FastifyRequest, 'headers'>) => boolean {
  if (!configured) return () => false
  const expected = digest(configured)
  return (req) => {
    const key = presentedKey(req)
    return key !== undefined && timingSafeEqual(digest(key), expected)
  }
}
