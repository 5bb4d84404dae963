/**
 * The FIFO wait queue and the permits shared by both limiters. Subclasses say only how many slots
 * they can give now ({@link QueuedRateLimiter.take}) and how a slot comes back
 * ({@link QueuedRateLimiter.settle}); this class keeps the callers in line and makes sure every slot
 * taken ends in exactly one release.
 *
 * Concurrency: while a resource has waiters, new callers join the back of its queue (they never
 * overtake). Only the queue's *head* asks the budget again — for as many slots as there are waiters,
 * so one Redis round trip can serve a whole batch — and only once the wait it was last told has
 * passed (plus a little jitter for the shared Redis budget, so processes do not ask in lock-step):
 * there is no busy polling. A caller whose deadline cannot be met — judged from the head's wait plus
 * one burst window per `burstMax` callers ahead — fails fast with {@link RateLimitedError} instead of
 * waiting to fail; so does a caller that finds `maxQueue` callers already waiting.
 *
 * No slot can leak: a take in flight is never tied to one caller. When it lands, its permits go to
 * whoever waits at the head *then*; a permit nobody waits for any more (the caller aborted, its
 * deadline passed, the limiter closed) is given back at once as never sent. A caller holds a permit
 * only once its `acquire()` resolved, and then owes exactly one `release()`.
 */
import type { Clock } from '../clock.js'
import { systemClock } from '../clock.js'
import type { RateLimitSettings } from '../config.js'
import { GhlError, RateLimitedError } from '../errors.js'
import type { AcquireOptions, RateLimitHeaders, RateLimiter, RatePermit } from './rate-limiter.js'

/** @internal What a take got: `permits` (maybe fewer than asked), and when fewer, the ms to wait before asking again (0: ask again now). */
export interface Taken {
  permits: Permit[]
  waitMs: number
}

/** @internal The side of a limiter that a permit returns to. */
export interface PermitOwner {
  settle(permit: Permit, headers: RateLimitHeaders | undefined, sent: boolean): void | Promise<void>
}

const NO_HEADERS: RateLimitHeaders = Object.freeze({}) as RateLimitHeaders

/**
 * @internal A slot of the budget (see {@link RatePermit}). `base` is our count when the slot was
 * taken minus the additions counter then: with the counter at release, it bounds from above how many
 * of the app's requests (ours, and the foreign ones already recorded) HighLevel could have counted
 * when this one arrived. `member` names the slot in Redis ('' in memory).
 */
export class Permit implements RatePermit {
  readonly resource: string
  readonly sentAt: number
  readonly base: number
  readonly member: string
  #owner: PermitOwner
  #done = false

  constructor(owner: PermitOwner, resource: string, sentAt: number, base: number, member: string) {
    this.#owner = owner
    this.resource = resource
    this.sentAt = sentAt
    this.base = base
    this.member = member
  }

