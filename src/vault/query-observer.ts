/**
 * Sees every statement the vault sends through Kysely: its SQL, parameters, rows returned and time.
 * Tests count queries with it (an unknown location costs one indexed read; the refresher never reads
 * more than a page per query) and can `EXPLAIN` what was sent; operators can log slow statements.
 *
 * It wraps the dialect's driver rather than using Kysely's `log` option, which reports neither the
 * rows a statement returned nor anything else a caller can count per statement. The wrapper costs one
 * `performance.now()` pair per statement, and nothing when no observer is given (the dialect is then
 * used as it is). Refresh-lock statements on PostgreSQL run on the lock pool, outside Kysely, and are
 * not seen.
 */
import { performance } from 'node:perf_hooks'
import type {
  CompiledQuery,
  DatabaseConnection,
  Dialect,
  DialectAdapter,
  Driver,
  Kysely,
  QueryCompiler,
  QueryResult,
  TransactionSettings,
  DatabaseIntrospector,
} from 'kysely'

/** One statement the vault ran. Holds parameters (sealed tokens among them): never log them whole. */
export interface ObservedQuery {
  readonly sql: string
  readonly parameters: readonly unknown[]
  /** Rows returned (`RETURNING` included); 0 for a statement that returns none. */
  readonly rows: number
  readonly durationMs: number
  /** Set when the statement failed. */
  readonly error?: unknown
}

/** Called after every statement; must not throw (a throw is swallowed). */
export type QueryObserver = (query: ObservedQuery) => void

/** `dialect` with every statement reported to `observer`. */
export function observedDialect(dialect: Dialect, observer: QueryObserver): Dialect {
  return {
    createAdapter: (): DialectAdapter => dialect.createAdapter(),
    createDriver: (): Driver => new ObservedDriver(dialect.createDriver(), observer),
    createQueryCompiler: (): QueryCompiler => dialect.createQueryCompiler(),
    createIntrospector: (db: Kysely<any>): DatabaseIntrospector => dialect.createIntrospector(db),
  }
}

class ObservedConnection implements DatabaseConnection {
  readonly inner: DatabaseConnection
  readonly #observer: QueryObserver

  constructor(inner: DatabaseConnection, observer: QueryObserver) {
    this.inner = inner
    this.#observer = observer
  }

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    const started = performance.now()
    try {
      const result = await this.inner.executeQuery<R>(query)
      report(this.#observer, { sql: query.sql, parameters: query.parameters, rows: result.rows.length, durationMs: performance.now() - started })
      return result
    } catch (error) {
      report(this.#observer, { sql: query.sql, parameters: query.parameters, rows: 0, durationMs: performance.now() - started, error })
      throw error
    }
  }

  streamQuery<R>(query: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    report(this.#observer, { sql: query.sql, parameters: query.parameters, rows: 0, durationMs: 0 })
    return this.inner.streamQuery<R>(query, chunkSize)
  }
}

function report(observer: QueryObserver, query: ObservedQuery): void {
  try {
    observer(query)
  } catch {
    // An observer's mistake must never fail a vault statement.
  }
}

/** Drivers know their own connection objects (PostgreSQL's release is a private method of it). */
function unwrap(connection: DatabaseConnection): DatabaseConnection {
  return connection instanceof ObservedConnection ? connection.inner : connection
}

class ObservedDriver implements Driver {
  readonly #inner: Driver
  readonly #observer: QueryObserver

  constructor(inner: Driver, observer: QueryObserver) {
    this.#inner = inner
    this.#observer = observer
  }

  init(): Promise<void> {
    return this.#inner.init()
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    return new ObservedConnection(await this.#inner.acquireConnection(), this.#observer)
  }

  beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    // Through the observed connection: BEGIN is a statement too.
    return this.#inner.beginTransaction(connection, settings)
  }

  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return this.#inner.commitTransaction(connection)
  }

  rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    return this.#inner.rollbackTransaction(connection)
  }

  async savepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    await this.#inner.savepoint?.(connection, name, compile)
  }

  async rollbackToSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    await this.#inner.rollbackToSavepoint?.(connection, name, compile)
  }

  async releaseSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    await this.#inner.releaseSavepoint?.(connection, name, compile)
  }

  releaseConnection(connection: DatabaseConnection): Promise<void> {
    return this.#inner.releaseConnection(unwrap(connection))
  }

  destroy(): Promise<void> {
    return this.#inner.destroy()
  }
}
