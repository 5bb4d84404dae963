/**
 * The static headers a developer configures in HighLevel's Marketplace for the app's endpoints
 * (workflow actions, trigger subscriptions, external authentication): HighLevel documents no
 * signature for these calls (FACTS.md), so a secret header is how the app knows the call is
 * HighLevel's. Compared in constant time: both sides are hashed (SHA-256) first, so neither the
 * value nor its length leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { GhlError } from '../errors.js'

/** Header names as Node delivers them: lower case; a value or several. */
export type IncomingHeaders = Record<string, string | string[] | undefined>

const NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const MIN_SECRET = 16

/** See the file comment. */
export class StaticHeaders {
  readonly #expected: ReadonlyArray<readonly [string, Buffer]>

  /**
   * @param headers - name → value, as configured in HighLevel. At least one; names are HTTP tokens; at
   *   least one value must be a secret of 16 characters or more.
   * @param setting - what is configured, for the error message (e.g. `actions.headers`).
   * @throws GhlError `GHL_CONFIG_INVALID` listing every problem (never quoting a value).
   */
  constructor(headers: Record<string, string> | undefined, setting: string) {
    const entries = Object.entries(headers ?? {})
    const problems: string[] = []
    if (entries.length === 0) problems.push(`expected ${setting} to name at least one header HighLevel sends (e.g. {"x-app-secret": "<a long random value>"}), got none`)
    for (const [name, value] of entries) {
      if (!NAME.test(name)) problems.push(`expected ${setting} header names to be HTTP tokens, got ${JSON.stringify(name.slice(0, 40))}`)
      if (typeof value !== 'string' || value === '') problems.push(`expected ${setting}["${name}"] to be a non-empty string`)
    }
    if (entries.length > 0 && !entries.some(([, v]) => typeof v === 'string' && v.length >= MIN_SECRET)) {
      problems.push(`expected one of ${setting} to be a secret of at least ${MIN_SECRET} characters`)
    }
    if (problems.length > 0) throw new GhlError('GHL_CONFIG_INVALID', `Invalid ${setting}: ${problems.join('; ')}`)
    this.#expected = entries.map(([name, value]) => [name.toLowerCase(), digest(value)] as const)
  }

  /** Whether every configured header is present with its value (all are compared, whatever fails first). */
  matches(headers: IncomingHeaders): boolean {
    let ok = true
    for (const [name, expected] of this.#expected) {
      const got = headers[name]
      const value = Array.isArray(got) ? got[0] : got
      // Compare even when absent, so a missing header costs what a wrong one costs.
      const same = timingSafeEqual(digest(value ?? ''), expected)
      ok = ok && same && value !== undefined
    }
    return ok
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest()
}
