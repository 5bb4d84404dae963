/**
 * Opens the token vault on SQLite or PostgreSQL. See {@link createVault}.
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import Database from 'better-sqlite3'
import { CompiledQuery, Kysely, PostgresDialect, SqliteAdapter, SqliteDialect, SqliteDriver, type DatabaseConnection, type DialectAdapter, type Driver, type PostgresPool, type PostgresPoolClient, type QueryResult } from 'kysely'
import pg from 'pg'
import { systemClock, type Clock } from '../clock.js'
import type { EncryptionKey } from '../config.js'
import { GhlError } from '../errors.js'
import { silentLogger, type Logger } from '../logger.js'
import { KeyedMutex } from './keyed-mutex.js'
import { observedDialect, type QueryObserver } from './query-observer.js'
import { PostgresAdvisoryLock } from './postgres-advisory-lock.js'
import { startCheckpointer } from './sqlite-checkpointer.js'
import { SqliteLeaseLock } from './sqlite-lease-lock.js'
import type { VaultDatabase } from './schema.js'
import { SqlVault } from './sql-vault.js'
import { TokenCipher } from './token-cipher.js'
import type { Vault } from './types.js'

/** Default SQLite refresh-lock lease: a holder that dies frees the lock at most this long after. */
export const DEFAULT_LOCK_LEASE_MS = 30_000
/** How long a SQLite statement waits for another process's write lock before failing. */
const SQLITE_BUSY_TIMEOUT_MS = 10_000
const POOL_SIZE = 10

/** Bounds on every wait for the database (PostgreSQL); each has a default. */
export interface DatabaseTimeouts {
  /** A new connection must be made (TCP + auth) within this (default 5000 ms). */
  connectMs?: number
  /** A statement must be answered within this, or its connection is destroyed (default 10000 ms). */
  statementMs?: number
}

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
  /** PostgreSQL: bounds on connecting and on each statement. */
  timeouts?: DatabaseTimeouts
  /** PostgreSQL: connections of the pool reserved for refresh locks (default 10). */
  lockPoolSize?: number
  /**
   * Called after every statement sent through the query builder, with its SQL, parameters, rows and
   * time (see `query-observer.ts`): tests count queries with it, operators may log slow ones. The
   * parameters include sealed tokens: never log them whole.
   */
  onQuery?: QueryObserver
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
    ? openPostgres(options.databaseUrl, cipher, clock, logger, options.timeouts ?? {}, options.lockPoolSize ?? POOL_SIZE, options.onQuery)
    : openSqlite(options.databaseUrl, cipher, clock, logger, leaseMs, options.onQuery)
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

