/**
 * The per-installation refresh lock, exclusive across every process sharing the database.
 *
 * HighLevel rotates the refresh token on every use: the first refresh invalidates the old one, so two
 * processes refreshing the same installation at once leave the loser with a dead grant. Everything
 * about "exactly one refresh" rests on this lock, so here is how each backend makes it hold.
 *
 * Inside one process, callers first queue on a {@link KeyedMutex} per installation id: only the head
 * of the queue contends in the database, so fifty concurrent callers cost one database waiter.
 *
 * PostgreSQL: the head takes a connection from a pool reserved for locks, opens a transaction and
 * calls `pg_advisory_xact_lock(k)` where `k` is a 64-bit hash of the installation id, with the
 * transaction-local `lock_timeout` set to what is left of `waitMs` (PostgreSQL applies lock_timeout to
 * advisory locks too, and answers SQLSTATE 55P03 when it expires). `fn` runs while that transaction
 * stays open; COMMIT or ROLLBACK releases the lock. If the process dies, the kernel closes its socket,
 * the server ends the session, and the lock is gone at once — no lease to wait out. `fn`'s own vault
 * queries go through the ordinary pool; the locks have their own pool so that holders waiting on
 * locks can never exhaust the connections `fn` needs (which would deadlock until timeout).
 *
 * SQLite has no locks that outlive a statement without blocking the whole file, so the lock is a
 * lease in the installation's row: `UPDATE … SET lock_owner = <random>, lock_until = now + lease
 * WHERE id = ? AND (lock_until IS NULL OR lock_until < now)`. SQLite serialises writers, so of any
 * number of processes exactly one such UPDATE changes the row; the others see 0 rows and poll again
 * with a small jittered backoff (10 ms growing to 50 ms) until they win or `waitMs` passes. While
 * `fn` runs, the holder renews the lease every third of its length, and every renewal and the final
 * release is conditional on `lock_owner` still being this holder. A holder killed mid-way stops
 * renewing, and the lease expires at most `lockLeaseMs` later. The trade-off is the lease length:
 * if the event loop of a live holder stalls for longer than a whole lease, another process may take
 * the lock — the vault's compare-and-swap on `version` is the second line of defence (the late
 * holder's store fails), and the holder logs that it lost its lease. Lease instants come from the
 * injected clock (all processes must share a clock, as they do the database); waiting is measured on
 * the monotonic timer, since it is real time spent sleeping.
 */
import { createHash, randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { sql, type Kysely } from 'kysely'
import type { Clock } from '../clock.js'
import { GhlError } from '../errors.js'
import type { Logger } from '../logger.js'
import type { VaultDatabase } from './schema.js'

/** Holds the database side of the lock while `fn` runs. `deadline` is on `performance.now()`. */
export interface RefreshLockBackend {
  run<T>(id: string, deadline: number, fn: () => Promise<T>): Promise<T>
}

function timeout(id: string, waitMs: number): GhlError {
  return new GhlError('GHL_LOCK_TIMEOUT', `Timed out after ${waitMs} ms waiting for the refresh lock of installation ${id}`)
}

function notInstalled(id: string): GhlError {
  return new GhlError('GHL_NOT_INSTALLED', `No installation with id ${id}`)
}

/** A signed 64-bit advisory-lock key for an installation id (as text, cast to bigint in SQL). */
export function advisoryLockKey(id: string): string {
  return createHash('sha256').update(`ghl-connect:refresh-lock:${id}`).digest().readBigInt64BE(0).toString()
}

/** PostgreSQL: a transaction-scoped advisory lock on a dedicated pooled connection. */
export class PostgresAdvisoryLock implements RefreshLockBackend {
  readonly #lockDb: Kysely<VaultDatabase>

  /** @param lockDb - A Kysely instance over a pool used for nothing but locks. */
  constructor(lockDb: Kysely<VaultDatabase>) {
    this.#lockDb = lockDb
  }

  async run<T>(id: string, deadline: number, fn: () => Promise<T>): Promise<T> {
    const waitMs = Math.max(0, Math.round(deadline - performance.now()))
    return this.#lockDb.transaction().execute(async (trx) => {
      const exists = await trx.selectFrom('installations').select('id').where('id', '=', id).executeTakeFirst()
      if (!exists) throw notInstalled(id)
      const key = advisoryLockKey(id)
      const left = Math.round(deadline - performance.now())
      if (left <= 0) {
        const { rows } = await sql<{ locked: boolean }>`select pg_try_advisory_xact_lock(${key}::bigint) as locked`.execute(trx)
        if (!rows[0]?.locked) throw timeout(id, waitMs)
      } else {
        await sql`select set_config('lock_timeout', ${`${left}ms`}, true)`.execute(trx)
        try {
          await sql`select pg_advisory_xact_lock(${key}::bigint)`.execute(trx)
        } catch (err) {
          if ((err as { code?: unknown }).code === '55P03') throw timeout(id, waitMs)
          throw err
        }
        // lock_timeout is transaction-local; reset it so nothing else in this transaction inherits it.
        await sql`select set_config('lock_timeout', '0', true)`.execute(trx)
      }
      return fn()
    })
  }
}

