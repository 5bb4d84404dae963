/**
 * The connector's Redis client: every wait bounded, every failure reported once.
 *
 * - `connectTimeout`, `commandTimeout` (a command unanswered this long rejects) and `socketTimeout` (a
 *   connection that receives nothing while commands wait is destroyed and made again — a hung server or a
 *   half-open connection never keeps later commands stuck behind it), TCP keepalive.
 * - No offline queue beyond one retry: while Redis is down, commands fail fast (GHL_REDIS_UNAVAILABLE
 *   upstream) instead of piling up.
 * - `error` events are logged once per outage (ioredis repeats them on every reconnect attempt), never
 *   left unhandled; the server version is checked once connected (the rate limiter's script needs ≥ 5).
 */
import { Redis } from 'ioredis'
import type { Logger } from './logger.js'

/** Options of {@link createRedisClient}. */
export interface RedisClientOptions {
  logger: Logger
  /** Bound on connecting and on each command (ms). */
  timeoutMs: number
}

/** The lowest Redis server version the connector works with (Lua script with `redis.replicate_commands` semantics by default). */
export const MIN_REDIS_MAJOR = 5

/** Creates the connector's Redis client (see the file comment). */
export function createRedisClient(url: string, options: RedisClientOptions): Redis {
  const { logger, timeoutMs } = options
  const redis = new Redis(url, {
    lazyConnect: false,
    connectTimeout: Math.max(timeoutMs, 1000),
    commandTimeout: timeoutMs,
    socketTimeout: Math.max(timeoutMs * 2, 1000),
    keepAlive: 10_000,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: true,
    retryStrategy: (times) => Math.min(times * 200, 2000),
  })
  let failing = false
  redis.on('error', (err: Error) => {
    if (failing) return
    failing = true
    logger.error({ error: err.message }, 'Redis failed; reconnecting (calls that need it answer 503 meanwhile)')
  })
  redis.on('ready', () => {
    if (failing) logger.info('Redis is answering again')
    failing = false
    checkVersion(redis, logger)
  })
  return redis
}

/** Logs an error when the server is older than {@link MIN_REDIS_MAJOR}. */
function checkVersion(redis: Redis, logger: Logger): void {
  redis
    .info('server')
    .then((info) => {
      const version = /redis_version:([\d.]+)/.exec(info)?.[1]
      const major = Number(version?.split('.')[0])
      if (version && Number.isFinite(major) && major < MIN_REDIS_MAJOR) {
        logger.error({ version }, `Redis ${version} is too old: ghl-connect needs Redis ${MIN_REDIS_MAJOR} or newer`)
      }
    })
    .catch(() => {})
}

/** Whether Redis answers a PING within `timeoutMs`. Never throws. */
export async function pingRedis(redis: Redis, timeoutMs: number): Promise<{ ok: true } | { ok: false; reason: string }> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      redis.ping().then(() => ({ ok: true as const })),
      new Promise<{ ok: false; reason: string }>((resolve) => {
        timer = setTimeout(() => resolve({ ok: false, reason: `Redis did not answer within ${timeoutMs} ms` }), timeoutMs)
      }),
    ])
  } catch (err) {
    return { ok: false, reason: `Redis failed: ${(err as Error).message}` }
  } finally {
    clearTimeout(timer)
  }
}
