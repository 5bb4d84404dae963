/**
 * {@link CredentialStore} on SQL: third-party credentials collected by HighLevel's external
 * authentication, sealed with the vault's {@link TokenCipher} (AES-256-GCM) before they reach SQL and
 * bound to their row — the app and the location or agency they belong to — so a ciphertext copied to
 * another row fails to decrypt. Key rotation (`ghl-connect keys rotate`) covers them too.
 */
import { resourceKey, toMillis } from './schema.js'
import { badInput, isStringArray, nonEmpty, type SqlContext } from './sql-helpers.js'
import type { TokenCipher } from './token-cipher.js'
import type { CredentialDetails, CredentialKind, CredentialStore, ExternalCredential } from './marketplace-types.js'

const KINDS: readonly CredentialKind[] = ['basic', 'oauth2']
const ROTATION_BATCH = 100

/** What a stored credential is bound to. */
export function credentialAad(clientId: string, rk: string): string {
  return `credential:${clientId}:${rk}`
}

function ownerKey(owner: { locationId: string } | { companyId: string }): string {
  if ('locationId' in owner) {
    if (!nonEmpty(owner.locationId)) throw badInput(['expected locationId to be a non-empty string'])
    return resourceKey(owner.locationId, '')
  }
  if (!nonEmpty(owner?.companyId)) throw badInput(['expected locationId or companyId to be a non-empty string'])
  return resourceKey(null, owner.companyId)
}

/** The SQL {@link CredentialStore}. */
export class SqlCredentialStore implements CredentialStore {
  readonly #ctx: SqlContext
  readonly #cipher: TokenCipher

  constructor(ctx: SqlContext, cipher: TokenCipher) {
    this.#ctx = ctx
    this.#cipher = cipher
  }

  async put(input: Omit<ExternalCredential, 'createdAt' | 'updatedAt'>): Promise<void> {
    const problems: string[] = []
    if (!nonEmpty(input?.clientId)) problems.push('expected clientId to be a non-empty string')
    if (!nonEmpty(input?.locationId) && !nonEmpty(input?.companyId)) problems.push('expected a locationId or a companyId')
    if (!KINDS.includes(input?.kind)) problems.push(`expected kind to be one of ${KINDS.join(', ')}`)
    const secret = input?.secret
    if (!secret || typeof secret !== 'object' || Object.values(secret).some((v) => typeof v !== 'string')) problems.push('expected secret to be an object of strings')
    const d = input?.details ?? {}
    for (const name of ['locationIds', 'excludedLocations'] as const) {
      if (d[name] !== undefined && d[name] !== null && !isStringArray(d[name])) problems.push(`expected details.${name} to be an array of strings or null`)
    }
    if (problems.length > 0) throw badInput(problems)
    const rk = input.locationId ? resourceKey(input.locationId, '') : resourceKey(null, input.companyId!)
    const now = this.#ctx.clock.now()
    const details: CredentialDetails = {
      ...(d.locationIds !== undefined ? { locationIds: d.locationIds } : {}),
      ...(d.approveAllLocations !== undefined ? { approveAllLocations: d.approveAllLocations } : {}),
      ...(d.excludedLocations !== undefined ? { excludedLocations: d.excludedLocations } : {}),
    }
    await this.#ctx.db
      .insertInto('external_credentials')
      .values({
        client_id: input.clientId,
        resource_key: rk,
        location_id: input.locationId ?? null,
        company_id: input.companyId ?? null,
        kind: input.kind,
        secret: this.#cipher.encrypt(JSON.stringify(secret), credentialAad(input.clientId, rk)),
        key_id: this.#cipher.currentKeyId,
        details: JSON.stringify(details),
        created_at: now,
        updated_at: now,
      })
      .onConflict((oc) =>
        oc.columns(['client_id', 'resource_key']).doUpdateSet((eb) => ({
          location_id: eb.ref('excluded.location_id'),
          company_id: eb.ref('excluded.company_id'),
          kind: eb.ref('excluded.kind'),
          secret: eb.ref('excluded.secret'),
          key_id: eb.ref('excluded.key_id'),
          details: eb.ref('excluded.details'),
          updated_at: eb.ref('excluded.updated_at'),
        })),
      )
      .execute()
  }

  async get(clientId: string, owner: { locationId: string } | { companyId: string }): Promise<ExternalCredential | undefined> {
    if (!nonEmpty(clientId)) throw badInput(['expected clientId to be a non-empty string'])
    const rk = ownerKey(owner)
    const row = await this.#ctx.db
      .selectFrom('external_credentials')
      .selectAll()
      .where('client_id', '=', clientId)
      .where('resource_key', '=', rk)
      .executeTakeFirst()
    if (!row) return undefined
    const secret = JSON.parse(this.#cipher.decrypt(row.secret, credentialAad(row.client_id, row.resource_key))) as Record<string, string>
    return {
      clientId: row.client_id,
      locationId: row.location_id,
      companyId: row.company_id,
      kind: row.kind,
      secret,
      details: JSON.parse(row.details) as CredentialDetails,
      createdAt: new Date(toMillis(row.created_at)),
      updatedAt: new Date(toMillis(row.updated_at)),
    }
  }

  async delete(clientId: string, owner: { locationId: string } | { companyId: string }): Promise<boolean> {
    if (!nonEmpty(clientId)) throw badInput(['expected clientId to be a non-empty string'])
    const result = await this.#ctx.db
      .deleteFrom('external_credentials')
      .where('client_id', '=', clientId)
      .where('resource_key', '=', ownerKey(owner))
      .executeTakeFirst()
    return Number(result.numDeletedRows) === 1
  }

  /** @internal Key rotation: re-encrypts every credential not on the first key; returns how many. */
  async rotate(): Promise<number> {
    const current = this.#cipher.currentKeyId
    let rotated = 0
    for (;;) {
      // Each rotated row leaves the selection (its key is the current one now), as does a row a
      // concurrent `put` rewrote (always under the current key); a batch that changes nothing ends it.
      const batch = await this.#ctx.db
        .selectFrom('external_credentials')
        .selectAll()
        .where('key_id', '!=', current)
        .orderBy('client_id')
        .orderBy('resource_key')
        .limit(ROTATION_BATCH)
        .execute()
      let changed = 0
      for (const row of batch) {
        const aad = credentialAad(row.client_id, row.resource_key)
        const secret = this.#cipher.encrypt(this.#cipher.decrypt(row.secret, aad), aad)
        const result = await this.#ctx.db
          .updateTable('external_credentials')
          .set({ secret, key_id: current })
          .where('client_id', '=', row.client_id)
          .where('resource_key', '=', row.resource_key)
          .where('key_id', '=', row.key_id)
          .executeTakeFirst()
        changed += Number(result.numUpdatedRows)
      }
      rotated += changed
      if (batch.length < ROTATION_BATCH || changed === 0) break
    }
    return rotated
  }

  /** @internal Key ids of stored credentials that are not configured. */
  async missingKeys(): Promise<string[]> {
    const rows = await this.#ctx.db.selectFrom('external_credentials').select('key_id').distinct().execute()
    return rows.map((r) => r.key_id).filter((id) => !this.#cipher.hasKey(id))
  }
}
