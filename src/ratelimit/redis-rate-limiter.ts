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
 * One round trip serves many calls: a take asks for a slot for every caller waiting in this process
 * (callers that arrive while it runs share the next one), and carries every release not stored yet —
 * the answers of earlier calls, with their headers. A release waits for the next take, or at most a
 * few ms (`linger`: 1/500 of the burst window, 1–20 ms) when no take comes. Waiting only delays the
 * moment an answered slot starts its window (so it leaves the window later: never an overspend).
 * A take also leases a few slots ahead when the budget has room (at most 1/8 of the burst, 64, and a
 * quarter of what stays free, so other processes always find most of it): a caller with nobody
 * queued ahead takes one with no round trip; the lease is topped up in the background when half is
 * gone, and given back after 50 ms unused. Leased slots are taken in Redis (in flight), so no process
 * can ever spend them twice. Under load a call costs a small fraction of a round trip (`npm run
 * bench` prints the figure); a lone call costs its take and, within `linger`, its release.
 *
 * Keys (`{…}` is a Redis Cluster hash tag, so the keys share a slot):
 * - `<prefix>{<clientId>:<resource>}:b` — sorted set, the burst window as a sliding-window log: one
 *   member per request, scored "in flight" from its take until its release, then by the release's
 *   time (ms, from Redis `TIME`, so all processes share one clock) — see MemoryRateLimiter for why
 *   the answer's time: it is never earlier than HighLevel's count of the request.
 * - `<prefix>{…}:n` — the additions counter (slots taken and foreign usage recorded, ever): a permit
 *   carries our count at its take minus this counter, so its release can bound how many of the app's
 *   requests HighLevel could have counted when it arrived (see MemoryRateLimiter.settle). When the
 *   key is gone (idle longer than the window and the in-flight expiry, or evicted) it starts again at
 *   1000 × the current ms — above any earlier value unless a resource ever took a million slots a
 *   second — so a permit from before can only under-read foreign usage, never invent it.
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
import { Permit, QueuedRateLimiter, type Taken } from './queued-rate-limiter.js'
import type { RateLimitHeaders } from './rate-limiter.js'

/**
 * KEYS: burst, daily, penalty, counter. ARGV: burstMax, window, dailyMax, dailyWindow, in-flight TTL,
 * in-flight poll ms, slots wanted, member prefix, first member number, foreign member prefix, number
 * of releases, slots to lease beyond those wanted, then 5 values per release: member, base, HighLevel's
 * count (max − remaining; -1 = unknown), daily remaining (-1), sent (1/0). → {slots granted, wait ms when fewer than wanted,
 * base of the granted permits}
 *
 * The lease is granted only when every wanted slot was, and only up to a quarter of the slots still
 * free after them.
 *
 * Releases first: an answered slot is scored by now (its window starts), foreign usage is recorded
 * (what HighLevel counted beyond the permit's bound), a slot never sent is removed with its daily
 * count. Then the take: up to `wanted` in-flight members, scored `now + TTL` (they do not expire
 * while their calls run; the TTL only frees the slots of a process that died mid-call). When the
 * blocking slot is in flight, its answer can come any moment (in another process, which cannot wake
 * our queue): the head asks again after 1/20 of the window — a poll of at most 20 per window, and
 * only while slots are in flight.
 */
const SYNC = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local max, win, dmax, dwin = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local ttl, poll, want, lease = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[12])
local added = tonumber(redis.call('GET', KEYS[4]) or '-1')
if added < 0 then added = now * 1000 end
local draw = redis.call('GET', KEYS[2])
local daily = tonumber(draw or '0')
local d = daily
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - win)
local used = redis.call('ZCARD', KEYS[1])
local foreign = 0
for i = 0, tonumber(ARGV[11]) - 1 do
  local o = 13 + i * 5
  local m = ARGV[o]
  local held = redis.call('ZREM', KEYS[1], m) == 1
  if held then used = used - 1 end
  if ARGV[o + 4] == '1' then
    if held then
      redis.call('ZADD', KEYS[1], now, m)
      used = used + 1
    end
    local theirs = tonumber(ARGV[o + 2])
    if theirs >= 0 then
      -- Never past a full window (a header inconsistent with burstMax must not add millions).
      local extra = math.min(max - used, theirs - (tonumber(ARGV[o + 1]) + added))
      for j = 1, extra do
        foreign = foreign + 1
        redis.call('ZADD', KEYS[1], now, ARGV[10] .. foreign)
      end
      if extra > 0 then
        added = added + extra
        used = used + extra
      end
    end
    local dr = tonumber(ARGV[o + 3])
    if dr >= 0 and dmax - dr > d then d = math.min(dmax, dmax - dr) end
  elseif held and d > 0 then
    d = d - 1
  end
