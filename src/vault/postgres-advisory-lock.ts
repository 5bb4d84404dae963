/**
 * The refresh lock on PostgreSQL: a transaction-scoped advisory lock on a dedicated pooled connection
 * (see `refresh-lock.ts` for why the lock exists and how it holds). Every wait is bounded by the
 * caller's deadline: the wait for a pooled connection, the wait for the lock (`lock_timeout`, applied
 * to advisory locks too — SQLSTATE 55P03), and each statement on a server that stops answering
 * (`query_timeout` of the pool; the lock wait's own is what is left of the deadline plus that). A
 * statement that times out leaves its connection waiting for an answer that may never come: the
 * rollback after it times out too, and the connection is destroyed — which ends the session, and with
 * it the lock, as soon as the server hears of it.
 */
import { createHash } from 'node:crypto'
import type pg from 'pg'
import { GhlError } from '../errors.js'
import type { InstallationRow } from './schema.js'
import { lockAborted, lockNotInstalled, lockTimeout, remaining, type RefreshLockBackend } from './refresh-lock.js'

/** A signed 64-bit advisory-lock key for an installation id (as text, cast to bigint in SQL). */
export function advisoryLockKey(id: string): string {
  return createHash('sha256').update(`ghl-connect:refresh-lock:${id}`).digest().readBigInt64BE(0).toString()
}

/** The least time given to obtain a pooled connection, even for a lock taken without waiting (`waitMs: 0`). */
const CONNECT_GRACE_MS = 1000

/** PostgreSQL: a transaction-scoped advisory lock on a dedicated pooled connection. */
export class PostgresAdvisoryLock implements RefreshLockBackend {
  readonly #pool: pg.Pool
  readonly #statementMs: number

  /**
   * @param pool - A pool used for nothing but locks (so holders can never starve `fn` of connections),
   *   with a `query_timeout` bounding each statement.
   * @param statementMs - That bound: the lock wait gets it on top of what is left of the deadline.
   */
  constructor(pool: pg.Pool, statementMs: number) {
    this.#pool = pool
    this.#statementMs = statementMs
  }

  async run<T>(id: string, deadline: number, fn: (row?: InstallationRow) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const waitMs = remaining(deadline)
    const client = await this.#connect(id, deadline, waitMs, signal)
    let broken = false
    // pg-pool listens for errors of idle connections only: a lock connection that fails while held (the
    // server restarted) would crash the process without a listener. The statement under way fails
    // with the same error, and the connection is destroyed below.
    const onError = (): void => {
      broken = true
    }
    client.on('error', onError)
    try {
      const result = await fn(await this.#lockAndRead(client, id, deadline, waitMs))
      // The lock's transaction writes nothing (fn writes through the other pool): a commit that fails
      // (the server stopped answering) loses nothing — the session ends and the lock with it.
      await client.query('commit').catch(() => {
        broken = true
      })
      return result
    } catch (err) {
      if (broken) throw err
      // A rollback that fails (the server stopped answering) leaves the connection unusable: destroy it,
      // which ends the session and with it the lock.
      await client.query('rollback').catch(() => {
        broken = true
      })
      throw err
    } finally {
      client.removeListener('error', onError)
      client.release(broken ? true : undefined)
    }
  }

  /**
   * Takes the lock and reads the row under it (see the comments inside). A method of its own so that
   * nothing of the driver's results stays referenced from `run`'s frame while `fn` runs.
   */
  async #lockAndRead(client: pg.PoolClient, id: string, deadline: number, waitMs: number): Promise<InstallationRow | undefined> {
    const key = advisoryLockKey(id)
    // Whole milliseconds (lock_timeout's unit); a number computed here, so it can be written into the SQL.
    const left = Math.floor(remaining(deadline))
    // The existence check and the lock are one statement: a row that does not exist takes no lock and
    // waits for nothing. A refresh holds this connection throughout, so each round trip saved is time
    // the connection (and the refresher's worker) is free sooner: taking the lock and reading the row
    // under it is one message — the simple protocol runs its statements in order, and the read, a
    // statement of its own, sees every commit up to the moment the lock was granted (READ COMMITTED
    // takes a snapshot per statement), so it reads what the previous holder stored.
    const literal = client.escapeLiteral(id)
    const read = `select * from installations where id = ${literal}`
    if (left <= 0) {
      const results = (await client.query(`begin; select pg_try_advisory_xact_lock(${key}::bigint) as locked from installations where id = ${literal}; ${read}`)) as unknown as pg.QueryResult[]
      const locked = results[1]!.rows as Array<{ locked: boolean }>
      if (locked.length === 0) throw lockNotInstalled(id)
      if (!locked[0]!.locked) throw lockTimeout(id, waitMs)
      return results[2]!.rows[0] as InstallationRow | undefined
    } else {
      // Four statements (the simple protocol, so the id goes in as a literal escaped by pg itself; the
      // key and the timeout are numbers computed here). lock_timeout is local to this transaction,
      // which writes nothing (fn writes through the other pool). The server ends the wait at
      // lock_timeout; the client bound only catches a server that stopped answering.
      let results: pg.QueryResult[]
      try {
        results = (await client.query({
          text: `begin; set local lock_timeout = ${left}; select pg_advisory_xact_lock(${key}::bigint) from installations where id = ${literal}; ${read}`,
          query_timeout: left + this.#statementMs,
        } as pg.QueryConfig)) as unknown as pg.QueryResult[]
      } catch (err) {
        if ((err as { code?: unknown }).code === '55P03') throw lockTimeout(id, waitMs)
        throw err
      }
      if (results[2]!.rowCount === 0) throw lockNotInstalled(id)
      return results[3]!.rows[0] as InstallationRow | undefined
    }
  }

  /** A pooled connection within the deadline; one that arrives after it goes straight back. */
  async #connect(id: string, deadline: number, waitMs: number, signal: AbortSignal | undefined): Promise<pg.PoolClient> {
    if (signal?.aborted) throw lockAborted(id, signal)
    const pending = this.#pool.connect()
    let timer: NodeJS.Timeout | undefined
    let onAbort: (() => void) | undefined
    const bounded = new Promise<never>((_, reject) => {
      // A short grace even when nothing is left of the wait: making a connection is not waiting for a holder.
      timer = setTimeout(() => reject(lockTimeout(id, waitMs)), Math.max(CONNECT_GRACE_MS, remaining(deadline)))
      if (signal) {
        onAbort = () => reject(lockAborted(id, signal))
        signal.addEventListener('abort', onAbort, { once: true })
      }
    })
    try {
      return await Promise.race([pending, bounded])
    } catch (err) {
      pending.then((c) => c.release(), () => {})
      if (err instanceof GhlError) throw err
      throw new GhlError('GHL_DATABASE_UNAVAILABLE', `PostgreSQL gave no connection for the refresh lock: ${(err as Error).message}`, { cause: err })
    } finally {
      clearTimeout(timer)
      if (onAbort) signal!.removeEventListener('abort', onAbort)
    }
  }

  async close(): Promise<void> {
    await this.#pool.end()
  }
}
