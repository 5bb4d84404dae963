/**
 * The console's memory of calls to HighLevel: the last N calls of each installation, per-minute counts
 * by status class (the charts), and per-installation counters that are written to the vault in batches
 * (`vault.console.addCalls`, one upsert per installation every `flushMs`) — never a write per call.
 *
 * {@link record} runs on every call's hot path (the client's record step): it only writes into memory
 * (a ring buffer per installation, a few integer adds) and must stay within a few per cent of the
 * client's throughput (`npm run bench`, "recorder" rows). Nothing here ever holds a token: a
 * {@link CallRecord} has method, path without query, status, duration and trace id.
 *
 * What is in memory is this process's; the counters in the vault add up every process's.
 */
import type { CallObserver, CallRecord } from '../client/steps/record.js'
import type { Clock } from '../clock.js'
import type { Logger } from '../logger.js'
import type { ConsoleStore } from '../vault/types.js'

/** Status classes of the charts and the metrics (bounded: six values). */
export const STATUS_CLASSES = ['2xx', '3xx', '4xx', '429', '5xx', 'none'] as const
export type StatusClass = (typeof STATUS_CLASSES)[number]

/** The class of a status: `429` apart from the other 4xx, `none` when no answer came. */
export function statusClass(status: number): StatusClass {
  if (status === 429) return '429'
  if (status >= 500) return '5xx'
  if (status >= 400) return '4xx'
  if (status >= 300) return '3xx'
  if (status >= 200) return '2xx'
  return 'none'
}

/** Options of {@link CallRecorder}. */
export interface CallRecorderOptions {
  store: ConsoleStore
  clock: Clock
  logger: Logger
  /** Calls kept per installation (default 50). */
  perInstallation?: number
  /** Installations whose last calls are kept in memory (default 10,000; the least recently added go first). */
  maxInstallations?: number
  /** How often counters are written to the vault (default 5000 ms). */
  flushMs?: number
  /** Told about every call after the recorder (the metrics). */
  listeners?: Array<(call: CallRecord) => void>
  /** Days of counters kept in the vault (default 30): older rows are deleted once a day by each process's first flush of the day. */
  keepDays?: number
}

interface Counter {
  calls: number
  errors: number
  throttled: number
  lastCallAt: number
}

/** Per-minute counts for a day: one slot per minute and status class. */
const MINUTES = 1440
const CLASS_COUNT = STATUS_CLASSES.length
const CLASS_INDEX: Record<StatusClass, number> = Object.fromEntries(STATUS_CLASSES.map((c, i) => [c, i])) as Record<StatusClass, number>

/**
 * A ring of the last calls of one installation. Once full, its slots are overwritten in place (the
 * caller's record is copied, not kept): the per-call objects die young instead of being promoted to the
 * old generation by a ring that holds them for 50 calls.
 */
class Ring {
  readonly items: CallRecord[] = []
  next = 0
  constructor(readonly size: number) {}
  push(call: CallRecord): void {
    if (this.items.length < this.size) this.items.push({ ...call })
    else Object.assign(this.items[this.next]!, call)
    this.next = (this.next + 1) % this.size
  }
  /** Newest first (copies). */
  newestFirst(): CallRecord[] {
    const out: CallRecord[] = []
    const n = this.items.length
    for (let i = 1; i <= n; i++) out.push({ ...this.items[(this.next - i + n * 2) % n]! })
    return out
  }
}

/** UTC day of an instant as `YYYY-MM-DD`. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10)
}

/** See the file comment. */
export class CallRecorder implements CallObserver {
  readonly #store: ConsoleStore
  readonly #clock: Clock
  readonly #logger: Logger
  readonly #perInstallation: number
  readonly #maxInstallations: number
  readonly #listeners: Array<(call: CallRecord) => void>
  readonly #recent = new Map<string, Ring>()
  #pending = new Map<string, Counter>()
  #pendingDay = ''
  #dayStart = 0
  #dayEnd = 0
  /** Count per (minute slot, class); `#minuteOf[slot]` says which minute the slot holds now. */
  readonly #perMinute = new Float64Array(MINUTES * CLASS_COUNT)
  readonly #minuteOf = new Float64Array(MINUTES).fill(-1)
  readonly #queuedPerMinute = new Float64Array(MINUTES)
  readonly #timer: NodeJS.Timeout
  #flushing: Promise<void> | undefined
  #closed = false
  readonly #keepDays: number
  /** The UTC day this process last deleted old counters on. */
  #purgedOn = ''

  constructor(options: CallRecorderOptions) {
    this.#store = options.store
    this.#clock = options.clock
    this.#logger = options.logger
    this.#perInstallation = options.perInstallation ?? 50
    this.#maxInstallations = options.maxInstallations ?? 10_000
    this.#listeners = options.listeners ?? []
    this.#keepDays = Math.max(1, options.keepDays ?? 30)
    this.#timer = setInterval(() => void this.flush(), options.flushMs ?? 5000)
    this.#timer.unref()
  }

