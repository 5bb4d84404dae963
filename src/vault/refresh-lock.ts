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
 * PostgreSQL (`postgres-advisory-lock.ts`): the head takes a connection from a pool reserved for locks —
 * within what is left of `waitMs`; a connection that arrives later goes straight back — opens a transaction and
 * calls `pg_advisory_xact_lock(k)` where `k` is a 64-bit hash of the installation id, with the
 * transaction-local `lock_timeout` set to what is left of `waitMs` (PostgreSQL applies lock_timeout to
 * advisory locks too, and answers SQLSTATE 55P03 when it expires). `fn` runs while that transaction
 * stays open; COMMIT or ROLLBACK releases the lock. If the process dies, the kernel closes its socket,
 * the server ends the session, and the lock is gone at once — no lease to wait out. `fn`'s own vault
 * queries go through the ordinary pool; the locks have their own pool so that holders waiting on
 * locks can never exhaust the connections `fn` needs (which would deadlock until timeout).
 *
 * SQLite (`sqlite-lease-lock.ts`) has no locks that outlive a statement without blocking the whole file, so the lock is a
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
import { performance } from 'node:perf_hooks'
import { GhlError, NotInstalledError } from '../errors.js'
import type { InstallationRow } from './schema.js'

/** Holds the database side of the lock while `fn` runs. `deadline` is on `performance.now()`. */
export interface RefreshLockBackend {
  /** Runs `fn` holding the lock; a backend that reads the row with the lock passes it (raw) to `fn`. */
  run<T>(id: string, deadline: number, fn: (row?: InstallationRow) => Promise<T>, signal?: AbortSignal): Promise<T>
  /** Releases connections the backend owns. */
  close?(): Promise<void>
}

/** GhlError `GHL_LOCK_TIMEOUT` (503): another worker held the lock for the whole wait. */
export function lockTimeout(id: string, waitMs: number): GhlError {
  return new GhlError('GHL_LOCK_TIMEOUT', `Timed out after ${waitMs} ms waiting for the refresh lock of installation ${id}`)
}

export function lockNotInstalled(id: string): GhlError {
  return new NotInstalledError({}, `No installation with id ${id}`)
}

export function lockAborted(id: string, signal: AbortSignal): GhlError {
  return new GhlError('GHL_ABORTED', `Stopped waiting for the refresh lock of installation ${id}`, { cause: signal.reason })
}

/** Milliseconds left until `deadline` (on `performance.now()`), at least 0. */
export function remaining(deadline: number): number {
  return Math.max(0, Math.round(deadline - performance.now()))
}