end
local granted, wait = 0, 0
if want + lease > 0 then
  local pen = tonumber(redis.call('GET', KEYS[3]) or '0')
  if pen > now then
    wait = pen - now
  else
    granted = math.max(0, math.min(want, max - used, dmax - d))
    if granted == want and lease > 0 then
      -- The lease: at most a quarter of what stays free, so other processes always find most of it.
      granted = granted + math.max(0, math.min(lease, math.floor((max - used - granted) / 4), dmax - d - granted))
    end
    if granted > 0 then
      local seq = tonumber(ARGV[9])
      for i = 0, granted - 1 do redis.call('ZADD', KEYS[1], now + ttl, ARGV[8] .. (seq + i)) end
      used = used + granted
      d = d + granted
      added = added + granted
    end
    if granted < want and want > 0 then
      if used >= max then
        local e = redis.call('ZRANGE', KEYS[1], used - max, used - max, 'WITHSCORES')
        local score = tonumber(e[2])
        if score > now then wait = poll else wait = math.max(1, score + win - now) end
      else
        local pt = draw and redis.call('PTTL', KEYS[2]) or -1
        if pt < 0 then pt = dwin end
        wait = math.max(1, pt)
      end
    end
  end
end
if d ~= daily then
  if draw then
    redis.call('INCRBY', KEYS[2], d - daily)
    if redis.call('PTTL', KEYS[2]) < 0 then redis.call('PEXPIRE', KEYS[2], dwin) end
  else
    redis.call('SET', KEYS[2], d, 'PX', dwin)
  end
end
redis.call('PEXPIRE', KEYS[1], win + ttl)
redis.call('SET', KEYS[4], added, 'PX', win + ttl)
return {granted, wait, used - added}
`

/** KEYS: penalty. ARGV: ms. Extends "blocked until", never shortens it. */
const PENALIZE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ms = tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur < now + ms then redis.call('SET', KEYS[1], now + ms, 'PX', ms) end
return 0
`

declare module 'ioredis' {
  interface RedisCommander<Context> {
    ghlRateSync(...args: Array<string | number>): Result<[number, number, number], Context>
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

/** Releases not stored yet, and the promise their callers hold. */
interface Batch {
  args: Array<string | number>
  count: number
  sent: boolean
  done: Promise<void>
  resolve: () => void
  reject: (err: Error) => void
}

/** A leased slot: taken in Redis (in flight), not handed to a caller yet. */
interface Lease {
  member: string
  base: number
}

interface LocalState {
  keys: [string, string, string, string]
  batch: Batch | undefined
  timer: NodeJS.Timeout | undefined
  leases: Lease[]
  /** The take that tops up the lease, while it runs. */
  leasing: Promise<unknown> | undefined
  /** A lease was handed out since the idle check last ran. */
  leaseUsed: boolean
  /** Slots of this process given back unsent, ever (returned leases, permits nobody waited for). */
  unsent: number
  idleTimer: NodeJS.Timeout | undefined
}

/** How long an in-flight slot survives a process that died mid-call. */
const INFLIGHT_TTL_MS = 60_000
/** Most slots leased ahead per resource (and never more than 1/8 of the burst budget). */
const MAX_LEASE = 64
/** A lease unused this long is given back. */
const LEASE_IDLE_MS = 50

/**
 * {@link RateLimiter} whose budget lives in Redis, shared by every process with the same key prefix.
 * Callers over budget wait in this process's FIFO queue; only the head asks Redis again, after the
 * wait Redis returned plus up to 5% jitter (no busy polling). One script call takes the slots of
 * every waiting caller (and a lease ahead) and stores the releases pending (see the file comment).
 * The caller owns the Redis connection.
 *
 * @example
 * const limiter = new RedisRateLimiter(config.rateLimit, new Redis(config.redisUrl), { clientId: config.clientId })
 */
export class RedisRateLimiter extends QueuedRateLimiter {
  protected readonly synchronous = false
  #redis: Redis
  #prefix: string
  #window: number
  #linger: number
  #leaseSize: number
  #state = new Map<string, LocalState>()
  #member = `${randomBytes(6).toString('hex')}:`
  #seq = 0
  #calls = 0

