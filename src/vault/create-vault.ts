/**
 * Opens the token vault on SQLite or PostgreSQL. See {@link createVault}.
 */
import { mkdirSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import Database from 'better-sqlite3'
import { CompiledQuery, Kysely, PostgresDialect, SqliteAdapter, SqliteDialect, SqliteDriver, type DatabaseConnection, type DialectAdapter, type Driver, type SqliteDialectConfig } from 'kysely'
import pg from 'pg'
import { systemClock, type Clock } from '../clock.js'
import type { EncryptionKey } from '../config.js'
import { GhlError } from '../errors.js'
import { silentLogger, type Logger } from '../logger.js'
import { KeyedMutex } from './keyed-mutex.js'
import { PostgresAdvisoryLock, SqliteLeaseLock } from './refresh-lock.js'
import type { VaultDatabase } from './schema.js'
import { SqlVault } from './sql-vault.js'
import { TokenCipher } from './token-cipher.js'
import type { Vault } from './types.js'

/** Default SQLite refresh-lock lease: a holder that dies frees the lock at most this long after. */
export const DEFAULT_LOCK_LEASE_MS = 30_000
/** How long a SQLite statement waits for another process's write lock before failing. */
const SQLITE_BUSY_TIMEOUT_MS = 10_000
const POOL_SIZE = 10

/** Options of {@link createVault}. */
export interface CreateVaultOptions {
  /** A `postgres://` / `postgresql://` URL, or else a SQLite file path (its folder is created). */
  databaseUrl: string
  /** The first encrypts; all decrypt (`config.encryptionKeys`). */
  keys: readonly EncryptionKey[]
  logger?: Logger
  clock?: Clock
  /** SQLite only: the refresh-lock lease, renewed every third while held (default 30 000 ms). */
  lockLeaseMs?: number
  /** Run pending migrations before returning (default `true`). */
  migrate?: boolean
}

/**
 * Opens the vault: SQLite (better-sqlite3, WAL) for a file path, PostgreSQL (a `pg` pool) for a
 * `postgres://` URL; migrates it unless `migrate: false`.
 *
 * @example
 * const vault = await createVault({ databaseUrl: config.databaseUrl, keys: config.encryptionKeys, logger })
 * const inst = await vault.findByLocation(config.clientId, 'LOC')
 * await vault.close()
 *
 * @throws GhlError `GHL_CONFIG_INVALID` for bad keys or lease; `GHL_INTERNAL` when a migration fails.
 * @see https://www.sqlite.org/wal.html
 * @see https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS
 */
export async function createVault(options: CreateVaultOptions): Promise<Vault> {
  const cipher = new TokenCipher(options.keys)
  const logger = options.logger ?? silentLogger()
  const clock = options.clock ?? systemClock
  const leaseMs = options.lockLeaseMs ?? DEFAULT_LOCK_LEASE_MS
  if (!Number.isInteger(leaseMs) || leaseMs < 30) {
    throw new GhlError('GHL_CONFIG_INVALID', `expected lockLeaseMs to be an integer of at least 30, got ${String(options.lockLeaseMs)}`)
  }
  if (typeof options.databaseUrl !== 'string' || options.databaseUrl.trim() === '') {
    throw new GhlError('GHL_CONFIG_INVALID', 'expected databaseUrl to be a SQLite file path or a postgres:// URL, got nothing')
  }

  const vault = /^postgres(ql)?:\/\//i.test(options.databaseUrl)
    ? openPostgres(options.databaseUrl, cipher, clock, logger)
    : openSqlite(options.databaseUrl, cipher, clock, logger, leaseMs)
  if (options.migrate ?? true) {
    try {
      await vault.migrate()
    } catch (err) {
      await vault.close().catch(() => {})
      throw err
    }
  }
  return vault
}

function openPostgres(url: string, cipher: TokenCipher, clock: Clock, logger: Logger): SqlVault {
  const poolError = (err: Error): void => logger.error({ err }, 'vault: idle PostgreSQL connection failed')
  const pool = new pg.Pool({ connectionString: url, max: POOL_SIZE })
  pool.on('error', poolError)
  // Refresh locks get their own pool: see refresh-lock.ts.
  const lockPool = new pg.Pool({ connectionString: url, max: POOL_SIZE })
  lockPool.on('error', poolError)
  const db = new Kysely<VaultDatabase>({ dialect: new PostgresDialect({ pool }) })
  const lockDb = new Kysely<VaultDatabase>({ dialect: new PostgresDialect({ pool: lockPool }) })
  return new SqlVault({
    dialect: 'postgres',
    db,
    cipher,
    lock: new PostgresAdvisoryLock(lockDb),
    clock,
    logger,
    // Kysely's PostgreSQL migrator takes pg_advisory_lock around the run: concurrent starts wait.
    migrationGate: (run) => run(),
    afterWipe: async () => {},
    destroy: async () => {
      await Promise.all([db.destroy(), lockDb.destroy()])
    },
  })
}

/**
 * Migrations of one SQLite file within this process run one at a time. better-sqlite3 is synchronous:
 * a second connection of the same process waiting on `BEGIN IMMEDIATE` would block the event loop, so
 * the first could never finish; across processes the wait is SQLite's busy timeout.
 */
const sqliteMigrations = new KeyedMutex()

function openSqlite(path: string, cipher: TokenCipher, clock: Clock, logger: Logger, leaseMs: number): SqlVault {
  const file = path === ':memory:' ? path : resolve(path)
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true })
  const sqlite = new Database(file)
  // Wait (rather than fail with SQLITE_BUSY) while another process holds the write lock; set first,
  // so that switching to WAL below waits too.
  sqlite.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`)
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma('synchronous = NORMAL')
  // Overwrite deleted content with zeros, so wiped tokens do not linger in free space of a page.
  sqlite.pragma('secure_delete = ON')
  const db = new Kysely<VaultDatabase>({ dialect: new ImmediateSqliteDialect({ database: sqlite }) })
  return new SqlVault({
    dialect: 'sqlite',
    db,
    cipher,
    lock: new SqliteLeaseLock(db, clock, leaseMs, logger),
    clock,
    logger,
    migrationGate: async (run) => {
      const release = await sqliteMigrations.acquire(file, 10 * 60_000)
      try {
        return await run()
      } finally {
        release()
      }
    },
    afterWipe: async () => {
      // The old page images (with the ciphertext) live on in the WAL until a checkpoint copies the new
      // pages over them in the main file; TRUNCATE then empties the WAL. Best effort: a reader in
      // another process can keep the checkpoint from completing, and that is not an error.
      try {
        sqlite.pragma('wal_checkpoint(TRUNCATE)')
      } catch (err) {
        logger.warn({ err }, 'vault: WAL checkpoint after wiping tokens failed')
      }
    },
    destroy: () => db.destroy(),
  })
}

/**
 * Kysely's SQLite dialect, with transactions opened by `BEGIN IMMEDIATE`, and migrations in one.
 *
 * A plain (deferred) `BEGIN` takes the write lock only at the first write; in WAL mode a transaction
 * that has read and then finds another process wrote meanwhile fails with SQLITE_BUSY at once — the
 * busy timeout cannot help, since waiting would not make its snapshot current. That is exactly the
 * migrator's pattern (read the executed migrations, then create tables). `BEGIN IMMEDIATE` takes the
 * write lock up front, so a second process starting a migration waits (busy timeout) and then sees
 * the first one's result. See https://www.sqlite.org/lang_transaction.html.
 */
class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig

  constructor(config: SqliteDialectConfig) {
    super(config)
    this.#config = config
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config)
  }

  override createAdapter(): DialectAdapter {
    return new TransactionalDdlSqliteAdapter()
  }
}

/**
 * Kysely's SQLite adapter says SQLite has no transactional DDL, so its migrator would run without a
 * transaction and — its migration lock being a no-op for SQLite — without any lock across processes.
 * SQLite's DDL is transactional (https://www.sqlite.org/lang_transaction.html), so say so: the
 * migrator then runs everything pending in one (immediate, see below) transaction.
 */
class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true
  }
}

class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'))
  }
}
