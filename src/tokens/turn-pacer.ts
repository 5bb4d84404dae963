/**
 * Spreads background work over turns of the event loop: each `next()` resolves in a turn of its own,
 * in order, so pieces of synchronous work that become ready together (thirty-two refreshes whose
 * answers arrived in one poll — on SQLite each then runs its statements synchronously) run one per
 * turn, with timers and I/O between them, instead of holding the loop for all of them at once.
 *
 * A turn here is one `setImmediate`: an immediate queued from another immediate runs in the next
 * iteration of the loop, after its timers and I/O. An idle loop goes round in microseconds, so the
 * pace costs throughput nothing; a busy one gives calls their share first.
 */
export class TurnPacer {
  /** Few at a time (one per refresh in flight): shift() is cheap at that size. */
  readonly #waiting: Array<() => void> = []
  #scheduled = false

  /** Resolves in a turn of the event loop that no other waiter of this pacer gets. */
  next(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#waiting.push(resolve)
      if (!this.#scheduled) {
        this.#scheduled = true
        setImmediate(this.#release)
      }
    })
  }

  /** Waiters not released yet. */
  get waiting(): number {
    return this.#waiting.length
  }

  readonly #release = (): void => {
    // The waiter's continuation runs in the microtasks right after this callback, in this turn.
    this.#waiting.shift()?.()
    if (this.#waiting.length > 0) setImmediate(this.#release)
    else this.#scheduled = false
  }
}
