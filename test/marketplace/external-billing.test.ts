/**
 * External billing between the sandbox (HighLevel's redirect to the billing URL, its billing webhook)
 * and the connector, on each vault backend: the redirect is checked and handed to the app's payment
 * step; the result is reported once per location and once per agency, retried through 500s, never
 * twice for one payment — concurrent reports included.
 */
import { after, before, beforeEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { BillingDecision } from '../../src/marketplace/billing/external-billing.js'
import type { BillingRedirect } from '../../src/marketplace/billing/billing-shapes.js'
import type { Stack } from '../helpers/stack.js'
import { DIALECTS, dialectSkipReason } from '../helpers/services.js'
import { install, marketplaceStack, rejection, sb } from './helpers.js'

interface Report { authType: string; locationId?: string; companyId?: string; amount: number; status: string; paymentType: string; paymentId?: string; subscriptionId?: string; clientId: string }

for (const dialect of DIALECTS) {
  describe(`external billing (${dialect})`, { skip: await dialectSkipReason(dialect) }, () => {
    let stack: Stack
    let locA: string
    let locB: string
    let companyId: string
    let decide: (r: BillingRedirect) => BillingDecision = () => ({ redirect: 'https://pay.example.com/checkout' })
    const redirects: BillingRedirect[] = []

    const reports = () => sb<Report[]>(stack, 'GET', '/_sandbox/billing/reports')
    const open = async (url: string) => {
      const res = await fetch(url, { redirect: 'manual' })
      return { status: res.status, location: res.headers.get('location'), text: await res.text(), csp: res.headers.get('content-security-policy') }
    }
    const start = async (body: Record<string, unknown>) => (await sb<{ url: string }>(stack, 'POST', '/_sandbox/billing/external/start', body)).url

    before(async () => {
      stack = await marketplaceStack(dialect, {
        marketplace: {
          externalBilling: {
            onBilling: (r) => {
              redirects.push(r)
              return decide(r)
            },
          },
        },
      })
      ;[locA, locB] = stack.sandbox.companies[0]!.locations.map((l) => l.locationId) as [string, string]
      companyId = stack.sandbox.companies[0]!.companyId
      await install(stack, { locationId: locA })
      await sb(stack, 'PUT', `/_sandbox/marketplace/${stack.sandbox.app.appId}`, { billingUrl: `${stack.url}/billing/start` })
    })
    after(() => stack?.close())
    beforeEach(() => {
      redirects.length = 0
    })

    test('a location install: the payment step sees the checked redirect; the payment is reported once', async () => {
      decide = () => ({ report: { amount: 12, status: 'COMPLETED', paymentType: 'one_time', paymentId: 'pay-loc-1' } })
      const url = await start({ locationId: locA })
      const before = (await reports()).length
      const page = await open(url)
      assert.equal(page.status, 200)
      assert.match(page.text, /Payment recorded/)
      assert.match(page.csp!, /default-src 'none'/)
      assert.deepEqual(redirects.at(-1), { clientId: stack.config.clientId, installType: { agency: false, location: true }, locationId: [locA] })
      const got = (await reports()).slice(before)
      assert.equal(got.length, 1)
      assert.deepEqual(
        { ...got[0], receivedAt: undefined, id: undefined, appId: undefined },
        { clientId: stack.config.clientId, authType: 'location', locationId: locA, amount: 12, status: 'COMPLETED', paymentType: 'one_time', paymentId: 'pay-loc-1', receivedAt: undefined, id: undefined, appId: undefined },
      )
      // The same redirect again (the installer reloads): HighLevel is not told twice.
      assert.equal((await open(url)).status, 200)
      assert.equal((await reports()).length, before + 1)
      const stored = await stack.connector.vault.billingReports.list({ clientId: stack.config.clientId })
      const row = stored.find((r) => r.reference === 'pay-loc-1')!
      assert.deepEqual([row.resourceKey, row.status], [`location:${locA}`, 'sent'])
      assert.equal(JSON.stringify(stored).includes(stack.config.clientSecret), false, 'the secret is never stored')
      assert.equal(stack.logs.some((l) => l.includes(stack.config.clientSecret)), false)
      assert.equal(page.text.includes(stack.config.clientSecret), false)
    })

    test('agency,location: one report per location and one for the agency', async () => {
      decide = () => ({ report: { amount: 30, status: 'COMPLETED', paymentType: 'recurring', subscriptionId: 'sub-agency-1' } })
      const before = (await reports()).length
      const page = await open(await start({ companyId, locationIds: [locA, locB] }))
      assert.equal(page.status, 200)
      assert.deepEqual(redirects.at(-1)!.installType, { agency: true, location: true })
      const got = (await reports()).slice(before)
      assert.deepEqual(got.map((r) => [r.authType, r.locationId ?? r.companyId]).sort(), [['company', companyId], ['location', locA], ['location', locB]].sort())
      assert.ok(got.every((r) => r.subscriptionId === 'sub-agency-1' && r.paymentType === 'recurring'))
    })

    test('a redirect decision sends the installer to the checkout; the report comes later from the app', async () => {
      decide = () => ({ redirect: 'https://pay.example.com/checkout?session=abc' })
      const before = (await reports()).length
      const page = await open(await start({ locationId: locB }))
      assert.equal(page.status, 302)
      assert.equal(page.location, 'https://pay.example.com/checkout?session=abc')
      assert.equal((await reports()).length, before, 'nothing reported yet')
      const outcome = await stack.connector.externalBilling.report({ locationIds: [locB], amount: 9, status: 'COMPLETED', paymentType: 'one_time', paymentId: 'pay-later-1' })
      assert.deepEqual(outcome, [{ target: { locationId: locB }, status: 'sent' }])
      assert.equal((await reports()).length, before + 1)
    })

    test('retried safely: 500s are retried, concurrent reports of one payment reach HighLevel once', async () => {
      const before = (await reports()).length
      await sb(stack, 'POST', '/_sandbox/faults', { endpoint: 'billing', kind: 'error500', count: 2 })
      const retried = await stack.connector.externalBilling.report({ locationIds: [locA], amount: 5, status: 'COMPLETED', paymentType: 'one_time', paymentId: 'pay-retry-1' })
      assert.deepEqual(retried.map((o) => o.status), ['sent'])
      assert.equal((await sb(stack, 'GET', '/_sandbox/stats')).faults.billing >= 2, true)
      const concurrent = await Promise.all(
        Array.from({ length: 5 }, () => stack.connector.externalBilling.report({ locationIds: [locA], amount: 6, status: 'COMPLETED', paymentType: 'one_time', paymentId: 'pay-concurrent-1' })),
      )
      assert.equal(concurrent.flat().filter((o) => o.status === 'sent').length, 1)
      assert.ok(concurrent.flat().every((o) => o.status === 'sent' || o.status === 'in-progress' || o.status === 'already-sent'))
      const got = (await reports()).slice(before)
      assert.deepEqual(got.map((r) => r.paymentId), ['pay-retry-1', 'pay-concurrent-1'])
    })

    test('a FAILED payment is reported too; a report HighLevel would refuse is not sent', async () => {
      decide = () => ({ report: { amount: 12, status: 'FAILED', paymentType: 'one_time', paymentId: 'pay-failed-1' } })
      const page = await open(await start({ locationId: locB }))
      assert.match(page.text, /Payment not completed/)
      assert.equal((await reports()).at(-1)!.status, 'FAILED')
      const before = (await reports()).length
      const err = await rejection(stack.connector.externalBilling.report({ locationIds: [locA], amount: -1, status: 'COMPLETED', paymentType: 'one_time' }))
      assert.equal(err.code, 'GHL_BAD_REQUEST')
      assert.match(err.message, /reference/)
      assert.match(err.message, /amount/)
      assert.equal((await reports()).length, before)
    })

    test('a redirect that is not HighLevel’s for this app is refused with a page; the payment step does not run', async () => {
      const url = new URL(await start({ locationId: locA }))
      url.searchParams.set('clientId', 'ffffffffffffffffffffffff-other')
      const foreign = await open(url.toString())
      assert.equal(foreign.status, 400)
      assert.match(foreign.text, /not this app/)
      url.searchParams.set('clientId', stack.config.clientId)
      url.searchParams.delete('locationId')
      const missing = await open(url.toString())
      assert.equal(missing.status, 400)
      assert.match(missing.text, /locationId should not be empty/)
      assert.equal(redirects.length, 0)
    })
  })
}
