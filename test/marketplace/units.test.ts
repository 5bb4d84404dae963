/**
 * The Marketplace's pure parts: trigger filters, static headers, parsing of HighLevel's requests
 * (external authentication, the billing redirect), action answers, and configuration checks — each bad
 * setting or input named, every problem at once.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { z } from 'zod'
import { GhlError } from '../../src/errors.js'
import { billingSettings } from '../../src/marketplace/billing/billing-service.js'
import { billingRedirectQuery } from '../../src/marketplace/billing/billing-shapes.js'
import { parseChargeInput } from '../../src/marketplace/billing/charge-input.js'
import { ExternalAuthEndpoint, parseExternalAuth } from '../../src/marketplace/external-auth.js'
import { StaticHeaders } from '../../src/marketplace/static-headers.js'
import { matchFilters } from '../../src/marketplace/workflows/trigger-filters.js'
import { buildActionAnswer, WorkflowActions } from '../../src/marketplace/workflows/workflow-actions.js'

const SECRET = 'a-secret-of-sufficient-length'

describe('trigger filters', () => {
  const payload = { status: 'paid', total: 120, tags: ['vip', 'new'], order: { country: 'US' } }
  const cases: Array<[string, unknown[], boolean]> = [
    ['no filters', [], true],
    ['== on a string', [{ field: 'status', operator: '==', value: 'paid' }], true],
    ['== mismatch', [{ field: 'status', operator: '==', value: 'refunded' }], false],
    ['!=', [{ field: 'status', operator: '!=', value: 'refunded' }], true],
    ['a number as a string', [{ field: 'total', operator: '==', value: '120' }], true],
    ['a multi-select value (any of)', [{ field: 'status', operator: '==', value: ['refunded', 'paid'] }], true],
    ['a list payload value', [{ field: 'tags', operator: '==', value: 'vip' }], true],
    ['a dotted path', [{ field: 'order.country', operator: '==', value: 'US' }], true],
    ['id when field is absent', [{ id: 'status', operator: '==', value: 'paid' }], true],
    ['an empty filter value passes', [{ field: 'status', operator: '==', value: '' }], true],
    ['no operator means ==', [{ field: 'status', value: 'paid' }], true],
    ['all must pass', [{ field: 'status', operator: '==', value: 'paid' }, { field: 'total', operator: '==', value: 1 }], false],
    ['a missing payload field does not equal', [{ field: 'missing', operator: '==', value: 'x' }], false],
  ]
  for (const [name, filters, pass] of cases) test(name, () => assert.equal(matchFilters(filters, payload).pass, pass))

  test('an unknown operator does not match, and says why', () => {
    const v = matchFilters([{ field: 'total', operator: '>', value: 100 }], payload)
    assert.equal(v.pass, false)
    assert.match((v as { reason: string }).reason, /operator ">"/)
  })
})

describe('static headers', () => {
  test('every configured header must be present and equal (case-insensitive names)', () => {
    const h = new StaticHeaders({ 'X-App-Secret': SECRET, 'x-app-id': 'app' }, 'actions.headers')
    assert.equal(h.matches({ 'x-app-secret': SECRET, 'x-app-id': 'app' }), true)
    assert.equal(h.matches({ 'x-app-secret': SECRET }), false)
    assert.equal(h.matches({ 'x-app-secret': `${SECRET}x`, 'x-app-id': 'app' }), false)
    assert.equal(h.matches({ 'x-app-secret': [SECRET], 'x-app-id': 'app' }), true)
    assert.equal(h.matches({}), false)
  })

  test('bad settings are all reported, never quoting a value', () => {
    const err = (() => {
      try {
        new StaticHeaders({ 'bad header': 'short', ok: '' }, 'triggers.headers')
      } catch (e) {
        return e as GhlError
      }
      return undefined
    })()
    assert.equal(err?.code, 'GHL_CONFIG_INVALID')
    assert.match(err!.message, /HTTP tokens/)
    assert.match(err!.message, /non-empty string/)
    assert.match(err!.message, /at least 16 characters/)
    assert.equal(err!.message.includes('short'), false)
    assert.throws(() => new StaticHeaders({}, 'x'), /at least one header/)
  })
})

describe('configuration', () => {
  test('actions need headers or an authenticate function; keys are checked', () => {
    assert.throws(() => new WorkflowActions({}), /headers .* or an authenticate function/)
    const a = new WorkflowActions({ headers: { 'x-app-secret': SECRET } })
    assert.throws(() => a.define({ key: 'bad key', handler: () => undefined }), /expected key/)
    a.define({ key: 'ok', handler: () => undefined })
    assert.throws(() => a.define({ key: 'ok', handler: () => undefined }), /defined twice/)
    assert.deepEqual(a.keys(), ['ok'])
  })

  test('billing settings: every bad one named', () => {
    assert.throws(() => billingSettings({ hasFundsTtlMs: -1, maxAttempts: 0.5, chargeTimeoutMs: Number.NaN }), (e: GhlError) =>
      e.code === 'GHL_CONFIG_INVALID' && /hasFundsTtlMs/.test(e.message) && /maxAttempts/.test(e.message) && /chargeTimeoutMs/.test(e.message),
    )
    assert.equal(billingSettings().maxAttempts, 3)
  })

  test('external auth needs a validate function and a known mode', () => {
    assert.throws(() => new ExternalAuthEndpoint({} as never), /validate function/)
    assert.throws(() => new ExternalAuthEndpoint({ mode: 'saml' as never, validate: () => true }), /mode/)
  })
})

describe('charge input', () => {
  test('every problem reported at once', () => {
    assert.throws(
      () => parseChargeInput({ meterId: '', units: '3', description: 1, userId: '', price: -1 }),
      (e: GhlError) =>
        e.code === 'GHL_BILLING_INVALID' && ['meterId', 'units', 'description', 'userId', 'price'].every((f) => e.message.includes(`${f}:`)),
    )
  })

  test('a Date eventTime becomes ISO 8601; optional fields stay absent', () => {
    const r = parseChargeInput({ meterId: 'm', units: 1.5, description: 'd', eventTime: new Date(Date.UTC(2026, 0, 2)) })
    assert.deepEqual(r, { meterId: 'm', units: 1.5, description: 'd', eventTime: '2026-01-02T00:00:00.000Z' })
  })
})

describe("HighLevel's requests", () => {
  test('the billing redirect: installType combinations and comma-separated locations', () => {
    const both = billingRedirectQuery.parse({ clientId: 'c', installType: 'agency,location', locationId: 'L1, L2', companyId: 'C1' })
    assert.deepEqual(both, { clientId: 'c', installType: { agency: true, location: true }, locationId: ['L1', 'L2'], companyId: 'C1' })
    assert.equal(billingRedirectQuery.safeParse({ clientId: 'c', installType: 'agency' }).success, false, 'agency needs companyId')
    assert.equal(billingRedirectQuery.safeParse({ clientId: 'c', installType: 'planet', locationId: 'L' }).success, false)
  })

  test('external auth, OAuth 2 mode: the bearer token is the credential', () => {
    const parsed = parseExternalAuth({ mode: 'oauth2', validate: () => true }, { method: 'GET', headers: { authorization: 'Bearer tok-123' }, query: { locationId: 'L1' }, body: undefined })
    assert.deepEqual(parsed.credential, { kind: 'oauth2', accessToken: 'tok-123' })
    assert.deepEqual(parsed.context.locationIds, ['L1'])
    assert.throws(() => parseExternalAuth({ mode: 'oauth2', validate: () => true }, { method: 'GET', headers: {}, query: {}, body: undefined }), /Authorization: Bearer/)
  })

  test('external auth, GET: repeated and bracketed list parameters, boolean strings', () => {
    const parsed = parseExternalAuth(
      { fields: z.object({ apiKey: z.string() }), validate: () => true },
      { method: 'GET', headers: {}, query: { apiKey: 'k', 'locationId[]': ['A', 'B'], approveAllLocations: 'false', companyId: 'C' }, body: undefined },
    )
    assert.deepEqual(parsed.credential, { kind: 'basic', fields: { apiKey: 'k' } })
    assert.deepEqual(parsed.context, { companyId: 'C', locationIds: ['A', 'B'], approveAllLocations: false, excludedLocations: null })
  })

  test('an action answer: outputs as the body, plus branchId', () => {
    assert.deepEqual(buildActionAnswer('k', { outputs: { a: 1 }, branchId: 'b' }), { status: 200, body: { a: 1, branchId: 'b' } })
    assert.deepEqual(buildActionAnswer('k', {}), { status: 200, body: {} })
    assert.equal(buildActionAnswer('k', { outputs: [1] as never }).status, 500)
    assert.equal(buildActionAnswer('k', { branchId: '' }).status, 500)
  })
})
