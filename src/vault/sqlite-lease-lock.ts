/**
 * The refresh lock on SQLite: a lease in the installation's row, renewed while held (see
 * `refresh-lock.ts` for why the lock exists and how the lease holds).
 */
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Kysely } from 'kysely'
import type { Clock } from '../clock.js'
import type { Logger } from '../logger.js'
import { lockAborted, lockNotInstalled, lockTimeout, remaining, type RefreshLockBackend } from './refresh-lock.js'
import type { VaultDatabase } from './schema.js'

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

  async run<T>(id: string, deadline: number, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const waitMs = remaining(deadline)
    const owner = randomUUID()
    let backoff = 10
    for (;;) {
      if (await this.#tryAcquire(id, owner)) break
      const row = await this.#db.selectFrom('installations').select('id').where('id', '=', id).executeTakeFirst()
      if (!row) throw lockNotInstalled(id)
      const left = remaining(deadline)
      if (left <= 0) throw lockTimeout(id, waitMs)
      if (signal?.aborted) throw lockAborted(id, signal)
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
