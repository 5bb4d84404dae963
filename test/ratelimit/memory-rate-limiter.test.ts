import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { Agent, request } from 'undici'
import { MemoryRateLimiter } from '../../src/ratelimit/memory-rate-limiter.js'
import { createRateLimiter } from '../../src/ratelimit/index.js'
import type { RateLimiter } from '../../src/ratelimit/rate-limiter.js'
import type { RateLimitSettings } from '../../src/config.js'
import { GhlError, RateLimitedError } from '../../src/errors.js'
import { ManualClock } from '../../src/clock.js'
import { maxInWindow, startLimitedServer } from './fixtures/limited-server.js'
import { lateAnswerKeepsItsWindow } from './fixtures/scenarios.js'

const settings = (o: Partial<RateLimitSettings> = {}): RateLimitSettings => ({
  enabled: true, burstMax: 10, burstWindowMs: 500, dailyMax: 1_000_000, dailyWindowMs: 86_400_000, maxQueue: 1000, ...o,
})

/** A call that was answered at once: acquire, then release with an answer's headers (none by default). */
async function take(limiter: RateLimiter, resource: string, options?: { deadline?: number }, headers: Record<string, string> = {}): Promise<void> {
  const permit = await limiter.acquire(resource, options)
  await permit.release(headers)
}

/** Sends `count` requests at once through the limiter to the server; returns how many got 429. */
async function sendAll(limiter: RateLimiter, url: string, resource: string, count: number, dispatcher: Agent): Promise<number> {
  let limited = 0
  await Promise.all(Array.from({ length: count }, async () => {
    const permit = await limiter.acquire(resource, { deadline: Date.now() + 10_000 })
    const res = await request(`${url}/r/${resource}`, { dispatcher })
    await res.body.dump()
    await permit.release(res.headers)
    if (res.statusCode === 429) limited++
  }))
  return limited
}

describe('MemoryRateLimiter against a server enforcing the same limit', () => {
  test('35 calls over a 10 per 500 ms budget all wait their turn: zero 429s, full use of the window', async () => {
    const server = await startLimitedServer({ max: 10, windowMs: 500 })
    const dispatcher = new Agent()
    const limiter = new MemoryRateLimiter(settings(), { marginMs: 10 })
    try {
      const limited = await sendAll(limiter, server.url, 'loc1', 35, dispatcher)
      assert.equal(limited, 0)
      assert.equal(server.rejected, 0)
      const times = server.accepted.get('loc1')!
      assert.equal(times.length, 35)
      // Never more than the budget in any window, and the whole budget used in one (counts: how fast
      // the rounds follow each other is measured by `npm run bench`, bench/ratelimit.bench.ts).
      assert.equal(maxInWindow(times, 500), 10)
    } finally {
      await limiter.close()
      await dispatcher.close()
      await server.close()
    }
  })

  test('release(): when the server reports a foreign client spent part of the window, we slow down (zero 429s)', async () => {
    const server = await startLimitedServer({ max: 10, windowMs: 500 })
    const dispatcher = new Agent()
    const limiter = new MemoryRateLimiter(settings(), { marginMs: 10 })
    try {
      // First answer teaches the limiter; the foreign client spends 6 of 10 right after it.
      assert.equal(await sendAll(limiter, server.url, 'loc2', 1, dispatcher), 0)
      server.foreign('loc2', 6)
      // One answer reports remaining 2 (10 − our 2 − their 6); then a burst of 20 is held back.
      assert.equal(await sendAll(limiter, server.url, 'loc2', 1, dispatcher), 0)
      const limited = await sendAll(limiter, server.url, 'loc2', 20, dispatcher)
      assert.equal(limited, 0, 'no 429: the foreign usage was learned from X-RateLimit-Remaining')
      assert.equal(server.rejected, 0)
    } finally {
      await limiter.close()
      await dispatcher.close()
      await server.close()
    }
  })

  test('release(): without that learning the same run hits 429 (the test above can fail)', async () => {
    const server = await startLimitedServer({ max: 10, windowMs: 500 })
    const dispatcher = new Agent()
    const limiter = new MemoryRateLimiter(settings(), { marginMs: 10 })
    const deaf: RateLimiter = {
      acquire: async (r, o) => {
        const permit = await limiter.acquire(r, o)
        return { resource: r, sentAt: permit.sentAt, release: () => permit.release({}) }
      },
      penalize: () => {},
      close: () => limiter.close(),
    }
    try {
      assert.equal(await sendAll(deaf, server.url, 'loc3', 1, dispatcher), 0)
      server.foreign('loc3', 6)
      assert.equal(await sendAll(deaf, server.url, 'loc3', 1, dispatcher), 0)
      const limited = await sendAll(deaf, server.url, 'loc3', 20, dispatcher)
      assert.ok(limited > 0)
    } finally {
      await limiter.close()
      await dispatcher.close()
      await server.close()
    }
  })
})

