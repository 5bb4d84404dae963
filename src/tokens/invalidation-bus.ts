/**
 * Cross-instance cache invalidation over Redis pub/sub: "installation X is now at version N" (drop
 * older entries) or "installation X" alone (drop whatever you hold). Without Redis every instance still
 * re-reads the row's version on a 401, so a lost message costs one extra read, never a wrong token.
 */
import type { Redis } from 'ioredis'
import { GhlError } from '../errors.js'
import type { Logger } from '../logger.js'

/** The Redis channel on which instances tell each other "installation X is now at version N". */
export const INVALIDATION_CHANNEL = 'ghl-connect:invalidate'

/** See the file comment. */
export class InvalidationBus {
  readonly #redis: Redis | undefined
  readonly #logger: Logger
  #subscriber: Redis | undefined
  readonly #ready: Promise<void>
  #closed = false

  /** @param onMessage - Called with (installationId, version or Infinity) for every message of another instance. */
  constructor(redis: Redis | undefined, logger: Logger, onMessage: (installationId: string, version: number) => void) {
    this.#redis = redis
    this.#logger = logger
    this.#ready = this.#subscribe(onMessage)
    // Redis unreachable at start must not crash the process (an unhandled rejection) nor stop the
    // service: without invalidation messages every instance still re-reads the row's version on a 401.
    this.#ready.catch((err: unknown) => {
      this.#logger.warn({ error: errorText(err) }, 'token invalidation subscription failed; serving tokens without cross-instance invalidation')
    })
  }

  /**
   * Resolves once the subscription is active (at once without Redis). Rejects with GhlError
   * `GHL_REDIS_UNAVAILABLE` when it could not be made; it is retried when Redis comes back.
   */
  ready(): Promise<void> {
    return this.#ready
  }

  /** Tells the other instances: drop entries of this installation older than `version` (all, without one). */
  publish(installationId: string, version?: number): void {
    if (!this.#redis || this.#closed) return
    this.#redis.publish(INVALIDATION_CHANNEL, version === undefined ? installationId : `${installationId}:${version}`).catch((err: unknown) => {
      this.#logger.warn({ installationId, error: errorText(err) }, 'publishing a token invalidation failed')
    })
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#ready.catch(() => {})
    if (this.#subscriber) await this.#subscriber.quit().catch(() => this.#subscriber?.disconnect())
  }

  async #subscribe(onMessage: (installationId: string, version: number) => void): Promise<void> {
    if (!this.#redis) return
    const sub = this.#redis.duplicate()
    this.#subscriber = sub
    let failing = false
    sub.on('error', (err: unknown) => {
      // Logged once per outage (ioredis reconnects by itself and would repeat it every retry).
      if (failing) return
      failing = true
      this.#logger.warn({ error: errorText(err) }, 'token invalidation subscriber: Redis failed; reconnecting')
    })
    sub.on('ready', () => {
      failing = false
    })
    sub.on('message', (channel: string, message: string) => {
      if (channel !== INVALIDATION_CHANNEL) return
      const at = message.lastIndexOf(':')
      const id = at > 0 ? message.slice(0, at) : message
      const version = at > 0 ? Number(message.slice(at + 1)) : Number.NaN
      onMessage(id, Number.isFinite(version) ? version : Number.POSITIVE_INFINITY)
    })
    try {
      await sub.subscribe(INVALIDATION_CHANNEL)
    } catch (err) {
      // When the client reconnects later (its retryStrategy allows it), subscribe then.
      const retry = (): void => {
        if (this.#closed) return
        sub.subscribe(INVALIDATION_CHANNEL).then(
          () => this.#logger.info('token invalidation subscription active after reconnecting'),
          (again: unknown) => {
            this.#logger.warn({ error: errorText(again) }, 'token invalidation subscription failed again')
            if (!this.#closed) sub.once('ready', retry)
          },
        )
      }
      sub.once('ready', retry)
      throw new GhlError('GHL_REDIS_UNAVAILABLE', `The Redis invalidation subscription failed: ${errorText(err)}`, { cause: err })
    }
  }
}

/** An error's message only (ioredis errors carry no credentials, but never log a whole client object). */
export function errorText(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).slice(0, 300)
}
