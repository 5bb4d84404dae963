/**
 * Seeds installations through the vault (`insertMany`, batches of 500 rows per INSERT) for the scale
 * tests and `npm run bench:scale`. The layout, for `installations` = N:
 * - `agencies` agency (Company, OAuth) installations `co-<a>`;
 * - `covered` locations minted from those agencies (`source: 'agency'`, a token, no refresh token):
 *   `cov-<i>`;
 * - the rest location (OAuth) installations `loc-<i>`, of which `due` expire within the refresh margin
 *   (the refresher's work), the others in 20 hours.
 * Refresh tokens are those {@link startTokenEndpoint} accepts.
 */
import type { InstallationInput, Vault } from '../../src/vault/types.js'
import { seededRefreshToken } from './token-endpoint.js'

export interface SeedLayout {
  installations: number
  agencies: number
  covered: number
  due: number
  /** Location installations `loc-0` … `loc-(locations-1)`. */
  locations: number
}

/** The layout for N installations: 10 agencies, 10 % covered, 10 % of the rest due. */
export function layout(installations: number, dueFraction = 0.1): SeedLayout {
  const agencies = Math.min(10, Math.max(1, Math.floor(installations / 100)))
  const covered = Math.floor(installations * 0.1)
  const locations = installations - agencies - covered
  const due = Math.floor(installations * dueFraction)
  return { installations, agencies, covered, due: Math.min(due, locations), locations }
}

const SCOPES = ['contacts.readonly', 'locations.readonly']

/** `loc-<i>` (zero-padded, so ids sort like numbers). */
export const locationId = (i: number): string => `loc-${String(i).padStart(7, '0')}`
export const coveredId = (i: number): string => `cov-${String(i).padStart(7, '0')}`
export const agencyId = (a: number): string => `co-${String(a).padStart(3, '0')}`

/**
 * Seeds the layout; `onProgress` after each batch. Returns the agency installations' ids by company.
 * Location `i` has the access token `at.<locationId>.seed`; due ones expire `dueInMs` from `now`.
 */
export async function seedInstallations(
  vault: Vault,
  clientId: string,
  l: SeedLayout,
  options: { now?: number; dueInMs?: number; batch?: number; onProgress?: (done: number) => void } = {},
): Promise<Map<string, string>> {
  const now = options.now ?? Date.now()
  const dueInMs = options.dueInMs ?? 60_000
  const batch = options.batch ?? 10_000
  const parents = new Map<string, string>()
  for (let a = 0; a < l.agencies; a++) {
    const companyId = agencyId(a)
    const row = await vault.installations.upsert({
      clientId,
      companyId,
      locationId: null,
      userType: 'Company',
      scopes: SCOPES,
      source: 'oauth',
      tokens: { accessToken: `at.${companyId}.seed`, refreshToken: seededRefreshToken('agency', companyId), expiresAt: new Date(now + 20 * 3600_000) },
    })
    parents.set(companyId, row.id)
  }
  let done = l.agencies
  const flush = async (inputs: InstallationInput[]): Promise<void> => {
    await vault.installations.insertMany(inputs)
    done += inputs.length
    options.onProgress?.(done)
  }
  let inputs: InstallationInput[] = []
  for (let i = 0; i < l.covered; i++) {
    const companyId = agencyId(i % l.agencies)
    const loc = coveredId(i)
    inputs.push({
      clientId,
      companyId,
      locationId: loc,
      userType: 'Location',
      scopes: SCOPES,
      source: 'agency',
      parentId: parents.get(companyId)!,
      tokens: { accessToken: `at.${loc}.seed`, refreshToken: null, expiresAt: new Date(now + 20 * 3600_000) },
    })
    if (inputs.length === batch) await flush(inputs.splice(0))
  }
  for (let i = 0; i < l.locations; i++) {
    const loc = locationId(i)
    const companyId = `co-loc-${i % 5000}`
    // Due rows spread over the first `due` indexes, so the not-due lookups below them are also spread.
    const expiresAt = i < l.due ? now + dueInMs : now + 20 * 3600_000
    inputs.push({
      clientId,
      companyId,
      locationId: loc,
      userType: 'Location',
      scopes: SCOPES,
      source: 'oauth',
      tokens: { accessToken: `at.${loc}.seed`, refreshToken: seededRefreshToken(loc, companyId), expiresAt: new Date(expiresAt) },
    })
    if (inputs.length === batch) await flush(inputs.splice(0))
  }
  if (inputs.length > 0) await flush(inputs)
  return parents
}
