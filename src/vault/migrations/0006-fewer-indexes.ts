/**
 * 0006: drops the indexes that a later one made redundant. Every index is written on each insert, and
 * on PostgreSQL on every update that changes an indexed column (a refresh changes `expires_at`, so it is
 * never a HOT update): each index on `installations` is one more page written per refresh, each on
 * `audit_log` one more per audit entry.
 *
 * - `audit_log(installation_id)`: a prefix of `audit_log(installation_id, id)` (0003);
 * - `installations(status)` and `installations(plan_id)`: prefixes of `(status, created_at, id)` and
 *   `(plan_id, created_at, id)` (0005);
 * - `installations(location_name)` and `(company_name)` (0003): the search reads `lower(name)` (0005),
 *   and nothing sorts or filters on the names as they are.
 */
import type { Kysely, Migration } from 'kysely'

const DROPPED: ReadonlyArray<readonly [index: string, table: string, columns: readonly string[]]> = [
  ['audit_log_installation_id_idx', 'audit_log', ['installation_id']],
  ['installations_status_idx', 'installations', ['status']],
  ['installations_plan_idx', 'installations', ['plan_id']],
  ['installations_location_name_idx', 'installations', ['location_name']],
  ['installations_company_name_idx', 'installations', ['company_name']],
]

/** Builds migration 0006. */
export function fewerIndexesMigration(): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      for (const [index] of DROPPED) await db.schema.dropIndex(index).ifExists().execute()
    },
    async down(db: Kysely<unknown>): Promise<void> {
      for (const [index, table, columns] of DROPPED) await db.schema.createIndex(index).ifNotExists().on(table).columns([...columns]).execute()
    },
  }
}
