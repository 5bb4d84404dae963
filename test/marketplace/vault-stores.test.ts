/**
 * The vault's Marketplace roles on every backend: charges (one claimant among concurrent ones, outcomes
 * written only by the claim's holder, conflicts), trigger subscriptions, credentials (encrypted, bound
 * to their row, covered by key rotation) and billing reports — each test on a fresh database.
 */
import { afterEach, beforeEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { ManualClock } from '../../src/clock.js'
import { parseKeys } from '../../src/config.js'
import { GhlError } from '../../src/errors.js'
import { createVault } from '../../src/vault/index.js'
import type { Vault } from '../../src/vault/types.js'
import { DIALECTS, dialectSkipReason, freshDatabase, testKey } from '../helpers/services.js'
import { openRaw } from '../vault/helpers.js'

const KEY_A = `A:${testKey()}`
const KEY_B = `B:${testKey()}`
const CLIENT = 'aaaaaaaaaaaaaaaaaaaaaaaa-client01'

for (const dialect of DIALECTS) {
  describe(`vault marketplace roles (${dialect})`, { skip: await dialectSkipReason(dialect) }, () => {
    let database: { url: string; cleanup: () => Promise<void> }
    let vault: Vault
    let clock: ManualClock
    const extra: Vault[] = []

    beforeEach(async () => {
      database = await freshDatabase(dialect)
      clock = new ManualClock(Date.UTC(2026, 5, 1))
      vault = await createVault({ databaseUrl: database.url, keys: parseKeys(KEY_A), clock })
    })
    afterEach(async () => {
      for (const v of extra.splice(0)) await v.close()
      await vault.close()
      await database.cleanup()
    })

    const key = { clientId: CLIENT, locationId: 'LOC1', eventId: 'evt-1' }
    const charge = { ...key, companyId: 'COMP1', meterId: 'M1', request: { meterId: 'M1', units: 2, description: 'two' } }
    const lease = (owner: string, ms = 60_000) => ({ owner, until: new Date(clock.now() + ms) })

    describe('charges', () => {
      test('of 20 concurrent begins of one eventId exactly one holds the claim; the row is stored once', async () => {
        const others = await Promise.all([0, 1].map(() => createVault({ databaseUrl: database.url, keys: parseKeys(KEY_A), clock })))
        extra.push(...others)
        const vaults = [vault, ...others]
        const results = await Promise.all(Array.from({ length: 20 }, (_, i) => vaults[i % 3]!.charges.begin(charge, lease(`owner-${i}`))))
        assert.equal(results.filter((r) => r.claimed).length, 1)
        assert.equal(results.filter((r) => r.conflict).length, 0)
        const raw = await openRaw(dialect, database.url)
        try {
          const rows = await raw.query<{ n: number | string }>('select count(*) as n from marketplace_charges')
          assert.equal(Number(rows[0]!.n), 1)
        } finally {
          await raw.close()
        }
      })

      test('only the holder writes the outcome; a live claim is not taken; an expired one is', async () => {
        const first = await vault.charges.begin(charge, lease('a'))
        assert.equal(first.claimed, true)
        assert.equal(first.record.status, 'pending')
        assert.equal(await vault.charges.markAttempt(key, 'b'), false)
        assert.equal(await vault.charges.markAttempt(key, 'a'), true)
        const second = await vault.charges.begin(charge, lease('b'))
        assert.equal(second.claimed, false, 'a live claim')
        assert.equal(await vault.charges.complete(key, 'b', { status: 'charged', chargeId: 'X' }), false)
        clock.advance(61_000)
        assert.equal(await vault.charges.claim(key, lease('b')), true, 'an expired claim')
        assert.equal(await vault.charges.complete(key, 'a', { status: 'charged', chargeId: 'A' }), false, 'the old holder lost it')
        assert.equal(await vault.charges.complete(key, 'b', { status: 'charged', chargeId: 'B' }), true)
        const row = await vault.charges.get(key)
        assert.deepEqual([row?.status, row?.chargeId, row?.attempts, row?.claimedBy], ['charged', 'B', 1, null])
        assert.equal((await vault.charges.begin(charge, lease('c'))).claimed, false, 'a charged row is never claimed again')
        assert.equal((await vault.charges.findByChargeId(CLIENT, 'LOC1', 'B'))?.eventId, 'evt-1')
        assert.equal(await vault.charges.markRefunded(CLIENT, 'LOC1', 'B'), true)
        assert.equal((await vault.charges.get(key))?.status, 'refunded')
      })

      test('another meter, number of units, price or user under one eventId is a conflict; description and eventTime are not', async () => {
        await vault.charges.begin(charge, lease('a'))
        await vault.charges.complete(key, 'a', { status: 'failed', lastError: 'x' })
        for (const change of [{ meterId: 'M2' }, { units: 3 }, { price: 0.5 }, { userId: 'u' }]) {
          const r = await vault.charges.begin({ ...charge, request: { ...charge.request, ...change } }, lease('b'))
          assert.equal(r.conflict, true, JSON.stringify(change))
          assert.equal(r.claimed, false)
        }
        const same = await vault.charges.begin({ ...charge, request: { ...charge.request, description: 'other words', eventTime: '2026-01-01T00:00:00Z' } }, lease('b'))
        assert.deepEqual([same.conflict, same.claimed], [false, true], 'a failed row is claimed again')
      })

      test('unsettled lists pending rows nobody holds; bad input is refused with every problem', async () => {
        await vault.charges.begin(charge, lease('a', 1000))
        await vault.charges.begin({ ...charge, eventId: 'evt-2' }, lease('a', 1000))
        await vault.charges.complete({ ...key, eventId: 'evt-2' }, 'a', { status: 'charged', chargeId: 'C' })
        assert.deepEqual(await vault.charges.unsettled(CLIENT), [])
        clock.advance(2000)
        assert.deepEqual((await vault.charges.unsettled(CLIENT)).map((r) => r.eventId), ['evt-1'])
        const err = await vault.charges.begin({ ...charge, eventId: '', meterId: '' }, { owner: '', until: new Date(NaN) }).then(
          () => undefined,
          (e: unknown) => e,
        )
        assert.ok(err instanceof GhlError)
        assert.equal(err.code, 'GHL_BAD_REQUEST')
        assert.match(err.message, /eventId.*meterId|meterId.*eventId/s)
        assert.match(err.message, /claim\.owner/)
      })
    })

    describe('trigger subscriptions', () => {
      const sub = { clientId: CLIENT, triggerId: 'T1', key: 'order_paid', locationId: 'LOC1', companyId: 'COMP1', workflowId: 'W1', targetUrl: 'https://services.leadconnectorhq.com/workflows-marketplace/triggers/execute/LOC1/T1', filters: [{ field: 'status', operator: '==', value: 'paid' }], version: '1.0' }

      test('created, updated in place, listed by location and key, removed', async () => {
        await vault.triggers.upsert(sub)
        await vault.triggers.upsert({ ...sub, triggerId: 'T2', workflowId: 'W2', filters: [] })
        await vault.triggers.upsert({ ...sub, triggerId: 'T3', key: 'other' })
        await vault.triggers.upsert({ ...sub, triggerId: 'T4', locationId: 'LOC2' })
        const updated = await vault.triggers.upsert({ ...sub, filters: [{ field: 'status', operator: '==', value: 'refunded' }] })
        assert.deepEqual(updated.filters, [{ field: 'status', operator: '==', value: 'refunded' }])
        assert.deepEqual((await vault.triggers.list({ clientId: CLIENT, locationId: 'LOC1', key: 'order_paid' })).map((s) => s.triggerId), ['T1', 'T2'])
        assert.equal((await vault.triggers.list({ clientId: CLIENT, locationId: 'LOC1' })).length, 3)
        assert.equal(await vault.triggers.remove(CLIENT, 'T1'), true)
        assert.equal(await vault.triggers.remove(CLIENT, 'T1'), false)
        assert.equal(await vault.triggers.get(CLIENT, 'T1'), undefined)
        assert.equal(await vault.triggers.removeLocation(CLIENT, 'LOC1'), 2)
        assert.deepEqual((await vault.triggers.list({ clientId: CLIENT, locationId: 'LOC2' })).map((s) => s.triggerId), ['T4'])
      })
    })

    describe('credentials', () => {
      const plaintext = 'sk_live_external-credential-4f6b1c9e2d7a'

      test('stored encrypted (the raw database never holds the plaintext), read back decrypted', async () => {
        await vault.credentials.put({ clientId: CLIENT, locationId: 'LOC1', companyId: null, kind: 'basic', secret: { apiKey: plaintext }, details: { locationIds: ['LOC1'] } })
        const got = await vault.credentials.get(CLIENT, { locationId: 'LOC1' })
        assert.deepEqual(got?.secret, { apiKey: plaintext })
        assert.deepEqual(got?.details, { locationIds: ['LOC1'] })
        const raw = await openRaw(dialect, database.url)
        try {
          const rows = await raw.query<Record<string, unknown>>('select * from external_credentials')
          assert.equal(rows.length, 1, 'the row exists (positive control)')
          const stored = String(rows[0]!.secret)
          assert.match(stored, /^v1\.A\./, 'sealed with the configured key')
          assert.equal(JSON.stringify(rows).includes(plaintext), false)
          if (dialect === 'sqlite') assert.equal((await raw.dump()).includes(Buffer.from(plaintext)), false)
          // Bound to its row: the ciphertext copied to another location does not decrypt.
          await raw.query("insert into external_credentials (client_id, resource_key, location_id, company_id, kind, secret, key_id, details, created_at, updated_at) values (?, 'location:LOC2', 'LOC2', null, 'basic', ?, 'A', '{}', 0, 0)", [CLIENT, stored])
        } finally {
          await raw.close()
        }
        const err = await vault.credentials.get(CLIENT, { locationId: 'LOC2' }).then(
          () => undefined,
          (e: unknown) => e,
        )
        assert.ok(err instanceof GhlError)
        assert.equal(err.code, 'GHL_VAULT_DECRYPT_FAILED')
        assert.equal(String(err.message).includes(plaintext), false)
      })

      test('key rotation re-encrypts credentials; a missing key is named at start', async () => {
        await vault.credentials.put({ clientId: CLIENT, locationId: null, companyId: 'COMP1', kind: 'oauth2', secret: { accessToken: plaintext }, details: {} })
        const rotated = await createVault({ databaseUrl: database.url, keys: parseKeys(`${KEY_B},${KEY_A}`), clock })
        extra.push(rotated)
        assert.equal(await rotated.keys.rotate(), 1)
        const onlyA = await createVault({ databaseUrl: database.url, keys: parseKeys(KEY_A), clock })
        extra.push(onlyA)
        assert.deepEqual(await onlyA.keys.missing(), ['B'])
        const onlyB = await createVault({ databaseUrl: database.url, keys: parseKeys(KEY_B), clock })
        extra.push(onlyB)
        assert.deepEqual((await onlyB.credentials.get(CLIENT, { companyId: 'COMP1' }))?.secret, { accessToken: plaintext })
        assert.equal(await onlyB.credentials.delete(CLIENT, { companyId: 'COMP1' }), true)
        assert.equal(await onlyB.credentials.get(CLIENT, { companyId: 'COMP1' }), undefined)
      })
    })

    describe('billing reports', () => {
      test('stored once per (resource, reference); a sent report is not claimed again, a failed one is', async () => {
        const k = { clientId: CLIENT, resourceKey: 'location:LOC1', reference: 'pay_1' }
        const body = { clientId: CLIENT, authType: 'location', locationId: 'LOC1', amount: 12, status: 'COMPLETED', paymentType: 'one_time', paymentId: 'pay_1' }
        const results = await Promise.all(Array.from({ length: 10 }, (_, i) => vault.billingReports.begin({ ...k, body }, lease(`o${i}`))))
        assert.equal(results.filter((r) => r.claimed).length, 1)
        const holder = results.find((r) => r.claimed)!.record.claimedBy!
        assert.equal(await vault.billingReports.complete(k, holder, { status: 'failed', lastError: 'HighLevel answered 500', incrementAttempts: true }), true)
        const retry = await vault.billingReports.begin({ ...k, body }, lease('again'))
        assert.equal(retry.claimed, true)
        await vault.billingReports.complete(k, 'again', { status: 'sent', lastError: null, incrementAttempts: true })
        const done = await vault.billingReports.begin({ ...k, body }, lease('late'))
        assert.deepEqual([done.claimed, done.record.status, done.record.attempts], [false, 'sent', 2])
        assert.deepEqual((await vault.billingReports.list({ clientId: CLIENT })).map((r) => r.reference), ['pay_1'])
      })
    })
  })
}
