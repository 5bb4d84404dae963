/**
 * External authentication between the sandbox (HighLevel asking the installer for the app's own
 * credential) and the connector's route, on each vault backend: a good credential is accepted (200)
 * and stored encrypted under the location or the agency — the raw database never holds it; a bad one
 * is refused with a status HighLevel treats as failure and nothing is stored; wrong headers are refused.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { z } from 'zod'
import type { Stack } from '../helpers/stack.js'
import { DIALECTS, dialectSkipReason } from '../helpers/services.js'
import { openRaw } from '../vault/helpers.js'
import { install, marketplaceStack, sb, waitFor } from './helpers.js'

for (const dialect of DIALECTS) {
  describe(`external authentication (${dialect})`, { skip: await dialectSkipReason(dialect) }, () => {
    const headerSecret = `auth-${randomBytes(12).toString('hex')}`
    const goodKey = `sk_live_${randomBytes(16).toString('hex')}`
    const validated: Array<{ kind: string; companyId: string | null }> = []
    let stack: Stack
    let locA: string
    let locB: string
    let companyId: string

    /** Everything the database holds, as bytes (SQLite file and WAL; PostgreSQL's credential rows as text). */
    const rawDatabase = async (): Promise<Buffer> => {
      const raw = await openRaw(dialect, stack.databaseUrl)
      try {
        if (dialect === 'sqlite') return await raw.dump()
        return Buffer.from(JSON.stringify(await raw.query('select * from external_credentials')))
      } finally {
        await raw.close()
      }
    }
    const configure = (externalAuth: Record<string, unknown>) => sb(stack, 'PUT', `/_sandbox/marketplace/${stack.sandbox.app.appId}`, { externalAuth })

    before(async () => {
      stack = await marketplaceStack(dialect, {
        marketplace: {
          externalAuth: {
            headers: { 'x-auth-secret': headerSecret },
            fields: z.object({ apiKey: z.string().min(1), account: z.string().optional() }),
            validate: ({ kind, ...rest }, context) => {
              validated.push({ kind, companyId: context.companyId })
              return kind === 'basic' && (rest as { fields: { apiKey: string } }).fields.apiKey === goodKey ? true : { ok: false, message: 'Unknown API key' }
            },
          },
        },
      })
      ;[locA, locB] = stack.sandbox.companies[0]!.locations.map((l) => l.locationId) as [string, string]
      companyId = stack.sandbox.companies[0]!.companyId
      await install(stack, { locationId: locA })
      await configure({ url: `${stack.url}/external-auth`, method: 'POST', headers: { 'x-auth-secret': headerSecret }, fields: ['apiKey'] })
    })
    after(() => stack?.close())

    test('a good credential is accepted and stored encrypted: the raw database never holds it', async () => {
      const res = await sb(stack, 'POST', '/_sandbox/external-auth', { locationIds: [locA], fields: { apiKey: goodKey } })
      assert.deepEqual([res.accepted, res.status, res.body], [true, 200, { success: true }])
      const stored = await stack.connector.externalCredential(locA)
      assert.deepEqual(stored?.secret, { apiKey: goodKey })
      assert.equal(stored?.kind, 'basic')
      assert.deepEqual(stored?.details.locationIds, [locA])
      const raw = await rawDatabase()
      assert.ok(raw.includes(Buffer.from(`location:${locA}`)), 'the row is there (positive control)')
      assert.equal(raw.includes(Buffer.from(goodKey)), false)
      assert.equal(stack.logs.some((l) => l.includes(goodKey)), false)
    })

    test('a bad credential is refused (401, a status HighLevel fails the install on); nothing is stored', async () => {
      const res = await sb(stack, 'POST', '/_sandbox/external-auth', { locationIds: [locB], fields: { apiKey: 'sk_live_wrong' } })
      assert.equal(res.accepted, false)
      assert.equal(res.status, 401)
      assert.deepEqual(res.body, { code: 'GHL_EXTERNAL_AUTH_REJECTED', message: 'Unknown API key', status: 401 })
      assert.equal(await stack.connector.vault.credentials.get(stack.config.clientId, { locationId: locB }), undefined)
    })

    test('an agency install stores one credential under the agency; it covers the approved locations only', async () => {
      await install(stack, { companyId, locationIds: [locA, locB] })
      const res = await sb(stack, 'POST', '/_sandbox/external-auth', { companyId, approveAllLocations: true, excludedLocations: [locB], fields: { apiKey: goodKey } })
      assert.equal(res.accepted, true)
      assert.equal(validated.at(-1)!.companyId, companyId)
      const agency = await stack.connector.vault.credentials.get(stack.config.clientId, { companyId })
      assert.deepEqual(agency?.secret, { apiKey: goodKey })
      assert.deepEqual([agency?.details.approveAllLocations, agency?.details.excludedLocations], [true, [locB]])
      assert.equal(await stack.connector.vault.credentials.get(stack.config.clientId, { locationId: locB }), undefined)
      assert.equal(await stack.connector.externalCredential(locB), undefined, 'excluded')
      assert.equal((await rawDatabase()).includes(Buffer.from(goodKey)), false)
    })

    test('GET mode: the fields come as query parameters', async () => {
      await configure({ url: `${stack.url}/external-auth`, method: 'GET', headers: { 'x-auth-secret': headerSecret }, fields: ['apiKey'] })
      try {
        const res = await sb(stack, 'POST', '/_sandbox/external-auth', { locationIds: [locB], fields: { apiKey: goodKey } })
        assert.equal(res.accepted, true)
        assert.deepEqual((await stack.connector.vault.credentials.get(stack.config.clientId, { locationId: locB }))?.secret, { apiKey: goodKey })
      } finally {
        await configure({ url: `${stack.url}/external-auth`, method: 'POST', headers: { 'x-auth-secret': headerSecret }, fields: ['apiKey'] })
      }
    })

    test('without the configured header the call is refused before the validator runs', async () => {
      await configure({ url: `${stack.url}/external-auth`, method: 'POST', headers: { 'x-auth-secret': 'not-the-secret-value' }, fields: ['apiKey'] })
      try {
        const before = validated.length
        const res = await sb(stack, 'POST', '/_sandbox/external-auth', { locationIds: [locA], fields: { apiKey: goodKey } })
        assert.deepEqual([res.accepted, res.status, res.body.code], [false, 401, 'GHL_MARKETPLACE_UNAUTHORIZED'])
        assert.equal(validated.length, before)
      } finally {
        await configure({ url: `${stack.url}/external-auth`, method: 'POST', headers: { 'x-auth-secret': headerSecret }, fields: ['apiKey'] })
      }
    })

    test('malformed requests answer 400 naming the problem, never the value', async () => {
      const post = (body: unknown) =>
        fetch(`${stack.url}/external-auth`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-auth-secret': headerSecret }, body: JSON.stringify(body) })
      const noFields = await post({ companyId: null, locationId: [locA] })
      assert.equal(noFields.status, 400)
      const wrongType = await post({ locationId: [locA], apiKey: 12345678 })
      assert.equal(wrongType.status, 400)
      const text = await wrongType.text()
      assert.match(text, /apiKey/)
      assert.equal(text.includes('12345678'), false)
    })

    test('an UNINSTALL of the location deletes its stored credential', async () => {
      const res = await sb(stack, 'POST', '/_sandbox/external-auth', { locationIds: [locA], fields: { apiKey: goodKey } })
      assert.equal(res.accepted, true)
      assert.ok(await stack.connector.vault.credentials.get(stack.config.clientId, { locationId: locA }))
      await sb(stack, 'POST', '/_sandbox/uninstall', { locationId: locA })
      await waitFor('the credential to be deleted', async () => (await stack.connector.vault.credentials.get(stack.config.clientId, { locationId: locA })) === undefined)
      const row = await stack.connector.vault.installations.findByLocation(stack.config.clientId, locA)
      assert.equal(row?.status, 'uninstalled')
      const audit = await stack.connector.vault.audit.list(row!.id)
      assert.equal(audit.find((a) => a.action === 'webhook.uninstall')?.detail.credentialRemoved, true)
    })
  })
}
