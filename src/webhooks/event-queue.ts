/**
 * The webhook work queue: processes recorded events after the HTTP answer, retries failed ones, resumes
 * pending ones whose process died, re-checks waiting ones, and purges expired records.
 *
 * Several instances on one database: before processing an event (the first run after `receive`, a
 * retry, a resumption, a waiting INSTALL that can now proceed) an instance claims it in the vault
 * (`WebhookEventStore.claim`, an atomic conditional UPDATE for the attempt count it saw, valid
 * {@link WEBHOOK_CLAIM_MS}); only the winner processes, and its outcome is written only while it still
 * holds the claim (`complete`), so a holder whose claim lapsed can never overwrite what the next holder
 * recorded. Delivery to subscribers is at-least-once: a retry runs every subscriber again, so handlers
 * should be idempotent (key on `event.webhookId`).
 */
import { randomUUID } from 'node:crypto'
import type { Clock } from '../clock.js'
import type { Config } from '../config.js'
import type { Logger } from '../logger.js'
import type { Vault, WebhookEventRecord, WebhookStatus } from '../vault/types.js'
import type { InstallEvent, PlanChangeEvent, UninstallEvent, WebhookEvent } from './events.js'
import { GhlError } from '../errors.js'
import { forwardWebhook } from './forward.js'
import type { LifecycleHandler } from './lifecycle.js'
import type { Subscribers } from './subscribers.js'
import type { Dispatcher } from 'undici'

/**
 * How long a processing claim holds. It is cleared when the processing records its outcome; a claim
 * outlives its holder only if that process died (or a run took longer than this), after which another
 * instance may take the event over.
 */
export const WEBHOOK_CLAIM_MS = 120_000

/** `skipped`: another instance (or an earlier attempt) holds or already made this attempt. */
export type Outcome = 'processed' | 'waiting' | 'failed' | 'skipped'

/** An event ready to process: the stored payload plus its (possibly derived) id. */
export interface QueuedEvent {
  webhookId: string
  type: string
  payload: Record<string, unknown>
  /** The status in the vault when it was queued. */
  status: WebhookStatus
  /** Failed attempts so far. */
  attempts: number
  /** The last attempt's error, as stored (`GHL_WEBHOOK_FORWARD_FAILED: …` when only forwarding failed). */
  lastError?: string | null
}

/**
 * When forwarding fails, the next attempts come after these delays (Standard Webhooks' retry schedule:
 * 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, then every 10 h), counted from the event's receipt, until the
 * app acknowledges it or the event's retention ends ({@link FORWARD_RETENTION_MS}).
 */
export const FORWARD_RETRY_DELAYS_MS: readonly number[] = [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000]

/** How long an event is kept when forwarding is configured: the bound of its forwarding retries. */
export const FORWARD_RETENTION_MS = 72 * 3600_000

/** The earliest time of the next forwarding attempt of an event received at `receivedAt` after `attempts` failures. */
export function nextForwardAttemptAt(receivedAt: number, attempts: number): number {
  let at = receivedAt
  for (let i = 0; i < attempts; i++) at += FORWARD_RETRY_DELAYS_MS[Math.min(i, FORWARD_RETRY_DELAYS_MS.length - 1)]!
  return at
}

/** The prefix of `lastError` when the handlers succeeded and only forwarding failed. */
const FORWARD_FAILED = 'GHL_WEBHOOK_FORWARD_FAILED'

/** What the queue needs. */
export interface EventQueueOptions {
  config: Config
  vault: Vault
  clock: Clock
  logger: Logger
  dispatcher: Dispatcher | undefined
  lifecycle: LifecycleHandler
  subscribers: Subscribers
  intervalMs: number
  maxAttempts: number
}

/** The queued event of a stored record. */
export function toQueued(record: WebhookEventRecord): QueuedEvent {
  const payload = record.payload && typeof record.payload === 'object' ? (record.payload as Record<string, unknown>) : {}
  return { webhookId: record.webhookId, type: record.type, payload, status: record.status, attempts: record.attempts, lastError: record.lastError }
}

/** See the file comment. */
export class EventQueue {
  readonly #o: EventQueueOptions
  /** webhookId → the processing under way for it (one at a time per event in this process). */
  readonly #inFlight = new Map<string, Promise<Outcome>>()
  /** This queue's name in processing claims (unique per instance). */
  readonly #owner = `receiver:${process.pid}:${randomUUID()}`
  #timer: NodeJS.Timeout | undefined
  #maintenance: Promise<void> | undefined
  #stopped = false

