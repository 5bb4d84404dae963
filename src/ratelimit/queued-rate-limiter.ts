/**
 * The FIFO wait queue shared by both limiters. Subclasses say only whether one request may go now
 * ({@link QueuedRateLimiter.tryTake} → 0) or how long to wait; this class keeps the callers in line.
 *
 * Concurrency: while a resource has waiters, new callers join the back of its queue (they never
 * overtake). Only the queue's *head* asks the budget again, and only once the wait it was last told
 * has passed (plus a little jitter for the shared Redis budget, so processes do not ask in lock-step):
 * there is no busy polling. A caller whose deadline cannot be met — judged from the head's wait plus
 * one burst window per `burstMax` callers ahead — fails fast with {@link RateLimitedError} instead of
 * waiting to fail; so does a caller that finds `maxQueue` callers already waiting.
 */
import type { Clock } from '../clock.js'
import { systemClock } from '../clock.js'
import type { RateLimitSettings } from '../config.js'
import { GhlError, RateLimitedError } from '../errors.js'
import type { AcquireOptions, RateLimiter } from './rate-limiter.js'

interface Waiter {
  resolve: () => void
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
  pumping = false
  get size(): number {
    return this.items.length - this.head
  }
  peek(): Waiter | undefined {
    return this.items[this.head]
  }
  shift(): Waiter | undefined {
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

const RESOLVED: Promise<void> = Promise.resolve()

/** @internal Base class of {@link MemoryRateLimiter} and {@link RedisRateLimiter}. */
export abstract class QueuedRateLimiter implements RateLimiter {
  protected readonly settings: RateLimitSettings
  protected readonly clock: Clock
  #queues = new Map<string, WaitQueue>()
  #closed = false

  protected constructor(settings: RateLimitSettings, clock: Clock | undefined) {
    this.settings = settings
    this.clock = clock ?? systemClock
  }

  /** Takes one slot now (returns 0) or returns the ms to wait before asking again (≥ 1). */
  protected abstract tryTake(resource: string): number | Promise<number>
  /** Extra random wait added to a retry of the head (0 for the in-process budget). */
  protected jitter(_waitMs: number): number {
    return 0
  }

  /** {@inheritDoc RateLimiter.acquire} */
  acquire(resource: string, options?: AcquireOptions): Promise<void> {
    if (this.#closed) return Promise.reject(closedError())
    if (options?.signal?.aborted) return Promise.reject(abortedError())
    const q = this.#queues.get(resource)
    if (q === undefined || q.size === 0) {
      const r = this.tryTake(resource)
      if (typeof r === 'number') return r === 0 ? RESOLVED : this.#enqueue(resource, options, r)
      return r.then((w) => (w === 0 ? undefined : this.#enqueue(resource, options, w)))
    }
    return this.#enqueue(resource, options, undefined)
  }

  abstract observe(resource: string, headers: Record<string, string | string[] | undefined>): void | Promise<void>
  abstract penalize(resource: string, retryAfterMs: number): void | Promise<void>

  /** Rejects every waiter (GhlError `GHL_ABORTED`) and stops the timers. */
  async close(): Promise<void> {
    this.#closed = true
    for (const q of this.#queues.values()) {
      if (q.timer) clearTimeout(q.timer)
      for (let w = q.shift(); w !== undefined; w = q.shift()) settle(w, closedError())
    }
    this.#queues.clear()
  }

  /** The estimated wait of the caller at `position` in a queue whose head goes at `q.nextAt`. */
  #estimate(q: WaitQueue, position: number, now: number): number {
    const rounds = Math.floor(position / this.settings.burstMax)
    return Math.max(0, q.nextAt - now) + rounds * this.settings.burstWindowMs
  }

  #enqueue(resource: string, options: AcquireOptions | undefined, wait: number | undefined): Promise<void> {
    // closed while an asynchronous tryTake ran
    if (this.#closed) return Promise.reject(closedError())
    let q = this.#queues.get(resource)
    if (q === undefined) {
      q = new WaitQueue()
      this.#queues.set(resource, q)
    }
    const now = this.clock.now()
    if (q.size === 0 && wait !== undefined) q.nextAt = now + wait
    const estimate = this.#estimate(q, q.size, now)
    if (q.size >= this.settings.maxQueue) {
      if (q.size === 0) this.#queues.delete(resource)
      return Promise.reject(new RateLimitedError(estimate, `Rate limit reached and ${q.size} calls already wait for ${resource}; retry in ${Math.ceil(estimate)} ms`))
    }
    const deadline = options?.deadline
    if (deadline !== undefined && now + estimate > deadline) {
      if (q.size === 0) this.#queues.delete(resource)
      return Promise.reject(new RateLimitedError(estimate))
    }
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = { resolve, reject, deadline, signal: options?.signal, onAbort: undefined }
      if (w.signal) {
        const queue = q
        w.onAbort = () => {
          if (queue.remove(w)) settle(w, abortedError())
        }
        w.signal.addEventListener('abort', w.onAbort, { once: true })
      }
      q.items.push(w)
      if (q.timer === undefined && !q.pumping) this.#schedule(resource, q, Math.max(0, q.nextAt - now))
    })
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
        const head = q.peek()!
        let now = this.clock.now()
        if (head.deadline !== undefined && now > head.deadline) {
          settle(q.shift()!, new RateLimitedError(0))
          continue
        }
        const r = await this.tryTake(resource)
        if (this.#closed) return
        if (r === 0) {
          // The head may have been aborted while tryTake ran; then the slot passes to the next caller.
          const w = q.peek()
          if (w === undefined) break // nobody left: the slot stays used (counted, harmless)
          settle(q.shift()!, undefined)
          continue
        }
        now = this.clock.now()
        q.nextAt = now + r
        // Fail fast whoever cannot be served before their deadline.
        for (let i = q.head; i < q.items.length; ) {
          const w = q.items[i]!
          const estimate = this.#estimate(q, i - q.head, now)
          if (w.deadline !== undefined && now + estimate > w.deadline) {
            q.items.splice(i, 1)
            settle(w, new RateLimitedError(estimate))
          } else i++
        }
        if (q.size > 0) this.#schedule(resource, q, r)
        return
      }
    } catch (err) {
      for (let w = q.shift(); w !== undefined; w = q.shift()) settle(w, err instanceof Error ? err : new GhlError('GHL_INTERNAL', String(err)))
    } finally {
      q.pumping = false
      if (q.size === 0 && q.timer === undefined && this.#queues.get(resource) === q) this.#queues.delete(resource)
    }
  }

  /** Re-checks a resource's queue now (after a penalty changed the wait). */
  protected wake(resource: string): void {
    const q = this.#queues.get(resource)
    if (q === undefined || q.size === 0 || q.pumping) return
    if (q.timer) clearTimeout(q.timer)
    this.#schedule(resource, q, 0)
  }
}

function settle(w: Waiter, err: Error | undefined): void {
  if (w.onAbort) w.signal!.removeEventListener('abort', w.onAbort)
  if (err) w.reject(err)
  else w.resolve()
}

function abortedError(): GhlError {
  return new GhlError('GHL_ABORTED')
}

function closedError(): GhlError {
  return new GhlError('GHL_ABORTED', 'The rate limiter was closed')
}
