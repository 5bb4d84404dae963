/**
 * Configuration: read from environment variables (and an optional `.env` file), validated once,
 * every problem reported together, then frozen. Internal code trusts the typed {@link Config}.
 *
 * @example
 * const config = loadConfig()               // process.env (+ ./.env)
 * const config = loadConfig({ env: { GHL_CLIENT_ID: '…', … } })
 */
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { parseEnv } from 'node:util'
import { GhlError } from './errors.js'

/** HighLevel's published RSA public key for the legacy `x-wh-signature` header (WebhookAuthentication.md). */
export const HIGHLEVEL_WEBHOOK_RSA_PUBLIC_KEY = `-----BEGIN PUBLIC KEY-----
MIICIjANBgkqhkiG9w0BAQEFAAOCAg8AMIICCgKCAgEAokvo/r9tVgcfZ5DysOSC
Frm602qYV0MaAiNnX9O8KxMbiyRKWeL9JpCpVpt4XHIcBOK4u3cLSqJGOLaPuXw6
dO0t6Q/ZVdAV5Phz+ZtzPL16iCGeK9po6D6JHBpbi989mmzMryUnQJezlYJ3DVfB
csedpinheNnyYeFXolrJvcsjDtfAeRx5ByHQmTnSdFUzuAnC9/GepgLT9SM4nCpv
uxmZMxrJt5Rw+VUaQ9B8JSvbMPpez4peKaJPZHBbU3OdeCVx5klVXXZQGNHOs8gF
3kvoV5rTnXV0IknLBXlcKKAQLZcY/Q9rG6Ifi9c+5vqlvHPCUJFT5XUGG5RKgOKU
J062fRtN+rLYZUV+BjafxQauvC8wSWeYja63VSUruvmNj8xkx2zE/Juc+yjLjTXp
IocmaiFeAO6fUtNjDeFVkhf5LNb59vECyrHD2SQIrhgXpO4Q3dVNA5rw576PwTzN
h/AMfHKIjE4xQA1SZuYJmNnmVZLIZBlQAF9Ntd03rfadZ+yDiOXCCs9FkHibELhC
HULgCsnuDJHcrGNd5/Ddm5hxGQ0ASitgHeMZ0kcIOwKDOzOU53lDza6/Y09T7sYJ
PQe7z0cvj7aE4B+Ax1ZoZGPzpJlZtGXCsu9aTEGEnKzmsFqwcSsnw3JB31IGKAyk
T1hhTiaCeIY/OwwwNUY2yvcCAwEAAQ==
-----END PUBLIC KEY-----
`

export const DEFAULT_API_URL = 'https://services.leadconnectorhq.com'
export const DEFAULT_MARKETPLACE_URL = 'https://marketplace.gohighlevel.com'
export const DEFAULT_API_VERSION = '2021-07-28'

/** An AES-256 key and the id stored beside every row it encrypts. */
export interface EncryptionKey {
  readonly id: string
  readonly key: Buffer
}

export interface RateLimitSettings {
  readonly enabled: boolean
  /** Burst: requests per window (HighLevel: 100 per 10 s). */
  readonly burstMax: number
  readonly burstWindowMs: number
  /** Daily budget (HighLevel: 200,000). */
  readonly dailyMax: number
  readonly dailyWindowMs: number
  /** Calls allowed to wait in the queue per resource before new ones fail fast. */
  readonly maxQueue: number
}

