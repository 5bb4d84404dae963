/**
 * The {@link Vault} on SQL through Kysely: one implementation for SQLite and PostgreSQL, made of role
 * stores (installations, locks, states, webhooks, audit, flags, keys), each in its own file. What
 * differs between the dialects (connection set-up, the refresh lock, migration locking) is passed in by
 * {@link createVault}.
 *
 * Every role method that fails because the database did not answer (a connection refused or timed out,
 * a statement past its timeout, SQLite busy past its timeout) rejects with GhlError
 * `GHL_DATABASE_UNAVAILABLE` (503, Retry-After) — never a driver error, never `GHL_NETWORK` (which names
 * HighLevel only).
 */
import { performance } from 'node:perf_hooks'
import { Migrator, sql, type Kysely } from 'kysely'
import { GhlError } from '../errors.js'
import { KeyedMutex } from './keyed-mutex.js'
import { vaultMigrations } from './migrations/index.js'
import type { RefreshLockBackend } from './refresh-lock.js'
import type { InstallationRow, VaultDatabase } from './schema.js'
import { SqlAuditLog, SqlFlagStore } from './sql-audit-log.js'
import { badInput, type SqlContext } from './sql-helpers.js'
import { SqlInstallationStore, TokenColumns } from './sql-installation-store.js'
import { SqlKeyRotation } from './key-rotation.js'
import { SqlStateStore } from './sql-state-store.js'
import { SqlWebhookStore } from './sql-webhook-store.js'
import { SqlBillingReportStore } from './sql-billing-report-store.js'
import { SqlChargeStore } from './sql-charge-store.js'
import { SqlCredentialStore } from './sql-credential-store.js'
import { SqlTriggerStore } from './sql-trigger-store.js'
import { SqlConsoleStore } from './sql-console-store.js'
import type { BillingReportStore, ChargeStore, CredentialStore, TriggerSubscriptionStore } from './marketplace-types.js'
import { TokenCipher } from './token-cipher.js'
import type {
  AuditLog,
  ConsoleStore,
  FlagStore,
  Installation,
  InstallationStore,
  KeyRotation,
  OAuthStateStore,
  RefreshLockOptions,
  RefreshLocks,
  Vault,
  WebhookEventStore,
} from './types.js'

/**
 * Default wait for another holder of the refresh lock. It must cover a holder's worst case (the token
 * service bounds a whole refresh — every attempt and backoff — below its own lock wait, which it passes).
 */
export const DEFAULT_LOCK_WAIT_MS = 45_000

/** What {@link createVault} hands the SQL vault. */
export interface SqlVaultOptions extends SqlContext {
  cipher: TokenCipher
  lock: RefreshLockBackend
  /** Runs the migration (SQLite: serialised per file within the process). */
  migrationGate: <T>(run: () => Promise<T>) => Promise<T>
  /** After tokens are wiped (SQLite: checkpoint the WAL so the old page images leave the disk). */
  afterWipe: () => Promise<void>
  /** Closes the connections. */
  destroy: () => Promise<void>
}

/** The per-installation refresh locks: an in-process FIFO per id, then the database lock. */
class SqlRefreshLocks implements RefreshLocks {
  readonly #local = new KeyedMutex()
  readonly #backend: RefreshLockBackend
  readonly #open: (row: InstallationRow) => Installation

  constructor(backend: RefreshLockBackend, open: (row: InstallationRow) => Installation) {
    this.#backend = backend
    this.#open = open
  }

  async withRefreshLock<T>(id: string, fn: (row?: Installation) => Promise<T>, options: RefreshLockOptions = {}): Promise<T> {
    const waitMs = options.waitMs ?? DEFAULT_LOCK_WAIT_MS
    if (!Number.isFinite(waitMs) || waitMs < 0) throw badInput([`expected waitMs to be a non-negative number, got ${String(waitMs)}`])
    const deadline = performance.now() + waitMs
    const release = await this.#local.acquire(id, waitMs, options.signal)
    // The lock's own queries failing is a database problem; whatever `fn` throws is passed on as it is.
    let fromFn = false
    // Not an async function: its frame would keep the raw row (and with it what the driver parsed)
    // alive for as long as `fn` runs — a token request — long enough to outlive a young collection.
    const run = (raw?: InstallationRow): Promise<T> => {
      const failed = (err: unknown): never => {
        fromFn = true
        throw err
      }
      try {
        return fn(raw && this.#open(raw)).catch(failed)
      } catch (err) {
        return failed(err)
      }
    }
    try {
      return await this.#backend.run(id, deadline, run, options.signal)
    } catch (err) {
      throw fromFn ? err : databaseError(err)
    } finally {
      release()
    }
  }
}

/** The SQL {@link Vault}. Build it with {@link createVault}. */
export class SqlVault implements Vault {
  readonly dialect: 'sqlite' | 'postgres'
  readonly installations: InstallationStore
  readonly locks: RefreshLocks
  readonly states: OAuthStateStore
  readonly webhooks: WebhookEventStore
  readonly audit: AuditLog
  readonly flags: FlagStore
  readonly keys: KeyRotation
  readonly charges: ChargeStore
  readonly triggers: TriggerSubscriptionStore
  readonly credentials: CredentialStore
  readonly billingReports: BillingReportStore
  readonly console: ConsoleStore
  readonly #db: Kysely<VaultDatabase>
  readonly #options: SqlVaultOptions
  #closed = false

