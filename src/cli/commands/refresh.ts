/**
 * `ghl-connect refresh ID`: refreshes one installation's token now (under the same lock as every
 * other refresh), or mints a new one for an agency-minted location token.
 */
import { GhlError, NotInstalledError } from '../../errors.js'
import { defineCommand, expectPositionals } from '../command.js'
import { print, relativeTime } from '../output.js'
import { findInstallations, kindOf } from './installations.js'

export const refreshCommand = defineCommand({
  name: 'refresh',
  summary: 'Refresh one installation\'s access token now',
  help: `Usage: ghl-connect refresh ID

Refreshes the installation's tokens at once, whatever their expiry, exactly as the server would: under
the installation's refresh lock (so it never races a running server), storing the rotated refresh token
before anything uses the new access token. A location token minted from an agency's is minted again.
ID is the installation id, a location id, or a company id (its agency installation).
Prints the new expiry; never a token.

Needs the full configuration of the server (GHL_CLIENT_ID, GHL_CLIENT_SECRET, GHL_ENCRYPTION_KEY, …).

Example:
  ghl-connect refresh 6f1c2d34-…`,
  options: {},
  async run({ positionals }) {
    expectPositionals('refresh', positionals, 1, 1, 'the installation ID')
    const ref = positionals[0]!
    const { humanLogger } = await import('../cli-logger.js')
    const { openConnector } = await import('../open.js')
    const connector = await openConnector(await humanLogger(process.env.LOG_LEVEL ?? 'warn', 2))
    try {
      const found = await findInstallations(connector.vault, ref)
      if (found.length === 0) throw new NotInstalledError({}, `No installation with id, location id or company id ${JSON.stringify(ref)}`)
      if (found.length > 1) throw new GhlError('GHL_BAD_REQUEST', `${found.length} installations match ${JSON.stringify(ref)}; use an installation id`)
      const inst = found[0]!
      const fresh = await connector.tokens.refreshNow(inst.id)
      const where = fresh.locationId ? `location ${fresh.locationId}` : `company ${fresh.companyId}`
      print(
        `${kindOf(fresh) === 'minted' ? 'Minted a new token for' : 'Refreshed'} installation ${fresh.id} (${kindOf(fresh)}, ${where}): ` +
          `the access token expires ${relativeTime(fresh.expiresAt, Date.now())}.`,
      )
      return 0
    } finally {
      await connector.close()
    }
  },
})