export interface Config {
  readonly clientId: string
  readonly clientSecret: string
  /** The part of the client id before the first `-` (FACTS.md). */
  readonly appId: string
  readonly redirectUri: string
  readonly scopes: readonly string[]
  /**
   * The `user_type` sent with a code exchange: a hint. HighLevel answers with the kind the installer
   * chose (an agency or a sub-account); the connector stores what the answer says, so one app serves both.
   */
  readonly userType: 'Location' | 'Company'
  /**
   * Refuse callbacks without `state` (installs that start on HighLevel's side — the Marketplace listing
   * or an install link HighLevel made — carry none). Default `false`: accepted; a callback that carries
   * a state must still carry a valid, unused one.
   */
  readonly requireState: boolean
  /** HighLevel's OAuth API version the connector speaks (`v2` default, or `v3`). */
  readonly oauthVersion: 'v2' | 'v3'
  /** How long "HighLevel's Reconnect endpoint is unavailable" is remembered (shared through the database). */
  readonly reconnectUnavailableMs: number
  /** Transient refresh failures in a row after which `refreshFailing` is reported. */
  readonly refreshFailureWarn: number
  /** How often a suspended installation is retried by the background refresher. */
  readonly suspendedRetryMs: number
  /** Cached installations per process (the hot path's memory bound). */
  readonly tokenCacheMax: number
  /** Days the audit log keeps an entry (0: forever); older ones are deleted in the background. */
  readonly auditRetentionDays: number
  /** Background refresher: scan interval, page size, and most refreshes at once (HighLevel's token endpoint). */
  readonly refresher: { readonly intervalMs: number; readonly pageSize: number; readonly maxConcurrency: number }
  /** Bounds on waits for our own dependencies. */
  readonly database: { readonly connectTimeoutMs: number; readonly statementTimeoutMs: number }
  readonly redisTimeoutMs: number
  /** How long a shutdown waits for refreshes and mints in flight before closing the vault. */
  readonly shutdownTimeoutMs: number
  readonly apiUrl: string
  readonly marketplaceUrl: string
  readonly apiVersion: string
  readonly databaseUrl: string
  readonly dataDir: string
  /** First one encrypts; all decrypt. Empty only when `allowMissingKey` was given (never for `serve`). */
  readonly encryptionKeys: readonly EncryptionKey[]
  readonly host: string
  readonly port: number
  readonly sandboxPort: number
  readonly publicUrl: string
  readonly redisUrl: string | undefined
  readonly connectorApiKey: string | undefined
  /** The operator console's password (Basic auth or its login form), besides the API key. */
  readonly operatorPassword: string | undefined
  readonly sharedSecret: string | undefined
  readonly webhookPath: string
  /**
   * PEM (or base64 raw 32-byte) Ed25519 public keys for `x-ghl-signature` — several during a key
   * rollover (PEM blocks one after another, or base64 keys separated by commas).
   */
  readonly webhookEd25519PublicKeys: readonly string[]
  /** PEM RSA public key for `x-wh-signature`; HighLevel's published key by default. */
  readonly webhookRsaPublicKey: string
  /** Dev-only: accept unsigned webhooks (refused by `serve` in production). */
  readonly allowUnsignedWebhooks: boolean
  /** Where every verified event is forwarded (POST, signed per Standard Webhooks), if set. */
  readonly webhookForwardUrl: string | undefined
  /** The Standard Webhooks signing key of forwarded events (`GHL_WEBHOOK_FORWARD_SECRET`, `whsec_<base64>`); set whenever the URL is. */
  readonly webhookForwardSecret: Buffer | undefined
  readonly webhookMaxBytes: number
  readonly webhookToleranceMs: number
  readonly production: boolean
  readonly logLevel: string
  readonly requestTimeoutMs: number
  readonly tokenRequestTimeoutMs: number
  /** Refresh this long before expiry… */
  readonly refreshMarginMs: number
  /** …plus a random part up to this, so that instances do not all refresh at once. */
  readonly refreshJitterMs: number
  readonly rateLimit: RateLimitSettings
}

/** One problem with one setting. */
export interface ConfigIssue {
  variable: string
  expected: string
  received: string
}

/** Thrown with every problem at once. `issues` lists them; the message names each variable. */
export class ConfigError extends GhlError {
  readonly issues: readonly ConfigIssue[]
  constructor(issues: ConfigIssue[]) {
    super(
      'GHL_CONFIG_INVALID',
      `Invalid configuration (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n` +
        issues.map((i) => `  - ${i.variable}: expected ${i.expected}, got ${i.received}`).join('\n'),
    )
    this.name = 'ConfigError'
    this.issues = issues
  }
}

export interface LoadConfigOptions {
  /** Variables to read; `process.env` by default. */
  env?: Record<string, string | undefined>
  /** A `.env` file to merge under `env` (env wins). Default `./.env` when `env` is not given; `false` to skip. */
  envFile?: string | false
  /** Defaults applied under the file and env (used by `ghl-connect dev` to wire in the sandbox). */
  defaults?: Record<string, string>
  /** Values that win over `env` and the file (used by `ghl-connect dev` to point at the sandbox). */
  overrides?: Record<string, string | undefined>
  /** Accept a missing GHL_ENCRYPTION_KEY (for commands that never touch tokens). */
  allowMissingKey?: boolean
}

/**
 * The key of a `whsec_<base64>` secret (Standard Webhooks' format), or why it is not one: keys of 24
 * to 64 bytes, as the specification recommends.
 */
