/**
 * The checks of `ghl-connect doctor`. Each returns lines of "ok", "warn" or "fail", and for warn and
 * fail what to do about it. None changes anything: the database is read, Redis is PINGed, HighLevel
 * gets one GET.
 */
import { Agent, request } from 'undici'
import { Redis } from 'ioredis'
import type { EncryptionKey } from '../../config.js'
import { WebhookVerifier } from '../../webhooks/verify.js'
import { inspectDatabase } from './database-inspection.js'
import { describeDatabase, withoutPassword } from '../database-url.js'
import { duration } from '../output.js'

export type CheckStatus = 'ok' | 'warn' | 'fail'

/** One line of the report. */
export interface CheckResult {
  check: string
  status: CheckStatus
  message: string
  /** What to do (warn and fail). */
  fix?: string
}

/** The route the server answers the OAuth callback on (`src/server/app.ts`). */
export const CALLBACK_PATH = '/oauth/callback'

/**
 * From this day HighLevel sends only `x-ghl-signature` (Ed25519); `x-wh-signature` (RSA) is deprecated
 * (shared/reference/highlevel/FACTS.md, "Webhooks").
 */
export const RSA_SIGNATURE_END = Date.UTC(2026, 6, 1)

/** Database reachable, migrations applied, key ids of stored tokens configured, installations in need. */
export async function checkDatabase(databaseUrl: string, keys: readonly EncryptionKey[]): Promise<CheckResult[]> {
  const where = describeDatabase(databaseUrl)
  let state
  try {
    state = await inspectDatabase(databaseUrl)
  } catch (err) {
    return [
      {
        check: 'database',
        status: 'fail',
        message: `${where}: cannot be read (${(err as Error).message})`,
        fix: 'set DATABASE_URL to the database the server uses; for a new one run "ghl-connect migrate"',
      },
    ]
  }
  const results: CheckResult[] = [{ check: 'database', status: 'ok', message: `${where}: reachable` }]
  const pending = state.migrations.filter((m) => !m.applied).map((m) => m.name)
  results.push(
    pending.length === 0
      ? { check: 'migrations', status: 'ok', message: `all ${state.migrations.length} applied` }
      : {
          check: 'migrations',
          status: 'fail',
          message: `${pending.length} of ${state.migrations.length} not applied: ${pending.join(', ')}`,
          fix: 'run "ghl-connect migrate" (the server also applies them when it starts)',
        },
  )
  if (pending.length === state.migrations.length) return results

  const configured = keys.map((k) => k.id)
  const stored = [...state.keyIds.entries()]
  const missing = stored.filter(([id]) => !configured.includes(id))
  const old = stored.filter(([id]) => configured.includes(id) && id !== configured[0])
  const count = (n: number): string => `${n} installation${n === 1 ? '' : 's'}`
  if (configured.length === 0) {
    results.push({
      check: 'encryption keys',
      status: 'fail',
      message: `GHL_ENCRYPTION_KEY is not set${stored.length > 0 ? `; stored tokens use key id${stored.length === 1 ? '' : 's'} ${stored.map(([id]) => `"${id}"`).join(', ')}` : ''}`,
      fix: stored.length > 0 ? 'set GHL_ENCRYPTION_KEY to the key(s) the server encrypted with' : 'generate one with "ghl-connect keys generate" and keep it safe',
    })
  } else if (missing.length > 0) {
    results.push({
      check: 'encryption keys',
      status: 'fail',
      message: missing.map(([id, n]) => `${count(n)} encrypted with key id "${id}"`).join(', ') + `, which GHL_ENCRYPTION_KEY does not contain (it has ${configured.map((id) => `"${id}"`).join(', ')})`,
      fix: `add the missing key${missing.length === 1 ? '' : 's'} to GHL_ENCRYPTION_KEY as "${missing[0]![0]}:<base64 key>" after the current one; then "ghl-connect keys rotate" moves every token to the first key`,
    })
  } else if (old.length > 0) {
    results.push({
      check: 'encryption keys',
      status: 'warn',
      message: old.map(([id, n]) => `${count(n)} still encrypted with key id "${id}"`).join(', ') + ` (new tokens use "${configured[0]}")`,
      fix: 'run "ghl-connect keys rotate"; afterwards the old key can be dropped from GHL_ENCRYPTION_KEY',
    })
  } else {
    const total = stored.reduce((sum, [, n]) => sum + n, 0)
    results.push({
      check: 'encryption keys',
      status: 'ok',
      message: total === 0 ? `no stored tokens yet; new ones are encrypted with key id "${configured[0]}"` : `${count(total)}, all encrypted with key id "${configured[0]}"`,
    })
  }

  const reauth = state.statuses.get('needs_reauthorization') ?? 0
  const summary = [...state.statuses.entries()].map(([status, n]) => `${n} ${status}`).join(', ') || 'none yet'
  results.push(
    reauth > 0
      ? {
          check: 'installations',
          status: 'warn',
          message: `${summary}: ${count(reauth)} cannot be refreshed until a HighLevel user installs the app again`,
          fix: 'see "ghl-connect installations --status needs_reauthorization"',
        }
      : { check: 'installations', status: 'ok', message: summary },
  )
  return results
}

