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
import { ManualClock } from '../../src/clock.js'
import { maxInWindow, startLimitedServer } from './fixtures/limited-server.js'
import { startHoldRelay } from './fixtures/hold-relay.js'
import { lateAnswerKeepsItsWindow } from './fixtures/scenarios.js'

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
    const { stdout } = await run(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(args)], { timeout: 150_000 })
    return JSON.parse(stdout) as { ok: number; limited: number }
  }))
}

describe('RedisRateLimiter: one budget shared by every process', { skip }, () => {
  test('3 processes × 20 requests at a 10 per 500 ms budget: zero 429s, never more than 10 in any window', { timeout: 180_000 }, async () => {
    const server = await startLimitedServer({ max: 10, windowMs: 500 })
    const keyPrefix = prefix()
    try {
      const results = await children(3, { url: server.url, redisUrl: REDIS_URL, prefix: keyPrefix, resource: 'loc1', count: 20, settings: settings(), marginMs: 0 })
      assert.deepEqual(results.map((r) => r.limited), [0, 0, 0])
      assert.deepEqual(results.map((r) => r.ok), [20, 20, 20])
      assert.equal(server.rejected, 0)
      const times = server.accepted.get('loc1')!
      assert.equal(times.length, 60)
      // Counts only: how close to the budget the rounds follow each other is `npm run bench`'s
      // (bench/ratelimit.bench.ts), not a test's on a shared machine.
      assert.ok(maxInWindow(times, 500) <= 10, `at most 10 arrivals in any 500 ms: ${maxInWindow(times, 500)}`)
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
        const permit = await l.acquire('loc2', { deadline: Date.now() + 10_000 })
        const res = await fetch(`${server.url}/r/loc2`)
        await res.arrayBuffer()
        await permit.release(Object.fromEntries(res.headers))
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
        const permit = await l.acquire('loc4')
        await permit.release({})
      }
      const queued = b.acquire('loc4') // waits for the window
      await assert.rejects(b.acquire('loc4'), RateLimitedError) // queue of 1 is full
      await assert.rejects(a.acquire('loc4', { deadline: Date.now() + 50 }), RateLimitedError)
      await (await queued).release()
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

  test('a free budget serves a caller whose deadline passed only while this process got to the take (deadline: now)', async () => {
    const keyPrefix = prefix()
    const redis = new Redis(REDIS_URL)
    const clock = new ManualClock(Date.now())
    const l = new RedisRateLimiter(settings({ burstMax: 2 }), redis, { clientId: 'app-test', keyPrefix, clock })
    try {
      const first = l.acquire('loc7', { deadline: clock.now() })
      clock.advance(5) // the turn before the take starts: later than the deadline, no budget wait
      await (await first).release()
      // Positive control: a caller the budget cannot serve before its deadline is still turned away.
      const second = l.acquire('loc7', { deadline: clock.now() })
      clock.advance(5)
      await (await second).release()
      const err = await l.acquire('loc7', { deadline: clock.now() + 100 }).catch((e: unknown) => e)
      assert.ok(err instanceof RateLimitedError, String(err))
    } finally {
      await l.close()
      await cleanup(redis, keyPrefix)
    }
  })

  test('an unanswered call holds its slot in Redis (in flight), an answer starts its window', async () => {
    const keyPrefix = prefix()
    const redis = new Redis(REDIS_URL)
    const l = new RedisRateLimiter(settings({ burstMax: 1, burstWindowMs: 100 }), redis, { clientId: 'app-test', keyPrefix })
    try {
      const first = await l.acquire('loc5')
      let got = false
      const waiting = l.acquire('loc5', { deadline: Date.now() + 5_000 }).then(() => { got = true })
      await new Promise((r) => setTimeout(r, 150)) // longer than the window: still held while in flight
      assert.equal(got, false, 'in flight: the slot is still held')
      await first.release()
      await waiting // freed one window after the answer
      assert.equal(got, true)
      const closed = l.acquire('loc5')
      await l.close()
      await assert.rejects(closed, (e: unknown) => e instanceof GhlError && e.code === 'GHL_ABORTED')
    } finally {
      await cleanup(redis, keyPrefix)
    }
  })

  test('a late answer adds no foreign usage: the burst keeps its whole window (zero 429s, all 10 slots used)', async () => {
    const server = await startLimitedServer({ max: 10, windowMs: 300 })
    const keyPrefix = prefix()
    const redis = new Redis(REDIS_URL)
    const limiter = new RedisRateLimiter(settings({ burstWindowMs: 300 }), redis, { clientId: 'app-test', keyPrefix, marginMs: 0 })
    try {
      await lateAnswerKeepsItsWindow(limiter, server, 'loc6', 300)
    } finally {
      await limiter.close()
      await cleanup(redis, keyPrefix)
      await server.close()
    }
  })

  for (const where of ['with no queue', 'at the head of the queue'] as const) {
    test(`a caller aborted while its take is in flight (${where}): the slot comes back, the full burst is still usable`, async () => {
      const relay = await startHoldRelay({ host: new URL(REDIS_URL).hostname, port: Number(new URL(REDIS_URL).port || 6379) })
      const keyPrefix = prefix()
      const redis = new Redis({ host: '127.0.0.1', port: relay.port })
      const limiter = new RedisRateLimiter(settings({ burstMax: 3, burstWindowMs: 300 }), redis, { clientId: 'app-test', keyPrefix, marginMs: 0 })
      try {
        await redis.ping()
        const ac = new AbortController()
        let aborted: Promise<unknown>
        if (where === 'at the head of the queue') {
          // Spend the budget, then queue one caller: it is told to wait, and takes when the window has passed.
          for (let i = 0; i < 3; i++) await (await limiter.acquire('loc7')).release()
          aborted = limiter.acquire('loc7', { signal: ac.signal })
          await new Promise((r) => setTimeout(r, 100))
          relay.hold()
          await relay.sent() // its second take reached Redis (it runs there, and takes); its answer is held
        } else {
          const sent = relay.sent()
          relay.hold()
          aborted = limiter.acquire('loc7', { signal: ac.signal })
          await sent // the take reached Redis (it runs there); its answer is held
        }
        ac.abort()
        // The abort is answered at once, without the take's answer (the relay lets it go after a second at most).
        const outcome = aborted.then(() => 'granted', (e: unknown) => e)
        const first = await Promise.race([outcome, new Promise((r) => setTimeout(r, 1000, 'still waiting'))])
        relay.release()
        assert.ok(first instanceof GhlError && first.code === 'GHL_ABORTED', String(first))
        await outcome
        // The take landed with nobody waiting: it was given back (stored within a few ms). After the
        // window, the whole burst goes at once, and one more must wait (the control).
        await new Promise((r) => setTimeout(r, 400))
        const deadline = Date.now() + 100
        const permits = await Promise.all(Array.from({ length: 3 }, () => limiter.acquire('loc7', { deadline })))
        await assert.rejects(limiter.acquire('loc7', { deadline: Date.now() + 100 }), RateLimitedError)
        for (const p of permits) await p.release()
      } finally {
        await limiter.close()
        await cleanup(redis, keyPrefix)
        await relay.close()
      }
    })
  }

  test('one script call serves a batch: 50 concurrent calls cost far fewer than 50 Redis calls', async () => {
    const keyPrefix = prefix()
    const redis = new Redis(REDIS_URL)
    const limiter = new RedisRateLimiter(settings({ burstMax: 1000 }), redis, { clientId: 'app-test', keyPrefix })
    let calls = 0
    const sync = redis.ghlRateSync.bind(redis)
    redis.ghlRateSync = ((...args: Array<string | number>) => {
      calls++
      return sync(...args)
    }) as typeof redis.ghlRateSync
    try {
      const permits = await Promise.all(Array.from({ length: 50 }, () => limiter.acquire('loc8')))
      await Promise.all(permits.map((p) => p.release({})))
      // Takes and releases together: one take for the batch, one call storing the 50 releases (and
      // one topping up or returning the lease).
      assert.ok(calls <= 4, `${calls} script calls`)
      await limiter.close() // gives the lease back
      assert.equal(Number(await redis.zcard(`${keyPrefix}{app-test:loc8}:b`)), 50)
    } finally {
      await limiter.close()
      await cleanup(redis, keyPrefix)
    }
  })
})
