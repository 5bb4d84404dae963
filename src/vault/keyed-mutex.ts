/**
 * An in-process FIFO mutex per key, with a deadline on the wait.
 *
 * The vault queues callers of one process here before they contend in the database, so that N
 * concurrent refreshes of one installation cost one database waiter, not N (and, on PostgreSQL, one
 * pooled connection instead of N — N waiters could otherwise fill the pool and starve the holder).
 */
import { GhlError } from '../errors.js'

/** Releases a held key. Calling it twice is harmless. */
export type Release = () => void

/**
 * One FIFO queue per key; waiters that time out keep their place and pass it on at once.
 *
 * @example
 * const release = await mutex.acquire(installationId, 15_000)
 * try { … } finally { release() }
 */
export class KeyedMutex {
  readonly #tails = new Map<string, Promise<void>>()

  /**
   * Resolves when every earlier caller for `key` has released.
   * @throws GhlError `GHL_LOCK_TIMEOUT` when that takes longer than `timeoutMs`; `GHL_ABORTED` when
   *   `signal` aborts first.
   */
  async acquire(key: string, timeoutMs: number, signal?: AbortSignal): Promise<Release> {
    if (signal?.aborted) throw new GhlError('GHL_ABORTED', `Stopped waiting for the refresh lock of installation ${key}`, { cause: signal.reason })
    const previous = this.#tails.get(key) ?? Promise.resolve()
    let release!: Release
    const mine = new Promise<void>((resolve) => {
      release = resolve
    })
    const tail = previous.then(() => mine)
    this.#tails.set(key, tail)
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key)
    })

    let timer: NodeJS.Timeout | undefined
    let onAbort: (() => void) | undefined
    const acquired = await Promise.race([
      previous.then(() => 'acquired' as const),
      new Promise<'timeout' | 'aborted'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), Math.max(0, timeoutMs))
        if (signal) {
          onAbort = () => resolve('aborted')
          signal.addEventListener('abort', onAbort, { once: true })
        }
      }),
    ])
    clearTimeout(timer)
    if (onAbort) signal!.removeEventListener('abort', onAbort)
    if (acquired !== 'acquired') {
      // Keep our place in the chain so later callers still queue behind earlier ones; hand it on at once.
      void previous.then(release)
      if (acquired === 'aborted') throw new GhlError('GHL_ABORTED', `Stopped waiting for the refresh lock of installation ${key}`, { cause: signal!.reason })
      throw new GhlError('GHL_LOCK_TIMEOUT', `Timed out after ${timeoutMs} ms waiting for the refresh lock of installation ${key}`)
    }
    return release
  }
}
