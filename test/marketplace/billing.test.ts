/**
 * Wallet billing through the connector against the sandbox, on each vault backend: a charge per
 * eventId (repeats and concurrent calls charge once), validation before the call, HighLevel's
 * refusals after it, lost answers reconciled by eventId, funds and rebilling caches (PLAN_CHANGE
 * refreshes the latter), refunds.
 */
import { after, before, beforeEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { EventEmitter } from 'node:events'
import { ChargeError } from '../../src/marketplace/billing/charge-error.js'
import { HighLevelApiError } from '../../src/errors.js'
import type { Stack } from '../helpers/stack.js'
import { DIALECTS, dialectSkipReason } from '../helpers/services.js'
import { install, marketplaceStack, PLAN_ID, rejection, sb } from './helpers.js'

interface Meter { meterId: string; priceType: 'fixed' | 'dynamic'; minPricePerUnit: string; maxPricePerUnit: string }
interface SandboxCharge { chargeId: string; meterId: string; units: number; amountCharged: number; refunded: boolean; locationId: string; meta: { eventId: string; description: string; userId?: string } }

for (const dialect of DIALECTS) {
  describe(`wallet billing (${dialect})`, { skip: await dialectSkipReason(dialect) }, () => {
    let stack: Stack
    let loc: string
    let fixed: Meter
    let dynamic: Meter

    const charges = (): Promise<SandboxCharge[]> => sb(stack, 'GET', `/_sandbox/billing/charges?locationId=${loc}`)
    const wallet = async (): Promise<number> => (await sb(stack, 'GET', `/_sandbox/billing/wallets/${loc}`)).balance
    const billing = () => stack.connector.location(loc).billing

    before(async () => {
      stack = await marketplaceStack(dialect, { connectorMarketplace: { billing: { reconcileDelayMs: 20 } } })
      loc = stack.sandbox.companies[0]!.locations[0]!.locationId
      await install(stack, { locationId: loc })
      const meters = await sb<Meter[]>(stack, 'GET', '/_sandbox/billing/meters')
      fixed = meters.find((m) => m.priceType === 'fixed')!
      dynamic = meters.find((m) => m.priceType === 'dynamic')!
    })
    after(() => stack?.close())
    beforeEach(async () => {
      await sb(stack, 'PUT', `/_sandbox/billing/wallets/${loc}`, { balance: 100 })
    })

    test('a charge reaches the wallet once; the same eventId again is answered from the vault', async () => {
      const before = (await charges()).length
      const first = await billing().charge({ meterId: fixed.meterId, units: 10, description: '10 SMS', eventId: 'evt-once-1', userId: 'user-1' })
      assert.equal(first.duplicate, false)
      assert.equal(first.eventId, 'evt-once-1')
      const again = await billing().charge({ meterId: fixed.meterId, units: 10, description: '10 SMS', eventId: 'evt-once-1', userId: 'user-1' })
      assert.deepEqual(again, { eventId: 'evt-once-1', chargeId: first.chargeId, duplicate: true })
      const mine = (await charges()).filter((c) => c.meta.eventId === 'evt-once-1')
      assert.equal(mine.length, 1)
      assert.equal((await charges()).length, before + 1)
      assert.equal(mine[0]!.chargeId, first.chargeId)
      assert.equal(mine[0]!.units, 10)
      assert.equal(mine[0]!.meta.userId, 'user-1')
      assert.equal(await wallet(), 100 - 10 * 0.01)
      const row = await stack.connector.vault.charges.get({ clientId: stack.config.clientId, locationId: loc, eventId: 'evt-once-1' })
      assert.equal(row?.status, 'charged')
      assert.equal(row?.chargeId, first.chargeId)
      assert.equal(row?.attempts, 1)
    })

    test('20 concurrent calls with one eventId charge once; all get the same charge id', async () => {
      const results = await Promise.all(Array.from({ length: 20 }, () => billing().charge({ meterId: fixed.meterId, units: 1, description: 'one', eventId: 'evt-concurrent' })))
      assert.equal(new Set(results.map((r) => r.chargeId)).size, 1)
      assert.equal(results.filter((r) => !r.duplicate).length, 1)
      assert.equal((await charges()).filter((c) => c.meta.eventId === 'evt-concurrent').length, 1)
    })

    test('without an eventId one is generated, returned and stored before the call', async () => {
      const r = await billing().charge({ meterId: fixed.meterId, units: 2, description: 'two' })
      assert.match(r.eventId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
      assert.equal((await charges()).filter((c) => c.meta.eventId === r.eventId).length, 1)
      assert.equal((await stack.connector.vault.charges.get({ clientId: stack.config.clientId, locationId: loc, eventId: r.eventId }))?.status, 'charged')
    })

    test('an eventId reused for another charge is refused; nothing more is charged', async () => {
      await billing().charge({ meterId: fixed.meterId, units: 3, description: 'three', eventId: 'evt-conflict' })
      const count = (await charges()).length
      const err = await rejection(billing().charge({ meterId: fixed.meterId, units: 4, description: 'three', eventId: 'evt-conflict' }))
      assert.ok(err instanceof ChargeError)
      assert.equal(err.code, 'GHL_BILLING_CONFLICT')
      assert.equal(err.eventId, 'evt-conflict')
      assert.equal((await charges()).length, count)
    })

    describe('refused before the call: a clear error, nothing stored, nothing sent', () => {
      const cases: Array<[string, Record<string, unknown>, RegExp]> = [
        ['units as a string', { units: '1' }, /units must be a finite number \(HighLevel refuses a string such as "1"/],
        ['units not finite', { units: Number.POSITIVE_INFINITY }, /units must be a finite number/],
        ['units of 0', { units: 0 }, /units must be above 0/],
        ['an empty userId', { userId: '' }, /userId must not be an empty string/],
        ['an empty description', { description: '' }, /description should not be empty/],
        ['no meter', { meterId: undefined }, /meterId/],
        ['an unknown field', { amount: 3 }, /amount/],
        ['a bad eventTime', { eventTime: 'yesterday' }, /eventTime must be an ISO 8601 date-time/],
      ]
      for (const [name, change, message] of cases) {
        test(name, async () => {
          const count = (await charges()).length
          const eventId = `evt-invalid-${name.replace(/\W+/g, '-')}`
          const input = { meterId: fixed.meterId, units: 1, description: 'x', eventId, ...change }
          const err = await rejection(billing().charge(input as never))
          assert.ok(err instanceof ChargeError, String(err))
          assert.equal(err.code, 'GHL_BILLING_INVALID')
          assert.equal(err.status, 400)
          assert.match(err.message, message)
          assert.equal(await stack.connector.vault.charges.get({ clientId: stack.config.clientId, locationId: loc, eventId }), undefined)
          assert.equal((await charges()).length, count)
        })
      }

      test('a custom price on a fixed-price meter (the meter read from the rebilling configuration)', async () => {
        const count = (await charges()).length
        const err = await rejection(billing().charge({ meterId: fixed.meterId, units: 1, description: 'x', eventId: 'evt-fixed-price', price: 0.5 }))
        assert.equal(err.code, 'GHL_BILLING_INVALID')
        assert.match(err.message, /Custom price is not allowed for fixed price meters/)
        assert.equal((await charges()).length, count)
      })

      test('a dynamic price outside the meter’s range; inside it the charge goes through', async () => {
        const err = await rejection(billing().charge({ meterId: dynamic.meterId, units: 1, description: 'x', eventId: 'evt-dyn-high', price: 5 }))
        assert.equal(err.code, 'GHL_BILLING_INVALID')
        assert.match(err.message, /between 0.001 and 1/)
        const ok = await billing().charge({ meterId: dynamic.meterId, units: 2, description: 'x', eventId: 'evt-dyn-ok', price: 0.25 })
        const c = (await charges()).find((x) => x.chargeId === ok.chargeId)!
        assert.equal(c.amountCharged, 0.5)
      })
    })

    describe("HighLevel's refusals after the call: a clear error, the row failed, nothing charged", () => {
      test('an unknown meter', async () => {
        const count = (await charges()).length
        const err = await rejection(billing().charge({ meterId: 'no-such-meter', units: 1, description: 'x', eventId: 'evt-unknown-meter' }))
        assert.ok(err instanceof ChargeError)
        assert.equal(err.code, 'GHL_BILLING_REJECTED')
        assert.equal(err.upstreamStatus, 400)
        assert.match(err.message, /Meter not found/)
        assert.equal((await charges()).length, count)
        const row = await stack.connector.vault.charges.get({ clientId: stack.config.clientId, locationId: loc, eventId: 'evt-unknown-meter' })
        assert.equal(row?.status, 'failed')
        assert.match(row!.lastError!, /Meter not found/)
      })

      test('insufficient funds; has-funds turns false; after a top-up the same eventId is charged', async () => {
        await sb(stack, 'PUT', `/_sandbox/billing/wallets/${loc}`, { balance: 0.005 })
        const err = await rejection(billing().charge({ meterId: fixed.meterId, units: 1, description: 'x', eventId: 'evt-funds' }))
        assert.equal(err.code, 'GHL_BILLING_REJECTED')
        assert.match(err.message, /Insufficient funds/)
        assert.equal(await billing().hasFunds({ fresh: true }), true, 'a balance above 0 still "has funds"')
        await sb(stack, 'PUT', `/_sandbox/billing/wallets/${loc}`, { balance: 0 })
        assert.equal(await billing().hasFunds({ fresh: true }), false)
        await sb(stack, 'PUT', `/_sandbox/billing/wallets/${loc}`, { balance: 1 })
        const ok = await billing().charge({ meterId: fixed.meterId, units: 1, description: 'x', eventId: 'evt-funds' })
        assert.equal(ok.duplicate, false)
        assert.equal((await charges()).filter((c) => c.meta.eventId === 'evt-funds').length, 1)
      })

      test('the sandbox itself refuses what the connector checks first (both sides agree)', async () => {
        const token = (await stack.connector.tokens.getAccessToken({ kind: 'location', id: loc })).accessToken
        const post = async (body: Record<string, unknown>) => {
          const res = await fetch(`${stack.sandbox.url}/marketplace/billing/charges`, {
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: JSON.stringify({ appId: stack.sandbox.app.appId, meterId: fixed.meterId, eventId: 'raw', locationId: loc, companyId: stack.sandbox.companies[0]!.companyId, description: 'x', units: 1, ...body }),
          })
          return { status: res.status, body: (await res.json()) as { message: unknown } }
        }
        const units = await post({ units: '1' })
        assert.equal(units.status, 422)
        assert.deepEqual(units.body.message, ['units must be a number conforming to the specified constraints'])
        assert.deepEqual(await post({ userId: '' }), { status: 400, body: { statusCode: 400, message: 'userId should not be empty' } })
        assert.deepEqual(await post({ price: 0.5 }), { status: 400, body: { statusCode: 400, message: 'Custom price is not allowed for fixed price meters' } })
      })
    })

    describe('lost answers', () => {
      test('a dropped answer (charged, connection closed) is found by eventId: charged once', async () => {
        await sb(stack, 'POST', '/_sandbox/faults', { endpoint: 'billing', kind: 'drop', count: 1 })
        const r = await billing().charge({ meterId: fixed.meterId, units: 1, description: 'x', eventId: 'evt-drop' })
        assert.equal((await charges()).filter((c) => c.meta.eventId === 'evt-drop').length, 1)
        assert.equal((await charges()).find((c) => c.meta.eventId === 'evt-drop')!.chargeId, r.chargeId)
        const row = await stack.connector.vault.charges.get({ clientId: stack.config.clientId, locationId: loc, eventId: 'evt-drop' })
        assert.equal(row?.status, 'charged')
        assert.equal(row?.attempts, 1, 'found by the lookup, not sent again')
        assert.equal((await sb(stack, 'GET', '/_sandbox/stats')).faults.billing >= 1, true)
      })

      test('a 500 before the charge is looked up, not found, and sent again: charged once', async () => {
        await sb(stack, 'POST', '/_sandbox/faults', { endpoint: 'billing', kind: 'error500', count: 1 })
        const r = await billing().charge({ meterId: fixed.meterId, units: 1, description: 'x', eventId: 'evt-500' })
        assert.equal((await charges()).filter((c) => c.meta.eventId === 'evt-500').length, 1)
        const row = await stack.connector.vault.charges.get({ clientId: stack.config.clientId, locationId: loc, eventId: 'evt-500' })
        assert.equal(row?.attempts, 2)
        assert.equal(row?.chargeId, r.chargeId)
      })

      test('every attempt lost: GHL_BILLING_UNCONFIRMED; the next call with the eventId settles it without charging twice', async () => {
        await sb(stack, 'POST', '/_sandbox/faults', { endpoint: 'billing', kind: 'error500', count: 3 })
        const err = await rejection(billing().charge({ meterId: fixed.meterId, units: 1, description: 'x', eventId: 'evt-unconfirmed' }))
        assert.ok(err instanceof ChargeError)
        assert.equal(err.code, 'GHL_BILLING_UNCONFIRMED')
        assert.equal(err.eventId, 'evt-unconfirmed')
        assert.equal((await stack.connector.vault.charges.get({ clientId: stack.config.clientId, locationId: loc, eventId: 'evt-unconfirmed' }))?.status, 'pending')
        const r = await billing().charge({ meterId: fixed.meterId, units: 1, description: 'x', eventId: 'evt-unconfirmed' })
        assert.equal(r.duplicate, false)
        assert.equal((await charges()).filter((c) => c.meta.eventId === 'evt-unconfirmed').length, 1)
      })

      test('reconcile() settles rows left pending by a crash, by eventId, and never charges', async () => {
        const { vault } = stack.connector
        const companyId = stack.sandbox.companies[0]!.companyId
        const key = (eventId: string) => ({ clientId: stack.config.clientId, locationId: loc, eventId })
        const request = { meterId: fixed.meterId, units: 1, description: 'x' }
        const crashed = { owner: 'a-process-that-died', until: new Date(Date.now() + 60_000) }
        // Process A stored the charge, counted its POST, and died; its POST reached HighLevel.
        await vault.charges.begin({ ...key('evt-crash-sent'), companyId, meterId: fixed.meterId, request }, crashed)
        await vault.charges.markAttempt(key('evt-crash-sent'), crashed.owner)
        const token = (await stack.connector.tokens.getAccessToken({ kind: 'location', id: loc })).accessToken
        const landed = await fetch(`${stack.sandbox.url}/marketplace/billing/charges`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ appId: stack.sandbox.app.appId, locationId: loc, companyId, eventId: 'evt-crash-sent', ...request }),
        })
        const { chargeId } = (await landed.json()) as { chargeId: string }
        // Process B stored one and died before sending it.
        await vault.charges.begin({ ...key('evt-crash-unsent'), companyId, meterId: fixed.meterId, request }, crashed)
        const count = (await charges()).length

        const { Billing } = await import('../../src/marketplace/billing/billing-service.js')
        const sweeper = (offsetMs: number) =>
          new Billing({
            clientId: stack.config.clientId,
            appId: stack.config.appId,
            requestTimeoutMs: 5_000,
            vault,
            client: (id) => stack.connector.client.forTarget({ kind: 'location', id }),
            clock: { now: () => Date.now() + offsetMs },
            logger: stack.connector.logger,
          })
        // While the dead processes' claims last, nothing is touched (positive control below).
        assert.deepEqual(await sweeper(0).reconcile({ locationId: loc }), { charged: 0, notCharged: 0, skipped: 0 })
        assert.deepEqual(await sweeper(120_000).reconcile({ locationId: loc }), { charged: 1, notCharged: 1, skipped: 0 })
        assert.equal((await charges()).length, count, 'reconcile sends no charge')
        const sent = await vault.charges.get(key('evt-crash-sent'))
        assert.equal(sent?.status, 'charged')
        assert.equal(sent?.chargeId, chargeId)
        assert.equal((await vault.charges.get(key('evt-crash-unsent')))?.status, 'failed')
        // The app's retry of the unsent one charges it (failed rows are sent again); the sent one is not charged twice.
        const retried = await billing().charge({ ...request, eventId: 'evt-crash-unsent' })
        assert.equal(retried.duplicate, false)
        assert.equal((await billing().charge({ ...request, eventId: 'evt-crash-sent' })).chargeId, chargeId)
        assert.equal((await charges()).length, count + 1)
      })
    })

    test('has-funds is cached briefly; fresh reads HighLevel again', async () => {
      assert.equal(await billing().hasFunds({ fresh: true }), true)
      await sb(stack, 'PUT', `/_sandbox/billing/wallets/${loc}`, { balance: 0 })
      assert.equal(await billing().hasFunds(), true, 'the cached answer')
      assert.equal(await billing().hasFunds({ fresh: true }), false)
      assert.equal(await billing().hasFunds(), false, 'the cache took the fresh answer')
    })

    test('list, get and delete (refund) a charge; the vault row becomes refunded', async () => {
      const r = await billing().charge({ meterId: fixed.meterId, units: 50, description: 'fifty', eventId: 'evt-refund' })
      const listed = await billing().listCharges({ eventId: 'evt-refund' })
      assert.deepEqual(listed.charges.map((c) => c.chargeId), [r.chargeId])
      assert.equal(listed.pagination?.total, 1)
      const one = await billing().getCharge(r.chargeId)
      assert.equal(one.meta?.eventId, 'evt-refund')
      assert.equal(one.amountCharged, 0.5)
      assert.equal(await wallet(), 99.5)
      await billing().deleteCharge(r.chargeId)
      assert.equal(await wallet(), 100)
      assert.equal((await billing().getCharge(r.chargeId)).refunded, true)
      assert.equal((await stack.connector.vault.charges.get({ clientId: stack.config.clientId, locationId: loc, eventId: 'evt-refund' }))?.status, 'refunded')
      const again = await billing().charge({ meterId: fixed.meterId, units: 50, description: 'fifty', eventId: 'evt-refund' })
      assert.equal(again.duplicate, true, 'a refunded eventId is not charged again')
      const err = await rejection(billing().getCharge('no-such-charge'))
      assert.ok(err instanceof HighLevelApiError)
      assert.equal(err.upstreamStatus, 404)
    })

    test('the rebilling configuration is cached and refreshed by PLAN_CHANGE (the connector emits planChanged)', async () => {
      const config = await billing().rebillingConfig()
      assert.deepEqual(config.plans.subscription.map((p) => p.planId), [PLAN_ID])
      assert.deepEqual(config.plans.usage.map((m) => m.meterId).sort(), [fixed.meterId, dynamic.meterId].sort())
      // The sandbox's meters change; the cached configuration does not (yet).
      await sb(stack, 'PUT', '/_sandbox/billing/meters', { meters: [{ ...fixed }, { ...dynamic }, { meterId: 'meter-extra-1', priceType: 'fixed', fixedPricePerUnit: 0.02 }] })
      assert.equal((await billing().rebillingConfig()).plans.usage.length, 2)
      const events = new EventEmitter()
      stack.connector.on('planChanged', (e) => events.emit('changed', e))
      const changed = once(events, 'changed')
      await sb(stack, 'POST', '/_sandbox/plan-change', { locationId: loc, newPlanId: 'plan-pro-0002' })
      const [event] = (await changed) as [{ planId: string }]
      assert.equal(event.planId, 'plan-pro-0002')
      const fresh = await billing().rebillingConfig()
      assert.deepEqual(fresh.plans.subscription.map((p) => p.planId), ['plan-pro-0002'])
      assert.equal(fresh.plans.usage.length, 3)
    })
  })
}
