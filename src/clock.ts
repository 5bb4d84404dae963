/**
 * Time is injected, never read directly, so tests can move it (STYLE.md: "Time is injected").
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number
}

export const systemClock: Clock = { now: () => Date.now() }

/** A clock tests can move by hand. */
export class ManualClock implements Clock {
  #now: number
  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start
  }
  now(): number {
    return this.#now
  }
  advance(ms: number): void {
    this.#now += ms
  }
  set(ms: number): void {
    this.#now = ms
  }
}

/**
 * A time relative to `now`, for people: "in 23 h", "in 5 min", "12 s ago", "3 d ago"; "—" when absent.
 * The CLI's tables and the console's pages say times the same way.
 *
 * @example
 * relativeTime(new Date(Date.now() + 23 * 3600_000), Date.now()) // "in 23 h"
 */
export function relativeTime(at: Date | null | undefined, now: number): string {
  if (!at) return '—'
  const diff = at.getTime() - now
  const span = duration(Math.abs(diff))
  return diff >= 0 ? `in ${span}` : `${span} ago`
}

/** A duration in its largest whole unit: "45 s", "12 min", "23 h", "3 d". */
export function duration(ms: number): string {
  const s = Math.floor(ms / 1000)
  if (s < 60) return `${s} s`
  const min = Math.floor(s / 60)
  if (min < 60) return `${min} min`
  const h = Math.floor(min / 60)
  if (h < 48) return `${h} h`
  return `${Math.floor(h / 24)} d`
}
