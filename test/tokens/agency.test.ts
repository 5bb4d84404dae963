/**
 * Agency installs: location tokens minted from the company installation (`/oauth/locationToken`),
 * once under concurrency, reused, re-minted after expiry or a 401; locations outside the install refused.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { ManualClock } from '../../src/clock.js'
import { NotInstalledError } from '../../src/errors.js'
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js'
import type { TokenEvents } from '../../src/tokens/types.js'
import type { Installation } from '../../src/vault/types.js'
import { DIALECTS, dialectSkipReason } from '../helpers/services.js'
import { createHarness, type Harness } from './harness.js'

const DAY_MS = 86_399_000

for (const dialect of DIALECTS) {
  describe(`agency location tokens (${dialect})`, { skip: await dialectSkipReason(dialect) }, () => {
    let sandbox: Sandbox
    let h: Harness
    let clock: ManualClock
    let agency: Installation
    let approved: string[]
    let notApproved: string
    let companyId: string

    before(async () => {
      sandbox = await startSandbox({ port: 0, rateLimit: { burstMax: 1_000_000, burstWindowMs: 10_000, dailyMax: 10_000_000 } })
      clock = new ManualClock(Date.now())
      h = await createHarness(dialect, { sharedSandbox: sandbox, clock })
      const company = sandbox.companies[0]!
      companyId = company.companyId
      approved = company.locations.slice(0, 2).map((l) => l.locationId)
      notApproved = company.locations[2]!.locationId
      agency = await h.installAgency(companyId, approved)
    })
    after(async () => {
      await h.cleanup()
      await sandbox.close()
    })

    test('the agency installation is stored as a Company install with its approved locations', () => {
      assert.equal(agency.userType, 'Company')
      assert.equal(agency.locationId, null)
      assert.deepEqual(agency.approvedLocations.slice().sort(), approved.slice().sort())
    })

    test('company target → the agency token', async () => {
      const g = await h.tokens.getAccessToken({ kind: 'company', id: companyId })
      assert.equal(g.installationId, agency.id)
      assert.equal(g.resourceId, companyId)
    })

    test('50 concurrent location calls mint once; later calls reuse it', async () => {
      const minted: TokenEvents['minted'][] = []
      h.tokens.on('minted', (e) => minted.push(e))
      const target = { kind: 'location' as const, id: approved[0]! }
      const grants = await Promise.all(Array.from({ length: 50 }, () => h.tokens.getAccessToken(target)))
      assert.equal(new Set(grants.map((g) => g.accessToken)).size, 1)
      assert.equal((await h.stats()).locationToken.ok, 1)
      assert.equal(minted.length, 1)
      assert.equal(minted[0]!.parentId, agency.id)
      assert.equal(await h.callApi(grants[0]!.accessToken, target.id), 200)
      const row = await h.vault.installations.findByLocation(h.config.clientId, target.id)
      assert.equal(row!.source, 'agency')
      assert.equal(row!.parentId, agency.id)
      assert.equal(row!.tokens!.refreshToken, null)
      // One audit entry, written with the row (its version in the detail).
      const entries = (await h.vault.audit.list(row!.id)).filter((e) => e.action === 'minted')
      assert.deepEqual(entries.map((e) => e.detail), [{ parentId: agency.id, version: row!.version }])
      // Reuse: from memory, and from the vault for a second worker.
      await Promise.all(Array.from({ length: 50 }, () => h.tokens.getAccessToken(target)))
      const other = h.newTokenService()
      assert.equal((await other.getAccessToken(target)).accessToken, grants[0]!.accessToken)
      assert.equal((await h.stats()).locationToken.ok, 1)
    })

    test('an expired minted token is re-minted (once) into the same row', async () => {
      const target = { kind: 'location' as const, id: approved[0]! }
      const before = await h.vault.installations.findByLocation(h.config.clientId, target.id)
      const okBefore = (await h.stats()).locationToken.ok
      clock.advance(DAY_MS)
      const grants = await Promise.all(Array.from({ length: 20 }, () => h.tokens.getAccessToken(target)))
      assert.equal(new Set(grants.map((g) => g.accessToken)).size, 1)
      assert.equal((await h.stats()).locationToken.ok, okBefore + 1)
      const after = await h.vault.installations.findByLocation(h.config.clientId, target.id)
      assert.equal(after!.id, before!.id)
      assert.ok(after!.version > before!.version)
      assert.equal(await h.callApi(grants[0]!.accessToken, target.id), 200)
      const entries = (await h.vault.audit.list(after!.id)).filter((e) => e.action === 'minted')
      assert.deepEqual(entries.at(-1)?.detail, { parentId: agency.id, version: after!.version }, 'the re-mint has its entry, with the new version')
    })

    test('a 401 on a minted token re-mints it', async () => {
      const target = { kind: 'location' as const, id: approved[0]! }
      const g = await h.tokens.getAccessToken(target)
      await h.control('POST', '/_sandbox/tokens/expire', { token: g.accessToken })
      assert.equal(await h.callApi(g.accessToken, target.id), 401)
      const okBefore = (await h.stats()).locationToken.ok
      const fresh = await Promise.all(Array.from({ length: 10 }, () => h.tokens.onUnauthorized(target, g)))
      assert.equal(new Set(fresh.map((x) => x.accessToken)).size, 1)
      assert.equal((await h.stats()).locationToken.ok, okBefore + 1)
      assert.equal(await h.callApi(fresh[0]!.accessToken, target.id), 200)
    })

    test('mintLocationToken mints explicitly for the second approved location', async () => {
      const s = await h.tokens.mintLocationToken(companyId, approved[1]!)
      assert.equal(s.locationId, approved[1])
      assert.equal(s.source, 'agency')
      assert.equal(s.parentId, agency.id)
      assert.ok(!('tokens' in s))
      const g = await h.tokens.getAccessToken({ kind: 'location', id: approved[1]! })
      assert.equal(await h.callApi(g.accessToken, approved[1]!), 200)
    })

    test('a location the agency did not approve → NotInstalledError, nothing stored', async () => {
      await assert.rejects(h.tokens.getAccessToken({ kind: 'location', id: notApproved }), (e: unknown) => {
        assert.ok(e instanceof NotInstalledError)
        assert.equal(e.status, 404)
        assert.match(e.message, new RegExp(notApproved))
        return true
      })
      assert.equal(await h.vault.installations.findByLocation(h.config.clientId, notApproved), undefined)
      await assert.rejects(h.tokens.getAccessToken({ kind: 'location', id: 'unknown-location' }), NotInstalledError)
      assert.equal(await h.vault.installations.findByLocation(h.config.clientId, 'unknown-location'), undefined)
    })
  })
}