function openPostgres(
  url: string,
  cipher: TokenCipher,
  clock: Clock,
  logger: Logger,
  timeouts: DatabaseTimeouts,
  lockPoolSize: number,
  onQuery: QueryObserver | undefined,
): SqlVault {
  const connectMs = timeouts.connectMs ?? 5_000
  const statementMs = timeouts.statementMs ?? 10_000
  // Logged once per outage, not once per idle connection that drops.
  let reported = false
  const poolError = (err: Error): void => {
    if (reported) return
    reported = true
    logger.error({ error: err.message }, 'vault: a PostgreSQL connection failed; new connections are made as needed')
    setTimeout(() => (reported = false), 30_000).unref()
  }
  const poolConfig: pg.PoolConfig = {
    connectionString: url,
    max: POOL_SIZE,
    connectionTimeoutMillis: connectMs,
    // Client-side: a statement unanswered this long fails; the connection is then destroyed (below).
    query_timeout: statementMs,
    // Server-side: the same bound on the statement's own run time.
    statement_timeout: statementMs,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    idleTimeoutMillis: 30_000,
  }
  const pool = new pg.Pool(poolConfig)
  pool.on('error', poolError)
  // Refresh locks get their own pool (see refresh-lock.ts). A lock is held for a whole refresh, so no
  // server-side statement timeout there (the lock wait has lock_timeout). The client-side bound stays:
  // a lock statement the server never answers (a hung peer) must fail, or the refresh holding it —
  // and with it the installation's in-process lock — would wait forever, long after the server is back.
  // The lock wait itself gets a longer bound of its own (postgres-advisory-lock.ts). Its connection wait
  // is bounded by each lock's own deadline too, which is longer than the pool's connect timeout: more
  // installations refreshing at once than it has connections queue here until their lock wait is up.
  const lockPool = new pg.Pool({ ...poolConfig, max: lockPoolSize, connectionTimeoutMillis: 0, statement_timeout: undefined })
  lockPool.on('error', poolError)
  const dialect = new PostgresDialect({ pool: destroyingBrokenClients(pool) })
  const db = new Kysely<VaultDatabase>({ dialect: onQuery ? observedDialect(dialect, onQuery) : dialect })
  return new SqlVault({
    dialect: 'postgres',
    db,
    cipher,
    lock: new PostgresAdvisoryLock(lockPool, statementMs),
    clock,
    logger,
    // Kysely's PostgreSQL migrator takes pg_advisory_lock around the run: concurrent starts wait.
    migrationGate: (run) => run(),
    afterWipe: async () => {},
    destroy: async () => {
      await Promise.all([db.destroy(), lockPool.end()])
    },
  })
}

/**
 * The pool Kysely uses, with one change: a connection whose statement timed out or failed at the
 * socket is destroyed when released, instead of going back to the pool. A server that stopped
 * answering without closing the socket (a hung peer, a half-open connection) would otherwise keep that
 * connection stuck — every later statement on it waiting behind the unanswered one — long after the
 * server is back.
 */
function destroyingBrokenClients(pool: pg.Pool): PostgresPool {
  // One wrapper per connection for its whole life, not one per checkout: Kysely checks a connection
  // out for every statement, and the refresher makes tens of thousands of them in a sweep.
  const wrappers = new WeakMap<pg.PoolClient, CheckedOutClient>()
  return {
    async connect(): Promise<PostgresPoolClient> {
      const client = await pool.connect()
      let wrapper = wrappers.get(client)
      if (!wrapper) {
        wrapper = new CheckedOutClient(client)
        wrappers.set(client, wrapper)
      }
      return wrapper.checkOut()
    },
    end: () => pool.end(),
  }
}

/** A pooled PostgreSQL connection as Kysely sees it: marked broken by a failure, destroyed on release. */
class CheckedOutClient implements PostgresPoolClient {
  readonly #client: pg.PoolClient
  #broken: Error | undefined
  /** Whether this connection is checked out (an error while idle is pg-pool's to handle). */
  #out = false

