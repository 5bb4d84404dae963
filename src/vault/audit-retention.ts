/**
 * The audit log's retention: entries older than `GHL_AUDIT_RETENTION_DAYS` are deleted in the
 * background, a bounded batch per statement and one statement per turn of the event loop, so that a
 * backlog (a first run on a year of entries) never holds the database or the loop for long. Every
 * instance may run it: a batch that finds nothing costs one index read.
 */
import { setImmediate as nextTurn } from 'node:timers/promises'
import type { Clock } from '../clock.js'
import type { Logger } from '../logger.js'
import type { AuditLog } from './types.js'

/** Options of {@link purgeOldAudit}. */
export interface AuditPurgeOptions {
  /** Entries per statement (default 500). */
  batch?: number
  /** Statements per run at most (default 40: 20,000 entries; the next run goes on). */
  maxBatches?: number
  /** Stops between batches once this says so (shutdown). */
  stopped?: () => boolean
}

/** Deletes the entries written before `before`, oldest first; resolves with how many. */
export async function purgeOldAudit(audit: AuditLog, before: Date, options: AuditPurgeOptions = {}): Promise<number> {
  const batch = options.batch ?? 500
  const maxBatches = options.maxBatches ?? 40
  let total = 0
  for (let i = 0; i < maxBatches && !options.stopped?.(); i++) {
    if (i > 0) await nextTurn()
    const n = await audit.purgeBefore(before, batch)
    total += n
    if (n < batch) break
  }
  return total
}

/** Options of {@link AuditRetention}. */
export interface AuditRetentionOptions extends Omit<AuditPurgeOptions, 'stopped'> {
  /** Days an entry is kept; 0 keeps everything (nothing is ever sent). */
  days: number
  /** Time between runs (ms). */
  intervalMs: number
  clock: Clock
  logger: Logger
}

/** Runs {@link purgeOldAudit} at start and every `intervalMs` until stopped; a failed run is logged and retried at the next. */
export class AuditRetention {
  readonly #audit: AuditLog
  readonly #o: AuditRetentionOptions
  #timer: NodeJS.Timeout | undefined
  #running: Promise<number> | undefined
  #stopped = false

  constructor(audit: AuditLog, options: AuditRetentionOptions) {
    this.#audit = audit
    this.#o = options
  }

  start(): void {
    if (this.#o.days === 0 || this.#timer) return
    this.#timer = setInterval(() => void this.runOnce(), this.#o.intervalMs)
    this.#timer.unref()
    void this.runOnce()
  }

  /** One run now (joining one under way); resolves with the entries deleted (0 when retention is off or it failed). */
  runOnce(): Promise<number> {
    if (this.#o.days === 0 || this.#stopped) return Promise.resolve(0)
    const before = new Date(this.#o.clock.now() - this.#o.days * 86_400_000)
    const { batch, maxBatches } = this.#o
    this.#running ??= purgeOldAudit(this.#audit, before, { batch, maxBatches, stopped: () => this.#stopped })
      .then((deleted) => {
        if (deleted > 0) this.#o.logger.debug({ deleted, retentionDays: this.#o.days }, 'old audit entries deleted')
        return deleted
      })
      .catch((err: unknown) => {
        this.#o.logger.warn({ err }, 'deleting old audit entries failed; will try again')
        return 0
      })
      .finally(() => (this.#running = undefined))
    return this.#running
  }

  /** Stops the timer; resolves once the run under way has sent its last statement. */
  async stop(): Promise<void> {
    this.#stopped = true
    clearInterval(this.#timer)
    await this.#running
  }
}
