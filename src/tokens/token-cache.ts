/**
 * The token cache: the hot path of every call. A hit is one Map lookup and one flag write — no
 * database, no decryption, no allocation.
 *
 * - Keyed by resource (`location:<id>` / `company:<id>`), with a second index installation id → key so
 *   that invalidating an installation (a refresh here or on another instance, an uninstall) touches one
 *   entry: O(1), never a walk of the cache.
 * - Bounded: at most `maxEntries`; beyond that the CLOCK algorithm (second chance) evicts an entry not
 *   used since the hand last passed it — an approximation of LRU that costs the hit path only a flag.
 *   An evicted installation is simply read from the vault again on its next call (the cold path).
 */
import type { AccessGrant } from './types.js'

/** A cached grant and when to stop serving it from memory (expiry − margin − jitter). */
export interface CacheEntry {
  readonly grant: AccessGrant
  readonly refreshAt: number
  /** Set on every hit, cleared by the eviction hand. */
  used: boolean
}

/** See the file comment. */
export class TokenCache {
  readonly #entries = new Map<string, CacheEntry>()
  readonly #keyOf = new Map<string, string>()
  readonly #max: number

  /** @param maxEntries - The bound (≥ 1). */
  constructor(maxEntries: number) {
    this.#max = Math.max(1, Math.floor(maxEntries))
  }

  get size(): number {
    return this.#entries.size
  }

  get(key: string): CacheEntry | undefined {
    const e = this.#entries.get(key)
    if (e !== undefined) e.used = true
    return e
  }

  /** Stores `entry` unless a newer version of the same key is cached (flights can finish out of order). */
  set(key: string, entry: CacheEntry): CacheEntry {
    const current = this.#entries.get(key)
    if (current !== undefined && current.grant.version > entry.grant.version) return current
    const id = entry.grant.installationId
    if (current !== undefined && current.grant.installationId !== id && current.grant.installationId !== null) {
      this.#keyOf.delete(current.grant.installationId)
    }
    if (current === undefined && this.#entries.size >= this.#max) this.#evictOne()
    this.#entries.set(key, entry)
    if (id !== null) this.#keyOf.set(id, key)
    return entry
  }

  /** Drops the installation's entry when its version is below `version` (all of it for Infinity). O(1). */
  dropBelow(installationId: string, version: number): void {
    const key = this.#keyOf.get(installationId)
    if (key === undefined) return
    const e = this.#entries.get(key)
    if (e === undefined || e.grant.installationId !== installationId) {
      this.#keyOf.delete(installationId)
      return
    }
    if (e.grant.version < version) {
      this.#entries.delete(key)
      this.#keyOf.delete(installationId)
    }
  }

  delete(key: string): void {
    const e = this.#entries.get(key)
    if (e === undefined) return
    this.#entries.delete(key)
    if (e.grant.installationId !== null && this.#keyOf.get(e.grant.installationId) === key) this.#keyOf.delete(e.grant.installationId)
  }

  clear(): void {
    this.#entries.clear()
    this.#keyOf.clear()
  }

  /**
   * CLOCK: walk from the oldest insertion; a used entry gets a second chance (flag cleared, moved to the
   * back), the first unused one is evicted. Each entry is passed at most once per eviction, so the walk
   * ends within size + 1 steps, and is O(1) amortised.
   */
  #evictOne(): void {
    for (let steps = this.#entries.size; steps >= 0; steps--) {
      const first = this.#entries.entries().next()
      if (first.done) return
      const [key, e] = first.value
      this.#entries.delete(key)
      if (e.used && steps > 0) {
        e.used = false
        this.#entries.set(key, e)
        continue
      }
      if (e.grant.installationId !== null && this.#keyOf.get(e.grant.installationId) === key) this.#keyOf.delete(e.grant.installationId)
      return
    }
  }
}
