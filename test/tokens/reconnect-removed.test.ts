/**
 * HighLevel answers every `POST /oauth/reconnect` with 400 "API endpoint has been removed" (FACTS.md,
 * since September 2026; the sandbox's default). When 50 installations lose their grant at once in 3
 * processes, HighLevel is asked once — the answer is remembered for every instance through the
 * database — and every installation goes straight to re-consent; a re-authorization restores the same
 * installation (same id, its history kept).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { InstallFlow } from '../../src/oauth/install-flow.js'
import { RECONNECT_FLAG } from '../../src/tokens/index.js'
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js'
import type { Installation } from '../../src/vault/types.js'
import { DIALECTS, dialectSkipReason } from '../helpers/services.js'
import { createHarness, type Harness } from './harness.js'
import { result, startWorker, type Worker } from './workers.js'

const LOCATIONS = 50

for (const dialect of DIALECTS) {
  describe(`Reconnect removed, 50 installations, 3 processes (${dialect})`, { skip: await dialectSkipReason(dialect) }, () => {
    let sandbox: Sandbox
    let h: Harness
    let installs: Installation[]
    let workers: Worker[]

    before(async () => {
      sandbox = await startSandbox({
        port: 0,
        rateLimit: { burstMax: 1_000_000, burstWindowMs: 10_000, dailyMax: 10_000_000 },
        seed: {
          companies: [{ name: 'Big Agency', locations: Array.from({ length: LOCATIONS }, (_, i) => ({ name: `Location ${i + 1}` })) }],
          contactsPerLocation: 0,
        },
      })
      h = await createHarness(dialect, { sharedSandbox: sandbox })
      installs = []
      for (const l of sandbox.companies[0]!.locations) installs.push(await h.installLocation(l.locationId))
      const ids = installs.map((i) => i.locationId!).join(',')
      // The default SQLite lease (30 s): 150 refreshes at once in 3 processes keep SQLite's one writer
      // busy, and a 1 s lease (the kill tests' setting) could lapse while a holder is still at work.
      workers = [0, 1, 2].map(() => startWorker(h, installs[0]!.locationId!, { LOCATION_IDS: ids, LOCK_LEASE_MS: '30000' }))
      await Promise.all(workers.map((w) => w.waitFor('READY')))
    })
    after(async () => {
      for (const w of workers ?? []) {
        if (w.child.exitCode === null && w.child.signalCode === null) {
          w.child.stdin!.write('EXIT\n')
          const exited = once(w.child, 'exit')
          const timer = setTimeout(() => w.child.kill('SIGKILL'), 3000)
          await exited
          clearTimeout(timer)
        }
      }
      await h?.cleanup()
      await sandbox?.close()
    })

    test('every grant dead at once: HighLevel is asked once in all, every installation needs a user, with its link', async () => {
      // Each installation's refresh token dies at HighLevel, and the stored access token looks expired.
      for (const inst of installs) {
        await h.control('POST', '/_sandbox/tokens/revoke', { token: inst.tokens!.refreshToken })
        const row = (await h.vault.installations.get(inst.id))!
        assert.ok(await h.vault.installations.updateTokens(inst.id, row.version, { ...row.tokens!, expiresAt: new Date(Date.now() - 1000) }))
      }
      const before = await h.stats()
      for (const w of workers) w.each()
      const results = await Promise.all(workers.map(result))
      assert.deepEqual(results, [0, 1, 2].map(() => ({ GHL_REAUTHORIZATION_REQUIRED: LOCATIONS })))
      const stats = await h.stats()
      const reconnects = stats.reconnect.ok + stats.reconnect.error - (before.reconnect.ok + before.reconnect.error)
      assert.equal(reconnects, 1, 'one Reconnect call across 50 installations and 3 processes')
      assert.equal(stats.token.refresh_token.error - before.token.refresh_token.error, LOCATIONS, 'one refused refresh per installation, never two')
      const flag = await h.vault.flags.get(RECONNECT_FLAG)
      assert.equal(flag?.value, 'unavailable')
      for (const inst of installs) {
        const row = (await h.vault.installations.get(inst.id))!
        assert.equal(row.status, 'needs_reauthorization')
        assert.match(row.statusReason ?? '', /Reconnect is unavailable/)
        assert.ok(row.tokens?.refreshToken, 'nothing is wiped: the row waits for its user')
      }
      // A later dead grant does not ask again either (the answer is remembered for a day by default).
      const svc = h.newTokenService()
      await assert.rejects(svc.refreshNow(installs[0]!.id), /must be authorized again/)
      const later = await h.stats()
      assert.equal(later.reconnect.ok + later.reconnect.error, stats.reconnect.ok + stats.reconnect.error)
    })

    test('the re-authorization link restores the same installation: same id, history kept, calls work again', async () => {
      const inst = installs[7]!
      const flow = new InstallFlow({ config: h.config, vault: h.vault })
      const { url, state } = await flow.start({ installationId: inst.id })
      assert.match(new URL(url).pathname, /\/v2\/oauth\/chooselocation$/)
      const restored = await flow.complete(await h.consent(state, { locationId: inst.locationId! }))
      assert.equal(restored.id, inst.id)
      assert.equal(restored.status, 'active')
      assert.equal(restored.createdAt.getTime(), inst.createdAt.getTime())
      const actions = (await h.vault.audit.list(inst.id)).map((a) => a.action)
      assert.deepEqual(actions.slice(-2), ['reauthorization_required', 'reauthorized'])
      const svc = h.newTokenService()
      const grant = await svc.getAccessToken({ kind: 'location', id: inst.locationId! })
      assert.equal(await h.callApi(grant.accessToken, inst.locationId!), 200)
      // Its refresh token works too (a refresh, not a Reconnect).
      const before = await h.stats()
      await svc.refreshNow(inst.id)
      const after = await h.stats()
      assert.equal(after.token.refresh_token.ok - before.token.refresh_token.ok, 1)
      assert.equal(after.reconnect.ok + after.reconnect.error, before.reconnect.ok + before.reconnect.error)
    })
  })
}
