/**
 * An authorization code is exchanged at most once (HighLevel may revoke every token issued from a code
 * used twice, RFC 6749 §4.1.2), also when the same callback arrives twice at once at two instances; and
 * a code whose exchange never reached HighLevel's decision (a 5xx) can be tried again. Sequential
 * replays are covered in test/oauth/install-flow.test.ts and test/e2e/install-flow.test.ts.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { OAuthError, GhlError } from '../../src/errors.js'
import { InstallFlow } from '../../src/oauth/install-flow.js'
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js'
import { createVault } from '../../src/vault/create-vault.js'
import type { Vault } from '../../src/vault/types.js'
import { DIALECTS, dialectSkipReason } from '../helpers/services.js'
import { createHarness, type Harness } from '../tokens/harness.js'

for (const dialect of DIALECTS) {
  describe(`authorization codes (${dialect})`, { skip: await dialectSkipReason(dialect) }, () => {
    let sandbox: Sandbox
    let h: Harness
    let otherVault: Vault
    before(async () => {
      sandbox = await startSandbox({ port: 0 })
      h = await createHarness(dialect, { sharedSandbox: sandbox })
      // A second instance: its own connection(s) to the same database.
      otherVault = await createVault({ databaseUrl: h.databaseUrl, keys: h.config.encryptionKeys })
    })
    after(async () => {
      await otherVault?.close()
      await h?.cleanup()
      await sandbox?.close()
    })

    const exchanges = async (): Promise<number> => {
      const c = (await h.stats()).token.authorization_code
      return c.ok + c.error
    }

    test('the same code at two instances at once: exactly one exchange reaches HighLevel, the other is GHL_OAUTH_CODE_REUSED', async () => {
      const locationId = sandbox.companies[0]!.locations[0]!.locationId
      const flows = [new InstallFlow({ config: h.config, vault: h.vault }), new InstallFlow({ config: h.config, vault: otherVault })]
      // Two valid states (two install links), one code: as a callback replayed at once by a proxy or a double click.
      const [a, b] = await Promise.all(flows.map((f) => f.start()))
      const query = await h.consent(a!.state, { locationId })
      const before = await exchanges()
      const results = await Promise.allSettled([flows[0]!.complete(query), flows[1]!.complete({ code: query.code!, state: b!.state })])
      assert.equal((await exchanges()) - before, 1, 'the code was sent to HighLevel more than once')
      const fulfilled = results.filter((r) => r.status === 'fulfilled')
      const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
      assert.equal(fulfilled.length, 1)
      assert.equal(rejected.length, 1)
      assert.ok(rejected[0]!.reason instanceof OAuthError && rejected[0]!.reason.code === 'GHL_OAUTH_CODE_REUSED', String(rejected[0]!.reason))
      const rows = (await h.vault.installations.list()).filter((r) => r.locationId === locationId)
      assert.equal(rows.length, 1)
      // The tokens of the one exchange work: HighLevel revoked nothing.
      const stored = await h.vault.installations.get(rows[0]!.id)
      assert.equal(await h.callApi(stored!.tokens!.accessToken, locationId), 200)
    })

    test('a code whose exchange met a HighLevel 5xx can be tried again, and is then spent', async () => {
      const locationId = sandbox.companies[0]!.locations[1]!.locationId
      const flow = new InstallFlow({ config: h.config, vault: h.vault })
      const { state } = await flow.start()
      const query = await h.consent(state, { locationId })
      await h.control('POST', '/_sandbox/faults', { endpoint: 'token', kind: 'error500', count: 1 })
      const before = await exchanges()
      await assert.rejects(flow.complete(query), (e: unknown) => e instanceof GhlError && e.code === 'GHL_UPSTREAM_UNAVAILABLE')
      assert.equal((await exchanges()) - before, 1)
      assert.equal((await h.vault.installations.list()).filter((r) => r.locationId === locationId).length, 0, 'nothing stored')
      // The user retries the same link: the state was spent by the first try, so a new one (the code is what matters).
      const { state: again } = await flow.start()
      const installation = await flow.complete({ code: query.code!, state: again })
      assert.equal(installation.locationId, locationId)
      assert.equal((await exchanges()) - before, 2, 'the retry reached HighLevel')
      // Now it is spent.
      const { state: third } = await flow.start()
      await assert.rejects(flow.complete({ code: query.code!, state: third }), (e: unknown) => e instanceof OAuthError && e.code === 'GHL_OAUTH_CODE_REUSED')
      assert.equal((await exchanges()) - before, 2)
    })
  })
}
