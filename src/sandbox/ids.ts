/**
 * Identifier and secret helpers of the sandbox (its own, independent of the connector's).
 */
import { randomBytes, randomInt, randomUUID, timingSafeEqual, createHash } from 'node:crypto'

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
const LOWER_ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789'

function pick(alphabet: string, length: number): string {
  let out = ''
  for (let i = 0; i < length; i++) out += alphabet[randomInt(alphabet.length)]
  return out
}

/** A HighLevel-style id: 20 alphanumeric characters (locations, companies, users, contacts). */
export function hlId(): string {
  return pick(ALNUM, 20)
}

/** A Marketplace app id: 24 lowercase hex characters (a Mongo ObjectId). */
export function appIdValue(): string {
  return randomBytes(12).toString('hex')
}

/** A client id: `<appId>-<8 lowercase alnum>` (FACTS.md: the app id is the part before the first `-`). */
export function clientIdFor(appId: string): string {
  return `${appId}-${pick(LOWER_ALNUM, 8)}`
}

/** A client secret or shared secret (HighLevel issues UUIDs). */
export function secretValue(): string {
  return randomUUID()
}

/** An opaque bearer credential (access/refresh token, code, PIT), 43 base64url characters. */
export function tokenValue(prefix = ''): string {
  return prefix + randomBytes(32).toString('base64url')
}

/** A trace id for the `x-trace-id` header. */
export function traceIdValue(): string {
  return randomUUID()
}

/** Constant-time string comparison (both sides hashed first so lengths do not leak). */
export function safeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a, 'utf8').digest()
  const hb = createHash('sha256').update(b, 'utf8').digest()
  return timingSafeEqual(ha, hb)
}
