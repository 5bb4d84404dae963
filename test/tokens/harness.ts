/**
 * Test harness for the OAuth client and the token manager: a sandbox (the HighLevel side), a fresh
 * vault of a dialect, a connector config pointing at both, a TokenService, and helpers that install a
 * location or an agency through the real consent → callback → code exchange path.
 */
import { request } from 'undici'
import type { Redis } from 'ioredis'
import type { Clock } from '../../src/clock.js'
import { loadConfig, type Config } from '../../src/config.js'
import { InstallFlow } from '../../src/oauth/install-flow.js'
import { startSandbox, type Sandbox, type SandboxOptions, type SandboxStats } from '../../src/sandbox/index.js'
import { TokenService, type TokenServiceOptions } from '../../src/tokens/token-service.js'
import { createVault } from '../../src/vault/create-vault.js'
import type { Installation, Vault } from '../../src/vault/types.js'
import type { TokenEvents } from '../../src/tokens/types.js'
import { freshDatabase, testKey, type DialectName } from '../helpers/services.js'

export const REDIRECT_URI = 'http://127.0.0.1:1/oauth/callback'
export const SCOPES = 'contacts.readonly locations.readonly oauth.readonly oauth.write'

export interface HarnessOptions {
  /** Clock of the TokenService and the InstallFlow (the vault and sandbox keep real time unless `vaultClock`). */
  clock?: Clock
  /** Clock of the vault (state expiry, SQLite leases). */
  vaultClock?: Clock
  sandbox?: SandboxOptions
  /** Extra environment for loadConfig (e.g. GHL_REFRESH_MARGIN_MS). */
  env?: Record<string, string>
  tokenOptions?: Partial<TokenServiceOptions>
  redis?: Redis
  /** Share this sandbox instead of starting one (it is then not closed by cleanup). */
  sharedSandbox?: Sandbox
  /** Share this database URL instead of making a fresh one. */
  databaseUrl?: string
  /** Encryption key to use (base64); a fresh one by default. */
  key?: string
}