  constructor(client: pg.PoolClient) {
    this.#client = client
    // pg-pool listens for errors of idle connections only: a socket that fails while checked out (the
    // server restarted) emits 'error' on the client, which would crash the process without a listener.
    // The statement under way fails with the same error; the connection is destroyed on release.
    client.on('error', (err: Error) => {
      if (this.#out) this.#broken = err
    })
  }

  checkOut(): this {
    this.#out = true
    this.#broken = undefined
    return this
  }

  // Kysely never streams vault queries (no cursor), so only the (sql, parameters) form is used.
  readonly query = (async (text: string, params: readonly unknown[]) => {
    try {
      return await this.#client.query(text, params as unknown[])
    } catch (err) {
      if (!(err as { code?: unknown }).code || /timeout|terminated|ECONN/i.test((err as Error).message)) this.#broken = err as Error
      throw err
    }
  }) as unknown as PostgresPoolClient['query']

  release(): void {
    this.#out = false
    this.#client.release(this.#broken)
  }
}

/**
 * Migrations of one SQLite file within this process run one at a time. better-sqlite3 is synchronous:
 * a second connection of the same process waiting on `BEGIN IMMEDIATE` would block the event loop, so
 * the first could never finish; across processes the wait is SQLite's busy timeout.
 */
const sqliteMigrations = new KeyedMutex()

function openSqlite(path: string, cipher: TokenCipher, clock: Clock, logger: Logger, leaseMs: number, onQuery: QueryObserver | undefined): SqlVault {
  const file = path === ':memory:' ? path : resolve(path)
  if (file !== ':memory:') {
    mkdirSync(dirname(file), { recursive: true })
    // The file holds (encrypted) tokens: readable by its owner only, like the key file.
    if (!existsSync(file)) closeSync(openSync(file, 'a', 0o600))
  }
  const sqlite = new Database(file)
  // Wait (rather than fail with SQLITE_BUSY) while another process holds the write lock; set first,
  // so that switching to WAL below waits too.
  sqlite.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`)
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma('synchronous = NORMAL')
  // Overwrite deleted content with zeros, so wiped tokens do not linger in free space of a page.
  sqlite.pragma('secure_delete = ON')
  // Checkpoints run in a worker (see sqlite-checkpointer.ts): one inside a commit fsyncs on the event loop.
  const checkpointer = file === ':memory:' ? undefined : startCheckpointer(file, logger)
  if (checkpointer) sqlite.pragma('wal_autocheckpoint = 0')
  if (file !== ':memory:') {
    for (const f of [file, `${file}-wal`, `${file}-shm`]) {
      try {
        if (existsSync(f)) chmodSync(f, 0o600)
      } catch (err) {
        logger.warn({ file: f, error: (err as Error).message }, 'vault: could not restrict the SQLite file to its owner')
      }
    }
  }
  const dialect = new ImmediateSqliteDialect(sqlite)
  const db = new Kysely<VaultDatabase>({ dialect: onQuery ? observedDialect(dialect, onQuery) : dialect })
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
    destroy: async () => {
      await db.destroy()
      await checkpointer?.close()
    },
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
  readonly #database: Database.Database

  constructor(database: Database.Database) {
    super({ database })
    this.#database = database
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#database)
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
  readonly #connection: StatementCachingConnection

  constructor(database: Database.Database) {
    super({ database })
    this.#connection = new StatementCachingConnection(database)
  }

  /** SQLite has one connection: Kysely's mutex still hands it out one holder at a time (super). */
  override async acquireConnection(): Promise<DatabaseConnection> {
    await super.acquireConnection()
    return this.#connection
  }

  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'))
  }
}

/** Prepared statements kept, most recent {@link STATEMENT_CACHE} of them. */
const STATEMENT_CACHE = 256

/**
 * Kysely's SQLite connection, keeping prepared statements: Kysely prepares every statement anew, and
 * preparing was 6 % of the event loop's time in a refresher sweep (`npm run bench:scale`). The vault's
 * statements are few and repeat (the ones with a list of ids vary in length, hence the bound).
 * better-sqlite3 runs each to completion synchronously, so one statement object never serves two
 * callers at once; SQLite re-prepares by itself after a schema change.
 */
class StatementCachingConnection implements DatabaseConnection {
  readonly #db: Database.Database
  readonly #statements = new Map<string, Database.Statement>()

  constructor(db: Database.Database) {
    this.#db = db
  }

  #prepare(sql: string): Database.Statement {
    let stmt = this.#statements.get(sql)
    if (stmt === undefined) {
      stmt = this.#db.prepare(sql)
      if (this.#statements.size >= STATEMENT_CACHE) this.#statements.delete(this.#statements.keys().next().value!)
      this.#statements.set(sql, stmt)
    }
    return stmt
  }

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    const stmt = this.#prepare(query.sql)
    const parameters = query.parameters as unknown[]
    if (stmt.reader) return { rows: stmt.all(parameters) as R[] }
    const { changes, lastInsertRowid } = stmt.run(parameters)
    return { numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid), rows: [] }
  }

  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new GhlError('GHL_INTERNAL', 'The vault does not stream SQLite queries')
  }
}
