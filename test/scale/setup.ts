/**
 * A scale-test world: a fresh database of a dialect, a vault whose every statement is recorded
 * (`onQuery`), seeded installations (see `seed.ts`), a token endpoint, and token services on top.
 */
import { loadConfig, type Config } from '../../src/config.js'
import type { Clock } from '../../src/clock.js'
import { TokenService } from '../../src/tokens/token-service.js'
import { createVault } from '../../src/vault/create-vault.js'
import type { ObservedQuery } from '../../src/vault/query-observer.js'
import type { Vault } from '../../src/vault/types.js'
import { freshDatabase, testKey, type DialectName } from '../helpers/services.js'
import { layout, seedInstallations, type SeedLayout } from './seed.js'
import { startTokenEndpoint, type ScaleTokenEndpoint } from './token-endpoint.js'

/** Statements recorded while `on`. */
export class QueryLog {
  readonly queries: ObservedQuery[] = []
  on = false
  /** Called with each statement recorded, as it completes. */
  tap: ((q: ObservedQuery) => void) | undefined

  readonly observe = (q: ObservedQuery): void => {
    if (!this.on) return
    this.queries.push(q)
    this.tap?.(q)
  }

  /** Records the statements `fn` sends. */
  async during(fn: () => Promise<unknown>): Promise<ObservedQuery[]> {
    const from = this.queries.length
    this.on = true
    try {
      await fn()
    } finally {
      this.on = false
    }
    return this.queries.slice(from)
  }
}

export interface ScaleWorld {
  dialect: DialectName
  databaseUrl: string
  key: string
  vault: Vault
  log: QueryLog
  config: Config
  endpoint: ScaleTokenEndpoint
  layout: SeedLayout
  /** A token service on the world's vault (or on `vault`), with these extra settings. */
  tokens(options?: { env?: Record<string, string>; clock?: Clock; vault?: Vault }): TokenService
  /** Another vault on the same database, with its own query log. */
  openVault(log?: QueryLog): Promise<Vault>
  cleanup(): Promise<void>
}

export async function createScaleWorld(
  dialect: DialectName,
  options: { installations: number; due?: number; latencyMs?: number; env?: Record<string, string> },
): Promise<ScaleWorld> {
  const db = await freshDatabase(dialect)
  const key = testKey()
  const endpoint = await startTokenEndpoint({ latencyMs: options.latencyMs ?? 0 })
  const log = new QueryLog()
  const vaults: Vault[] = []
  const services: TokenService[] = []
  const envFor = (extra: Record<string, string> = {}): Record<string, string> => ({
    GHL_CLIENT_ID: 'scaleapp0000000000000000-test1234',
    GHL_CLIENT_SECRET: 'scale-secret',
    GHL_REDIRECT_URI: 'http://127.0.0.1:1/oauth/callback',
    GHL_SCOPES: 'contacts.readonly locations.readonly',
    GHL_API_URL: endpoint.url,
    GHL_ENCRYPTION_KEY: key,
    DATABASE_URL: db.url,
    GHL_REFRESH_JITTER_MS: '0',
    ...options.env,
    ...extra,
  })
  const config = loadConfig({ env: envFor() })
  const openVault = async (l: QueryLog = log): Promise<Vault> => {
    const v = await createVault({ databaseUrl: db.url, keys: config.encryptionKeys, onQuery: l.observe })
    vaults.push(v)
    return v
  }
  const vault = await openVault()
  const l = layout(options.installations)
  if (options.due !== undefined) l.due = options.due
  await seedInstallations(vault, config.clientId, l)
  return {
    dialect,
    databaseUrl: db.url,
    key,
    vault,
    log,
    config,
    endpoint,
    layout: l,
    tokens(o = {}) {
      const service = new TokenService({ config: loadConfig({ env: envFor(o.env) }), vault: o.vault ?? vault, clock: o.clock })
      services.push(service)
      return service
    },
    openVault,
    async cleanup() {
      for (const s of services) await s.close()
      for (const v of vaults) await v.close()
      await endpoint.close()
      await db.cleanup()
    },
  }
}