  /** {@inheritDoc RatePermit.release} */
  release(headers: RateLimitHeaders = NO_HEADERS): void | Promise<void> {
    if (this.#done) return
    this.#done = true
    return this.#owner.settle(this, headers, true)
  }

  /** Gives the slot back as never sent (nobody took the permit). */
  discard(): void {
    if (this.#done) return
    this.#done = true
    const p = this.#owner.settle(this, undefined, false)
    // Nobody is there to tell: the slot is then freed by its in-flight expiry (Redis only).
    if (p) p.catch(() => {})
  }
}

interface Waiter {
  resolve: (permit: Permit) => void
  reject: (err: Error) => void
  deadline: number | undefined
  signal: AbortSignal | undefined
  onAbort: (() => void) | undefined
}

class WaitQueue {
  items: Waiter[] = []
  head = 0
  /** Epoch ms when the head will ask the budget again. */
  nextAt = 0
  timer: NodeJS.Timeout | undefined = undefined
  /** A take runs (or is about to): new waiters need not start one. */
  pumping = false
  get size(): number {
    return this.items.length - this.head
  }
  peek(): Waiter | undefined {
    return this.items[this.head]
  }
  shift(): Waiter | undefined {
    if (this.head >= this.items.length) return undefined
    const w = this.items[this.head]
    this.items[this.head] = undefined as unknown as Waiter
    this.head++
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return w
  }
  remove(w: Waiter): boolean {
    const i = this.items.indexOf(w, this.head)
    if (i < 0) return false
    this.items.splice(i, 1)
    return true
  }
}

/** @internal Base class of {@link MemoryRateLimiter} and {@link RedisRateLimiter}. */
export abstract class QueuedRateLimiter implements RateLimiter, PermitOwner {
  protected readonly settings: RateLimitSettings
  protected readonly clock: Clock
  /** Most slots one take asks for. */
  protected readonly maxBatch: number = 256
  #queues = new Map<string, WaitQueue>()
  #closed = false

  protected constructor(settings: RateLimitSettings, clock: Clock | undefined) {
    this.settings = settings
    this.clock = clock ?? systemClock
  }

  /**
   * Takes up to `n` slots of `resource` now. Synchronous takes (the in-process budget) serve a caller
   * with no queue at once; asynchronous ones (Redis) always go through the queue, so that callers
   * arriving while a take is in flight share the next one.
   */
  protected abstract take(resource: string, n: number): Taken | Promise<Taken>
  /** A permit comes back: answered (`sent`, with its headers; `{}` when no answer came) or never sent. */
  abstract settle(permit: Permit, headers: RateLimitHeaders | undefined, sent: boolean): void | Promise<void>
  abstract penalize(resource: string, retryAfterMs: number): void | Promise<void>
  /** Extra random wait added to a retry of the head (0 for the in-process budget). */
  protected jitter(_waitMs: number): number {
    return 0
  }
  /** Whether {@link take} answers synchronously. */
  protected abstract readonly synchronous: boolean
  /** A slot already held in this process (an asynchronous limiter's lease), for a caller with no queue ahead. */
  protected takeHeld(_resource: string): Permit | undefined {
    return undefined
  }

  /** {@inheritDoc RateLimiter.acquire} */
  acquire(resource: string, options?: AcquireOptions): Promise<Permit> {
    if (this.#closed) return Promise.reject(closedError())
    if (options?.signal?.aborted) return Promise.reject(abortedError())
    const q = this.#queues.get(resource)
    if (this.synchronous && (q === undefined || q.size === 0)) {
      const t = this.take(resource, 1) as Taken
      if (t.permits.length > 0) return Promise.resolve(t.permits[0]!)
      return this.#enqueue(resource, options, t.waitMs)
    }
    if (q === undefined || q.size === 0) {
      const held = this.takeHeld(resource)
      if (held !== undefined) return Promise.resolve(held)
      return this.#enqueue(resource, options, 0)
    }
    return this.#enqueue(resource, options, undefined)
  }

  /** Rejects every waiter (GhlError `GHL_ABORTED`) and stops the timers. */
  async close(): Promise<void> {
    this.#closed = true
    for (const q of this.#queues.values()) {
      if (q.timer) clearTimeout(q.timer)
      for (let w = q.shift(); w !== undefined; w = q.shift()) settle(w, closedError())
    }
    this.#queues.clear()
  }

  protected get closed(): boolean {
    return this.#closed
  }

  /** The estimated wait of the caller at `position` in a queue whose head goes at `q.nextAt`. */
  #estimate(q: WaitQueue, position: number, now: number): number {
    const rounds = Math.floor(position / this.settings.burstMax)
    return Math.max(0, q.nextAt - now) + rounds * this.settings.burstWindowMs
  }

  /** `wait`: the head's wait when this caller starts the queue (undefined when it joins one). */
  #enqueue(resource: string, options: AcquireOptions | undefined, wait: number | undefined): Promise<Permit> {
    let q = this.#queues.get(resource)
    if (q === undefined) {
      q = new WaitQueue()
      this.#queues.set(resource, q)
    }
    const now = this.clock.now()
    if (q.size === 0 && wait !== undefined && !q.pumping) q.nextAt = now + wait
    const estimate = this.#estimate(q, q.size, now)
    // Callers of an asynchronous take join the next batch while the budget is not known to be spent;
    // the pump turns away those beyond maxQueue once it is.
    if (q.size >= this.settings.maxQueue && (this.synchronous || q.nextAt > now)) {
      this.#forget(resource, q)
      return Promise.reject(new RateLimitedError(estimate, `Rate limit reached and ${q.size} calls already wait for ${resource}; retry in ${Math.ceil(estimate)} ms`))
    }
    const deadline = options?.deadline
    if (deadline !== undefined && now + estimate > deadline) {
      this.#forget(resource, q)
      return Promise.reject(new RateLimitedError(estimate))
    }
    return new Promise<Permit>((resolve, reject) => {
      const w: Waiter = { resolve, reject, deadline, signal: options?.signal, onAbort: undefined }
      if (w.signal) {
        const queue = q
        // Leaving the queue is all an abort needs: a take in flight hands its permits to whoever
        // waits when it lands, and gives back the ones nobody waits for.
        w.onAbort = () => {
          if (queue.remove(w)) settle(w, abortedError())
        }
        w.signal.addEventListener('abort', w.onAbort, { once: true })
      }
      q.items.push(w)
      if (q.timer === undefined && !q.pumping) {
        const delay = Math.max(0, q.nextAt - now)
        if (delay === 0 && !this.synchronous) {
          // Start the take after the callers that arrive in this turn of the event loop joined.
          q.pumping = true
          setImmediate(() => {
            q.pumping = false
            void this.#pump(resource, q)
          })
        } else this.#schedule(resource, q, delay)
      }
    })
  }

  #forget(resource: string, q: WaitQueue): void {
    if (q.size === 0 && q.timer === undefined && !q.pumping && this.#queues.get(resource) === q) this.#queues.delete(resource)
  }

  #schedule(resource: string, q: WaitQueue, delay: number): void {
    q.timer = setTimeout(() => {
      q.timer = undefined
      void this.#pump(resource, q)
    }, delay + this.jitter(delay))
  }

