/**
 * InstallFlow end to end against the sandbox, on every vault backend: the happy path stores one
 * installation; every bad callback gets its own clear error and stores nothing.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { ManualClock } from '../../src/clock.js'
import { loadConfig } from '../../src/config.js'
import { GhlError, OAuthError } from '../../src/errors.js'
import { InstallFlow, STATE_TTL_MS } from '../../src/oauth/install-flow.js'
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js'
import { DIALECTS, dialectSkipReason } from '../helpers/services.js'
import { createHarness, REDIRECT_URI, type Harness } from '../tokens/harness.js'

for (const dialect of DIALECTS) {
  describe(`InstallFlow (${dialect})`, { skip: await dialectSkipReason(dialect) }, () => {
    let sandbox: Sandbox
    let h: Harness
    let clock: ManualClock
    let flow: InstallFlow
    let locationId: string

    before(async () => {
      sandbox = await startSandbox({ port: 0 })
      clock = new ManualClock(Date.now())
      h = await createHarness(dialect, { sharedSandbox: sandbox, clock, vaultClock: clock, env: { GHL_TOKEN_TIMEOUT_MS: '1500' } })
      flow = new InstallFlow({ config: h.config, vault: h.vault, clock })
      locationId = sandbox.companies[0]!.locations[0]!.locationId
    })
    after(async () => {
      await h.cleanup()
      await sandbox.close()
    })

    /** Asserts the error and that nothing was stored. */
    async function rejects(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
      await assert.rejects(p, (e: unknown) => {
        assert.ok(e instanceof GhlError, `expected a GhlError, got ${String(e)}`)
        assert.equal(e.code, code)
        assert.match(e.message, message)
        return true
      })
      assert.deepEqual(await h.vault.installations.list(), [])
    }

    test('start() gives the chooselocation URL with a fresh state', async () => {
      const a = await flow.start({ returnTo: '/done', loginWindowOpenMode: 'self' })
      const b = await flow.start()
      assert.notEqual(a.state, b.state)
      assert.equal(Buffer.from(a.state, 'base64url').length, 32)
      const url = new URL(a.url)
      assert.equal(url.pathname, '/v2/oauth/chooselocation')
      assert.equal(url.searchParams.get('state'), a.state)
      assert.equal(url.searchParams.get('redirect_uri'), REDIRECT_URI)
      assert.equal(url.searchParams.get('loginWindowOpenMode'), 'self')
    })

    test('missing code → GHL_OAUTH_CODE_MISSING, nothing stored', async () => {
      const { state } = await flow.start()
      await rejects(flow.complete({ state }), 'GHL_OAUTH_CODE_MISSING', /without an authorization code/)
    })

    test('unknown code → GHL_OAUTH_GRANT_REJECTED, nothing stored', async () => {
      const { state } = await flow.start()
      await rejects(flow.complete({ state, code: 'not-a-code' }), 'GHL_OAUTH_GRANT_REJECTED', /rejected/)
    })

    test('forged state → GHL_OAUTH_STATE_INVALID, nothing stored (code not even exchanged)', async () => {
      const before = (await h.stats()).token.authorization_code
      const query = await h.consent('forged-state', { locationId })
      await rejects(flow.complete(query), 'GHL_OAUTH_STATE_INVALID', /unknown, expired or was already used/)
      assert.deepEqual((await h.stats()).token.authorization_code, before)
    })

    test('with GHL_INSTALL_REQUIRE_STATE, a callback without state → GHL_OAUTH_STATE_INVALID, code not exchanged', async () => {
      const strict = new InstallFlow({ config: loadConfig({ env: { ...h.env, GHL_INSTALL_REQUIRE_STATE: 'true' } }), vault: h.vault, clock })
      const before = (await h.stats()).token.authorization_code
      const query = await h.consent(undefined, { locationId })
      await rejects(strict.complete({ code: query.code }), 'GHL_OAUTH_STATE_INVALID', /no state parameter.*GHL_INSTALL_REQUIRE_STATE/)
      assert.deepEqual((await h.stats()).token.authorization_code, before)
    })

    test('expired state (clock moved past 10 minutes) → GHL_OAUTH_STATE_INVALID', async () => {
      const { state } = await flow.start()
      const query = await h.consent(state, { locationId })
      clock.advance(STATE_TTL_MS + 1)
      await rejects(flow.complete(query), 'GHL_OAUTH_STATE_INVALID', /expired/)
    })

    test('denial → GHL_OAUTH_DENIED with a clear message, state consumed, nothing stored', async () => {
      const { state } = await flow.start()
      const query = await h.consent(state, { locationId, deny: true })
      assert.equal(query.error, 'access_denied')
      await rejects(flow.complete({ ...query, error_description: 'The user said no' }), 'GHL_OAUTH_DENIED', /You declined.*The user said no/)
      // The state is spent: the same link cannot complete afterwards.
      const again = await h.consent(state, { locationId })
      await rejects(flow.complete(again), 'GHL_OAUTH_STATE_INVALID', /already used/)
    })

    test('non-string parameters → GHL_BAD_REQUEST', async () => {
      const { state } = await flow.start()
      await rejects(flow.complete({ state, code: ['a', 'b'] }), 'GHL_BAD_REQUEST', /code must each be a single text value/)
    })

    test('token endpoint 500 → GHL_UPSTREAM_UNAVAILABLE, nothing stored', async () => {
      const { state } = await flow.start()
      const query = await h.consent(state, { locationId })
      await h.control('POST', '/_sandbox/faults', { endpoint: 'token', kind: 'error500', count: 1 })
      await rejects(flow.complete(query), 'GHL_UPSTREAM_UNAVAILABLE', /500/)
    })

    test('token endpoint hang → GHL_TIMEOUT within tokenRequestTimeoutMs, nothing stored', async () => {
      const { state } = await flow.start()
      const query = await h.consent(state, { locationId })
      await h.control('POST', '/_sandbox/faults', { endpoint: 'token', kind: 'hang', count: 1, hangMs: 5000 })
      await rejects(flow.complete(query), 'GHL_TIMEOUT', /within 1500 ms/)
    })

    test('token endpoint malformed body → GHL_OAUTH_INVALID_RESPONSE, nothing stored', async () => {
      const { state } = await flow.start()
      const query = await h.consent(state, { locationId })
      await h.control('POST', '/_sandbox/faults', { endpoint: 'token', kind: 'malformed', count: 1 })
      await rejects(flow.complete(query), 'GHL_OAUTH_INVALID_RESPONSE', /not JSON/)
    })

    test('mismatched redirect URI → GHL_OAUTH_GRANT_REJECTED, nothing stored', async () => {
      const other = 'http://127.0.0.1:2/other/callback'
      sandbox.configureApp({ redirectUris: [REDIRECT_URI, other] })
      const { state } = await flow.start()
      const query = await h.consent(state, { locationId }, other)
      await rejects(flow.complete(query), 'GHL_OAUTH_GRANT_REJECTED', /rejected/)
      sandbox.configureApp({ redirectUris: [REDIRECT_URI] })
    })

    test('wrong client secret → GHL_OAUTH_CLIENT_REJECTED, nothing stored', async () => {
      const badFlow = new InstallFlow({ config: loadConfig({ env: { ...h.env, GHL_CLIENT_SECRET: 'wrong-secret' } }), vault: h.vault, clock })
      const { state } = await badFlow.start()
      const query = await h.consent(state, { locationId })
      await rejects(badFlow.complete(query), 'GHL_OAUTH_CLIENT_REJECTED', /client id or secret/)
    })

    test('happy path stores the installation; reused state and reused code are refused', async () => {
      const { state } = await flow.start({ returnTo: '/welcome' })
      const query = await h.consent(state, { locationId })
      const { installation, returnTo } = await flow.completeWithState(query)
      assert.equal(returnTo, '/welcome')
      assert.equal(installation.locationId, locationId)
      assert.equal(installation.source, 'oauth')
      assert.equal(installation.status, 'active')
      assert.ok(installation.tokens?.refreshToken)
      assert.deepEqual(installation.scopes.sort(), h.config.scopes.slice().sort())
      const listed = await h.vault.installations.list()
      assert.equal(listed.length, 1)

      // Replaying the same callback: the state is spent.
      await assert.rejects(flow.complete(query), (e: unknown) => e instanceof OAuthError && e.code === 'GHL_OAUTH_STATE_INVALID')
      // The same code with a new state: refused before it reaches HighLevel (which would revoke the
      // tokens issued from a code used twice, RFC 6749 §4.1.2 — the sandbox does).
      const exchanges = (await h.stats()).token.authorization_code
      const { state: s2 } = await flow.start()
      await assert.rejects(flow.complete({ code: query.code, state: s2 }), (e: unknown) => e instanceof OAuthError && e.code === 'GHL_OAUTH_CODE_REUSED')
      assert.deepEqual((await h.stats()).token.authorization_code, exchanges, 'the used code never reached HighLevel')
      const after = await h.vault.installations.list()
      assert.equal(after.length, 1)
      assert.equal(after[0]!.version, listed[0]!.version)
      // And the installation's tokens still work: nothing was revoked.
      assert.equal(await h.callApi(installation.tokens!.accessToken, locationId), 200)
    })

    test('an install that starts on HighLevel (no state at all) completes; replaying its callback is refused, nothing changes', async () => {
      const other = sandbox.companies[0]!.locations[1]!.locationId
      const query = await h.consent(undefined, { locationId: other })
      assert.equal(query.state, undefined, 'HighLevel sends no state for a Marketplace install')
      const { installation, returnTo } = await flow.completeWithState({ code: query.code })
      assert.equal(returnTo, undefined)
      assert.equal(installation.locationId, other)
      assert.equal(installation.status, 'active')
      const audit = await h.vault.audit.list(installation.id)
      assert.equal(audit.at(-1)?.detail.startedBy, 'highlevel')
      const exchanges = (await h.stats()).token.authorization_code
      await assert.rejects(flow.complete({ code: query.code }), (e: unknown) => e instanceof OAuthError && e.code === 'GHL_OAUTH_CODE_REUSED')
      assert.deepEqual((await h.stats()).token.authorization_code, exchanges)
      assert.equal((await h.vault.installations.get(installation.id))!.version, installation.version)
      assert.equal(await h.callApi(installation.tokens!.accessToken, other), 200)
    })

    test('a state that is present must be valid even for an otherwise good code (forged, then used)', async () => {
      const other = sandbox.companies[0]!.locations[2]!.locationId
      const query = await h.consent('forged-state-value-0123456789', { locationId: other })
      await assert.rejects(flow.complete(query), (e: unknown) => e instanceof OAuthError && e.code === 'GHL_OAUTH_STATE_INVALID')
      assert.equal(await h.vault.installations.findByLocation(h.config.clientId, other), undefined)
    })
  })
}