export function parseForwardSecret(value: string): Buffer | { problem: string } {
  const m = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(value.trim())
  if (!m) return { problem: 'a secret of the form whsec_<base64> (Standard Webhooks)' }
  const key = Buffer.from(m[1]!, 'base64')
  if (key.length < 24 || key.length > 64) return { problem: 'whsec_ followed by the base64 of 24 to 64 random bytes' }
  return key
}

const SECRET_VARIABLES = new Set(['GHL_CLIENT_SECRET', 'GHL_ENCRYPTION_KEY', 'GHL_CONNECTOR_API_KEY', 'GHL_SHARED_SECRET', 'GHL_WEBHOOK_FORWARD_SECRET'])

/** Reads, validates and freezes the configuration. Throws {@link ConfigError} listing every problem. */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const fileVars = readEnvFile(options.envFile ?? (options.env ? false : '.env'))
  const env: Record<string, string | undefined> = { ...options.defaults, ...fileVars, ...(options.env ?? process.env), ...definedOnly(options.overrides) }
  const issues: ConfigIssue[] = []
  const show = (name: string, value: string | undefined): string =>
    value === undefined || value === ''
      ? 'nothing'
      : SECRET_VARIABLES.has(name)
        ? `a value of ${value.length} characters`
        : JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value)
  const problem = (variable: string, expected: string): void => {
    issues.push({ variable, expected, received: show(variable, env[variable]) })
  }
  const str = (name: string, required: boolean, fallback?: string): string => {
    const v = env[name]?.trim()
    if (v) return v
    if (required && fallback === undefined) problem(name, 'a non-empty string')
    return fallback ?? ''
  }
  const url = (name: string, fallback?: string): string => {
    const v = str(name, fallback === undefined, fallback)
    if (!v) return ''
    try {
      const u = new URL(v)
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('protocol')
      return v.replace(/\/+$/, '')
    } catch {
      problem(name, 'an http(s) URL')
      return ''
    }
  }
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name]?.trim()
    if (!raw) return fallback
    const n = Number(raw)
    if (!Number.isInteger(n) || n < min || n > max) {
      problem(name, `an integer from ${min} to ${max}`)
      return fallback
    }
    return n
  }
  const bool = (name: string, fallback: boolean): boolean => {
    const raw = env[name]?.trim().toLowerCase()
    if (!raw) return fallback
    if (['1', 'true', 'yes', 'on'].includes(raw)) return true
    if (['0', 'false', 'no', 'off'].includes(raw)) return false
    problem(name, 'true or false')
    return fallback
  }

  const clientId = str('GHL_CLIENT_ID', true)
  if (clientId && !/^[A-Za-z0-9]+-[A-Za-z0-9-]+$/.test(clientId)) problem('GHL_CLIENT_ID', 'a HighLevel client id of the form <appId>-<suffix>')
  const clientSecret = str('GHL_CLIENT_SECRET', true)
  const redirectUri = url('GHL_REDIRECT_URI')
  const scopesRaw = str('GHL_SCOPES', true)
  const scopes = scopesRaw.split(/[\s,]+/).filter(Boolean)
  if (scopesRaw && scopes.some((s) => !/^[a-z0-9./-]+$/i.test(s))) problem('GHL_SCOPES', 'space-separated HighLevel scopes such as "contacts.readonly locations.readonly"')
  const oauthVersionRaw = str('GHL_OAUTH_VERSION', false, 'v2').toLowerCase()
  if (oauthVersionRaw !== 'v2' && oauthVersionRaw !== 'v3') problem('GHL_OAUTH_VERSION', '"v2" or "v3"')
  const userTypeRaw = str('GHL_USER_TYPE', false, 'Location')
  const userType = userTypeRaw.toLowerCase() === 'company' ? 'Company' : userTypeRaw.toLowerCase() === 'location' ? 'Location' : undefined
  if (!userType) problem('GHL_USER_TYPE', '"Location" or "Company"')

  const dataDir = resolve(str('GHL_DATA_DIR', false, './data'))
  const databaseUrl = str('DATABASE_URL', false, resolve(dataDir, 'ghl-connect.db'))
  if (/^[a-z]+:\/\//i.test(databaseUrl) && !/^postgres(ql)?:\/\//i.test(databaseUrl)) {
    problem('DATABASE_URL', 'a SQLite file path or a postgres:// URL')
  }

  const keys = parseKeys(env.GHL_ENCRYPTION_KEY, problem)
  if (keys.length === 0 && !options.allowMissingKey && !issues.some((i) => i.variable === 'GHL_ENCRYPTION_KEY')) {
    problem('GHL_ENCRYPTION_KEY', 'one or more base64 32-byte keys, comma-separated (generate one: `ghl-connect keys generate`)')
  }

  const port = int('PORT', 3000, 0, 65535)
  const host = str('HOST', false, '127.0.0.1')
  const production = (env.NODE_ENV ?? '').toLowerCase() === 'production'
  const allowUnsignedWebhooks = bool('GHL_WEBHOOK_ALLOW_UNSIGNED', false)
  if (allowUnsignedWebhooks && production) problem('GHL_WEBHOOK_ALLOW_UNSIGNED', 'false when NODE_ENV=production (unsigned webhooks are a development aid only)')
  const webhookPath = str('GHL_WEBHOOK_PATH', false, '/webhooks/highlevel')
  if (!webhookPath.startsWith('/')) problem('GHL_WEBHOOK_PATH', 'a path starting with "/"')
  const redisUrl = env.REDIS_URL?.trim() || undefined
  if (redisUrl && !/^rediss?:\/\//.test(redisUrl)) problem('REDIS_URL', 'a redis:// or rediss:// URL')
  const connectorApiKey = env.GHL_CONNECTOR_API_KEY?.trim() || undefined
  if (connectorApiKey && connectorApiKey.length < 16) problem('GHL_CONNECTOR_API_KEY', 'at least 16 characters')
  const operatorPassword = env.GHL_OPERATOR_PASSWORD || undefined
  if (operatorPassword !== undefined && operatorPassword.length < 12) problem('GHL_OPERATOR_PASSWORD', 'at least 12 characters')
  const forward = env.GHL_WEBHOOK_FORWARD_URL?.trim() ? url('GHL_WEBHOOK_FORWARD_URL') || undefined : undefined
  const forwardSecretRaw = env.GHL_WEBHOOK_FORWARD_SECRET?.trim()
  const forwardSecret = forwardSecretRaw ? parseForwardSecret(forwardSecretRaw) : undefined
  if (forwardSecret && !Buffer.isBuffer(forwardSecret)) problem('GHL_WEBHOOK_FORWARD_SECRET', forwardSecret.problem)
  // Forwarded events are signed, always: the app must be able to tell them from forged ones.
  else if (env.GHL_WEBHOOK_FORWARD_URL?.trim() && !forwardSecret) problem('GHL_WEBHOOK_FORWARD_SECRET', 'a whsec_<base64> secret whenever GHL_WEBHOOK_FORWARD_URL is set (forwarded events are signed per Standard Webhooks)')
  const ed25519Keys = splitPublicKeys(env.GHL_WEBHOOK_ED25519_PUBLIC_KEY)

  const config: Config = {
    clientId,
    clientSecret,
    appId: clientId.split('-')[0] ?? '',
    redirectUri,
    scopes,
    userType: userType ?? 'Location',
    requireState: bool('GHL_INSTALL_REQUIRE_STATE', false),
    oauthVersion: oauthVersionRaw === 'v3' ? 'v3' : 'v2',
    reconnectUnavailableMs: int('GHL_RECONNECT_UNAVAILABLE_MS', 24 * 3600_000, 1000, 30 * 24 * 3600_000),
    refreshFailureWarn: int('GHL_REFRESH_FAILURE_WARN', 3, 1, 1000),
    suspendedRetryMs: int('GHL_SUSPENDED_RETRY_MS', 3600_000, 1000, 7 * 24 * 3600_000),
    tokenCacheMax: int('GHL_TOKEN_CACHE_MAX', 100_000, 1, 100_000_000),
    auditRetentionDays: int('GHL_AUDIT_RETENTION_DAYS', 90, 0, 36_500),
    refresher: {
      intervalMs: int('GHL_REFRESHER_INTERVAL_MS', 60_000, 100, 24 * 3600_000),
      pageSize: int('GHL_REFRESHER_PAGE_SIZE', 500, 1, 10_000),
      maxConcurrency: int('GHL_REFRESHER_MAX_CONCURRENCY', 16, 1, 1000),
    },
    database: {
      connectTimeoutMs: int('GHL_DB_CONNECT_TIMEOUT_MS', 5000, 100, 600_000),
      statementTimeoutMs: int('GHL_DB_STATEMENT_TIMEOUT_MS', 10_000, 100, 600_000),
    },
    redisTimeoutMs: int('GHL_REDIS_TIMEOUT_MS', 2000, 50, 600_000),
    shutdownTimeoutMs: int('GHL_SHUTDOWN_TIMEOUT_MS', 30_000, 0, 600_000),
    apiUrl: url('GHL_API_URL', DEFAULT_API_URL),
    marketplaceUrl: url('GHL_MARKETPLACE_URL', DEFAULT_MARKETPLACE_URL),
    apiVersion: str('GHL_API_VERSION', false, DEFAULT_API_VERSION),
    databaseUrl,
    dataDir,
    encryptionKeys: keys,
    host,
    port,
    sandboxPort: int('GHL_SANDBOX_PORT', 3100, 0, 65535),
    publicUrl: url('GHL_PUBLIC_URL', `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`),
    redisUrl,
    connectorApiKey,
    operatorPassword,
    sharedSecret: env.GHL_SHARED_SECRET?.trim() || undefined,
    webhookPath,
    webhookEd25519PublicKeys: ed25519Keys,
    webhookRsaPublicKey: env.GHL_WEBHOOK_RSA_PUBLIC_KEY?.trim() || HIGHLEVEL_WEBHOOK_RSA_PUBLIC_KEY,
    allowUnsignedWebhooks,
    webhookForwardUrl: forward,
    webhookForwardSecret: Buffer.isBuffer(forwardSecret) ? forwardSecret : undefined,
    webhookMaxBytes: int('GHL_WEBHOOK_MAX_BYTES', 256 * 1024, 1024, 16 * 1024 * 1024),
    webhookToleranceMs: int('GHL_WEBHOOK_TOLERANCE_MS', 5 * 60_000, 1000, 24 * 3600_000),
    production,
    logLevel: str('LOG_LEVEL', false, 'info'),
    requestTimeoutMs: int('GHL_REQUEST_TIMEOUT_MS', 30_000, 100, 600_000),
    tokenRequestTimeoutMs: int('GHL_TOKEN_TIMEOUT_MS', 10_000, 50, 600_000),
    refreshMarginMs: int('GHL_REFRESH_MARGIN_MS', 5 * 60_000, 0, 24 * 3600_000),
    refreshJitterMs: int('GHL_REFRESH_JITTER_MS', 60_000, 0, 3600_000),
    rateLimit: {
      enabled: bool('GHL_RATE_LIMIT', true),
      burstMax: int('GHL_RATE_LIMIT_BURST', 100, 1, 1_000_000),
      burstWindowMs: int('GHL_RATE_LIMIT_BURST_WINDOW_MS', 10_000, 10, 3600_000),
      dailyMax: int('GHL_RATE_LIMIT_DAILY', 200_000, 1, 100_000_000),
      dailyWindowMs: int('GHL_RATE_LIMIT_DAILY_WINDOW_MS', 24 * 3600_000, 1000, 7 * 24 * 3600_000),
      maxQueue: int('GHL_RATE_LIMIT_MAX_QUEUE', 10_000, 0, 10_000_000),
    },
  }
  if (issues.length > 0) throw new ConfigError(issues)
  return deepFreeze(config)
}