  constructor(settings: RateLimitSettings, redis: Redis, options: RedisRateLimiterOptions) {
    super(settings, options.clock)
    this.#redis = redis
    this.#prefix = `${options.keyPrefix ?? 'ghl:rl:'}{${options.clientId}:`
    // +1: times are whole ms rounded down, so an answer at x.9 ms is recorded as x; without it our
    // entry could leave the window up to 1 ms before HighLevel's.
    this.#window = settings.burstWindowMs + (options.marginMs ?? defaultMargin(settings)) + 1
    this.#linger = Math.min(20, Math.max(1, Math.floor(settings.burstWindowMs / 500)))
    this.#leaseSize = Math.min(MAX_LEASE, Math.floor(settings.burstMax / 8))
    // defineCommand is idempotent per connection; the scripts are sent with EVALSHA after the first use.
    redis.defineCommand('ghlRateSync', { numberOfKeys: 4, lua: SYNC })
    redis.defineCommand('ghlRatePenalize', { numberOfKeys: 1, lua: PENALIZE })
  }

  #local(resource: string): LocalState {
    let s = this.#state.get(resource)
    if (s === undefined) {
      const base = `${this.#prefix}${resource}}`
      s = { keys: [`${base}:b`, `${base}:d`, `${base}:p`, `${base}:n`], batch: undefined, timer: undefined, leases: [], leasing: undefined, leaseUsed: false, unsent: 0, idleTimer: undefined }
      this.#state.set(resource, s)
    }
    return s
  }

  protected override jitter(waitMs: number): number {
    return Math.random() * Math.min(20, waitMs * 0.05)
  }

  /** One script call: stores the pending releases of `resource` and takes up to `want` slots. */
  async #sync(resource: string, l: LocalState, want: number, lease = 0): Promise<Taken> {
    const batch = l.batch
    l.batch = undefined
    if (l.timer) clearTimeout(l.timer)
    l.timer = undefined
    const seq = this.#seq
    this.#seq += want + lease
    const s = this.settings
    try {
      const [granted, wait, base] = await unavailable(this.#redis.ghlRateSync(
        l.keys[0], l.keys[1], l.keys[2], l.keys[3], s.burstMax, this.#window, s.dailyMax, s.dailyWindowMs, INFLIGHT_TTL_MS,
        inflightPoll(s), want, this.#member, seq, `${this.#member}f${++this.#calls}:`, batch?.count ?? 0, lease, ...(batch?.args ?? [])))
      batch?.resolve()
      const permits: Permit[] = []
      const now = this.clock.now()
      const given = Math.min(granted, want)
      // The bound counts every slot in Redis at the take or added since, sent or not; a slot of ours
      // that was never sent is taken off it at release (see settle): those given back after now, and
      // the leases still held then. (Those given back before now may or may not have been stored
      // before the take: left in, the bound stays an upper bound.)
      const b = base + l.unsent
      for (let i = 0; i < given; i++) permits.push(new Permit(this, resource, now, b, `${this.#member}${seq + i}`))
      for (let i = given; i < granted; i++) l.leases.push({ member: `${this.#member}${seq + i}`, base: b })
      if (granted > given) {
        this.#watchLease(resource, l)
        if (want === 0) this.wake(resource) // callers may have queued while the top-up ran
      }
      return { permits, waitMs: wait }
    } catch (err) {
      batch?.reject(err as Error)
      throw err
    } finally {
      // An answer of this process may have freed what the queue waits for.
      if (batch?.sent && want === 0) this.wake(resource)
    }
  }

  protected take(resource: string, n: number): Promise<Taken> {
    const l = this.#local(resource)
    if (l.leases.length > 0) {
      // Leased slots first (a top-up may have landed while callers queued).
      const now = this.clock.now()
      const permits = l.leases.splice(Math.max(0, l.leases.length - n)).map((x) => new Permit(this, resource, now, x.base, x.member))
      l.leaseUsed = true
      return Promise.resolve({ permits, waitMs: 0 })
    }
    return this.#sync(resource, l, n, this.#leaseSize)
  }

