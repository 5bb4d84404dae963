/**
 * Several processes on one database: exactly one refresh among all of them, and recovery when the
 * process holding the refresh lock is killed after HighLevel rotated the token but before it was stored.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js'
import type { Installation } from '../../src/vault/types.js'
import { DIALECTS, dialectSkipReason } from '../helpers/services.js'
import { createHarness, type Harness } from './harness.js'
import { result, startWorker, type Worker } from './workers.js'

for (const dialect of DIALECTS) {
  describe(`multi-process refresh (${dialect})`, { skip: await dialectSkipReason(dialect) }, () => {
    let sandbox: Sandbox
    let h: Harness
    let inst: Installation
    let workers: Worker[]

    before(async () => {
      sandbox = await startSandbox({ port: 0, reconnect: 'allow', rateLimit: { burstMax: 1_000_000, burstWindowMs: 10_000, dailyMax: 10_000_000 } })
      h = await createHarness(dialect, { sharedSandbox: sandbox })
      inst = await h.installLocation()
      // Started once (tsx start-up is the slow part); each round uses a new TokenService in them.
      workers = [0, 1, 2].map(() => startWorker(h, inst.locationId!))
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
      await h.cleanup()
      await sandbox.close()
    })

    /** Makes the stored access token look expired to every process (HighLevel still accepts it). */
    async function expireStoredToken(): Promise<void> {
      const row = await h.vault.installations.get(inst.id)
      const updated = await h.vault.installations.updateTokens(inst.id, row!.version, { ...row!.tokens!, expiresAt: new Date(Date.now() - 1000) })
      assert.ok(updated)
    }

    test('3 processes × 100 concurrent calls with an expired token → exactly one refresh, all succeed', async () => {
      await expireStoredToken()
      const before = await h.stats()
      for (const w of workers) w.go(100)
      const results = await Promise.all(workers.map(result))
      assert.deepEqual(results, [{ ok: 100 }, { ok: 100 }, { ok: 100 }])
      const stats = await h.stats()
      assert.equal(stats.token.refresh_token.ok - before.token.refresh_token.ok, 1, 'exactly one refresh across processes')
      assert.equal(stats.token.refresh_token.error - before.token.refresh_token.error, 0)
      assert.equal(stats.reconnect.ok - before.reconnect.ok, 0)
    })

    test('the lock holder is SIGKILLed after HighLevel rotated: the others recover via Reconnect, installation stays active', async () => {
      await expireStoredToken()
      const before = await h.stats()
      const versionBefore = (await h.vault.installations.getVersion(inst.id))!
      const [killed, ...others] = workers as [Worker, Worker, Worker]
      killed.go(50, true)
      await killed.waitFor('HOLDING') // HighLevel answered and rotated; nothing stored; lock held
      assert.equal((await h.stats()).token.refresh_token.ok - before.token.refresh_token.ok, 1)

      for (const w of others) w.go(100) // they queue on the lock the killed process holds
      killed.child.kill('SIGKILL')
      await once(killed.child, 'exit')

      const results = await Promise.all(others.map(result))
      assert.deepEqual(results, [{ ok: 100 }, { ok: 100 }])
      const stats = await h.stats()
      assert.equal(stats.token.refresh_token.ok - before.token.refresh_token.ok, 1, 'only the killed process refreshed')
      assert.equal(stats.token.refresh_token.error - before.token.refresh_token.error, 1, 'the next holder got invalid_grant once')
      assert.equal(stats.reconnect.ok - before.reconnect.ok, 1, 'recovered through Reconnect once')
      const row = await h.vault.installations.get(inst.id)
      assert.equal(row!.status, 'active')
      assert.equal(row!.version, versionBefore + 1)
      // Usable from a fresh worker, and its refresh token works.
      const svc = h.newTokenService()
      const g = await svc.getAccessToken({ kind: 'location', id: inst.locationId! })
      assert.equal(await h.callApi(g.accessToken, inst.locationId!), 200)
      await svc.refreshNow(inst.id)
      assert.equal((await h.stats()).token.refresh_token.ok - before.token.refresh_token.ok, 2)
    })
  })
}