  constructor(options: SqlVaultOptions) {
    this.dialect = options.dialect
    this.#db = options.db
    this.#options = options
    const tokens = new TokenColumns(options.cipher)
    const ctx: SqlContext = { dialect: options.dialect, db: options.db, clock: options.clock, logger: options.logger }
    const installations = new SqlInstallationStore(ctx, tokens, options.afterWipe)
    this.installations = guarded(installations)
    this.locks = new SqlRefreshLocks(options.lock, (row) => installations.fromRow(row))
    this.states = guarded(new SqlStateStore(ctx))
    this.webhooks = guarded(new SqlWebhookStore(ctx))
    this.audit = guarded(new SqlAuditLog(ctx))
    this.flags = guarded(new SqlFlagStore(ctx))
    const credentials = new SqlCredentialStore(ctx, options.cipher)
    this.keys = guarded(new SqlKeyRotation(ctx, tokens, [credentials]))
    this.charges = guarded(new SqlChargeStore(ctx))
    this.triggers = guarded(new SqlTriggerStore(ctx))
    this.credentials = guarded(credentials)
    this.billingReports = guarded(new SqlBillingReportStore(ctx))
    this.console = guarded(new SqlConsoleStore(ctx))
  }

  async migrate(): Promise<void> {
    const migrator = new Migrator({ db: this.#db, provider: vaultMigrations(this.dialect) })
    const { error, results } = await this.#options.migrationGate(() => migrator.migrateToLatest())
    if (error) {
      throw databaseError(error, `Vault migration failed: ${error instanceof Error ? error.message : String(error)}`)
    }
    for (const r of results ?? []) this.#options.logger.info({ migration: r.migrationName, status: r.status }, 'vault: migration')
  }

  async check(timeoutMs: number): Promise<{ ok: true } | { ok: false; reason: string }> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<{ ok: false; reason: string }>((resolve) => {
      timer = setTimeout(() => resolve({ ok: false, reason: `the database did not answer within ${timeoutMs} ms` }), timeoutMs)
    })
    const probe = (async (): Promise<{ ok: true } | { ok: false; reason: string }> => {
      try {
        await sql`select 1`.execute(this.#db)
        const migrations = await new Migrator({ db: this.#db, provider: vaultMigrations(this.dialect) }).getMigrations()
        const pending = migrations.filter((m) => m.executedAt === undefined).map((m) => m.name)
        return pending.length === 0 ? { ok: true } : { ok: false, reason: `migrations not applied: ${pending.join(', ')} (run \`ghl-connect migrate\`)` }
      } catch (err) {
        return { ok: false, reason: `the database failed: ${(err as Error).message}` }
      }
    })()
    try {
      return await Promise.race([probe, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#options.destroy()
  }
}

/**
 * Errors that mean "the database did not answer" (driver and socket codes; pg's own timeouts), as
 * opposed to a bug or a constraint: those become `GHL_DATABASE_UNAVAILABLE`.
 */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN',
  'SQLITE_BUSY', 'SQLITE_LOCKED',
  '57P01', '57P02', '57P03', '53300', '08000', '08001', '08003', '08004', '08006', '57014',
])
const UNAVAILABLE_MESSAGES = /timeout|timed out|terminated|Connection terminated|not queryable|Client has encountered a connection error|database is locked|ECONNREFUSED/i

/** Maps a driver failure to a GhlError (GhlErrors pass through). */
export function databaseError(err: unknown, message?: string): GhlError {
  if (err instanceof GhlError) return err
  const code = (err as { code?: unknown } | null)?.code
  const text = err instanceof Error ? err.message : String(err)
  if ((typeof code === 'string' && UNAVAILABLE_CODES.has(code)) || UNAVAILABLE_MESSAGES.test(text)) {
    return new GhlError('GHL_DATABASE_UNAVAILABLE', message ?? `The database did not answer: ${text.slice(0, 200)}`, { cause: err })
  }
  return new GhlError('GHL_INTERNAL', message ?? `The database failed: ${text.slice(0, 200)}`, { cause: err })
}

/**
 * The same store with every method's rejection mapped by {@link databaseError}. (Methods are taken from
 * the prototype: the stores are classes with private fields, which a Proxy could not forward to.)
 */
function guarded<T extends object>(store: T): T {
  const out: Record<string, unknown> = {}
  const proto = Object.getPrototypeOf(store) as object
  for (const name of Object.getOwnPropertyNames(proto)) {
    if (name === 'constructor') continue
    const fn = (store as Record<string, unknown>)[name]
    if (typeof fn !== 'function') continue
    out[name] = async (...args: unknown[]) => {
      try {
        return await (fn as (...a: unknown[]) => Promise<unknown>).apply(store, args)
      } catch (err) {
        throw databaseError(err)
      }
    }
  }
  return Object.freeze(out) as T
}

export { TokenCipher }
