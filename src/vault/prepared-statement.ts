/**
 * Statements Kysely builds once and the vault runs many times.
 *
 * Kysely builds a query anew at every call: the builder's immutable nodes, the parser's, the
 * compiler's visit. For the refresh path's update (on PostgreSQL a common table expression of the
 * update and its audit entry) building cost more of the main thread than sending it: 8.7 % of the
 * event loop's time during a sweep of 10,000 refreshes (`npm run bench:scale`, CPU profile), and much
 * of the garbage its collections then walk. A {@link PreparedStatement} is built once with a marker in
 * place of each value that changes from call to call (a *slot*); each run copies the compiled
 * parameters and puts that call's values where the markers were. The SQL text is still Kysely's, from
 * the typed schema, for either dialect.
 *
 * @example
 * const byId = new PreparedStatement(['id'], (slot) => db.selectFrom('installations').select('version').where('id', '=', slot('id')))
 * const { rows } = await db.executeQuery(byId.compile({ id }))
 */
import { CompiledQuery, type Compilable } from 'kysely'

/** A value no caller passes: a NUL cannot reach the vault's parameters (ids, tokens and JSON exclude it). */
const MARK = '\u0000ghl-connect:slot:'

/** A statement compiled once, with its changing values as named slots. */
export class PreparedStatement<S extends string, R = unknown> {
  readonly #sql: string
  readonly #parameters: readonly unknown[]
  /** Where each slot's value goes in the parameters (a slot may be used more than once). */
  readonly #places: ReadonlyArray<readonly [index: number, slot: S]>

  /**
   * @param slots - The names of the values given at each run.
   * @param build - Builds the query, calling `slot(name)` wherever that value goes (typed as the column it fills).
   * @throws Error when a slot is never used or a marker ends up in the SQL text instead of a parameter
   *   (a value Kysely would inline, such as a `limit` number or `sql.lit`): a mistake in the code, not in any input.
   */
  constructor(slots: readonly S[], build: (slot: <T>(name: S) => T) => Compilable<R>) {
    const compiled = build(<T>(name: S) => `${MARK}${name}` as T).compile()
    if (compiled.sql.includes(MARK)) throw new Error(`PreparedStatement: a slot was inlined into the SQL text: ${compiled.sql.slice(0, 120)}`)
    const places: Array<readonly [number, S]> = []
    compiled.parameters.forEach((p, i) => {
      if (typeof p !== 'string' || !p.startsWith(MARK)) return
      const name = p.slice(MARK.length) as S
      if (!slots.includes(name)) throw new Error(`PreparedStatement: unknown slot ${JSON.stringify(name)}`)
      places.push([i, name])
    })
    const missing = slots.filter((s) => !places.some(([, name]) => name === s))
    if (missing.length > 0) throw new Error(`PreparedStatement: slots never used in the query: ${missing.join(', ')}`)
    this.#sql = compiled.sql
    this.#parameters = compiled.parameters
    this.#places = places
  }

  /** The statement with this run's values, for `db.executeQuery` (on the database or a transaction). */
  compile(values: Readonly<Record<S, unknown>>): CompiledQuery<R> {
    const parameters = this.#parameters.slice()
    for (const [i, slot] of this.#places) parameters[i] = values[slot]
    return CompiledQuery.raw(this.#sql, parameters) as CompiledQuery<R>
  }

  /** The SQL text (for tests and logs: it holds no value). */
  get sql(): string {
    return this.#sql
  }
}
