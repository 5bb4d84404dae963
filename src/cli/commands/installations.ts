/**
 * `ghl-connect installations [list | show ID]`: the stored installations, never a token.
 */
import { kindOf as consoleKind } from '../../operator/operator-service.js'
import { GhlError, NotInstalledError } from '../../errors.js'
import type { InstallationStatus, InstallationSummary, Vault } from '../../vault/types.js'
import { defineCommand, expectPositionals, oneOf, UsageError } from '../command.js'
import { print, printJson, relativeTime, table } from '../output.js'

export const INSTALLATION_STATUSES: readonly InstallationStatus[] = ['active', 'needs_reauthorization', 'uninstalled']
export const INSTALLATION_KINDS = ['agency', 'sub-account', 'minted'] as const
export type InstallationKind = (typeof INSTALLATION_KINDS)[number]

/** agency: a company-level install; minted: a location token minted from an agency's; sub-account: a location's own install. */
export function kindOf(i: InstallationSummary): InstallationKind {
  const kind = consoleKind(i)
  return kind === 'location' ? 'sub-account' : kind
}

/**
 * The installations `ref` names: our installation id, a location id, or a company id (its agency
 * installation). Several apps may share a database, so more than one can match.
 */
export async function findInstallations(vault: Vault, ref: string): Promise<InstallationSummary[]> {
  // Indexed lookups only: by id, else the search of the operator page (exact location or company id).
  const byId = await vault.installations.get(ref)
  if (byId) {
    const { tokens: _tokens, ...summary } = byId
    return [summary]
  }
  const { items } = await vault.installations.page({ search: ref, limit: 500 })
  return items.filter((i) => i.locationId === ref || (i.locationId === null && i.companyId === ref))
}

export const installationsCommand = defineCommand({
  name: 'installations',
  summary: 'List the installations, or show one (never a token)',
  help: `Usage: ghl-connect installations [list] [--status STATUS] [--kind KIND] [--json]
       ghl-connect installations show ID [--json]

  list   A table of installations: id, kind, location, company, status (and why), when the access
         token expires, when the row last changed.
  show   Every field of one installation. ID is the installation id, a location id, or a company id
         (its agency installation).

Options:
  --status STATUS   active, needs_reauthorization or uninstalled
  --kind KIND       agency (company-level), sub-account (a location's own install) or minted
                    (a location token minted from an agency install)
  --json            JSON instead of a table (dates as ISO 8601)

Needs only DATABASE_URL (the database the server uses). Tokens are never read or shown.

Examples:
  ghl-connect installations --status needs_reauthorization
  ghl-connect installations show 6f1c2d34-…`,
  options: { status: { type: 'string' }, kind: { type: 'string' }, json: { type: 'boolean' } },
  async run({ values, positionals }) {
    const sub = positionals[0] ?? 'list'
    if (sub !== 'list' && sub !== 'show') throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}: use "list" or "show ID"`, 'installations')
    if (sub === 'list') expectPositionals('installations', positionals, 0, 1, '')
    else expectPositionals('installations', positionals, 2, 2, 'the installation ID to show')
    const status = oneOf('installations', 'status', values.status, INSTALLATION_STATUSES)
    const kind = oneOf('installations', 'kind', values.kind, INSTALLATION_KINDS)

    const { humanLogger } = await import('../cli-logger.js')
    const { openVaultForListing } = await import('../open.js')
    const vault = await openVaultForListing(await humanLogger(process.env.LOG_LEVEL ?? 'warn', 2))
    try {
      const now = Date.now()
      if (sub === 'show') {
        const ref = positionals[1]!
        const found = await findInstallations(vault, ref)
        if (found.length === 0) throw new NotInstalledError({}, `No installation with id, location id or company id ${JSON.stringify(ref)}`)
        if (found.length > 1) {
          throw new GhlError('GHL_BAD_REQUEST', `${found.length} installations match ${JSON.stringify(ref)} (${found.map((i) => i.id).join(', ')}); use an installation id`)
        }
        const inst = found[0]!
        if (values.json) printJson(inst)
        else print(...describe(inst, now))
        return 0
      }
      const rows = (await vault.installations.list(status ? { status } : {})).filter((i) => !kind || kindOf(i) === kind)
      if (values.json) {
        printJson(rows)
        return 0
      }
      if (rows.length === 0) {
        print('No installations.')
        return 0
      }
      print(
        table(
          ['ID', 'KIND', 'LOCATION', 'COMPANY', 'STATUS', 'TOKEN EXPIRES', 'UPDATED'],
          rows.map((i) => [
            i.id,
            kindOf(i),
            i.locationId ?? '—',
            i.companyId,
            i.statusReason ? `${i.status}: ${i.statusReason}` : i.status,
            expiry(i.expiresAt, now),
            relativeTime(i.updatedAt, now),
          ]),
        ),
        '',
        `${rows.length} installation${rows.length === 1 ? '' : 's'}.`,
      )
      return 0
    } finally {
      await vault.close()
    }
  },
})

/** "in 23 h", "expired 10 min ago", or why there is none. */
function expiry(at: Date | null, now: number): string {
  if (!at) return '— (no token held)'
  return at.getTime() < now ? `expired ${relativeTime(at, now)}` : relativeTime(at, now)
}

/** `show`: one field a line. */
function describe(i: InstallationSummary, now: number): string[] {
  const at = (d: Date | null): string => (d ? `${relativeTime(d, now)} (${d.toISOString()})` : '—')
  const flag = (b: boolean | null): string => (b === null ? '—' : b ? 'yes' : 'no')
  const fields: [string, string][] = [
    ['id', i.id],
    ['kind', kindOf(i)],
    ['location', i.locationId ?? '— (agency installation)'],
    ['company', i.companyId],
    ['status', i.status],
    ['reason', i.statusReason ?? '—'],
    ['token expires', i.expiresAt ? `${expiry(i.expiresAt, now)} (${i.expiresAt.toISOString()})` : expiry(null, now)],
    ['refresh token issued', at(i.refreshTokenIssuedAt)],
    ['scopes', i.scopes.join(' ') || '—'],
    ['user type', i.userType],
    ['user', i.userId ?? '—'],
    ['app', i.appId],
    ['client id', i.clientId],
    ['source', i.parentId ? `${i.source} (minted from installation ${i.parentId})` : i.source],
    ['plan', i.planId ?? '—'],
    ['bulk installation', flag(i.isBulkInstallation)],
    ['future locations', flag(i.installToFutureLocations)],
    ['all locations approved', flag(i.approveAllLocations)],
    ['approved locations', i.approvedLocations.join(', ') || '—'],
    ['version', String(i.version)],
    ['created', at(i.createdAt)],
    ['updated', at(i.updatedAt)],
  ]
  const width = Math.max(...fields.map(([k]) => k.length))
  return fields.map(([k, v]) => `${k.padEnd(width)}  ${v}`)
}