  /** The slot of a minute, cleared when it last held an older minute. */
  #slot(at: number): number {
    const minute = Math.floor(at / 60_000)
    const slot = minute % MINUTES
    if (this.#minuteOf[slot] !== minute) {
      this.#minuteOf[slot] = minute
      this.#perMinute.fill(0, slot * CLASS_COUNT, slot * CLASS_COUNT + CLASS_COUNT)
      this.#queuedPerMinute[slot] = 0
    }
    return slot
  }

  /** A call waited in the rate-limit queue instead of being sent into a 429 (the limiter's wrapper tells). */
  noteQueued(at: number): void {
    this.#queuedPerMinute[this.#slot(at)]! += 1
  }

  record(call: CallRecord): void {
    const cls = statusClass(call.status)
    const slot = this.#slot(call.at)
    this.#perMinute[slot * CLASS_COUNT + CLASS_INDEX[cls]]! += 1
    for (const listener of this.#listeners) listener(call)
    const id = call.installationId
    if (id === null) return
    let ring = this.#recent.get(id)
    if (ring === undefined) {
      if (this.#recent.size >= this.#maxInstallations) this.#recent.delete(this.#recent.keys().next().value!)
      ring = new Ring(this.#perInstallation)
      this.#recent.set(id, ring)
    }
    ring.push(call)
    if (call.at >= this.#dayEnd || call.at < this.#dayStart) {
      // A new UTC day: what is pending belongs to the previous one.
      if (this.#pending.size > 0) void this.flush()
      this.#dayStart = Math.floor(call.at / 86_400_000) * 86_400_000
      this.#dayEnd = this.#dayStart + 86_400_000
      this.#pendingDay = utcDay(call.at)
    }
    let counter = this.#pending.get(id)
    if (counter === undefined) {
      counter = { calls: 0, errors: 0, throttled: 0, lastCallAt: 0 }
      this.#pending.set(id, counter)
    }
    counter.calls++
    if (call.status >= 400 || call.status === 0) counter.errors++
    if (call.status === 429) counter.throttled++
    if (call.at > counter.lastCallAt) counter.lastCallAt = call.at
  }

  /** The last calls of an installation made by this process, newest first. */
  recent(installationId: string): CallRecord[] {
    return this.#recent.get(installationId)?.newestFirst() ?? []
  }

  /** Calls not yet written to the vault, per installation (added to the stored counters by readers). */
  pending(installationId: string): { calls: number; errors: number; throttled: number; lastCallAt: number } | undefined {
    const c = this.#pending.get(installationId)
    return c && { ...c }
  }

  /**
   * Calls per bucket and status class over the last `minutes` (at most a day), oldest bucket first:
   * `buckets[i][class]`, each bucket `bucketMinutes` long.
   */
  series(minutes: number, bucketMinutes: number): { start: number; bucketMs: number; buckets: Array<Record<StatusClass, number>>; queued: number[] } {
    const span = Math.min(MINUTES, Math.max(1, Math.floor(minutes)))
    const per = Math.max(1, Math.floor(bucketMinutes))
    const nowMinute = Math.floor(this.#clock.now() / 60_000)
    const count = Math.ceil(span / per)
    // Buckets start at multiples of their length (as the vault's aggregates do), the last one holding now.
    const firstMinute = Math.floor(nowMinute / per) * per - (count - 1) * per
    const buckets = Array.from({ length: count }, () => Object.fromEntries(STATUS_CLASSES.map((c) => [c, 0])) as Record<StatusClass, number>)
    const queued = new Array<number>(count).fill(0)
    for (let m = Math.max(firstMinute, nowMinute - MINUTES + 1); m <= nowMinute; m++) {
      const slot = ((m % MINUTES) + MINUTES) % MINUTES
      if (this.#minuteOf[slot] !== m) continue
      const b = Math.floor((m - firstMinute) / per)
      const bucket = buckets[b]!
      for (let c = 0; c < CLASS_COUNT; c++) bucket[STATUS_CLASSES[c]!] += this.#perMinute[slot * CLASS_COUNT + c]!
      queued[b]! += this.#queuedPerMinute[slot]!
    }
    return { start: firstMinute * 60_000, bucketMs: per * 60_000, buckets, queued }
  }

  /** Writes the pending counters to the vault now (one batch); concurrent calls share one write. */
  flush(): Promise<void> {
    if (this.#flushing) return this.#flushing.then(() => (this.#pending.size > 0 ? this.flush() : undefined))
    if (this.#pending.size === 0) return Promise.resolve()
    const batch = this.#pending
    const day = this.#pendingDay
    this.#pending = new Map()
    const deltas = [...batch].map(([installationId, c]) => ({ installationId, ...c }))
    this.#flushing = this.#store
      .addCalls(day, deltas)
      .then(() => this.#purge())
      .catch((err: unknown) => {
        // Counters are for people; a database blip loses at most one batch's counts — unless the batch
        // can be merged back for the next flush (same day), which is tried first.
        if (!this.#closed && day === this.#pendingDay) {
          for (const [id, c] of batch) {
            const now = this.#pending.get(id)
            if (now) {
              now.calls += c.calls
              now.errors += c.errors
              now.throttled += c.throttled
              now.lastCallAt = Math.max(now.lastCallAt, c.lastCallAt)
            } else this.#pending.set(id, c)
          }
        }
        this.#logger.warn({ err, installations: deltas.length }, 'writing call counters failed; they are kept for the next flush')
      })
      .finally(() => (this.#flushing = undefined))
    return this.#flushing
  }

  /**
   * Deletes the counters older than `keepDays`, once per UTC day of this process (every process does:
   * the delete is one indexed statement, and a second one on the same day finds nothing). A failure is
   * logged and tried again at the next flush.
   */
  async #purge(): Promise<void> {
    const now = this.#clock.now()
    const today = utcDay(now)
    if (this.#purgedOn === today) return
    try {
      const deleted = await this.#store.purgeCallsBefore(utcDay(now - (this.#keepDays - 1) * 86_400_000))
      this.#purgedOn = today
      if (deleted > 0) this.#logger.debug({ deleted, keepDays: this.#keepDays }, 'old call counters deleted')
    } catch (err) {
      this.#logger.warn({ err }, 'deleting old call counters failed; tried again at the next flush')
    }
  }

  /** Stops the timer and writes what is pending. */
  async close(): Promise<void> {
    clearInterval(this.#timer)
    await this.flush()
    this.#closed = true
  }
}
