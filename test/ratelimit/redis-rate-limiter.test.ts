import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { REDIS_URL, redisSkipReason } from '../helpers/services.js'
import { RedisRateLimiter } from '../../src/ratelimit/redis-rate-limiter.js'
import { createRateLimiter } from '../../src/ratelimit/index.js'
import type { RateLimitSettings } from '../../src/config.js'
import { GhlError, RateLimitedError } from '../../src/errors.js'
import { maxInWindow, startLimitedServer } from './fixtures/limited-server.js'

const run = promisify(execFile)
const CHILD = fileURLToPath(new URL('./fixtures/redis-child.ts', import.meta.url))
const skip = await redisSkipReason()

const settings = (o: Partial<RateLimitSettings> = {}): RateLimitSettings => ({
  enabled: true, burstMax: 10, burstWindowMs: 500, dailyMax: 1_000_000, dailyWindowMs: 86_400_000, maxQueue: 1000, ...o,
})
const prefix = (): string => `ghl:test:${randomBytes(6).toString('hex')}:`

async function cleanup(redis: Redis, keyPrefix: string): Promise<void> {
  const keys = await redis.keys(`${keyPrefix}*`)
  if (keys.length > 0) await redis.del(...keys)
  redis.disconnect()
}

async function children(n: number, args: object): Promise<Array<{ ok: number; limited: number }>> {
  return Promise.all(Array.from({ length: n }, async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(args)], { timeout: 30_000 })
    return JSON.parse(stdout) as { ok: number; limited: number }
  }))
}

describe('RedisRateLimiter: one budget shared by every process', { skip }, () => {
  test('3 processes × 20 requests at a 10 per 500 ms budget: zero 429s, throughput within 10% of the budget', async () => {
    const server = await startLimitedServer({ max: 10, windowMs: 500 })
    const keyPrefix = prefix()
    try {
      const results = await children(3, { url: server.url, redisUrl: REDIS_URL, prefix: keyPrefix, resource: 'loc1', count: 20, settings: settings(), marginMs: 0 })
      assert.deepEqual(results.map((r) => r.limited), [0, 0, 0])
      assert.equal(server.rejected, 0)
      const times = server.accepted.get('loc1')!
      assert.equal(times.length, 60)
      assert.ok(maxInWindow(times, 500) <= 10)
      // Throughput: at full use the 60 requests go in 6 bursts, the last one 5 windows after the first.
      // Within 10% of the budget means at least 90% of them arrive within those 5 windows + 10%. (Counting
      // arrivals by a deadline, rather than the time of the very last one, keeps one request that was
      // slowed by a loaded machine from counting as a whole lost window.)
      const span = 5 * 500 * 1.1
      const inTime = times.filter((t) => t - times[0]! <= span).length
      assert.ok(inTime >= 54, `${inTime} of 60 requests within ${span} ms: ${times.map((t) => Math.round(t - times[0]!)).join(' ')}`)
    } finally {
      await cleanup(new Redis(REDIS_URL), keyPrefix)
      await server.close()
    }
  })

  test('foreign usage reported by the headers is recorded in the shared budget (zero 429s)', async () => {
    const server = await startLimitedServer({ max: 10, windowMs: 500 })
    const keyPrefix = prefix()
    const redis = new Redis(REDIS_URL)
    const limiter = new RedisRateLimiter(settings(), redis, { clientId: 'app-test', keyPrefix })
    const peer = new RedisRateLimiter(settings(), redis, { clientId: 'app-test', keyPrefix })
    try {
      const call = async (l: RedisRateLimiter): Promise<number> => {
        await l.acquire('loc2', { deadline: Date.now() + 10_000 })
        const res = await fetch(`${server.url}/r/loc2`)
        await res.arrayBuffer()
        await l.observe('loc2', Object.fromEntries(res.headers))
        return res.status
      }
      assert.equal(await call(limiter), 200)
      server.foreign('loc2', 6)
      assert.equal(await call(limiter), 200) // reports remaining 2: 6 foreign entries go into Redis
      // The peer (another process in real life) never saw the headers, yet it is held back too.
      const statuses = await Promise.all(Array.from({ length: 12 }, () => call(peer)))
      assert.deepEqual(statuses.filter((s) => s !== 200), [])
      assert.equal(server.rejected, 0)
    } finally {
      await limiter.close()
      await peer.close()
      await cleanup(redis, keyPrefix)
      await server.close()
    }
  })

  test('penalize() blocks every process; deadline and queue bound fail fast with RateLimitedError', async () => {
    const keyPrefix = prefix()
    const redis = new Redis(REDIS_URL)
    const a = createRateLimiter(settings({ burstMax: 2, maxQueue: 1 }), { clientId: 'app-test', redis, keyPrefix })
    const b = createRateLimiter(settings({ burstMax: 2, maxQueue: 1 }), { clientId: 'app-test', redis, keyPrefix })
    try {
      assert.ok(a instanceof RedisRateLimiter)
      await a.penalize('loc3', 300)
      const err = await b.acquire('loc3', { deadline: Date.now() + 100 }).catch((e: unknown) => e)
      assert.ok(err instanceof RateLimitedError)
      assert.ok(err.retryAfterMs > 100 && err.retryAfterMs <= 300, String(err.retryAfterMs))
      // Budget: two slots, answered at once.
      for (const l of [a, b]) {
        await l.acquire('loc4')
        await l.observe('loc4', {})
      }
      const queued = b.acquire('loc4') // waits for the window
      await assert.rejects(b.acquire('loc4'), RateLimitedError) // queue of 1 is full
      await assert.rejects(a.acquire('loc4', { deadline: Date.now() + 50 }), RateLimitedError)
      await queued
      await b.observe('loc4', {})
      // Another client id has its own budget.
      const other = createRateLimiter(settings({ burstMax: 2 }), { clientId: 'app-other', redis, keyPrefix })
      await other.acquire('loc4', { deadline: Date.now() })
      await other.close()
    } finally {
      await a.close()
      await b.close()
      await cleanup(redis, keyPrefix)
    }
  })

  test('an unanswered call holds its slot in Redis (in flight), an answer starts its window', async () => {
    const keyPrefix = prefix()
    const redis = new Redis(REDIS_URL)
    const l = new RedisRateLimiter(settings({ burstMax: 1, burstWindowMs: 100 }), redis, { clientId: 'app-test', keyPrefix })
    try {
      await l.acquire('loc5')
      let got = false
      const waiting = l.acquire('loc5', { deadline: Date.now() + 5_000 }).then(() => { got = true })
      await new Promise((r) => setTimeout(r, 150)) // longer than the window: still held while in flight
      assert.equal(got, false, 'in flight: the slot is still held')
      await l.observe('loc5', {})
      await waiting // freed one window after the answer
      assert.equal(got, true)
      const closed = l.acquire('loc5')
      await l.close()
      await assert.rejects(closed, (e: unknown) => e instanceof GhlError && e.code === 'GHL_ABORTED')
    } finally {
      await cleanup(redis, keyPrefix)
    }
  })
})
