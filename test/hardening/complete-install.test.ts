/**
 * `completeInstall()` returns the installation without its tokens: no `tokens` key, and no token value
 * anywhere in what it returns or in the `installed` event, for a sub-account and an agency install.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { InstallationSummary } from '../../src/vault/types.js'
import { sandboxJson, startStack, type Stack } from '../helpers/stack.js'

/** Start → the sandbox's consent (no browser) → the callback query, as HighLevel would send it. */
async function consent(stack: Stack, target: { locationId?: string; companyId?: string }): Promise<Record<string, string>> {
  const { url } = await stack.connector.startInstall()
  const authorize = new URL(url)
  const { redirect } = await sandboxJson<{ redirect: string }>(stack.sandbox, 'POST', '/_sandbox/authorize', {
    clientId: authorize.searchParams.get('client_id'),
    redirectUri: authorize.searchParams.get('redirect_uri'),
    scope: authorize.searchParams.get('scope'),
    state: authorize.searchParams.get('state'),
    webhookTiming: 'none',
    ...target,
  })
  return Object.fromEntries(new URL(redirect).searchParams)
}

/** Every property name at any depth. */
function keysOf(value: unknown): string[] {
  if (value === null || typeof value !== 'object') return []
  return Object.entries(value).flatMap(([k, v]) => [k, ...keysOf(v)])
}

for (const kind of ['Location', 'Company'] as const) {
  test(`completeInstall (${kind}) returns the installation without a token, and so does the installed event`, async () => {
    const stack = await startStack({ env: { GHL_USER_TYPE: kind } })
    try {
      const company = stack.sandbox.companies[0]!
      const events: InstallationSummary[] = []
      stack.connector.on('installed', ({ installation }) => events.push(installation))
      const query = await consent(stack, kind === 'Location' ? { locationId: company.locations[0]!.locationId } : { companyId: company.companyId })
      const returned = await stack.connector.completeInstall(query)

      // The stored row does hold tokens (positive control): these are the values that must not leak.
      const stored = await stack.connector.vault.installations.get(returned.id)
      const accessToken = stored!.tokens!.accessToken
      const refreshToken = stored!.tokens!.refreshToken ?? assert.fail('the stored row has no refresh token')
      assert.ok(accessToken.length > 10 && refreshToken.length > 10)
      assert.equal(returned.companyId, company.companyId)
      assert.equal(returned.userType, kind)

      assert.equal(events.length, 1)
      for (const [what, value] of [['returned', returned], ['installed event', events[0]]] as const) {
        assert.equal(Object.hasOwn(value as object, 'tokens'), false, `${what} has a tokens key`)
        const text = JSON.stringify(value)
        assert.ok(!text.includes(accessToken), `${what} contains the access token`)
        assert.ok(!text.includes(refreshToken), `${what} contains the refresh token`)
        const tokenKeys = keysOf(value).filter((k) => /^(tokens?|access_?token|refresh_?token)$/i.test(k))
        assert.deepEqual(tokenKeys, [], `${what} has token fields`)
      }
    } finally {
      await stack.close()
    }
  })
}