  constructor(options: EventQueueOptions) {
    this.#o = options
  }

  /** Resolves when nothing is being processed. */
  async idle(): Promise<void> {
    while (this.#inFlight.size > 0 || this.#maintenance) {
      await Promise.allSettled([...this.#inFlight.values(), this.#maintenance])
    }
  }

  /** Starts the background loop: retries failed events, resumes pending ones, re-checks waiting ones. */
  start(): void {
    if (this.#timer) return
    this.#stopped = false
    this.#timer = setInterval(() => void this.runMaintenance(), this.#o.intervalMs)
    this.#timer.unref()
  }

  /** Stops the background loop (and new processing) and waits for work under way. */
  async stop(): Promise<void> {
    this.#stopped = true
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
    await this.idle()
  }

  /**
   * One pass of the background loop: `failed` events with attempts left are retried; `pending` ones
   * older than one interval (their process died before processing) are resumed; `waiting` ones are
   * re-checked; expired records are purged.
   */
  runMaintenance(): Promise<void> {
    this.#maintenance ??= this.#maintain()
      .catch((err: unknown) => this.#o.logger.error({ err }, 'webhook maintenance failed'))
      .finally(() => {
        this.#maintenance = undefined
      })
    return this.#maintenance
  }

  async #maintain(): Promise<void> {
    const { vault, clock, intervalMs, maxAttempts } = this.#o
    const now = clock.now()
    const jobs: Promise<unknown>[] = []
    for (const record of await vault.webhooks.list({ status: 'failed', limit: 500 })) {
      // Only forwarding failed: retried on its schedule for as long as the event is kept; otherwise
      // (a handler failed) every pass, up to maxAttempts.
      const due = isForwardFailure(record.lastError)
        ? now >= nextForwardAttemptAt(record.receivedAt.getTime(), record.attempts) && now < record.expiresAt.getTime()
        : record.attempts < maxAttempts
      if (due) jobs.push(this.schedule(toQueued(record), false))
    }
    for (const record of await vault.webhooks.list({ status: 'pending', limit: 500 })) {
      if (!this.#inFlight.has(record.webhookId) && record.receivedAt.getTime() <= now - intervalMs) {
        jobs.push(this.schedule(toQueued(record), false))
      }
    }
    for (const record of await vault.webhooks.list({ status: 'waiting', limit: 500 })) {
      jobs.push(this.schedule(toQueued(record), false))
    }
    await Promise.allSettled(jobs)
    await vault.webhooks.purgeExpired(new Date(now))
  }

  /**
   * Processes an event, one run at a time per webhookId in this process. A run requested while another is
   * under way follows it, unless that one processed the event (so it is never processed twice here).
   * Across processes, the event is first claimed in the vault (for the attempt count it was listed with).
   */
  schedule(event: QueuedEvent, deferred: boolean): Promise<Outcome> {
    if (this.#stopped) return Promise.resolve('skipped')
    const previous = this.#inFlight.get(event.webhookId)
    const start = previous
      ? previous.then((o) => (o === 'processed' ? 'skip' : 'run'))
      : deferred
        ? new Promise<'run'>((resolve) => setImmediate(() => resolve('run')))
        : Promise.resolve('run' as const)
    const run: Promise<Outcome> = start
      .then(async (go): Promise<Outcome> => {
        if (go === 'skip') return 'processed'
        if (!(await this.#claim(event))) return 'skipped'
        return this.#process(event)
      })
      .finally(() => {
        if (this.#inFlight.get(event.webhookId) === run) this.#inFlight.delete(event.webhookId)
      })
    this.#inFlight.set(event.webhookId, run)
    return run
  }

  /** Claims the event for this instance. Never throws. */
  async #claim(event: QueuedEvent): Promise<boolean> {
    const now = this.#o.clock.now()
    try {
      const claimed = await this.#o.vault.webhooks.claim(event.webhookId, this.#owner, new Date(now + WEBHOOK_CLAIM_MS), {
        now: new Date(now),
        attempts: event.attempts,
        statuses: [event.status === 'processed' ? 'pending' : event.status],
      })
      if (!claimed) this.#o.logger.debug({ webhookId: event.webhookId }, 'webhook claimed elsewhere (or already handled); not processed here')
      return claimed
    } catch (err) {
      // The maintenance loop tries again later; the event stays as it is in the vault.
      this.#o.logger.error({ err, webhookId: event.webhookId }, 'could not claim the webhook for processing')
      return false
    }
  }

  /** Writes the outcome while the claim is ours; logs (never throws) when it passed to someone else. */
  async #complete(event: QueuedEvent, change: { status: WebhookStatus; lastError?: string | null; incrementAttempts?: boolean }): Promise<boolean> {
    const written = await this.#o.vault.webhooks.complete(event.webhookId, this.#owner, change)
    if (!written) this.#o.logger.warn({ webhookId: event.webhookId, status: change.status }, 'webhook claim lapsed before its outcome was recorded; the next holder decides')
    return written
  }

  async #process(queued: QueuedEvent): Promise<Outcome> {
    const { config, dispatcher, lifecycle, subscribers, logger, maxAttempts, vault, clock } = this.#o
    const event = { ...queued.payload, type: queued.type, webhookId: queued.webhookId } as WebhookEvent
    const { webhookId, type } = queued
    // The last attempt ran the lifecycle step and the handlers, and only forwarding failed: this one
    // only forwards (an operator's replay clears lastError, and runs everything again).
    const forwardOnly = queued.status === 'failed' && isForwardFailure(queued.lastError)
    try {
      if (!forwardOnly && (type === 'INSTALL' || type === 'UNINSTALL' || type === 'PLAN_CHANGE')) {
        const outcome = await lifecycle.handle(event as InstallEvent | UninstallEvent | PlanChangeEvent)
        if (outcome === 'waiting') {
          const wasWaiting = queued.status === 'waiting'
          await this.#complete(queued, { status: 'waiting' })
          if (!wasWaiting) {
            // The installation may have been stored (and onInstallationStored run) between the check and
            // the write above; look once more now that the event is visibly waiting, so it cannot be missed.
            setImmediate(() => void this.schedule({ ...queued, status: 'waiting' }, false))
          }
          logger.info({ webhookId, type }, 'INSTALL webhook waits for the code exchange')
          return 'waiting'
        }
      }
      if (!forwardOnly) await subscribers.dispatch(event)
      if (config.webhookForwardUrl && config.webhookForwardSecret) {
        // Every verified event, lifecycle ones included, once the connector has handled it (so an INSTALL
        // reaches the app when the installation's token is stored and the proxy can be called at once).
        await forwardWebhook(config.webhookForwardUrl, event, { secret: config.webhookForwardSecret, dispatcher, timeoutMs: config.requestTimeoutMs, clock })
      }
      await this.#complete(queued, { status: 'processed', lastError: null })
      logger.info({ webhookId, type }, 'webhook processed')
      return 'processed'
    } catch (err) {
      const forwarding = err instanceof GhlError && err.code === FORWARD_FAILED
      const message = `${forwarding ? `${FORWARD_FAILED}: ` : ''}${err instanceof Error ? err.message : String(err)}`.slice(0, 1000)
      const attempts = queued.attempts + 1
      try {
        if (!(await this.#complete(queued, { status: 'failed', lastError: message, incrementAttempts: true }))) return 'skipped'
        const record = forwarding ? await vault.webhooks.get(webhookId) : undefined
        const givenUp = forwarding
          ? !record || nextForwardAttemptAt(record.receivedAt.getTime(), attempts) >= record.expiresAt.getTime()
          : attempts >= maxAttempts
        if (givenUp) {
          // Given up: kept `failed` in the vault until it expires, and in the audit log for good.
          logger.error({ err, webhookId, type, attempts }, 'webhook processing failed; giving up after the last attempt')
          await vault.audit.append({ installationId: null, action: 'webhook.failed', detail: { webhookId, type, attempts, lastError: message } })
        } else {
          logger.warn({ err, webhookId, type, attempts }, forwarding ? 'forwarding the webhook to the app failed; will retry' : 'webhook processing failed; will retry')
        }
      } catch (updateErr) {
        logger.error({ err: updateErr, webhookId }, 'could not mark the webhook failed')
      }
      return 'failed'
    }
  }
}

function isForwardFailure(lastError: string | null | undefined): boolean {
  return typeof lastError === 'string' && lastError.startsWith(`${FORWARD_FAILED}: `)
}