/** SQLite: a lease in the installation's row, renewed while held. */
export class SqliteLeaseLock implements RefreshLockBackend {
  readonly #db: Kysely<VaultDatabase>
  readonly #clock: Clock
  readonly #leaseMs: number
  readonly #logger: Logger

  constructor(db: Kysely<VaultDatabase>, clock: Clock, leaseMs: number, logger: Logger) {
    this.#db = db
    this.#clock = clock
    this.#leaseMs = leaseMs
    this.#logger = logger
  }

  async run<T>(id: string, deadline: number, fn: () => Promise<T>): Promise<T> {
    const waitMs = Math.max(0, Math.round(deadline - performance.now()))
    const owner = randomUUID()
    let backoff = 10
    for (;;) {
      if (await this.#tryAcquire(id, owner)) break
      const row = await this.#db.selectFrom('installations').select('id').where('id', '=', id).executeTakeFirst()
      if (!row) throw notInstalled(id)
      const left = deadline - performance.now()
      if (left <= 0) throw timeout(id, waitMs)
      // Jitter (0.5×–1.5×) keeps processes that lost together from polling in lockstep.
      await sleep(Math.min(left, backoff * (0.5 + Math.random())))
      backoff = Math.min(50, backoff * 1.5)
    }

    const renew = setInterval(() => {
      this.#db
        .updateTable('installations')
        .set({ lock_until: this.#clock.now() + this.#leaseMs })
        .where('id', '=', id)
        .where('lock_owner', '=', owner)
        .executeTakeFirst()
        .then((r) => {
          if (Number(r.numUpdatedRows) === 0) {
            this.#logger.warn({ installationId: id }, 'vault: refresh lock lease lost while held (holder stalled longer than the lease)')
          }
        })
        .catch((err: unknown) => this.#logger.warn({ installationId: id, err }, 'vault: refresh lock lease renewal failed'))
    }, Math.max(1, Math.floor(this.#leaseMs / 3)))
    renew.unref()

    try {
      return await fn()
    } finally {
      clearInterval(renew)
      await this.#db
        .updateTable('installations')
        .set({ lock_owner: null, lock_until: null })
        .where('id', '=', id)
        .where('lock_owner', '=', owner)
        .execute()
    }
  }

  async #tryAcquire(id: string, owner: string): Promise<boolean> {
    const now = this.#clock.now()
    const result = await this.#db
      .updateTable('installations')
      .set({ lock_owner: owner, lock_until: now + this.#leaseMs })
      .where('id', '=', id)
      .where((eb) => eb.or([eb('lock_until', 'is', null), eb('lock_until', '<', now)]))
      .executeTakeFirst()
    return Number(result.numUpdatedRows) === 1
  }
}