/** Several Ed25519 public keys: PEM blocks one after another, or comma/whitespace-separated base64. */
export function splitPublicKeys(raw: string | undefined): string[] {
  const text = (raw ?? '').trim()
  if (!text) return []
  const pems = text.match(/-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g)
  if (pems) return pems.map((p) => `${p}\n`)
  return text.split(/[\s,]+/).filter(Boolean)
}

/**
 * What `ghl-connect serve` additionally requires in production (`NODE_ENV=production`): every problem,
 * each naming the variable and what to do. The library itself does not require these.
 */
export function productionIssues(config: Config): ConfigIssue[] {
  if (!config.production) return []
  const issues: ConfigIssue[] = []
  if (!config.connectorApiKey) {
    issues.push({
      variable: 'GHL_CONNECTOR_API_KEY',
      expected: 'a key of at least 16 characters in production (without it the proxy, /api/* and the operator page answer 401 to everyone)',
      received: 'nothing',
    })
  }
  if (config.webhookEd25519PublicKeys.length === 0) {
    issues.push({
      variable: 'GHL_WEBHOOK_ED25519_PUBLIC_KEY',
      expected:
        "HighLevel's Ed25519 webhook public key in production (since 2026-07-01 HighLevel signs webhooks with x-ghl-signature only; the key is in HighLevel's webhook authentication guide and the app's settings in the Marketplace developer portal)",
      received: 'nothing',
    })
  }
  return issues
}

