/**
 * Reading HighLevel's rate-limit headers (Authorization.md): `X-RateLimit-Remaining`,
 * `X-RateLimit-Max`, `X-RateLimit-Interval-Milliseconds`, `X-RateLimit-Daily-Remaining`,
 * `X-RateLimit-Limit-Daily`, and the standard `Retry-After` (RFC 9110 §10.2.3).
 */

/** What the headers of one answer say about the budget; `undefined` where a header is absent or malformed. */
export interface RateLimitReport {
  remaining: number | undefined
  /** `X-RateLimit-Max`: HighLevel's burst budget (its count is `max − remaining`). */
  max: number | undefined
  dailyRemaining: number | undefined
}

type Headers = Record<string, string | string[] | undefined>

function num(headers: Headers, name: string): number | undefined {
  let v = headers[name]
  if (v === undefined) return undefined
  if (Array.isArray(v)) v = v[0]
  if (v === undefined || v === '') return undefined
  const n = Number(v)
  return Number.isFinite(n) && n >= 0 ? n : undefined
}

/** Parses the `X-RateLimit-*` headers (undici gives lower-case names). */
export function readRateLimitHeaders(headers: Headers): RateLimitReport {
  return {
    remaining: num(headers, 'x-ratelimit-remaining'),
    max: num(headers, 'x-ratelimit-max'),
    dailyRemaining: num(headers, 'x-ratelimit-daily-remaining'),
  }
}

/**
 * `Retry-After` in ms: delta-seconds or an HTTP-date (RFC 9110 §10.2.3); `undefined` when absent or invalid.
 * @param now epoch ms, to turn a date into a delay
 */
export function parseRetryAfter(headers: Headers, now: number): number | undefined {
  let v = headers['retry-after']
  if (Array.isArray(v)) v = v[0]
  if (v === undefined || v === '') return undefined
  if (/^\s*\d+(\.\d+)?\s*$/.test(v)) return Math.max(0, Number(v) * 1000)
  const date = Date.parse(v)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}
