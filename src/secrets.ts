/**
 * Comparing secrets: in constant time, and without leaking their lengths.
 */
import { createHash, timingSafeEqual } from 'node:crypto'

const digest = (s: string): Buffer => createHash('sha256').update(s).digest()

/** Constant-time string comparison: both sides are hashed first so lengths do not leak. */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b))
}
