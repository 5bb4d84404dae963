/**
 * Helpers for the vault tests: raw access to the database behind the vault (to look at what is
 * really stored and to tamper with it), child processes on the same database, and sample inputs.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import pg from 'pg'
import type { DialectName } from '../helpers/services.js'
import type { InstallationInput } from '../../src/vault/types.js'

/** Plain SQL on the vault's database, outside the vault. Write `?` placeholders; they become `$n` on PostgreSQL. */
export interface RawDatabase {
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>
  /** Everything stored, as bytes: the SQLite file and its WAL; on PostgreSQL, every installations row as text. */
  dump(): Promise<Buffer>
  close(): Promise<void>
}

export async function openRaw(dialect: DialectName, url: string): Promise<RawDatabase> {
  if (dialect === 'sqlite') {
    const db = new Database(url)
    db.pragma('busy_timeout = 5000')
    return {
      async query<T>(text: string, params: unknown[] = []): Promise<T[]> {
        const stmt = db.prepare(text)
        if (stmt.reader) return stmt.all(...params) as T[]
        stmt.run(...params)
        return []
      },
      async dump() {
        const parts = [readFileSync(url)]
        if (existsSync(`${url}-wal`)) parts.push(readFileSync(`${url}-wal`))
        return Buffer.concat(parts)
      },
      async close() {
        db.close()
      },
    }
  }
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  const query = async <T>(text: string, params: unknown[] = []): Promise<T[]> => {
    let n = 0
    const res = await client.query(text.replace(/\?/g, () => `$${++n}`), params)
    return res.rows as T[]
  }
  return {
    query,
    async dump() {
      const rows = await query('select * from installations')
      return Buffer.from(JSON.stringify(rows))
    },
    async close() {
      await client.end()
    },
  }
}

/** A location install, with tokens distinctive enough to search for in raw bytes. */
export function locationInput(overrides: Partial<InstallationInput> = {}): InstallationInput {
  return {
    clientId: 'app123-suffix',
    companyId: 'COMPANY1',
    locationId: 'LOC1',
    userType: 'Location',
    userId: 'USER1',
    scopes: ['contacts.readonly', 'locations.readonly'],
    planId: 'plan-1',
    isBulkInstallation: false,
    installToFutureLocations: null,
    approveAllLocations: null,
    approvedLocations: [],
    source: 'oauth',
    parentId: null,
    tokens: {
      accessToken: 'ACCESS-plaintext-token-0123456789abcdef',
      refreshToken: 'REFRESH-plaintext-token-fedcba9876543210',
      expiresAt: new Date(Date.UTC(2026, 0, 2)),
    },
    ...overrides,
  }
}

/** A company (agency) install. */
export function companyInput(overrides: Partial<InstallationInput> = {}): InstallationInput {
  return locationInput({
    locationId: null,
    userType: 'Company',
    isBulkInstallation: true,
    installToFutureLocations: true,
    approveAllLocations: false,
    approvedLocations: ['LOC1', 'LOC2'],
    tokens: {
      accessToken: 'AGENCY-access-token-aaaaaaaaaaaaaaaa',
      refreshToken: 'AGENCY-refresh-token-bbbbbbbbbbbbbbbb',
      expiresAt: new Date(Date.UTC(2026, 0, 3)),
    },
    ...overrides,
  })
}

const CHILD = fileURLToPath(new URL('./fixtures/vault-child.ts', import.meta.url))

/** A running test/vault/fixtures/vault-child.ts. */
export interface Child {
  process: ChildProcess
  /** Resolves when the child prints this line. */
  waitFor(line: string): Promise<void>
  /** Writes `go`: the child starts its work. */
  go(): void
  /** Resolves with the exit code (or signal). */
  exited: Promise<number | string | null>
}

export function spawnChild(url: string, keys: string, args: string[]): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], {
    env: { ...process.env, GHL_TEST_VAULT_URL: url, GHL_TEST_VAULT_KEYS: keys },
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  const seen = new Set<string>()
  const waiters = new Map<string, () => void>()
  createInterface({ input: child.stdout! }).on('line', (line) => {
    seen.add(line)
    waiters.get(line)?.()
  })
  const exited = new Promise<number | string | null>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal)))
  return {
    process: child,
    waitFor: (line) =>
      new Promise<void>((resolve, reject) => {
        if (seen.has(line)) return resolve()
        waiters.set(line, resolve)
        void exited.then((code) => reject(new Error(`child exited (${String(code)}) before printing "${line}"`)))
      }),
    go: () => child.stdin!.write('go\n'),
    exited,
  }
}
