/**
 * Real PostgreSQL and Redis for tests. On CI (CI=true) a service that cannot be reached is an error:
 * the run fails loudly. On a developer's machine without them, the tests that need them are skipped
 * with the reason (pass `skip: await postgresSkipReason()` to `test()`/`describe()`).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { Redis } from 'ioredis'

export const POSTGRES_URL = process.env.GHL_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
export const REDIS_URL = process.env.GHL_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
const ON_CI = process.env.CI === 'true' || process.env.CI === '1'

let pgProbe: Promise<string | false> | undefined
let redisProbe: Promise<string | false> | undefined

/** `false` when PostgreSQL answers; otherwise the reason to skip. Throws on CI. */
export function postgresSkipReason(): Promise<string | false> {
  pgProbe ??= (async () => {
    const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3000 })
    try {
      await client.connect()
      await client.query('select 1')
      return false as const
    } catch (err) {
      const reason = `PostgreSQL not reachable at ${POSTGRES_URL} (${(err as Error).message})`
      if (ON_CI) throw new Error(`CI requires PostgreSQL: ${reason}`)
      return reason
    } finally {
      await client.end().catch(() => {})
    }
  })()
  return pgProbe
}

/** `false` when Redis answers; otherwise the reason to skip. Throws on CI. */
export function redisSkipReason(): Promise<string | false> {
  redisProbe ??= (async () => {
    const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 3000, retryStrategy: () => null })
    try {
      await redis.connect()
      await redis.ping()
      return false as const
    } catch (err) {
      const reason = `Redis not reachable at ${REDIS_URL} (${(err as Error).message})`
      if (ON_CI) throw new Error(`CI requires Redis: ${reason}`)
      return reason
    } finally {
      redis.disconnect()
    }
  })()
  return redisProbe
}

/** A fresh, empty PostgreSQL database; `drop()` removes it. */
export async function createPostgresDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `ghl_t_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: POSTGRES_URL })
  await admin.connect()
  await admin.query(`create database ${name}`)
  await admin.end()
  const url = new URL(POSTGRES_URL)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: POSTGRES_URL })
      await c.connect()
      await c.query(`drop database if exists ${name} with (force)`)
      await c.end()
    },
  }
}

/** A fresh temporary folder; `remove()` deletes it. */
export function tempDir(prefix = 'ghl-test-'): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix))
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) }
}

export type DialectName = 'sqlite' | 'postgres'
export const DIALECTS: readonly DialectName[] = ['sqlite', 'postgres']

/** A fresh database of that dialect: a SQLite file in a temp folder, or a new PostgreSQL database. */
export async function freshDatabase(dialect: DialectName): Promise<{ url: string; cleanup: () => Promise<void> }> {
  if (dialect === 'sqlite') {
    const dir = tempDir()
    return { url: join(dir.path, 'vault.db'), cleanup: async () => dir.remove() }
  }
  const db = await createPostgresDatabase()
  return { url: db.url, cleanup: db.drop }
}

/** Skip reason for a dialect (`false` = run). */
export async function dialectSkipReason(dialect: DialectName): Promise<string | false> {
  return dialect === 'postgres' ? postgresSkipReason() : false
}

/** A random 32-byte key, base64: test keys are made at run time, never committed. */
export function testKey(): string {
  return randomBytes(32).toString('base64')
}
