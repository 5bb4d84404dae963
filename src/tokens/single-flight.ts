/**
 * In-process single flight: concurrent callers of one key share one promise (as undici's deduplicate
 * interceptor shares one request). Two rules keep it from ever poisoning later calls:
 * - an entry is removed the moment its work settles, so the next caller starts afresh;
 * - an entry older than its bound is no longer joined: a caller arriving after the bound starts new
 *   work instead of waiting on work that should have ended (everything inside is bounded too — the
 *   bound is the safety net, not the mechanism).
 *
 * Callers wait through {@link waitFor}, which stops waiting when the caller's signal aborts or its
 * deadline passes, while the shared work goes on for the others (a refresh abandoned between
 * HighLevel's answer and the stored row would lose the rotated refresh token).
 */
import { performance } from 'node:perf_hooks'
import { GhlError } from '../errors.js'

interface Flight {
  promise: Promise<unknown>
  startedAt: number
}

/** See the file comment. */
export class SingleFlight {
  readonly #flights = new Map<string, Flight>()
  readonly #boundMs: number

  /** @param boundMs - How long an entry may be joined (the longest the work can legitimately take). */
  constructor(boundMs: number) {
    this.#boundMs = boundMs
  }

  /** Runs `fn` unless a flight of `key` younger than the bound is under way; then joins it. */
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const now = performance.now()
    const existing = this.#flights.get(key)
    if (existing && now - existing.startedAt <= this.#boundMs) return existing.promise as Promise<T>
    const flight: Flight = { promise: undefined as unknown as Promise<unknown>, startedAt: now }
    const promise: Promise<T> = Promise.resolve()
      .then(fn)
      .finally(() => {
        if (this.#flights.get(key) === flight) this.#flights.delete(key)
      })
    flight.promise = promise
    this.#flights.set(key, flight)
    return promise
  }

  /** Flights under way (for a graceful shutdown: wait for them). */
  pending(): Promise<unknown>[] {
    return [...this.#flights.values()].map((f) => f.promise)
  }

  get size(): number {
    return this.#flights.size
  }
}

/**
 * Waits for shared work on behalf of one caller: rejects with `GHL_ABORTED` when `signal` aborts and
 * `GHL_TIMEOUT` when `deadline` (epoch ms on `now()`'s clock) passes; the work itself is not cancelled.
 */
export function waitFor<T>(work: Promise<T>, signal: AbortSignal | undefined, what = 'The token request'): Promise<T> {
  if (!signal) return work
  if (signal.aborted) return Promise.reject(abortedError(signal, what))
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortedError(signal, what))
    signal.addEventListener('abort', onAbort, { once: true })
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

function abortedError(signal: AbortSignal, what: string): GhlError {
  // The client's deadline step aborts with its own reason and maps the stop to GHL_TIMEOUT itself.
  return new GhlError('GHL_ABORTED', `${what} was aborted by the caller`, { cause: signal.reason })
}
