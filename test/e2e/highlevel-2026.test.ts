/**
 * HighLevel as it behaves in 2026, end to end over HTTP against the sandbox, on SQLite and PostgreSQL:
 * installs that start on HighLevel's side (no state), one default config for agency and sub-account
 * installs (also when HighLevel insists that user_type match), a Company token for a single picked
 * location, suspended locations, v3 OAuth, and the INSTALL / PLAN_CHANGE payloads stored.
 * (Reconnect removed, across processes: test/tokens/reconnect-removed.test.ts.)
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { GhlError, InstallationSuspendedError } from '../../src/errors.js'
import { listInstalledLocations } from '../../src/oauth/installed-locations.js'
import { DIALECTS, dialectSkipReason } from '../helpers/services.js'
import { approveAt, installViaHttp, sandboxJson, startStack, type Stack, type StackOptions } from '../helpers/stack.js'

/** Polls until `check` is truthy (a webhook is processed asynchronously); fails after `ms`. */
async function until<T>(what: string, check: () => Promise<T | undefined | false>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await check()
    if (v) return v
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`)
    await sleep(25)
  }
}

/** HighLevel sends the user to the redirect URI with `?code=…` and no state (a Marketplace install). */
async function marketplaceInstall(stack: Stack, target: { locationId?: string; companyId?: string }): Promise<{ status: number; html: string; callbackUrl: string }> {
  const { redirect } = await sandboxJson<{ redirect: string }>(stack.sandbox, 'POST', '/_sandbox/authorize', {
    clientId: stack.config.clientId,
    redirectUri: stack.config.redirectUri,
    scope: stack.config.scopes.join(' '),
    webhookTiming: 'none',
    ...target,
  })
  assert.equal(new URL(redirect).searchParams.get('state'), null, 'no state from HighLevel')
  const res = await request(redirect)
  return { status: res.statusCode, html: await res.body.text(), callbackUrl: redirect }
}

async function stats(stack: Stack): Promise<any> {
  return sandboxJson(stack.sandbox, 'GET', '/_sandbox/stats')
}

for (const dialect of DIALECTS) {
  describe(`HighLevel in 2026 (${dialect})`, { skip: await dialectSkipReason(dialect) }, () => {
    const stacks: Stack[] = []
    const open = async (options: StackOptions = {}): Promise<Stack> => {
      const s = await startStack({ dialect, ...options })
      stacks.push(s)
      return s
    }
    after(async () => {
      for (const s of stacks) await s.close()
    })

    test('an install that starts on HighLevel (no state) completes and is listed; its callback replayed is refused', async () => {
      const stack = await open()
      const locationId = stack.sandbox.companies[0]!.locations[0]!.locationId
      const res = await marketplaceInstall(stack, { locationId })
      assert.equal(res.status, 200, res.html)
      assert.match(res.html, /installed/i)
      const listed = await request(`${stack.url}/api/installations`, { headers: { authorization: `Bearer ${stack.apiKey}` } })
      const { installations } = (await listed.body.json()) as { installations: Array<{ locationId: string; status: string }> }
      assert.deepEqual(
        installations.map((i) => [i.locationId, i.status]),
        [[locationId, 'active']],
      )
      const exchanges = (await stats(stack)).token.authorization_code
      const replay = await request(res.callbackUrl)
      assert.equal(replay.statusCode, 400)
      assert.match(await replay.body.text(), /GHL_OAUTH_CODE_REUSED/)
      assert.deepEqual((await stats(stack)).token.authorization_code, exchanges, 'the used code was not sent again')
      assert.equal((await stack.connector.location(locationId).get(`/locations/${locationId}`)).status, 200, 'its tokens were not revoked')
    })

    test('one default config (user_type Location as a hint) serves agency and sub-account installs', async () => {
      const stack = await open()
      assert.equal(stack.config.userType, 'Location')
      const company = stack.sandbox.companies[0]!
      const [own, , covered] = company.locations.map((l) => l.locationId) as [string, string, string]
      const agency = await installViaHttp(stack, { companyId: company.companyId, locationIds: [covered], webhookTiming: 'none' })
      assert.equal(agency.status, 200, agency.html)
      const location = await installViaHttp(stack, { locationId: own, webhookTiming: 'none' })
      assert.equal(location.status, 200, location.html)
      const agencyRow = await stack.connector.vault.installations.findByCompany(stack.config.clientId, company.companyId)
      assert.equal(agencyRow?.userType, 'Company')
      assert.equal(agencyRow?.locationId, null)
      const ownRow = await stack.connector.vault.installations.findByLocation(stack.config.clientId, own)
      assert.equal(ownRow?.userType, 'Location')
      assert.equal(ownRow?.source, 'oauth')
      // Both kinds are usable: the location's own token, the agency's, and a token minted for a location
      // only the agency install covers.
      assert.equal((await stack.connector.location(own).get(`/locations/${own}`)).status, 200)
      const listed = await stack.connector.company(company.companyId).get('/oauth/installedLocations', { query: { companyId: company.companyId, appId: stack.config.appId } })
      assert.equal(listed.status, 200)
      assert.equal((await stack.connector.location(covered).get(`/locations/${covered}`)).status, 200)
      const minted = await stack.connector.vault.installations.findByLocation(stack.config.clientId, covered)
      assert.equal(minted?.source, 'agency')
      assert.equal(minted?.parentId, agencyRow?.id)
    })

    test('HighLevel insisting that user_type match (strict variant): the agency install still completes, and the operator is told what to set', async () => {
      const stack = await open()
      await sandboxJson(stack.sandbox, 'PUT', '/_sandbox/settings', { userTypeCheck: 'strict' })
      const company = stack.sandbox.companies[0]!
      const before = (await stats(stack)).token.authorization_code
      const res = await installViaHttp(stack, { companyId: company.companyId, webhookTiming: 'none' })
      assert.equal(res.status, 200, res.html)
      const after = (await stats(stack)).token.authorization_code
      assert.deepEqual({ ok: after.ok - before.ok, error: after.error - before.error }, { ok: 1, error: 1 }, 'refused once as Location, then exchanged as Company')
      const row = await stack.connector.vault.installations.findByCompany(stack.config.clientId, company.companyId)
      assert.equal(row?.userType, 'Company')
      assert.ok(stack.logs.some((l) => l.includes('set GHL_USER_TYPE=Company')), 'the log says what to set')
      // A sub-account install with the same config needs no retry.
      const loc = await installViaHttp(stack, { locationId: company.locations[0]!.locationId, webhookTiming: 'none' })
      assert.equal(loc.status, 200, loc.html)
      const final = (await stats(stack)).token.authorization_code
      assert.deepEqual({ ok: final.ok - after.ok, error: final.error - after.error }, { ok: 1, error: 0 })
    })

    test('an agency user who picks one location gets a Company token with no location ids; a call for that location works', async () => {
      const stack = await open()
      await sandboxJson(stack.sandbox, 'PUT', '/_sandbox/settings', { locationPickToken: 'company' })
      const company = stack.sandbox.companies[0]!
      const picked = company.locations[1]!.locationId
      const res = await installViaHttp(stack, { locationId: picked, webhookTiming: 'none' })
      assert.equal(res.status, 200, res.html)
      const agency = await stack.connector.vault.installations.findByCompany(stack.config.clientId, company.companyId)
      assert.equal(agency?.userType, 'Company', 'the answer said Company: stored as an agency install')
      assert.deepEqual(agency?.approvedLocations, [])
      const mintsBefore = (await stats(stack)).locationToken.ok
      const call = await stack.connector.location(picked).get(`/locations/${picked}`)
      assert.equal(call.status, 200)
      const row = await stack.connector.vault.installations.findByLocation(stack.config.clientId, picked)
      assert.equal(row?.source, 'agency')
      assert.equal(row?.parentId, agency?.id)
      assert.equal((await stats(stack)).locationToken.ok - mintsBefore, 1)
    })

    test('a suspended location: calls fail fast with a typed error, nothing is lost; reactivated → active again with the same refresh token', async () => {
      const stack = await open({ env: { GHL_SUSPENDED_RETRY_MS: '1000' } })
      const locationId = stack.sandbox.companies[0]!.locations[0]!.locationId
      assert.equal((await installViaHttp(stack, { locationId, webhookTiming: 'none' })).status, 200)
      const { connector } = stack
      const row = (await connector.vault.installations.findByLocation(stack.config.clientId, locationId))!
      const kept = row.tokens!.refreshToken!
      const suspendedEvents: unknown[] = []
      const reactivatedEvents: unknown[] = []
      connector.on('suspended', (e) => suspendedEvents.push(e))
      connector.on('reactivated', (e) => reactivatedEvents.push(e))
      await sandboxJson(stack.sandbox, 'POST', `/_sandbox/locations/${locationId}/suspend`, {})
      // The stored access token looks expired: the next call refreshes, and HighLevel says the location is not active.
      assert.ok(await connector.vault.installations.updateTokens(row.id, row.version, { ...row.tokens!, expiresAt: new Date(Date.now() - 1000) }))
      connector.tokens.invalidate(row.id)
      await assert.rejects(connector.location(locationId).get(`/locations/${locationId}`), (e: unknown) => {
        assert.ok(e instanceof InstallationSuspendedError, String(e))
        assert.equal(e.code, 'GHL_INSTALLATION_SUSPENDED')
        assert.equal(e.status, 403)
        assert.match(e.message, /not active/)
        return true
      })
      const suspended = (await connector.vault.installations.get(row.id))!
      assert.equal(suspended.status, 'suspended')
      assert.equal(suspended.tokens?.refreshToken, kept, 'the refresh token is kept')
      assert.equal(suspendedEvents.length, 1)
      // Calls now fail fast: HighLevel is not asked again.
      const refreshes = (await stats(stack)).token.refresh_token
      await assert.rejects(connector.location(locationId).get(`/locations/${locationId}`), (e: unknown) => e instanceof GhlError && e.code === 'GHL_INSTALLATION_SUSPENDED')
      assert.deepEqual((await stats(stack)).token.refresh_token, refreshes)

      // The background refresher retries it on its schedule: still suspended at HighLevel → still suspended here.
      const refresher = connector.tokens.startBackgroundRefresher({ intervalMs: 3_600_000 })
      try {
        assert.equal((await refresher.sweep()).examined, 0, 'not before its retry time')
        await until('the retry time', async () => Date.now() > suspended.retryAt!.getTime() + 5)
        // A failure of background work (outside any request or call) is counted in /metrics too.
        const suspendedErrors = async (): Promise<number> =>
          Number(/^ghl_errors_total\{code="GHL_INSTALLATION_SUSPENDED"\} (\d+)$/m.exec((await connector.metrics.text()).body)?.[1] ?? 0)
        const errorsBefore = await suspendedErrors()
        assert.equal((await refresher.sweep()).examined, 1)
        assert.equal(await suspendedErrors(), errorsBefore + 1, 'the failed background refresh is in ghl_errors_total')
        const still = (await connector.vault.installations.get(row.id))!
        assert.equal(still.status, 'suspended')
        assert.equal(still.tokens?.refreshToken, kept)
        // Reactivated at HighLevel: the next retry refreshes with the same refresh token, and it is active again.
        await sandboxJson(stack.sandbox, 'POST', `/_sandbox/locations/${locationId}/reactivate`, {})
        await until('the next retry time', async () => Date.now() > still.retryAt!.getTime() + 5)
        const sweep = await refresher.sweep()
        assert.equal(sweep.refreshed, 1)
      } finally {
        await refresher.stop()
      }
      const active = (await connector.vault.installations.get(row.id))!
      assert.equal(active.status, 'active')
      assert.notEqual(active.tokens?.refreshToken, kept, 'rotated by the successful refresh')
      const issued = await sandboxJson<Array<{ value: string; state: string }>>(stack.sandbox, 'GET', '/_sandbox/tokens')
      assert.equal(issued.find((t) => t.value === kept)?.state, 'used', 'the kept refresh token is the one that was used')
      assert.equal(reactivatedEvents.length, 1)
      assert.equal((await connector.location(locationId).get(`/locations/${locationId}`)).status, 200)
    })

    test('v3 OAuth (GHL_OAUTH_VERSION=v3): install, refresh, agency mint and installed locations end to end', async () => {
      const stack = await open({ env: { GHL_OAUTH_VERSION: 'v3' } })
      const company = stack.sandbox.companies[0]!
      const [own, , covered] = company.locations.map((l) => l.locationId) as [string, string, string]
      assert.equal((await installViaHttp(stack, { locationId: own, webhookTiming: 'none' })).status, 200)
      const row = (await stack.connector.vault.installations.findByLocation(stack.config.clientId, own))!
      await stack.connector.tokens.refreshNow(row.id)
      assert.equal((await stack.connector.vault.installations.get(row.id))!.version, row.version + 1)
      assert.equal((await installViaHttp(stack, { companyId: company.companyId, webhookTiming: 'none' })).status, 200)
      assert.equal((await stack.connector.location(covered).get(`/locations/${covered}`)).status, 200, 'minted through /oauth/location-token')
      const s = await stats(stack)
      assert.ok(s.token.authorization_code.ok >= 2 && s.token.refresh_token.ok >= 1 && s.locationToken.ok >= 1, JSON.stringify(s))
      // Cursor paging of /oauth/installed-locations, one location per page.
      const agencyGrant = await stack.connector.tokens.getAccessToken({ kind: 'company', id: company.companyId })
      const pagesBefore = (await stats(stack)).installedLocations.ok
      const all = await listInstalledLocations(
        { apiUrl: stack.config.apiUrl, timeoutMs: 5000, version: 'v3' },
        { agencyAccessToken: agencyGrant.accessToken, companyId: company.companyId, appId: stack.config.appId, version: 'v3', pageSize: 1 },
      )
      assert.deepEqual(all.map((l) => l._id).sort(), company.locations.map((l) => l.locationId).sort())
      assert.equal((await stats(stack)).installedLocations.ok - pagesBefore, company.locations.length, 'one request per page')
    })

    test('a grant lost with Reconnect removed: the page shows the re-authorization link; following it restores the same installation', async () => {
      const stack = await open()
      const locationId = stack.sandbox.companies[0]!.locations[2]!.locationId
      assert.equal((await installViaHttp(stack, { locationId, webhookTiming: 'none' })).status, 200)
      const row = (await stack.connector.vault.installations.findByLocation(stack.config.clientId, locationId))!
      const events: Array<{ reauthorizationUrl: string }> = []
      stack.connector.on('reauthorizationRequired', (e) => events.push(e))
      await sandboxJson(stack.sandbox, 'POST', '/_sandbox/tokens/revoke', { token: row.tokens!.refreshToken })
      await assert.rejects(stack.connector.tokens.refreshNow(row.id), (e: unknown) => e instanceof GhlError && e.code === 'GHL_REAUTHORIZATION_REQUIRED')
      const link = `${stack.url}/oauth/reauthorize/${row.id}`
      assert.deepEqual(events.map((e) => e.reauthorizationUrl), [link])
      const page = await (await request(`${stack.url}/`)).body.text()
      assert.ok(page.includes(`href="${link}"`), 'the operator page links to it')
      // Following the link: HighLevel's consent page, then the callback, as for an install.
      const start = await request(link)
      assert.equal(start.statusCode, 302)
      const authorize = new URL(String(start.headers.location))
      assert.match(authorize.pathname, /\/v2\/oauth\/chooselocation$/)
      const redirect = await approveAt(stack.sandbox, String(start.headers.location), { locationId, webhookTiming: 'none' })
      const done = await request(redirect)
      assert.equal(done.statusCode, 200, await done.body.text())
      const restored = (await stack.connector.vault.installations.get(row.id))!
      assert.equal(restored.status, 'active')
      assert.equal(restored.createdAt.getTime(), row.createdAt.getTime(), 'the same installation')
      assert.deepEqual((await stack.connector.vault.audit.list(row.id)).map((a) => a.action).slice(-2), ['reauthorization_required', 'reauthorized'])
      assert.equal((await stack.connector.location(locationId).get(`/locations/${locationId}`)).status, 200)
      // An unknown installation id: a clear page, nothing started.
      const unknown = await request(`${stack.url}/oauth/reauthorize/no-such-installation`)
      assert.equal(unknown.statusCode, 404)
      assert.match(await unknown.body.text(), /GHL_NOT_INSTALLED/)
    })

    test('INSTALL and PLAN_CHANGE as HighLevel sends them are stored on the installation; the plan change is an event', async () => {
      const stack = await open({ sandbox: { seed: { apps: [{ planId: 'plan-basic', trialDays: 7 }] } } })
      const locationId = stack.sandbox.companies[0]!.locations[0]!.locationId
      const changes: unknown[] = []
      stack.connector.on('planChanged', (c) => changes.push(c))
      assert.equal((await installViaHttp(stack, { locationId, webhookTiming: 'after-exchange' })).status, 200)
      const installed = await until('the INSTALL webhook to be stored', async () => {
        const r = await stack.connector.vault.installations.findByLocation(stack.config.clientId, locationId)
        return r?.installInfo.trial ? r : undefined
      })
      assert.equal(installed.planId, 'plan-basic')
      assert.equal(installed.installInfo.trial?.onTrial, true)
      assert.equal(installed.installInfo.trial?.trialDuration, 7)
      assert.equal(typeof installed.installInfo.versionId, 'string')
      assert.equal(installed.companyName, stack.sandbox.companies[0]!.name)
      const sent = await sandboxJson<{ currentPlanId: string; newPlanId: string }>(stack.sandbox, 'POST', '/_sandbox/plan-change', { locationId, newPlanId: 'plan-pro' })
      assert.equal(sent.currentPlanId, 'plan-basic')
      const changed = await until('the PLAN_CHANGE webhook to be applied', async () => {
        const r = await stack.connector.vault.installations.get(installed.id)
        return r?.planId === 'plan-pro' ? r : undefined
      })
      assert.equal(changed.installInfo.previousPlanId, 'plan-basic')
      assert.deepEqual(changes, [{ installationId: installed.id, previousPlanId: 'plan-basic', planId: 'plan-pro' }])
      const audit = await stack.connector.vault.audit.list(installed.id)
      assert.ok(audit.some((a) => a.action === 'plan_changed' && a.detail.planId === 'plan-pro'))
      const page = await (await request(`${stack.url}/`)).body.text()
      assert.match(page, /plan-pro/)
    })
  })
}