describe('MemoryRateLimiter: no phantom usage, no leak', () => {
  test('an answer released after an earlier one left the window adds no foreign usage: the burst keeps its whole window', async () => {
    const clock = new ManualClock()
    const limiter = new MemoryRateLimiter(settings({ burstMax: 10, burstWindowMs: 1000 }), { clock, marginMs: 0 })
    // A at 0, answered at once. B sent at 900: HighLevel's window then holds A and B (8 left).
    await take(limiter, 'a', {}, { 'x-ratelimit-remaining': '9' })
    clock.advance(900)
    const b = await limiter.acquire('a')
    // B's answer comes back at 1100, after A left our window: "8 left" is what HighLevel saw at 900.
    clock.advance(200)
    b.release({ 'x-ratelimit-remaining': '8' })
    for (let i = 0; i < 9; i++) await limiter.acquire('a', { deadline: clock.now() })
    await assert.rejects(limiter.acquire('a', { deadline: clock.now() }), RateLimitedError)
    await limiter.close()
  })

  test('answers released in any order, each with HighLevel\'s count at its arrival, add no foreign usage', async () => {
    const clock = new ManualClock()
    const limiter = new MemoryRateLimiter(settings({ burstMax: 10, burstWindowMs: 1000 }), { clock, marginMs: 0 })
    const permits = await Promise.all(Array.from({ length: 5 }, () => limiter.acquire('a')))
    // HighLevel received them last first: the first sent saw all five.
    permits.forEach((p, i) => p.release({ 'x-ratelimit-remaining': String(5 + i) }))
    for (let i = 0; i < 5; i++) await limiter.acquire('a', { deadline: clock.now() })
    await assert.rejects(limiter.acquire('a', { deadline: clock.now() }), RateLimitedError)
    await limiter.close()
  })

  test('against a server: a late answer keeps the burst its whole window (zero 429s, all 10 slots used)', async () => {
    const server = await startLimitedServer({ max: 10, windowMs: 300 })
    const limiter = new MemoryRateLimiter(settings({ burstWindowMs: 300 }), { marginMs: 0 })
    try {
      await lateAnswerKeepsItsWindow(limiter, server, 'loc9', 300)
    } finally {
      await limiter.close()
      await server.close()
    }
  })

  test('a foreign client is still learned from a late answer (the rule above adds only what is not ours)', async () => {
    const clock = new ManualClock()
    const limiter = new MemoryRateLimiter(settings({ burstMax: 10, burstWindowMs: 1000 }), { clock, marginMs: 0 })
    await take(limiter, 'a', {}, { 'x-ratelimit-remaining': '9' })
    const b = await limiter.acquire('a')
    clock.advance(1100) // A has left our window
    b.release({ 'x-ratelimit-remaining': '4' }) // HighLevel saw A, B and 4 requests of another client
    for (let i = 0; i < 5; i++) await limiter.acquire('a', { deadline: clock.now() })
    await assert.rejects(limiter.acquire('a', { deadline: clock.now() }), RateLimitedError)
    await limiter.close()
  })

  test('HighLevel\'s X-RateLimit-Max, when sent, is the budget its remaining is read against', async () => {
    const clock = new ManualClock()
    const limiter = new MemoryRateLimiter(settings({ burstMax: 10, burstWindowMs: 1000 }), { clock, marginMs: 0 })
    await take(limiter, 'a')
    // HighLevel (max 8) saw A, this one and 3 foreign requests: 3 left. Read against our 10 that would be 5 foreign.
    await take(limiter, 'a', {}, { 'x-ratelimit-remaining': '3', 'x-ratelimit-max': '8' })
    for (let i = 0; i < 5; i++) await limiter.acquire('a', { deadline: clock.now() })
    await assert.rejects(limiter.acquire('a', { deadline: clock.now() }), RateLimitedError)
    await limiter.close()
    // A budget set far above HighLevel's records only what HighLevel reports (no array of ~1e9 entries).
    const big = new MemoryRateLimiter(settings({ burstMax: 1_000_000_000 }), { clock, marginMs: 0 })
    await take(big, 'a')
    await take(big, 'a', {}, { 'x-ratelimit-remaining': '95', 'x-ratelimit-max': '100' })
    await big.acquire('a', { deadline: clock.now() })
    await big.close()
  })

  test('a permit released twice gives its slot back once; an aborted waiter never holds one', async () => {
    const clock = new ManualClock()
    const limiter = new MemoryRateLimiter(settings({ burstMax: 2, burstWindowMs: 1000 }), { clock, marginMs: 0 })
    const p = await limiter.acquire('a')
    p.release()
    p.release()
    const ac = new AbortController()
    await limiter.acquire('a')
    const waiting = limiter.acquire('a', { signal: ac.signal })
    ac.abort()
    await assert.rejects(waiting, (e: unknown) => e instanceof GhlError && e.code === 'GHL_ABORTED')
    clock.advance(1001)
    // p's slot left the window; the second is in flight: exactly one is free.
    await limiter.acquire('a', { deadline: clock.now() })
    await assert.rejects(limiter.acquire('a', { deadline: clock.now() }), RateLimitedError)
    await limiter.close()
  })
})

