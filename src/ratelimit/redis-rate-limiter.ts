/**
 * The shared limiter: one budget per (app, resource) in Redis, used by every process of the app.
 *
 * Why not `rate-limiter-flexible`: its RateLimiterRedis counts fixed windows (a burst of 2×max can
 * pass across a window edge, so HighLevel would answer 429), RateLimiterUnion consumes from each
 * limiter separately (a call refused by the daily limiter has already spent a burst point — not
 * atomic), it rejects with plain objects, and its queue works over one limiter only. Learning from
 * headers would also have to be bolted on. One Lua script that checks and consumes both windows in
 * a single atomic step is smaller than the glue, so we write it.
 *
 * Keys (`{…}` is a Redis Cluster hash tag, so the three keys share a slot):
 * - `<prefix>{<clientId>:<resource>}:b` — sorted set, the burst window as a sliding-window log: one
 *   member per request, scored "in flight" from acquire until its answer, then by the answer's time
 *   (ms, from Redis `TIME`, so all processes share one clock) — see MemoryRateLimiter for why the
 *   answer's time: it is never earlier than HighLevel's count of the request.
 * - `<prefix>{…}:d` — the daily count: a fixed window started by the first request, expiring with
 *   PEXPIRE after `dailyWindowMs` (not sliding: exactness does not matter for 200,000/day).
 * - `<prefix>{…}:p` — "blocked until" (epoch ms) after HighLevel answered 429.
 */
import { randomBytes } from 'node:crypto'
import type { Redis, Result } from 'ioredis'
import type { Clock } from '../clock.js'
import type { RateLimitSettings } from '../config.js'
import { GhlError } from '../errors.js'
import { readRateLimitHeaders } from './headers.js'
import { defaultMargin, inflightPoll } from './memory-rate-limiter.js'
import { QueuedRateLimiter } from './queued-rate-limiter.js'

const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

/**
 * KEYS: burst, daily, penalty. ARGV: burstMax, window, dailyMax, dailyWindow, in-flight member,
 * in-flight TTL, in-flight poll ms. → {waitMs, burstUsed, dailyUsed}
 *
 * An in-flight member is scored `now + TTL` (it does not expire while its call runs; the TTL only
 * frees the slots of a process that died mid-call). When the blocking slot is in flight, its answer
 * can come any moment (in another process, which cannot wake our queue): the head asks again after
 * 1/20 of the window (ARGV[7]) — a poll of at most 20 per window, and only while slots are in flight.
 */
const ACQUIRE = `${NOW}
local max, win, dmax, dwin = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local pen = tonumber(redis.call('GET', KEYS[3]) or '0')
if pen > now then return {pen - now, -1, -1} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - win)
local used = redis.call('ZCARD', KEYS[1])
if used >= max then
  local e = redis.call('ZRANGE', KEYS[1], used - max, used - max, 'WITHSCORES')
  local score = tonumber(e[2])
  if score > now then return {tonumber(ARGV[7]), used, -1} end
  return {math.max(1, score + win - now), used, -1}
end
local daily = tonumber(redis.call('GET', KEYS[2]) or '0')
if daily >= dmax then
  local ttl = redis.call('PTTL', KEYS[2])
  if ttl < 0 then redis.call('PEXPIRE', KEYS[2], dwin); ttl = dwin end
  return {math.max(1, ttl), used, daily}
end
local ttl = tonumber(ARGV[6])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[5])
redis.call('PEXPIRE', KEYS[1], win + ttl)
daily = redis.call('INCR', KEYS[2])
if daily == 1 then redis.call('PEXPIRE', KEYS[2], dwin) end
return {0, used + 1, daily}
`

/**
 * KEYS: burst, daily. ARGV: burstMax, window, dailyMax, dailyWindow, remaining (-1 = unknown),
 * dailyRemaining (-1), our other requests in flight, member prefix, answered in-flight member ('' =
 * none). The answered call's slot now expires one window after its answer; then foreign usage
 * reported by the headers is recorded. → entries added for foreign usage
 */
const OBSERVE = `${NOW}
local max, win, dmax, dwin = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local r, dr, others = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
if ARGV[9] ~= '' then
  if redis.call('ZREM', KEYS[1], ARGV[9]) == 1 then redis.call('ZADD', KEYS[1], now, ARGV[9]) end
end
local added = 0
if r >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - win)
  local ours = redis.call('ZCARD', KEYS[1])
  local theirs = max - r
  if theirs > ours then
    for i = ours + 1, math.min(max, theirs + others) do
      redis.call('ZADD', KEYS[1], now, ARGV[8] .. i)
      added = added + 1
    end
  end
end
if dr >= 0 then
  local theirs = dmax - dr
  local cur = tonumber(redis.call('GET', KEYS[2]) or '0')
  if theirs > cur then
    redis.call('INCRBY', KEYS[2], math.min(dmax, theirs + others) - cur)
    if redis.call('PTTL', KEYS[2]) < 0 then redis.call('PEXPIRE', KEYS[2], dwin) end
  end
end
return added
`

/** KEYS: penalty. ARGV: ms. Extends "blocked until", never shortens it. */
const PENALIZE = `${NOW}
local ms = tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur < now + ms then redis.call('SET', KEYS[1], now + ms, 'PX', ms) end
return 0
`

