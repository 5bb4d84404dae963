/**
 * Workflow actions and triggers between the sandbox (HighLevel's workflows) and the connector's
 * routes, on each vault backend: a workflow run calls an action with the configured headers and gets
 * its outputs and branch; wrong headers are refused before the handler; a paused action is resumed;
 * a fired trigger reaches exactly the subscriptions whose filters match; unsubscribing stops it.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { z } from 'zod'
import { resumeWorkflowAction, WorkflowActions, type PausedAction } from '../../src/marketplace/workflows/workflow-actions.js'
import type { Stack } from '../helpers/stack.js'
import { DIALECTS, dialectSkipReason } from '../helpers/services.js'
import { install, marketplaceStack, sb, sbDelete, waitFor } from './helpers.js'

interface Step { stepId: string; key: string; status: string; outputs?: Record<string, unknown>; branchId?: string; response?: { status: number; body: any }; request?: { headerNames: string[]; body: any } }
interface Run { id: string; status: string; source: string; payload: Record<string, unknown>; steps: Step[] }

for (const dialect of DIALECTS) {
  describe(`workflow actions and triggers (${dialect})`, { skip: await dialectSkipReason(dialect) }, () => {
    const actionSecret = `action-${randomBytes(12).toString('hex')}`
    const triggerSecret = `trigger-${randomBytes(12).toString('hex')}`
    const seen: Array<{ key: string; data: unknown; extras: Record<string, unknown> }> = []
    const paused: PausedAction[] = []
    let stack: Stack
    let locA: string
    let locB: string

    const actions = new WorkflowActions({ headers: { 'x-app-secret': actionSecret } })
      .define({
        key: 'greet',
        fields: z.object({ name: z.string().min(1) }),
        handler: async ({ key, data, extras, ghl }) => {
          seen.push({ key, data, extras })
          const res = await ghl.get<{ location: { name: string } }>(`/locations/${extras.locationId}`)
          return { outputs: { greeting: `Hello ${data.name}`, locationName: res.data.location.name }, branchId: data.name === 'VIP' ? 'vip' : 'regular' }
        },
      })
      .define({
        key: 'wait_for_reply',
        handler: ({ key, data, extras, pause }) => {
          seen.push({ key, data, extras })
          const p = pause()
          paused.push(p)
          return p
        },
      })
      .define({
        key: 'explode',
        handler: () => {
          throw new Error('the handler failed with customer data')
        },
      })

    const runWorkflow = (workflowId: string, payload: Record<string, unknown> = {}) => sb<Run>(stack, 'POST', `/_sandbox/workflows/${workflowId}/run`, { payload })
    const runsOf = (workflowId: string) => sb<Run[]>(stack, 'GET', `/_sandbox/workflows/${workflowId}/runs`)
    const subscriptions = (locationId: string, key?: string) => stack.connector.triggers.subscriptions(locationId, key)

    before(async () => {
      stack = await marketplaceStack(dialect, { marketplace: { actions, triggers: { headers: { 'x-trigger-secret': triggerSecret } } } })
      ;[locA, locB] = stack.sandbox.companies[0]!.locations.map((l) => l.locationId) as [string, string]
      await install(stack, { locationId: locA })
      await install(stack, { locationId: locB })
      const actionHeaders = { 'x-app-secret': actionSecret }
      await sb(stack, 'PUT', `/_sandbox/marketplace/${stack.sandbox.app.appId}`, {
        actions: [
          { key: 'greet', url: `${stack.url}/actions/greet`, headers: actionHeaders },
          { key: 'greet_wrong_secret', url: `${stack.url}/actions/greet`, headers: { 'x-app-secret': `wrong-${randomBytes(12).toString('hex')}` } },
          { key: 'greet_no_secret', url: `${stack.url}/actions/greet` },
          { key: 'wait_for_reply', url: `${stack.url}/actions/wait_for_reply`, headers: actionHeaders, pauseExecution: true },
          { key: 'explode', url: `${stack.url}/actions/explode`, headers: actionHeaders },
        ],
        triggers: [
          { key: 'order_paid', subscriptionUrl: `${stack.url}/triggers/subscription`, headers: { 'x-trigger-secret': triggerSecret } },
          { key: 'order_shipped', subscriptionUrl: `${stack.url}/triggers/subscription`, headers: { 'x-trigger-secret': triggerSecret } },
          { key: 'order_wrong_secret', subscriptionUrl: `${stack.url}/triggers/subscription`, headers: { 'x-trigger-secret': `wrong-${randomBytes(12).toString('hex')}` } },
        ],
      })
    })
    after(() => stack?.close())

    describe('actions', () => {
      test('a workflow run calls the action with its headers; the handler gets typed input and a ready client; the run gets its outputs and branch', async () => {
        const wf = await sb(stack, 'POST', '/_sandbox/workflows', { locationId: locA, actions: [{ key: 'greet', data: { name: '{{trigger.customer}}' } }] })
        const before = seen.length
        const run = await runWorkflow(wf.workflowId, { customer: 'Ann' })
        assert.equal(run.status, 'completed')
        const step = run.steps[0]!
        assert.equal(step.status, 'completed')
        assert.equal(step.response?.status, 200)
        assert.deepEqual(step.outputs, { greeting: 'Hello Ann', locationName: stack.sandbox.companies[0]!.locations[0]!.name, branchId: 'regular' })
        assert.equal(step.branchId, 'regular')
        assert.ok(step.request!.headerNames.includes('x-app-secret'))
        assert.equal(seen.length, before + 1)
        const call = seen.at(-1)!
        assert.deepEqual(call.data, { name: 'Ann' })
        assert.equal(call.extras.locationId, locA)
        assert.equal(call.extras.workflowId, wf.workflowId)
        assert.equal(call.extras.companyId, stack.sandbox.companies[0]!.companyId)
        const vip = await runWorkflow(wf.workflowId, { customer: 'VIP' })
        assert.equal(vip.steps[0]!.branchId, 'vip')
      })

      test('a call with the wrong headers, or none, is refused before the handler runs', async () => {
        const wf = await sb(stack, 'POST', '/_sandbox/workflows', { locationId: locA, actions: [{ key: 'greet_wrong_secret', data: { name: 'Eve' } }] })
        const before = seen.length
        const run = await runWorkflow(wf.workflowId)
        assert.equal(run.status, 'failed')
        assert.equal(run.steps[0]!.response?.status, 401)
        assert.equal(run.steps[0]!.response?.body.code, 'GHL_MARKETPLACE_UNAUTHORIZED')
        const none = await sb(stack, 'POST', '/_sandbox/workflows', { locationId: locA, actions: [{ key: 'greet_no_secret', data: { name: 'Eve' } }] })
        assert.equal((await runWorkflow(none.workflowId)).steps[0]!.response?.status, 401)
        assert.equal(seen.length, before, 'the handler never ran')
        // Directly: no headers, a wrong key with no headers (401 first, keys are not revealed), the right headers.
        const post = (path: string, headers: Record<string, string>, body: unknown) =>
          fetch(`${stack.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
        const payload = { data: { name: 'Zed' }, extras: { locationId: locA, workflowId: 'wf-direct' }, meta: { key: 'greet', version: '1.0' } }
        assert.equal((await post('/actions/greet', {}, payload)).status, 401)
        assert.equal((await post('/actions/no-such-action', {}, payload)).status, 401)
        assert.equal((await post('/actions/no-such-action', { 'x-app-secret': actionSecret }, payload)).status, 404)
        assert.equal(seen.length, before)
        const ok = await post('/actions/greet', { 'x-app-secret': actionSecret }, payload)
        assert.equal(ok.status, 200, 'positive control: the right header is accepted')
        assert.equal(((await ok.json()) as { greeting: string }).greeting, 'Hello Zed')
      })

      test('fields that do not fit answer 422; a failing handler answers 500 with a reference and nothing of the payload', async () => {
        const post = (key: string, body: unknown) =>
          fetch(`${stack.url}/actions/${key}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-app-secret': actionSecret }, body: JSON.stringify(body) })
        const bad = await post('greet', { data: { name: 42 }, extras: { locationId: locA } })
        assert.equal(bad.status, 422)
        assert.match(((await bad.json()) as { message: string }).message, /name/)
        assert.equal((await post('greet', { data: {} })).status, 400, 'no extras.locationId')
        const failed = await post('explode', { data: { secretNote: 'do-not-log-me' }, extras: { locationId: locA } })
        assert.equal(failed.status, 500)
        const body = (await failed.json()) as { code: string; message: string }
        assert.equal(body.code, 'GHL_INTERNAL')
        const reference = /reference ([0-9a-f]{12})/.exec(body.message)![1]!
        assert.ok(stack.logs.some((l) => l.includes(reference)), 'the failure is logged under its reference (positive control)')
        assert.equal(stack.logs.some((l) => l.includes('do-not-log-me') || l.includes('customer data')), false)
        assert.equal(stack.logs.some((l) => l.includes(actionSecret)), false)
      })

      test('a paused action holds the run until the app resumes it; then the next action runs', async () => {
        const wf = await sb(stack, 'POST', '/_sandbox/workflows', { locationId: locA, actions: [{ key: 'wait_for_reply', data: { question: 'Ready?' } }, { key: 'greet', data: { name: 'after-resume' } }] })
        const run = await runWorkflow(wf.workflowId, {}, )
        assert.equal(run.status, 'paused')
        assert.equal(run.steps[0]!.status, 'paused')
        assert.equal(run.steps.length, 1, 'the next action has not run')
        const p = paused.at(-1)!
        assert.equal(p.locationId, locA)
        assert.equal(p.extras.statusId, run.id)
        await resumeWorkflowAction(stack.connector, JSON.parse(JSON.stringify(p)) as PausedAction, { success: true, outputs: { reply: 'yes' }, message: 'replied' })
        const done = await waitFor('the resumed run to complete', async () => (await runsOf(wf.workflowId)).find((r) => r.id === run.id && r.status === 'completed'))
        assert.deepEqual(done.steps.map((s) => [s.key, s.status]), [['wait_for_reply', 'completed'], ['greet', 'completed']])
        assert.deepEqual(done.steps[0]!.outputs, { reply: 'yes' })
        assert.equal(done.steps[1]!.outputs?.greeting, 'Hello after-resume')
      })
    })

    describe('triggers', () => {
      test('workflows subscribe through the subscription URL; a fired trigger reaches exactly the matching ones; unsubscribing stops it', async () => {
        const create = (body: Record<string, unknown>) => sb(stack, 'POST', '/_sandbox/workflows', body)
        const all = await create({ locationId: locA, trigger: { key: 'order_paid' } })
        const paid = await create({ locationId: locA, trigger: { key: 'order_paid', filters: [{ field: 'status', id: 'status', operator: '==', title: 'Status', type: 'select', value: 'paid' }] } })
        const refunded = await create({ locationId: locA, trigger: { key: 'order_paid', filters: [{ field: 'status', operator: '==', value: 'refunded' }] } })
        const otherLocation = await create({ locationId: locB, trigger: { key: 'order_paid' } })
        const otherKey = await create({ locationId: locA, trigger: { key: 'order_shipped' } })
        for (const w of [all, paid, refunded, otherLocation, otherKey]) assert.equal(w.subscription.status, 200, JSON.stringify(w.subscription))
        const stored = await subscriptions(locA, 'order_paid')
        assert.deepEqual(stored.map((s) => s.workflowId).sort(), [all.workflowId, paid.workflowId, refunded.workflowId].sort())
        const s = stored.find((x) => x.workflowId === paid.workflowId)!
        assert.equal(s.triggerId, paid.triggerId)
        assert.equal(s.companyId, stack.sandbox.companies[0]!.companyId)
        assert.equal(s.targetUrl, `${stack.sandbox.url}/workflows-marketplace/triggers/execute/${locA}/${paid.triggerId}`)

        const result = await stack.connector.triggers.fire('order_paid', locA, { orderId: 'o-1', status: 'paid', total: 120 })
        assert.deepEqual([result.delivered, result.skipped, result.failed], [2, 1, 0])
        const runCounts = async () => Promise.all([all, paid, refunded, otherLocation, otherKey].map(async (w) => (await runsOf(w.workflowId)).length))
        assert.deepEqual(await runCounts(), [1, 1, 0, 0, 0])
        const run = (await runsOf(paid.workflowId))[0]!
        assert.deepEqual([run.source, run.payload], ['trigger', { orderId: 'o-1', status: 'paid', total: 120 }])

        // An update of the filters is applied (UPDATED replaces the subscription).
        await sb(stack, 'PUT', `/_sandbox/workflows/${refunded.workflowId}`, { filters: [{ field: 'status', operator: '!=', value: 'refunded' }] })
        assert.deepEqual((await subscriptions(locA, 'order_paid')).find((x) => x.workflowId === refunded.workflowId)!.filters, [{ field: 'status', operator: '!=', value: 'refunded' }])

        // Unsubscribe (the workflow is deleted in HighLevel): its subscription goes; firing no longer reaches it.
        const deleted = await sbDelete(stack, `/_sandbox/workflows/${all.workflowId}`)
        assert.equal(deleted.subscription.status, 200)
        assert.equal((await subscriptions(locA, 'order_paid')).some((x) => x.workflowId === all.workflowId), false)
        const again = await stack.connector.triggers.fire('order_paid', locA, { orderId: 'o-2', status: 'paid' })
        assert.deepEqual([again.delivered, again.skipped, again.failed], [2, 0, 0])
        assert.deepEqual(await runCounts(), [1, 2, 1, 0, 0])
        assert.deepEqual((await runsOf(otherLocation.workflowId)).length, 0)
        const atB = await stack.connector.triggers.fire('order_paid', locB, { status: 'paid' })
        assert.equal(atB.delivered, 1)
        assert.deepEqual(await runCounts(), [1, 2, 1, 1, 0])
      })

      test('a subscription with the wrong headers, or a target URL off HighLevel’s API host, is refused and not stored', async () => {
        const wrong = await sb(stack, 'POST', '/_sandbox/workflows', { locationId: locA, trigger: { key: 'order_wrong_secret' } })
        assert.equal(wrong.subscription.status, 401)
        assert.equal(wrong.subscription.body.code, 'GHL_MARKETPLACE_UNAUTHORIZED')
        assert.equal((await subscriptions(locA, 'order_wrong_secret')).length, 0)
        const forged = {
          triggerData: { id: 'forged-1', key: 'order_paid', filters: [], eventType: 'CREATED', targetUrl: 'https://collector.example.com/workflows-marketplace/triggers/execute/x/y' },
          meta: { key: 'order_paid', version: '1.0' },
          extras: { locationId: locA, workflowId: 'wf-forged', companyId: 'c' },
        }
        const res = await fetch(`${stack.url}/triggers/subscription`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-trigger-secret': triggerSecret }, body: JSON.stringify(forged) })
        assert.equal(res.status, 400)
        assert.equal(((await res.json()) as { code: string }).code, 'GHL_TRIGGER_TARGET_INVALID')
        assert.equal(await stack.connector.vault.triggers.get(stack.config.clientId, 'forged-1'), undefined)
        const malformed = await fetch(`${stack.url}/triggers/subscription`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-trigger-secret': triggerSecret }, body: JSON.stringify({ triggerData: { id: 'x' } }) })
        assert.equal(malformed.status, 400)
      })

      test("an UNINSTALL of a location removes its trigger subscriptions, and only its", async () => {
        const atB = await sb(stack, 'POST', '/_sandbox/workflows', { locationId: locB, trigger: { key: 'order_shipped' } })
        assert.equal(atB.subscription.status, 200)
        const before = { a: (await subscriptions(locA)).length, b: (await subscriptions(locB)).length }
        assert.ok(before.a > 0 && before.b > 0)
        await sb(stack, 'POST', '/_sandbox/uninstall', { locationId: locB })
        await waitFor('the UNINSTALL to be applied', async () => (await subscriptions(locB)).length === 0)
        assert.equal((await subscriptions(locA)).length, before.a, 'the other location keeps its subscriptions')
        const row = await stack.connector.vault.installations.findByLocation(stack.config.clientId, locB)
        const audit = await stack.connector.vault.audit.list(row!.id)
        assert.equal(audit.find((a) => a.action === 'webhook.uninstall')?.detail.triggerSubscriptionsRemoved, before.b)
        // Nothing is delivered there any more.
        assert.equal((await stack.connector.triggers.fire('order_shipped', locB, { status: 'shipped' })).delivered, 0)
      })
    })
  })
}
