/**
 * Lookups by key asked for in the same burst of work, answered by one query — DataLoader's batching
 * (graphql/dataloader: a batch is dispatched once the promise jobs of the current turn have run, so
 * callers pay no extra wait). Twenty calls for twenty cold locations arriving together cost one indexed
 * query (`resource_key in (…)`), not twenty queued on the pool.
 *
 * Nothing is cached across batches (the vault's rows change under it): this only merges reads that
 * were asked for at the same moment. A failed query fails every lookup of its batch.
 */

interface Waiter<R> {
  resolve: (row: R | undefined) => void
  reject: (err: unknown) => void
}

export class LookupBatcher<R> {
  readonly #load: (group: string, keys: string[]) => Promise<Map<string, R>>
  readonly #maxBatch: number
  /** group (e.g. the app's client id) → key → who waits for it. */
  #pending: Map<string, Map<string, Array<Waiter<R>>>> | undefined

  /**
   * @param load - Reads the rows of `keys` (all in `group`), keyed by key; a key with no row is absent.
   * @param maxBatch - Keys per query at most (larger batches are split).
   */
  constructor(load: (group: string, keys: string[]) => Promise<Map<string, R>>, maxBatch = 500) {
    this.#load = load
    this.#maxBatch = maxBatch
  }

  /** The row of `key` in `group`, read together with every other lookup asked for meanwhile. */
  get(group: string, key: string): Promise<R | undefined> {
    if (!this.#pending) {
      this.#pending = new Map()
      // After the promise jobs queued so far (so lookups started by the same burst join), before I/O.
      void Promise.resolve().then(() => process.nextTick(() => this.#dispatch()))
    }
    let keys = this.#pending.get(group)
    if (!keys) this.#pending.set(group, (keys = new Map()))
    return new Promise<R | undefined>((resolve, reject) => {
      const waiters = keys.get(key)
      if (waiters) waiters.push({ resolve, reject })
      else keys.set(key, [{ resolve, reject }])
    })
  }

  #dispatch(): void {
    const pending = this.#pending
    this.#pending = undefined
    if (!pending) return
    for (const [group, keys] of pending) {
      const all = [...keys.keys()]
      for (let i = 0; i < all.length; i += this.#maxBatch) {
        const chunk = all.slice(i, i + this.#maxBatch)
        this.#load(group, chunk).then(
          (rows) => {
            for (const key of chunk) for (const w of keys.get(key)!) w.resolve(rows.get(key))
          },
          (err: unknown) => {
            for (const key of chunk) for (const w of keys.get(key)!) w.reject(err)
          },
        )
      }
    }
  }
}