  /**
   * A caller with no queue ahead takes a leased slot, without a round trip; the lease is topped up
   * in the background when half of it is gone. Its permit's base is the one of the take that leased
   * it: the count then plus every slot added since still bounds what HighLevel can have counted.
   */
  protected override takeHeld(resource: string): Permit | undefined {
    const l = this.#state.get(resource)
    if (l === undefined) return undefined
    const lease = l.leases.pop()
    if (lease === undefined) return undefined
    l.leaseUsed = true
    if (l.leases.length <= this.#leaseSize / 2 && l.leasing === undefined && !this.closed) {
      l.leasing = this.#sync(resource, l, 0, this.#leaseSize - l.leases.length)
        .catch(() => {})
        .finally(() => (l.leasing = undefined))
    }
    return new Permit(this, resource, this.clock.now(), lease.base, lease.member)
  }

  /** Gives the lease back once no caller used it for {@link LEASE_IDLE_MS} (other processes may need it). */
  #watchLease(resource: string, l: LocalState): void {
    if (l.idleTimer !== undefined) return
    l.leaseUsed = false
    l.idleTimer = setTimeout(() => {
      l.idleTimer = undefined
      if (l.leases.length === 0) return
      if (l.leaseUsed && !this.closed) return this.#watchLease(resource, l)
      this.#returnLease(resource, l)
      this.#sync(resource, l, 0).catch(() => {})
    }, LEASE_IDLE_MS)
  }

  /** Queues the leased slots for release as never sent. */
  #returnLease(resource: string, l: LocalState): void {
    for (const lease of l.leases.splice(0)) void this.settle(new Permit(this, resource, 0, lease.base, lease.member), undefined, false)
  }

  /**
   * Queues the release for the next script call (see the file comment); the answer's headers are
   * read there, as {@link MemoryRateLimiter.settle} reads them, against the shared count: a permit's
   * bound covers every process's slots and every foreign entry recorded since its take, less this
   * process's slots that were never sent. Other processes' leases held at that moment stay in it (they
   * cannot be known here): a foreign client's usage may then be read up to their size too low — never
   * too high — and the next answers, or a 429's penalty, correct it.
   */
  settle(permit: Permit, headers: RateLimitHeaders | undefined, sent: boolean): Promise<void> {
    const l = this.#local(permit.resource)
    let b = l.batch
    if (b === undefined) {
      let resolve!: () => void
      let reject!: (err: Error) => void
      const done = new Promise<void>((res, rej) => {
        resolve = res
        reject = rej
      })
      // Callers that ignore the promise must not crash the process: the failure is theirs to read.
      done.catch(() => {})
      b = l.batch = { args: [], count: 0, sent: false, done, resolve, reject }
    }
    const { remaining, max, dailyRemaining } = sent && headers ? readRateLimitHeaders(headers) : NONE
    if (!sent) l.unsent++
    // Our slots that HighLevel cannot have seen (never sent) leave the bound; see #sync.
    const theirs = remaining === undefined ? -1 : Math.max(0, (max ?? this.settings.burstMax) - remaining)
    b.args.push(permit.member, permit.base - l.unsent - l.leases.length, theirs, dailyRemaining ?? -1, sent ? 1 : 0)
    b.count++
    if (sent) b.sent = true
    if (l.timer === undefined) {
      l.timer = setTimeout(() => {
        l.timer = undefined
        if (l.batch !== undefined) this.#sync(permit.resource, l, 0).catch(() => {})
      }, this.#linger)
    }
    return b.done
  }

  /** Blocks `resource` for every process for `retryAfterMs` (a whole burst window when not positive). */
  async penalize(resource: string, retryAfterMs: number): Promise<void> {
    const l = this.#local(resource)
    await unavailable(this.#redis.ghlRatePenalize(l.keys[2], Math.ceil(retryAfterMs > 0 ? retryAfterMs : this.settings.burstWindowMs)))
    this.wake(resource)
  }

  /** Rejects the waiters, then stores the releases still pending (so no slot stays in flight in Redis). */
  override async close(): Promise<void> {
    await super.close()
    // A top-up still running lands first, so that its lease is given back too.
    await Promise.all([...this.#state.values()].map((l) => l.leasing))
    const flushes: Array<Promise<unknown>> = []
    for (const [resource, l] of this.#state) {
      if (l.idleTimer) clearTimeout(l.idleTimer)
      l.idleTimer = undefined
      this.#returnLease(resource, l)
      if (l.batch !== undefined) flushes.push(this.#sync(resource, l, 0).catch(() => {}))
      else if (l.timer) clearTimeout(l.timer)
    }
    await Promise.all(flushes)
  }
}

const NONE = { remaining: undefined, max: undefined, dailyRemaining: undefined }

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