  async #pump(resource: string, q: WaitQueue): Promise<void> {
    if (q.pumping || this.#closed) return
    q.pumping = true
    try {
      while (q.size > 0) {
        let now = this.clock.now()
        const head = q.peek()!
        // Turned away only when the budget's next opening was after its deadline: the time this
        // process took to get here (the turn it waited for, a timer's jitter) is not the caller's wait.
        if (head.deadline !== undefined && now > head.deadline && q.nextAt > head.deadline) {
          settle(q.shift()!, new RateLimitedError(0))
          continue
        }
        const n = Math.min(q.size, this.maxBatch)
        const t = await this.take(resource, n)
        // Whoever waits now gets the permits (callers may have left or joined while the take ran);
        // a permit nobody waits for goes back unsent.
        for (const permit of t.permits) {
          const w = this.#closed ? undefined : q.shift()
          if (w === undefined) permit.discard()
          else settle(w, undefined, permit)
        }
        if (this.#closed) return
        if (t.permits.length === n || t.waitMs <= 0) continue
        now = this.clock.now()
        q.nextAt = now + t.waitMs
        const full = q.head + this.settings.maxQueue
        while (q.items.length > full) {
          const estimate = this.#estimate(q, q.items.length - 1 - q.head, now)
          settle(q.items.pop()!, new RateLimitedError(estimate, `Rate limit reached and ${this.settings.maxQueue} calls already wait for ${resource}; retry in ${Math.ceil(estimate)} ms`))
        }
        // Fail fast whoever cannot be served before their deadline.
        for (let i = q.head; i < q.items.length; ) {
          const w = q.items[i]!
          const estimate = this.#estimate(q, i - q.head, now)
          if (w.deadline !== undefined && now + estimate > w.deadline) {
            q.items.splice(i, 1)
            settle(w, new RateLimitedError(estimate))
          } else i++
        }
        if (q.size > 0) this.#schedule(resource, q, t.waitMs)
        return
      }
    } catch (err) {
      for (let w = q.shift(); w !== undefined; w = q.shift()) settle(w, err instanceof Error ? err : new GhlError('GHL_INTERNAL', String(err)))
    } finally {
      q.pumping = false
      this.#forget(resource, q)
    }
  }

  /** Re-checks a resource's queue now (after an answer or a penalty changed the wait). */
  protected wake(resource: string): void {
    const q = this.#queues.get(resource)
    if (q === undefined || q.size === 0 || q.pumping) return
    if (q.timer) clearTimeout(q.timer)
    q.timer = undefined
    this.#schedule(resource, q, 0)
  }
}

function settle(w: Waiter, err: Error | undefined, permit?: Permit): void {
  if (w.onAbort) w.signal!.removeEventListener('abort', w.onAbort)
  if (err) w.reject(err)
  else w.resolve(permit!)
}

function abortedError(): GhlError {
  return new GhlError('GHL_ABORTED')
}

function closedError(): GhlError {
  return new GhlError('GHL_ABORTED', 'The rate limiter was closed')
}
