/**
 * `DATABASE_URL` for people and for checks: which backend it names, how to show it without its
 * password, and refusing a SQLite path with no file behind it.
 */
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { GhlError } from '../errors.js'

/** Whether `databaseUrl` names PostgreSQL (else it is a SQLite file path). */
export function isPostgresUrl(databaseUrl: string): boolean {
  return /^postgres(ql)?:\/\//i.test(databaseUrl)
}

/** The database for people: the SQLite file's full path, or the PostgreSQL URL without its password. */
export function describeDatabase(databaseUrl: string): string {
  return isPostgresUrl(databaseUrl) ? `PostgreSQL ${withoutPassword(databaseUrl)}` : `SQLite ${resolve(databaseUrl)}`
}

/** A URL with its password replaced by "…" (database and Redis URLs may carry one). */
export function withoutPassword(raw: string): string {
  try {
    const url = new URL(raw)
    if (url.password) url.password = '…'
    return url.toString()
  } catch {
    return '(unparsable URL)'
  }
}

/**
 * Refuses a SQLite path with no file behind it: opening it would create an empty database, and the
 * operator most likely points at the wrong file.
 */
export function requireExistingDatabase(databaseUrl: string): void {
  if (isPostgresUrl(databaseUrl) || existsSync(resolve(databaseUrl))) return
  throw new GhlError(
    'GHL_CONFIG_INVALID',
    `No database at ${resolve(databaseUrl)}. Set DATABASE_URL to the database the server uses (or run "ghl-connect migrate" to create one).`,
  )
}
