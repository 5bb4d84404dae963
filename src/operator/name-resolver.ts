/**
 * Names for people: a location's or company's name when the install did not bring one (HighLevel's
 * token answer has no names; the INSTALL webhook has `companyName` only). Looked up with the
 * installation's own token — `GET /locations/{locationId}` (`location.name`) or
 * `GET /companies/{companyId}` (`company.name`) — stored on the row (`setDetails`), so each is fetched
 * once; a failed lookup is not tried again for `retryMs`. At most `concurrency` lookups run at once and
 * at most `maxQueued` wait, so listing a page never floods HighLevel.
 *
 * @see /work/shared/reference/highlevel/api-docs (locations: get-location; companies: get-company)
 */
import type { Clock } from '../clock.js'
import type { ResourceClient } from '../client/types.js'
import type { Logger } from '../logger.js'
import type { Target } from '../tokens/types.js'
import type { InstallationStore, InstallationSummary } from '../vault/types.js'

export interface NameResolverOptions {
  client: (target: Target) => ResourceClient
  store: Pick<InstallationStore, 'setDetails'>
  clock: Clock
  logger: Logger
  /** A failed lookup waits this long before another (default 10 min). */
  retryMs?: number
  concurrency?: number
  maxQueued?: number
}

/**
 * Whether a row lacks the name the console shows for it and holds a token good for another minute to
 * look it up with — a page view must never be what refreshes or mints a token.
 */
export function needsName(row: InstallationSummary, now = Date.now()): boolean {
  if (row.status !== 'active' || row.expiresAt === null || row.expiresAt.getTime() < now + 60_000) return false
  return row.locationId === null ? !row.companyName : !row.locationName
}

/** See the file comment. */
export class NameResolver {
  readonly #o: Required<NameResolverOptions>
  readonly #triedUntil = new Map<string, number>()
  readonly #inflight = new Map<string, Promise<string | null>>()
  #running = 0
  readonly #waiting: Array<() => void> = []

  constructor(options: NameResolverOptions) {
    this.#o = { retryMs: 600_000, concurrency: 4, maxQueued: 50, ...options }
  }

  /**
   * Looks up the missing names of these rows (in the background). With `waitMs`, waits at most that
   * long for them and returns the rows with the names found so far.
   */
  async resolve(rows: readonly InstallationSummary[], waitMs = 0): Promise<InstallationSummary[]> {
    const jobs = new Map<string, Promise<string | null>>()
    for (const row of rows) {
      if (!needsName(row)) continue
      const job = this.#lookup(row)
      if (job) jobs.set(row.id, job)
    }
    if (jobs.size === 0 || waitMs <= 0) return [...rows]
    let timer: NodeJS.Timeout | undefined
    const names = new Map<string, string | null>()
    await Promise.race([
      Promise.all([...jobs].map(async ([id, job]) => names.set(id, await job))),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs))),
    ])
    clearTimeout(timer)
    return rows.map((row) => {
      const name = names.get(row.id)
      if (!name) return row
      return row.locationId === null ? { ...row, companyName: name } : { ...row, locationName: name }
    })
  }

  #lookup(row: InstallationSummary): Promise<string | null> | undefined {
    const running = this.#inflight.get(row.id)
    if (running) return running
    if ((this.#triedUntil.get(row.id) ?? 0) > this.#o.clock.now()) return undefined
    if (this.#waiting.length >= this.#o.maxQueued) return undefined
    this.#triedUntil.set(row.id, this.#o.clock.now() + this.#o.retryMs)
    if (this.#triedUntil.size > 100_000) this.#triedUntil.delete(this.#triedUntil.keys().next().value!)
    const job = this.#slot()
      .then(() => this.#fetch(row))
      .catch((err: unknown) => {
        this.#o.logger.info({ installationId: row.id, err }, 'looking up an installation name failed; will try again later')
        return null
      })
      .finally(() => {
        this.#inflight.delete(row.id)
        this.#running--
        this.#waiting.shift()?.()
      })
    this.#inflight.set(row.id, job)
    return job
  }

  async #slot(): Promise<void> {
    if (this.#running < this.#o.concurrency) {
      this.#running++
      return
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve))
    this.#running++
  }

  async #fetch(row: InstallationSummary): Promise<string | null> {
    if (row.locationId !== null) {
      const { data } = await this.#o.client({ kind: 'location', id: row.locationId }).get<{ location?: { name?: unknown } }>(`/locations/${encodeURIComponent(row.locationId)}`)
      const name = typeof data?.location?.name === 'string' && data.location.name ? data.location.name : null
      if (name) await this.#o.store.setDetails(row.id, { locationName: name })
      return name
    }
    const { data } = await this.#o.client({ kind: 'company', id: row.companyId }).get<{ company?: { name?: unknown } }>(`/companies/${encodeURIComponent(row.companyId)}`)
    const name = typeof data?.company?.name === 'string' && data.company.name ? data.company.name : null
    if (name) await this.#o.store.setDetails(row.id, { companyName: name })
    return name
  }
}
