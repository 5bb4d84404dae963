/**
 * The app's lifecycle over real HTTP, with the sandbox sending signed webhooks to the connector's
 * webhook route: install → calls work → UNINSTALL → calls fail "not installed", no token left →
 * re-install → calls work again. Plus a forged webhook at the HTTP level.
 */
import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairSync, sign } from 'node:crypto'
import { request } from 'undici'
import { NotInstalledError } from '../../src/errors.js'
import { DIALECTS, dialectSkipReason } from '../helpers/services.js'
import { installViaHttp, sandboxJson, startStack, type Stack } from '../helpers/stack.js'

/** Waits until the sandbox has delivered every webhook it queued, then until the connector processed them. */
async function settle(stack: Stack): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const list = await sandboxJson<Array<{ status: string }>>(stack.sandbox, 'GET', '/_sandbox/webhooks')
    if (list.every((w) => w.status !== 'pending' && w.status !== 'sending')) break
    await new Promise((r) => setTimeout(r, 25))
  }
  await stack.connector.webhooks.idle()
}

for (const dialect of DIALECTS) {
  describe(`lifecycle over HTTP (${dialect})`, { skip: await dialectSkipReason(dialect) }, () => {
    let stack: Stack
    before(async () => {
      stack = await startStack({ dialect })
    })
    after(async () => stack?.close())

    test('install → call → uninstall → not installed, tokens wiped → re-install → call', async () => {
      const locationId = stack.sandbox.companies[0]!.locations[0]!.locationId
      const installed = await installViaHttp(stack, { locationId })
      assert.equal(installed.status, 200, installed.html)
      await settle(stack)

      const ok = await stack.connector.location(locationId).get<{ contacts: unknown[] }>('/contacts/', { query: { locationId } })
      assert.equal(ok.status, 200)
      assert.ok(Array.isArray(ok.data.contacts))

      await sandboxJson(stack.sandbox, 'POST', '/_sandbox/uninstall', { locationId })
      await settle(stack)
      const [row] = await stack.connector.installations()
      assert.equal(row!.status, 'uninstalled')
      const stored = await stack.connector.vault.installations.get(row!.id)
      assert.equal(stored!.tokens, null, 'tokens wiped on uninstall')
      assert.ok((await stack.connector.vault.audit.list(row!.id)).some((a) => /uninstall/i.test(a.action)), 'an audit row is kept')
      await assert.rejects(stack.connector.location(locationId).get('/contacts/', { query: { locationId } }), (err) => {
        assert.ok(err instanceof NotInstalledError)
        assert.equal(err.code, 'GHL_NOT_INSTALLED')
        return true
      })
      const proxied = await request(`${stack.url}/proxy/locations/${locationId}/contacts/?locationId=${locationId}`, { headers: { authorization: `Bearer ${stack.apiKey}` } })
      assert.equal(proxied.statusCode, 404)
      assert.equal(((await proxied.body.json()) as { code: string }).code, 'GHL_NOT_INSTALLED')

      const again = await installViaHttp(stack, { locationId })
      assert.equal(again.status, 200, again.html)
      await settle(stack)
      const rows = await stack.connector.installations()
      assert.equal(rows.length, 1, 'the same row is reused')
      assert.equal(rows[0]!.status, 'active')
      const res = await stack.connector.location(locationId).get('/contacts/', { query: { locationId } })
      assert.equal(res.status, 200)
    })

    test('events the sandbox signs reach typed subscribers once; a lifecycle event sent by hand is accepted', async () => {
      const seen: Array<{ type: string; id?: string }> = []
      const off = stack.connector.webhooks.on('ContactCreate', (event) => {
        seen.push({ type: event.type, id: (event as { id?: string }).id })
      })
      try {
        const locationId = stack.sandbox.companies[0]!.locations[0]!.locationId
        const sent = await sandboxJson<{ webhookId: string; responseStatus: number }>(stack.sandbox, 'POST', '/_sandbox/webhooks/send', { type: 'ContactCreate', locationId, id: 'contact-42', firstName: 'Ada' })
        assert.equal(sent.responseStatus, 200)
        await sandboxJson(stack.sandbox, 'POST', '/_sandbox/webhooks/redeliver', { webhookId: sent.webhookId })
        await settle(stack)
        assert.deepEqual(seen, [{ type: 'ContactCreate', id: 'contact-42' }], 'the redelivery is not dispatched again')
        const install = await sandboxJson<{ responseStatus: number }>(stack.sandbox, 'POST', '/_sandbox/webhooks/send', { type: 'INSTALL', locationId, companyId: stack.sandbox.companies[0]!.companyId })
        assert.equal(install.responseStatus, 200)
      } finally {
        off()
      }
    })

    test('a webhook signed with another key is rejected with 401 and changes nothing', async () => {
      const before = await stack.connector.installations()
      const { privateKey } = generateKeyPairSync('ed25519')
      const locationId = stack.sandbox.companies[0]!.locations[0]!.locationId
      const body = Buffer.from(JSON.stringify({ type: 'UNINSTALL', appId: stack.sandbox.app.appId, locationId, webhookId: `forged-${Date.now()}`, timestamp: new Date().toISOString() }))
      const res = await request(`${stack.url}/webhooks/highlevel`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-ghl-signature': sign(null, body, privateKey).toString('base64') },
        body,
      })
      const answer = (await res.body.json()) as { code: string }
      assert.equal(res.statusCode, 401)
      assert.equal(answer.code, 'GHL_WEBHOOK_SIGNATURE_INVALID')
      await stack.connector.webhooks.idle()
      assert.deepEqual(await stack.connector.installations(), before)
    })
  })
}
