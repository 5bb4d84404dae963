/**
 * The audit log's retention: the vault deletes the oldest entries before a date, a bounded batch per
 * statement, on both dialects; the purge works a backlog off in batches and stops when asked; the
 * connector's background loop runs it with GHL_AUDIT_RETENTION_DAYS (and not at all with 0).
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { ManualClock } from '../../src/clock.js'
import { parseKeys } from '../../src/config.js'
import { createVault } from '../../src/vault/create-vault.js'
import { AuditRetention, purgeOldAudit } from '../../src/vault/audit-retention.js'
import { silentLogger } from '../../src/logger.js'
import type { AuditLog, Vault } from '../../src/vault/types.js'
import { DIALECTS, dialectSkipReason, freshDatabase, testKey } from '../helpers/services.js'
import { startStack } from '../helpers/stack.js'

const DAY = 86_400_000
const T0 = Date.UTC(2026, 0, 1)

/** An audit log holding `n` old entries, counting the statements it was sent. */
function backlog(n: number): AuditLog & { statements: number; left: () => number } {
  let left = n
  const log = {
    statements: 0,
    left: () => left,
    append: async () => {},
    list: async () => [],
    purgeBefore: async (_before: Date, limit: number) => {
      log.statements++
      const k = Math.min(left, limit)
      left -= k
      return k
    },
  }
  return log
}

for (const dialect of DIALECTS) {
  describe(`audit log retention (${dialect})`, { skip: await dialectSkipReason(dialect) }, () => {
    test('purgeBefore deletes the oldest entries before the date, at most `limit` per statement; newer ones stay', async () => {
      const db = await freshDatabase(dialect)
      const clock = new ManualClock(T0)
      const vault = await createVault({ databaseUrl: db.url, keys: parseKeys(`k1:${testKey()}`), clock })
      try {
        for (let i = 0; i < 5; i++) {
          await vault.audit.append({ installationId: 'a', action: 'old', detail: { i } })
          clock.advance(1000)
        }
        clock.set(T0 + 10 * DAY)
        await vault.audit.append({ installationId: 'a', action: 'new' })
        const cutoff = new Date(T0 + DAY)
        assert.equal(await vault.audit.purgeBefore(cutoff, 2), 2)
        assert.deepEqual((await vault.audit.list('a')).map((e) => e.detail.i ?? e.action), [2, 3, 4, 'new'], 'the oldest went first')
        assert.equal(await vault.audit.purgeBefore(cutoff, 10), 3)
        assert.equal(await vault.audit.purgeBefore(cutoff, 10), 0)
        assert.deepEqual((await vault.audit.list('a')).map((e) => e.action), ['new'])
        await assert.rejects(vault.audit.purgeBefore(new Date(Number.NaN), 10), /valid Date/)
      } finally {
        await vault.close()
        await db.cleanup()
      }
    })
  })
}

describe('purgeOldAudit', () => {
  test('works a backlog off in batches, stops at the first short batch, at most maxBatches per run', async () => {
    const small = backlog(1200)
    assert.equal(await purgeOldAudit(small, new Date(T0), { batch: 500 }), 1200)
    assert.equal(small.statements, 3, '500 + 500 + 200: the short batch ends the run')
    const big = backlog(10_000)
    assert.equal(await purgeOldAudit(big, new Date(T0), { batch: 500, maxBatches: 4 }), 2000)
    assert.equal(big.statements, 4)
    assert.equal(big.left(), 8000, 'the next run goes on')
  })

  test('stops between batches once asked (shutdown)', async () => {
    const log = backlog(10_000)
    let stop = false
    const run = purgeOldAudit(log, new Date(T0), { batch: 100, stopped: () => stop })
    stop = true // after the first statement was sent, before the next turn
    assert.equal(await run, 100)
    assert.equal(log.statements, 1)
  })
})

describe('AuditRetention', () => {
  test('runs at start and on its interval with entries before `days` ago; with days 0 it never sends a statement', async () => {
    const clock = new ManualClock(T0)
    const on = backlog(10)
    const asked: number[] = []
    const purge = on.purgeBefore
    on.purgeBefore = (before, limit) => (asked.push(before.getTime()), purge(before, limit))
    const retention = new AuditRetention(on, { days: 90, intervalMs: 60_000, clock, logger: silentLogger() })
    retention.start()
    await retention.runOnce() // joins the run begun by start()
    assert.deepEqual(asked, [T0 - 90 * DAY])
    assert.equal(on.left(), 0)
    await retention.stop()
    assert.equal(await retention.runOnce(), 0, 'stopped: nothing more')
    assert.equal(on.statements, 1)

    const off = backlog(10)
    const kept = new AuditRetention(off, { days: 0, intervalMs: 60_000, clock, logger: silentLogger() })
    kept.start()
    assert.equal(await kept.runOnce(), 0)
    assert.equal(off.statements, 0)
    assert.equal(off.left(), 10)
    await kept.stop()
  })

  test('a failed run is logged, resolves 0, and the next run goes on', async () => {
    const log = backlog(3)
    const purge = log.purgeBefore
    let fail = true
    log.purgeBefore = (before, limit) => (fail ? Promise.reject(new Error('database down')) : purge(before, limit))
    const retention = new AuditRetention(log, { days: 1, intervalMs: 60_000, clock: new ManualClock(T0), logger: silentLogger() })
    assert.equal(await retention.runOnce(), 0)
    fail = false
    assert.equal(await retention.runOnce(), 3)
    await retention.stop()
  })
})

describe('the connector deletes old audit entries in the background', () => {
  test('GHL_AUDIT_RETENTION_DAYS=90: an entry of 100 days ago is deleted, today\'s stays', async () => {
    const stack = await startStack({ env: { GHL_AUDIT_RETENTION_DAYS: '90' } })
    let past: Vault | undefined
    try {
      // A second vault on the same database whose clock is 100 days behind writes the old entry.
      past = await createVault({ databaseUrl: stack.databaseUrl, keys: stack.config.encryptionKeys, clock: new ManualClock(Date.now() - 100 * DAY) })
      await past.audit.append({ installationId: 'inst-old', action: 'refreshed' })
      await stack.connector.vault.audit.append({ installationId: 'inst-new', action: 'refreshed' })
      const entries = async () => (await stack.connector.vault.audit.list()).map((e) => e.installationId).filter((id) => id?.startsWith('inst-'))
      assert.deepEqual(await entries(), ['inst-old', 'inst-new'])
      stack.connector.startBackground({ intervalMs: 60_000 })
      const deadline = Date.now() + 10_000
      while ((await entries()).includes('inst-old') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25))
      assert.deepEqual(await entries(), ['inst-new'])
    } finally {
      await past?.close()
      await stack.close()
    }
  })
})