/**
 * `GHL_ENCRYPTION_KEY`: comma-separated keys, each `base64` (32 bytes) or `id:base64`.
 * The first encrypts; all decrypt (rotation). A key without an id gets one derived from its hash.
 */
export function parseKeys(raw: string | undefined, problem?: (variable: string, expected: string) => void): EncryptionKey[] {
  const keys: EncryptionKey[] = []
  for (const part of (raw ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^([A-Za-z0-9_-]{1,32}):(.+)$/.exec(part)
    const material = m ? m[2]! : part
    const key = Buffer.from(material, 'base64')
    if (key.length !== 32 || !/^[A-Za-z0-9+/=_-]+$/.test(material)) {
      problem?.('GHL_ENCRYPTION_KEY', 'each key base64 of exactly 32 bytes (optionally "id:base64")')
      continue
    }
    keys.push({ id: m ? m[1]! : `k${createHash('sha256').update(key).digest('hex').slice(0, 8)}`, key })
  }
  return keys
}

function definedOnly(values: Record<string, string | undefined> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(values ?? {}).filter((e): e is [string, string] => e[1] !== undefined))
}

/** Reads a `.env`-style file (missing file → empty). */
export function readEnvFile(path: string | false): Record<string, string> {
  if (!path) return {}
  const full = resolve(path)
  if (!existsSync(full)) return {}
  return parseEnv(readFileSync(full, 'utf8')) as Record<string, string>
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Buffer.isBuffer(value)) {
    for (const v of Object.values(value)) deepFreeze(v)
    Object.freeze(value)
  }
  return value
}