/** Redis answers PING (when REDIS_URL is set). */
export async function checkRedis(redisUrl: string | undefined): Promise<CheckResult> {
  if (!redisUrl) {
    return { check: 'redis', status: 'ok', message: 'not configured: each instance keeps its own rate-limit budget (set REDIS_URL when several instances run)' }
  }
  const redis = new Redis(redisUrl, { lazyConnect: true, connectTimeout: 3000, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false })
  // connect() rejects with "Connection is closed."; the cause (ECONNREFUSED, NOAUTH…) comes as an event.
  let cause: Error | undefined
  redis.on('error', (err: Error) => (cause ??= err))
  try {
    await redis.connect()
    await redis.ping()
    return { check: 'redis', status: 'ok', message: `${withoutPassword(redisUrl)}: reachable` }
  } catch (err) {
    return { check: 'redis', status: 'fail', message: `${withoutPassword(redisUrl)}: ${(cause ?? (err as Error)).message}`, fix: 'check REDIS_URL and that Redis is running and reachable from here' }
  } finally {
    redis.disconnect()
  }
}

/**
 * HighLevel answers at GHL_API_URL (any HTTP status will do), and this machine's clock agrees with the
 * `Date` header of that answer: webhooks whose timestamp is further than GHL_WEBHOOK_TOLERANCE_MS from
 * our clock are rejected, so a skew of half of it fails.
 */
export async function checkHighLevel(apiUrl: string, toleranceMs: number): Promise<CheckResult[]> {
  const agent = new Agent({ connect: { timeout: 5000 }, headersTimeout: 5000, bodyTimeout: 5000 })
  try {
    const sentAt = Date.now()
    let status: number
    let dateHeader: string | undefined
    try {
      const res = await request(`${apiUrl}/`, { method: 'GET', dispatcher: agent })
      await res.body.dump()
      status = res.statusCode
      const date = res.headers.date
      dateHeader = Array.isArray(date) ? date[0] : date
    } catch (err) {
      const reason = (err as { code?: string }).code ?? (err as Error).message
      return [{ check: 'highlevel', status: 'fail', message: `${apiUrl}: not reachable (${reason})`, fix: 'check GHL_API_URL, DNS, the firewall and any outbound proxy' }]
    }
    const receivedAt = Date.now()
    const results: CheckResult[] = [{ check: 'highlevel', status: 'ok', message: `${apiUrl}: answered HTTP ${status}` }]
    const theirs = dateHeader ? Date.parse(dateHeader) : Number.NaN
    if (!Number.isFinite(theirs)) {
      results.push({ check: 'clock', status: 'warn', message: `${apiUrl} sent no usable Date header; the clock was not compared`, fix: 'make sure the system clock is synchronised (NTP)' })
      return results
    }
    // The header has whole seconds: their clock read somewhere in [theirs, theirs + 1 s) while we waited.
    const ours = (sentAt + receivedAt) / 2
    const skew = theirs + 500 - ours
    const beyond = Math.max(0, Math.abs(skew) - 500 - (receivedAt - sentAt) / 2)
    const side = skew > 0 ? 'behind' : 'ahead of'
    if (beyond >= toleranceMs / 2) {
      results.push({
        check: 'clock',
        status: 'fail',
        message: `this machine's clock is about ${duration(beyond)} ${side} HighLevel's: webhooks older or newer than ${duration(toleranceMs)} by our clock are rejected as stale`,
        fix: 'synchronise the system clock (NTP, e.g. "timedatectl set-ntp true")',
      })
    } else if (beyond >= 30_000) {
      results.push({ check: 'clock', status: 'warn', message: `this machine's clock is about ${duration(beyond)} ${side} HighLevel's`, fix: 'synchronise the system clock (NTP)' })
    } else {
      results.push({ check: 'clock', status: 'ok', message: "agrees with HighLevel's (within a few seconds)" })
    }
    return results
  } finally {
    await agent.close()
  }
}

