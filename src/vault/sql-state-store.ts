/**
 * {@link OAuthStateStore} on SQL: one-time OAuth states and the authorization codes already exchanged,
 * both stored by their SHA-256 only (a database reader cannot replay either).
 */
import { badInput, isValidDate, sha256, type SqlContext } from './sql-helpers.js'
import type { OAuthStateData, OAuthStateStore } from './types.js'

/** The SQL {@link OAuthStateStore}. */
export class SqlStateStore implements OAuthStateStore {
  readonly #ctx: SqlContext

  constructor(ctx: SqlContext) {
    this.#ctx = ctx
  }

  async save(state: string, data: OAuthStateData, expiresAt: Date): Promise<void> {
    const problems: string[] = []
    if (typeof state !== 'string' || state.length < 16) problems.push('expected state to be a string of at least 16 characters')
    if (!isValidDate(expiresAt)) problems.push('expected expiresAt to be a valid Date')
    if (problems.length > 0) throw badInput(problems)
    const { db, clock } = this.#ctx
    const now = clock.now()
    // Opportunistic clean-up: states are short-lived and most are consumed; the abandoned ones go here.
    await db.deleteFrom('oauth_states').where('expires_at', '<=', now).execute()
    await db
      .insertInto('oauth_states')
      .values({ state_hash: sha256(state), data: JSON.stringify(data), expires_at: expiresAt.getTime(), created_at: now })
      .execute()
  }

  async consume(state: string): Promise<OAuthStateData | undefined> {
    if (typeof state !== 'string' || state.length === 0) return undefined
    // DELETE … RETURNING is one atomic statement on both dialects: of concurrent consumers exactly one
    // gets the row. An expired state is deleted as well, and rejected.
    const row = await this.#ctx.db
      .deleteFrom('oauth_states')
      .where('state_hash', '=', sha256(state))
      .returning(['data', 'expires_at'])
      .executeTakeFirst()
    if (!row || Number(row.expires_at) <= this.#ctx.clock.now()) return undefined
    return JSON.parse(row.data) as OAuthStateData
  }

  async rememberCode(code: string, expiresAt: Date): Promise<boolean> {
    const problems: string[] = []
    if (typeof code !== 'string' || code.length === 0) problems.push('expected code to be a non-empty string')
    if (!isValidDate(expiresAt)) problems.push('expected expiresAt to be a valid Date')
    if (problems.length > 0) throw badInput(problems)
    const { db, clock } = this.#ctx
    const now = clock.now()
    await db.deleteFrom('used_codes').where('expires_at', '<=', now).execute()
    // INSERT … ON CONFLICT DO NOTHING RETURNING: exactly one of concurrent exchanges of one code gets a row.
    const row = await db
      .insertInto('used_codes')
      .values({ code_hash: sha256(`code:${code}`), expires_at: expiresAt.getTime() })
      .onConflict((oc) => oc.column('code_hash').doNothing())
      .returning('code_hash')
      .executeTakeFirst()
    return row !== undefined
  }

  async forgetCode(code: string): Promise<void> {
    if (typeof code !== 'string' || code.length === 0) return
    await this.#ctx.db.deleteFrom('used_codes').where('code_hash', '=', sha256(`code:${code}`)).execute()
  }
}