/** The settings of commands that only open the database (`ghl-connect migrate`, `keys rotate`, …). */
export interface DatabaseConfig {
  readonly databaseUrl: string
  readonly dataDir: string
  /** First one encrypts; all decrypt. Empty only when `allowMissingKey` was given. */
  readonly encryptionKeys: readonly EncryptionKey[]
}

/**
 * Reads and validates only `DATABASE_URL`, `GHL_DATA_DIR` and `GHL_ENCRYPTION_KEY`, with the same
 * sources, defaults and messages as {@link loadConfig}: commands that never talk to HighLevel need no
 * client id, secret, redirect URI or scopes. Throws {@link ConfigError} listing every problem.
 *
 * @example
 * const { databaseUrl } = loadDatabaseConfig({ allowMissingKey: true })   // ghl-connect migrate
 */
export function loadDatabaseConfig(options: LoadConfigOptions = {}): DatabaseConfig {
  const fileVars = readEnvFile(options.envFile ?? (options.env ? false : '.env'))
  const env: Record<string, string | undefined> = { ...options.defaults, ...fileVars, ...(options.env ?? process.env), ...definedOnly(options.overrides) }
  const issues: ConfigIssue[] = []
  const problem = (variable: string, expected: string): void => {
    const value = env[variable]
    const received = !value
      ? 'nothing'
      : SECRET_VARIABLES.has(variable)
        ? `a value of ${value.length} characters`
        : // A database URL may carry a password: never echo the user-info part.
          JSON.stringify(value.replace(/\/\/[^@/]*@/, '//…@').slice(0, 80))
    issues.push({ variable, expected, received })
  }
  const dataDir = resolve(env.GHL_DATA_DIR?.trim() || './data')
  const databaseUrl = env.DATABASE_URL?.trim() || resolve(dataDir, 'ghl-connect.db')
  if (/^[a-z]+:\/\//i.test(databaseUrl) && !/^postgres(ql)?:\/\//i.test(databaseUrl)) problem('DATABASE_URL', 'a SQLite file path or a postgres:// URL')
  const keys = parseKeys(env.GHL_ENCRYPTION_KEY, problem)
  if (keys.length === 0 && !options.allowMissingKey && !issues.some((i) => i.variable === 'GHL_ENCRYPTION_KEY')) {
    problem('GHL_ENCRYPTION_KEY', 'one or more base64 32-byte keys, comma-separated (generate one: `ghl-connect keys generate`)')
  }
  if (issues.length > 0) throw new ConfigError(issues)
  return deepFreeze({ databaseUrl, dataDir, encryptionKeys: keys })
}