declare module 'ioredis' {
  interface RedisCommander<Context> {
    ghlRateAcquire(b: string, d: string, p: string, max: number, win: number, dmax: number, dwin: number, member: string, inflightTtl: number, inflightPollMs: number): Result<[number, number, number], Context>
    ghlRateObserve(b: string, d: string, max: number, win: number, dmax: number, dwin: number, r: number, dr: number, others: number, prefix: string, answered: string): Result<number, Context>
    ghlRatePenalize(p: string, ms: number): Result<number, Context>
  }
}

/** Options of {@link RedisRateLimiter}. */
export interface RedisRateLimiterOptions {
  clientId: string
  clock?: Clock
  /** Default `ghl:rl:`. Processes sharing a budget must use the same prefix. */
  keyPrefix?: string
  /** See {@link RateLimiterOptions.marginMs}. */
  marginMs?: number
}

interface LocalState {
  keys: [string, string, string]
  /** Members of this process's calls in flight (which one an answer releases does not matter). */
  inflight: string[]
}

/** How long an in-flight slot survives a process that died mid-call. */
const INFLIGHT_TTL_MS = 60_000

/**
 * {@link RateLimiter} whose budget lives in Redis, shared by every process with the same key prefix.
 * Callers over budget wait in this process's FIFO queue; only the head asks Redis again, after the
 * wait Redis returned plus up to 5% jitter (no busy polling). Two Redis calls per HighLevel call
 * (acquire, observe). The caller owns the Redis connection.
 *
 * @example
 * const limiter = new RedisRateLimiter(config.rateLimit, new Redis(config.redisUrl), { clientId: config.clientId })
 */
export class RedisRateLimiter extends QueuedRateLimiter {
  #redis: Redis
  #prefix: string
  #window: number
  #state = new Map<string, LocalState>()
  #id = randomBytes(6).toString('hex')
  #seq = 0

  constructor(settings: RateLimitSettings, redis: Redis, options: RedisRateLimiterOptions) {
    super(settings, options.clock)
    this.#redis = redis
    this.#prefix = `${options.keyPrefix ?? 'ghl:rl:'}{${options.clientId}:`
    // +1: times are whole ms rounded down, so an answer at x.9 ms is recorded as x; without it our
    // entry could leave the window up to 1 ms before HighLevel's.
    this.#window = settings.burstWindowMs + (options.marginMs ?? defaultMargin(settings)) + 1
    // defineCommand is idempotent per connection; the scripts are sent with EVALSHA after the first use.
    redis.defineCommand('ghlRateAcquire', { numberOfKeys: 3, lua: ACQUIRE })
    redis.defineCommand('ghlRateObserve', { numberOfKeys: 2, lua: OBSERVE })
    redis.defineCommand('ghlRatePenalize', { numberOfKeys: 1, lua: PENALIZE })
  }

  #local(resource: string): LocalState {
    let s = this.#state.get(resource)
    if (s === undefined) {
      const base = `${this.#prefix}${resource}}`
      s = { keys: [`${base}:b`, `${base}:d`, `${base}:p`], inflight: [] }
      this.#state.set(resource, s)
    }
    return s
  }

  protected override jitter(waitMs: number): number {
    return Math.random() * Math.min(20, waitMs * 0.05)
  }

  protected async tryTake(resource: string): Promise<number> {
    const l = this.#local(resource)
    const s = this.settings
    const member = `${this.#id}:${++this.#seq}`
    const [wait] = await unavailable(this.#redis.ghlRateAcquire(l.keys[0], l.keys[1], l.keys[2], s.burstMax, this.#window, s.dailyMax, s.dailyWindowMs, member, INFLIGHT_TTL_MS, inflightPoll(s)))
    if (wait === 0) l.inflight.push(member)
    return wait
  }

  /**
   * As {@link MemoryRateLimiter.observe}, in the shared budget: one script call moves the answered
   * slot from "in flight" to "answered now" and records foreign usage. "Ours" is the shared count
   * (every process's answered and in-flight calls); the in-flight calls added on top of a detected
   * difference are this process's only (the others' are not known here).
   */
  async observe(resource: string, headers: Record<string, string | string[] | undefined>): Promise<void> {
    const l = this.#state.get(resource)
    if (l === undefined) return
    const others = Math.max(0, l.inflight.length - 1)
    const answered = l.inflight.shift() ?? ''
    const { remaining, dailyRemaining } = readRateLimitHeaders(headers)
    const s = this.settings
    await unavailable(this.#redis.ghlRateObserve(l.keys[0], l.keys[1], s.burstMax, this.#window, s.dailyMax, s.dailyWindowMs,
      remaining ?? -1, dailyRemaining ?? -1, others, `${this.#id}:o${++this.#seq}:`, answered))
    if (answered) this.wake(resource)
  }

  /** Blocks `resource` for every process for `retryAfterMs` (a whole burst window when not positive). */
  async penalize(resource: string, retryAfterMs: number): Promise<void> {
    const l = this.#local(resource)
    await unavailable(this.#redis.ghlRatePenalize(l.keys[2], Math.ceil(retryAfterMs > 0 ? retryAfterMs : this.settings.burstWindowMs)))
    this.wake(resource)
  }
}

/**
 * Redis failing (a command timed out, the connection is down, the offline queue refused it) is our
 * dependency failing: GhlError `GHL_REDIS_UNAVAILABLE` (503, Retry-After), never the driver's error —
 * which the client would report as `GHL_NETWORK`, "HighLevel could not be reached".
 */
async function unavailable<T>(command: Promise<T>): Promise<T> {
  try {
    return await command
  } catch (err) {
    throw new GhlError('GHL_REDIS_UNAVAILABLE', `The rate limiter's Redis did not answer: ${(err as Error).message.slice(0, 200)}`, { cause: err })
  }
}
