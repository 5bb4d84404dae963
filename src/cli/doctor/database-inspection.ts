/**
 * What `ghl-connect doctor` reads from the database, without changing it: which migrations are applied,
 * which encryption key ids the stored tokens name, and how many installations are in each status.
 *
 * It opens its own connection rather than the vault: the vault would create a missing SQLite file and
 * apply pending migrations, and a diagnosis must see the database as the server will find it.
 */
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import Database from 'better-sqlite3'
import { Kysely, Migrator, PostgresDialect, SqliteDialect } from 'kysely'
import pg from 'pg'
import { vaultMigrations } from '../../vault/migrations/index.js'
import type { VaultDatabase } from '../../vault/schema.js'
import type { InstallationStatus } from '../../vault/types.js'
import { isPostgresUrl } from '../database-url.js'

export interface DatabaseInspection {
  dialect: 'sqlite' | 'postgres'
  /** Every migration this version of ghl-connect knows, in order, and whether it is applied. */
  migrations: { name: string; applied: boolean }[]
  /** Key id → installations whose tokens it encrypts (rows without tokens name no key). */
  keyIds: Map<string, number>
  /** Installations per status. */
  statuses: Map<InstallationStatus, number>
}

/** Why the database could not be inspected, for the operator. */
export class DatabaseUnreachableError extends Error {
  override name = 'DatabaseUnreachableError'
}

/** Reads the state of the vault's database. Throws {@link DatabaseUnreachableError} when it cannot be opened. */
export async function inspectDatabase(databaseUrl: string): Promise<DatabaseInspection> {
  const dialect = isPostgresUrl(databaseUrl) ? 'postgres' : 'sqlite'
  const db = dialect === 'postgres' ? openPostgres(databaseUrl) : openSqlite(databaseUrl)
  try {
    try {
      await db.selectNoFrom((eb) => eb.lit(1).as('one')).execute()
    } catch (err) {
      throw new DatabaseUnreachableError((err as Error).message)
    }
    const known = await new Migrator({ db, provider: vaultMigrations(dialect) }).getMigrations()
    const migrations = known.map((m) => ({ name: m.name, applied: m.executedAt !== undefined }))
    const keyIds = new Map<string, number>()
    const statuses = new Map<InstallationStatus, number>()
    if (migrations[0]?.applied) {
      const keys = await db
        .selectFrom('installations')
        .select((eb) => ['key_id', eb.fn.countAll().as('n')])
        .where('key_id', 'is not', null)
        .groupBy('key_id')
        .execute()
      for (const row of keys) keyIds.set(row.key_id!, Number(row.n))
      const byStatus = await db.selectFrom('installations').select((eb) => ['status', eb.fn.countAll().as('n')]).groupBy('status').execute()
      for (const row of byStatus) statuses.set(row.status, Number(row.n))
    }
    return { dialect, migrations, keyIds, statuses }
  } finally {
    await db.destroy()
  }
}

function openPostgres(url: string): Kysely<VaultDatabase> {
  const pool = new pg.Pool({ connectionString: url, max: 1, connectionTimeoutMillis: 5000 })
  pool.on('error', () => {}) // an idle connection dropping is not the diagnosis
  return new Kysely<VaultDatabase>({ dialect: new PostgresDialect({ pool }) })
}

function openSqlite(path: string): Kysely<VaultDatabase> {
  const file = resolve(path)
  if (!existsSync(file)) throw new DatabaseUnreachableError(`no database file at ${file}`)
  // fileMustExist: opening never creates a file, even if it vanished since the check above.
  const database = new Database(file, { fileMustExist: true })
  database.pragma('busy_timeout = 5000')
  return new Kysely<VaultDatabase>({ dialect: new SqliteDialect({ database }) })
}
