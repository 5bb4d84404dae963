/**
 * {@link KeyRotation} on SQL: re-encrypts stored tokens under the first configured key, and names the
 * key ids stored rows need that are not configured (checked at start: a wrong `GHL_ENCRYPTION_KEY` is
 * refused before it can make every installation look broken).
 */
import type { SqlContext } from './sql-helpers.js'
import type { TokenColumns } from './sql-installation-store.js'
import type { KeyRotation } from './types.js'

const ROTATION_BATCH = 100

/** Other sealed rows (third-party credentials): rotated and checked along with the tokens. */
export interface SealedRows {
  rotate(): Promise<number>
  missingKeys(): Promise<string[]>
}

/** The SQL {@link KeyRotation}. */
export class SqlKeyRotation implements KeyRotation {
  readonly #ctx: SqlContext
  readonly #tokens: TokenColumns
  readonly #others: readonly SealedRows[]

  constructor(ctx: SqlContext, tokens: TokenColumns, others: readonly SealedRows[] = []) {
    this.#ctx = ctx
    this.#tokens = tokens
    this.#others = others
  }

  /**
   * Re-encrypts every row not on the first key, in batches of 100, each row under its own
   * compare-and-swap. A row whose key is not configured stops the run with `GHL_VAULT_KEY_MISSING`
   * (rows already rotated stay rotated; run it again once the key is configured).
   */
  async rotate(): Promise<number> {
    const { db, logger } = this.#ctx
    const current = this.#tokens.currentKeyId
    let rotated = 0
    let after = ''
    for (;;) {
      // Walk the rows by id so a row whose compare-and-swap fails is not picked up again forever.
      const batch = await db
        .selectFrom('installations')
        .selectAll()
        .where('key_id', 'is not', null)
        .where('key_id', '!=', current)
        .where('id', '>', after)
        .orderBy('id')
        .limit(ROTATION_BATCH)
        .execute()
      if (batch.length === 0) break
      for (const row of batch) {
        after = row.id
        const tokens = this.#tokens.open(row)
        if (!tokens) continue
        // Each row under its own compare-and-swap on version: a refresh that lands meanwhile wins (it
        // wrote under the current key anyway). Rotation changes no token, so the version stays; the
        // issue time of the refresh token is kept as it was.
        const sealed = this.#tokens.seal(row.client_id, row.resource_key, tokens, 0)
        const result = await db
          .updateTable('installations')
          .set({ access_token: sealed.access_token, refresh_token: sealed.refresh_token, key_id: current })
          .where('id', '=', row.id)
          .where('version', '=', row.version)
          .where('key_id', '=', row.key_id)
          .executeTakeFirst()
        rotated += Number(result.numUpdatedRows)
      }
    }
    for (const other of this.#others) rotated += await other.rotate()
    logger.info({ rotated, keyId: current }, 'vault: encryption keys rotated')
    return rotated
  }

  async missing(): Promise<string[]> {
    const rows = await this.#ctx.db.selectFrom('installations').select('key_id').distinct().where('key_id', 'is not', null).execute()
    const missing = new Set(rows.map((r) => r.key_id!).filter((id) => !this.#tokens.hasKey(id)))
    for (const other of this.#others) for (const id of await other.missingKeys()) missing.add(id)
    return [...missing].sort()
  }
}
