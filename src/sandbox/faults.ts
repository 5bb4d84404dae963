/**
 * Fault injection: the next N calls of an endpoint answer 500, hang, answer malformed JSON, or lose
 * their answer (`drop`: the connection is closed without one — for `billing`, after the charge was made).
 */

/** Endpoints that accept faults. */
/** `billing`: wallet charges (`POST /marketplace/billing/charges`) only. */
export type FaultEndpoint = 'token' | 'locationToken' | 'reconnect' | 'api' | 'billing'
/** Kinds of fault. */
export type FaultKind = 'error500' | 'hang' | 'malformed' | 'drop'

/** One queued fault. */
export interface Fault {
  kind: FaultKind
  hangMs: number
}

/** @internal */
export class FaultInjector {
  #queues = new Map<FaultEndpoint, Fault[]>()
  #hangs = new Set<{ timer: NodeJS.Timeout; resolve: (how: 'timeout' | 'released') => void }>()

  /** Queues `count` faults for the next calls of `endpoint`. */
  add(endpoint: FaultEndpoint, kind: FaultKind, count: number, hangMs = 60_000): void {
    const queue = this.#queues.get(endpoint) ?? []
    for (let i = 0; i < count; i++) queue.push({ kind, hangMs })
    this.#queues.set(endpoint, queue)
  }

  /** Takes the next fault of an endpoint, if any. */
  take(endpoint: FaultEndpoint): Fault | undefined {
    return this.#queues.get(endpoint)?.shift()
  }

  /** Pending faults per endpoint. */
  pending(): Record<string, number> {
    return Object.fromEntries([...this.#queues].map(([k, v]) => [k, v.length]))
  }

  /** Waits `ms`, or less if {@link releaseHangs} is called first. */
  hang(ms: number): Promise<'timeout' | 'released'> {
    return new Promise((resolve) => {
      const entry = {
        timer: setTimeout(() => {
          this.#hangs.delete(entry)
          resolve('timeout')
        }, ms),
        resolve: (how: 'timeout' | 'released') => resolve(how),
      }
      this.#hangs.add(entry)
    })
  }

  /** Ends every hang now (on close and reset). */
  releaseHangs(): void {
    for (const h of this.#hangs) {
      clearTimeout(h.timer)
      h.resolve('released')
    }
    this.#hangs.clear()
  }

  /** Drops queued faults and releases hangs. */
  clear(): void {
    this.#queues.clear()
    this.releaseHangs()
  }
}