/** HighLevel redirects to GHL_REDIRECT_URI, which must be https in production and end with the callback route. */
export function checkRedirectUri(redirectUri: string | undefined, production: boolean): CheckResult {
  if (!redirectUri) return { check: 'redirect uri', status: 'fail', message: 'GHL_REDIRECT_URI is not set', fix: `set it to https://<your host>${CALLBACK_PATH}, as registered with the app` }
  let url: URL
  try {
    url = new URL(redirectUri)
  } catch {
    return { check: 'redirect uri', status: 'fail', message: `${redirectUri} is not a URL`, fix: `set GHL_REDIRECT_URI to https://<your host>${CALLBACK_PATH}` }
  }
  if (!url.pathname.endsWith(CALLBACK_PATH)) {
    return {
      check: 'redirect uri',
      status: 'fail',
      message: `${redirectUri}: the path is ${url.pathname}, but the server answers the callback on ${CALLBACK_PATH}`,
      fix: `use ${url.origin}${CALLBACK_PATH} here and in the app's settings on HighLevel (or route ${url.pathname} to it)`,
    }
  }
  const local = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname)
  if (url.protocol !== 'https:') {
    if (production) {
      return { check: 'redirect uri', status: 'fail', message: `${redirectUri} is not https (NODE_ENV=production)`, fix: 'serve the connector behind HTTPS and register the https:// URI with the app' }
    }
    if (!local) return { check: 'redirect uri', status: 'warn', message: `${redirectUri} is not https`, fix: 'use https for anything but local development' }
  }
  return { check: 'redirect uri', status: 'ok', message: redirectUri }
}

/** The Ed25519 public key for `x-ghl-signature` is configured and parses. */
export function checkWebhookKey(options: { ed25519: string | undefined; rsa: string | undefined; allowUnsigned: boolean; production: boolean; now: number }): CheckResult[] {
  const results: CheckResult[] = []
  if (options.allowUnsigned && !options.production) {
    results.push({ check: 'webhook key', status: 'warn', message: 'GHL_WEBHOOK_ALLOW_UNSIGNED is on: unsigned webhooks are accepted', fix: 'turn it off outside local development' })
  }
  if (!options.ed25519) {
    const ended = options.now >= RSA_SIGNATURE_END
    results.push({
      check: 'webhook key',
      status: ended ? 'fail' : 'warn',
      message: ended
        ? 'GHL_WEBHOOK_ED25519_PUBLIC_KEY is not set: HighLevel signs webhooks only with Ed25519 (x-ghl-signature) since 2026-07-01, so every webhook is rejected'
        : 'GHL_WEBHOOK_ED25519_PUBLIC_KEY is not set: only the legacy RSA signature (x-wh-signature, deprecated from 2026-07-01) is checked',
      fix: "set GHL_WEBHOOK_ED25519_PUBLIC_KEY to HighLevel's Ed25519 public key (PEM or base64)",
    })
    return results
  }
  try {
    new WebhookVerifier({ ed25519: options.ed25519, rsa: options.rsa })
  } catch (err) {
    results.push({ check: 'webhook key', status: 'fail', message: `a webhook public key cannot be used: ${(err as Error).message}`, fix: 'set GHL_WEBHOOK_ED25519_PUBLIC_KEY to a PEM (SPKI) or base64 raw 32-byte Ed25519 key' })
    return results
  }
  results.push({ check: 'webhook key', status: 'ok', message: 'Ed25519 public key configured (x-ghl-signature)' })
  return results
}