describe('MemoryRateLimiter rules', () => {
  test('a full queue fails fast with RateLimitedError carrying retryAfterMs', async () => {
    const clock = new ManualClock()
    const limiter = new MemoryRateLimiter(settings({ burstMax: 2, maxQueue: 2 }), { clock, marginMs: 0 })
    await take(limiter, 'a')
    await take(limiter, 'a')
    const queued = [limiter.acquire('a'), limiter.acquire('a')]
    const err = await limiter.acquire('a').catch((e: unknown) => e)
    assert.ok(err instanceof RateLimitedError)
    assert.equal(err.code, 'GHL_RATE_LIMITED')
    assert.equal(err.status, 429)
    assert.equal(err.retryAfterMs, 1001) // (windows are 1 ms longer: whole-ms clocks) two callers ahead of it take the next window: it would go in the one after
    await limiter.close()
    for (const q of queued) await assert.rejects(q, (e: unknown) => e instanceof GhlError && e.code === 'GHL_ABORTED')
  })

  test('maxQueue 0: over budget fails at once', async () => {
    const limiter = new MemoryRateLimiter(settings({ burstMax: 1, maxQueue: 0 }), { clock: new ManualClock() })
    await take(limiter, 'a')
    await assert.rejects(limiter.acquire('a'), RateLimitedError)
    await limiter.close()
  })

  test('a wait that would pass the deadline fails at once, not at the deadline', async () => {
    const clock = new ManualClock()
    const limiter = new MemoryRateLimiter(settings({ burstMax: 1 }), { clock, marginMs: 0 })
    await take(limiter, 'a')
    const err = await limiter.acquire('a', { deadline: clock.now() + 100 }).catch((e: unknown) => e)
    assert.ok(err instanceof RateLimitedError)
    assert.equal(err.retryAfterMs, 501) // the window, +1 ms for whole-ms clocks
    // the clock never moved: it failed without waiting. A deadline past the wait is accepted:
    clock.advance(501)
    await limiter.acquire('a', { deadline: clock.now() + 100 })
    await limiter.close()
  })

  test('queued callers go in FIFO order and each when a slot frees', async () => {
    const limiter = new MemoryRateLimiter(settings({ burstMax: 2, burstWindowMs: 60 }), { marginMs: 0 })
    const order: number[] = []
    await Promise.all(Array.from({ length: 6 }, (_, i) => limiter.acquire('a').then((p) => { order.push(i); p.release() })))
    assert.deepEqual(order, [0, 1, 2, 3, 4, 5])
    await limiter.close()
  })

  test('queue position counts toward the deadline: the 3rd round fails fast, the 2nd waits', async () => {
    const limiter = new MemoryRateLimiter(settings({ burstMax: 2, burstWindowMs: 100 }), { marginMs: 0 })
    await take(limiter, 'a')
    await take(limiter, 'a')
    const t0 = Date.now()
    const second = [limiter.acquire('a', { deadline: t0 + 150 }), limiter.acquire('a', { deadline: t0 + 150 })]
    const third = limiter.acquire('a', { deadline: t0 + 150 })
    await assert.rejects(third, RateLimitedError)
    await Promise.all(second)
    await limiter.close()
  })

  test('an aborted waiter leaves the queue with GHL_ABORTED; the next one still gets its slot', async () => {
    const limiter = new MemoryRateLimiter(settings({ burstMax: 1, burstWindowMs: 50 }), { marginMs: 0 })
    await take(limiter, 'a')
    const ac = new AbortController()
    const first = limiter.acquire('a', { signal: ac.signal })
    const second = limiter.acquire('a')
    ac.abort()
    await assert.rejects(first, (e: unknown) => e instanceof GhlError && e.code === 'GHL_ABORTED')
    await second
    await limiter.close()
  })

  test('an already aborted signal rejects without taking a slot', async () => {
    const clock = new ManualClock()
    const limiter = new MemoryRateLimiter(settings({ burstMax: 1 }), { clock })
    await assert.rejects(limiter.acquire('a', { signal: AbortSignal.abort() }), (e: unknown) => e instanceof GhlError && e.code === 'GHL_ABORTED')
    await limiter.acquire('a', { deadline: clock.now() }) // the slot is still free
    await limiter.close()
  })

  test('resources have separate budgets', async () => {
    const clock = new ManualClock()
    const limiter = new MemoryRateLimiter(settings({ burstMax: 1 }), { clock })
    await take(limiter, 'a')
    await take(limiter, 'b', { deadline: clock.now() })
    await assert.rejects(limiter.acquire('a', { deadline: clock.now() }), RateLimitedError)
    await limiter.close()
  })

  test('the daily window: dailyMax calls, then a wait until the day window ends', async () => {
    const clock = new ManualClock()
    const limiter = new MemoryRateLimiter(settings({ burstMax: 100, dailyMax: 3, dailyWindowMs: 10_000 }), { clock })
    for (let i = 0; i < 3; i++) await take(limiter, 'a')
    const err = await limiter.acquire('a', { deadline: clock.now() + 1000 }).catch((e: unknown) => e)
    assert.ok(err instanceof RateLimitedError)
    assert.equal(err.retryAfterMs, 10_000)
    clock.advance(10_000)
    await take(limiter, 'a', { deadline: clock.now() })
    await limiter.close()
  })

  test('release(): X-RateLimit-Remaining 0 blocks the rest of the window; daily remaining 0 blocks the day', async () => {
    const clock = new ManualClock()
    const limiter = new MemoryRateLimiter(settings({ burstMax: 10, dailyMax: 100, dailyWindowMs: 10_000 }), { clock, marginMs: 0 })
    await take(limiter, 'a')
    await take(limiter, 'a', {}, { 'x-ratelimit-remaining': '0' })
    const err = await limiter.acquire('a', { deadline: clock.now() + 100 }).catch((e: unknown) => e)
    assert.ok(err instanceof RateLimitedError)
    assert.equal(err.retryAfterMs, 501)
    clock.advance(501)
    await take(limiter, 'b', {}, { 'x-ratelimit-daily-remaining': '0', 'x-ratelimit-remaining': '99' })
    const daily = await limiter.acquire('b', { deadline: clock.now() + 1000 }).catch((e: unknown) => e)
    assert.ok(daily instanceof RateLimitedError)
    assert.equal(daily.retryAfterMs, 10_000)
    await limiter.close()
  })

  test('release(): a higher remaining than ours, or malformed headers, change nothing', async () => {
    const clock = new ManualClock()
    const limiter = new MemoryRateLimiter(settings({ burstMax: 4 }), { clock })
    await take(limiter, 'a')
    await take(limiter, 'a', {}, { 'x-ratelimit-remaining': '9' })
    await take(limiter, 'a', {}, { 'x-ratelimit-remaining': 'lots', 'x-ratelimit-daily-remaining': '-3' })
    await take(limiter, 'a', { deadline: clock.now() })
    await assert.rejects(limiter.acquire('a', { deadline: clock.now() }), RateLimitedError)
    await limiter.close()
  })

  test('penalize(): blocks the resource for retryAfterMs, or a whole window when 0', async () => {
    const clock = new ManualClock()
    const limiter = new MemoryRateLimiter(settings(), { clock })
    limiter.penalize('a', 300)
    const err = await limiter.acquire('a', { deadline: clock.now() + 100 }).catch((e: unknown) => e)
    assert.ok(err instanceof RateLimitedError)
    assert.equal(err.retryAfterMs, 300)
    clock.advance(300)
    await take(limiter, 'a', { deadline: clock.now() })
    limiter.penalize('b', 0)
    const whole = await limiter.acquire('b', { deadline: clock.now() }).catch((e: unknown) => e)
    assert.ok(whole instanceof RateLimitedError)
    assert.equal(whole.retryAfterMs, 500)
    await limiter.close()
  })

  test('createRateLimiter without redis gives the in-memory limiter', async () => {
    const limiter = createRateLimiter(settings(), { clientId: 'app-x' })
    assert.ok(limiter instanceof MemoryRateLimiter)
    await limiter.close()
    await assert.rejects(limiter.acquire('a'), GhlError)
  })
})