export interface Harness {
  sandbox: Sandbox
  config: Config
  /** Same as config, with `userType: 'Company'` (for agency installs). */
  agencyConfig: Config
  vault: Vault
  tokens: TokenService
  env: Record<string, string>
  databaseUrl: string
  key: string
  /** Installs the app on a location (default: the first seeded one) through InstallFlow. */
  installLocation(locationId?: string): Promise<Installation>
  /** Installs the app on an agency (default: the first seeded company) with these locations approved. */
  installAgency(companyId?: string, locationIds?: string[]): Promise<Installation>
  /** A redirect query from the sandbox's consent for a state (no exchange). */
  consent(state: string | undefined, target: { locationId?: string; companyId?: string; locationIds?: string[]; deny?: boolean }, redirectUri?: string): Promise<Record<string, string>>
  stats(): Promise<SandboxStats>
  control(method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<unknown>
  /** GET /locations/:id with the token; the HTTP status. */
  callApi(accessToken: string, locationId: string): Promise<number>
  /** Makes another TokenService on the same vault (a second "worker" with its own cache). */
  newTokenService(options?: Partial<TokenServiceOptions>): TokenService
  cleanup(): Promise<void>
}

export async function createHarness(dialect: DialectName, options: HarnessOptions = {}): Promise<Harness> {
  const sandbox =
    options.sharedSandbox ??
    (await startSandbox({ port: 0, rateLimit: { burstMax: 1_000_000, burstWindowMs: 10_000, dailyMax: 10_000_000 }, ...options.sandbox }))
  sandbox.configureApp({ redirectUris: [REDIRECT_URI] })
  const db = options.databaseUrl ? { url: options.databaseUrl, cleanup: async () => {} } : await freshDatabase(dialect)
  const key = options.key ?? testKey()
  const env: Record<string, string> = {
    GHL_CLIENT_ID: sandbox.app.clientId,
    GHL_CLIENT_SECRET: sandbox.app.clientSecret,
    GHL_REDIRECT_URI: REDIRECT_URI,
    GHL_SCOPES: SCOPES,
    GHL_API_URL: sandbox.url,
    GHL_MARKETPLACE_URL: sandbox.url,
    GHL_ENCRYPTION_KEY: key,
    DATABASE_URL: db.url,
    GHL_REFRESH_JITTER_MS: '0',
    ...options.env,
  }
  const config = loadConfig({ env })
  const agencyConfig = loadConfig({ env: { ...env, GHL_USER_TYPE: 'Company' } })
  const vault = await createVault({ databaseUrl: db.url, keys: config.encryptionKeys, clock: options.vaultClock, lockLeaseMs: 2000 })
  const services: TokenService[] = []
  const newTokenService = (extra: Partial<TokenServiceOptions> = {}): TokenService => {
    const svc = new TokenService({
      config,
      vault,
      clock: options.clock,
      redis: options.redis,
      retry: { baseDelayMs: 20, maxDelayMs: 100 },
      ...options.tokenOptions,
      ...extra,
    })
    services.push(svc)
    return svc
  }
  const tokens = newTokenService()

  const control = async (method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<unknown> => {
    const res = await request(`${sandbox.url}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    const text = await res.body.text()
    if (res.statusCode >= 400) throw new Error(`sandbox ${method} ${path} answered ${res.statusCode}: ${text}`)
    return text ? (JSON.parse(text) as unknown) : undefined
  }

  const consent: Harness['consent'] = async (state, target, redirectUri = REDIRECT_URI) => {
    const answer = (await control('POST', '/_sandbox/authorize', {
      clientId: config.clientId,
      redirectUri,
      scope: SCOPES,
      ...(state === undefined ? {} : { state }),
      webhookTiming: 'none',
      ...target,
    })) as { redirect: string }
    return Object.fromEntries(new URL(answer.redirect).searchParams)
  }

  const firstCompany = sandbox.companies[0]!
  const installLocation = async (locationId = firstCompany.locations[0]!.locationId): Promise<Installation> => {
    const flow = new InstallFlow({ config, vault, clock: options.clock })
    const { state } = await flow.start()
    return flow.complete(await consent(state, { locationId }))
  }
  const installAgency = async (companyId = firstCompany.companyId, locationIds?: string[]): Promise<Installation> => {
    const flow = new InstallFlow({ config: agencyConfig, vault, clock: options.clock })
    const { state } = await flow.start()
    return flow.complete(await consent(state, { companyId, ...(locationIds ? { locationIds } : {}) }))
  }

  return {
    sandbox,
    config,
    agencyConfig,
    vault,
    tokens,
    env,
    databaseUrl: db.url,
    key,
    installLocation,
    installAgency,
    consent,
    stats: async () => (await control('GET', '/_sandbox/stats')) as SandboxStats,
    control,
    callApi: async (accessToken, locationId) => {
      const res = await request(`${sandbox.url}/locations/${locationId}`, {
        headers: { authorization: `Bearer ${accessToken}`, version: '2021-07-28', accept: 'application/json' },
      })
      await res.body.dump()
      return res.statusCode
    },
    newTokenService,
    cleanup: async () => {
      for (const s of services) await s.close()
      await vault.close()
      if (!options.sharedSandbox) await sandbox.close()
      await db.cleanup()
    },
  }
}

type Roles = Pick<Vault, 'installations' | 'locks' | 'states' | 'webhooks' | 'audit' | 'flags' | 'keys'>

/** The vault with some role methods replaced, e.g. `{ installations: { upsert: … } }` (the others are the real ones). */
export function wrapVault(vault: Vault, overrides: { [R in keyof Roles]?: Partial<Roles[R]> }): Vault {
  const wrapped: Record<string, unknown> = {}
  for (const role of Object.keys(overrides) as (keyof Roles)[]) wrapped[role] = { ...vault[role], ...overrides[role] }
  return new Proxy(vault, {
    get(obj, prop, recv) {
      if (typeof prop === 'string' && prop in wrapped) return wrapped[prop]
      const v = Reflect.get(obj, prop, recv) as unknown
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(obj) : v
    },
  })
}

/** Every payload of one token event, as it is emitted. */
export function collect<K extends keyof TokenEvents>(tokens: TokenService, event: K): TokenEvents[K][] {
  const seen: TokenEvents[K][] = []
  tokens.on(event, (e) => seen.push(e))
  return seen
}
