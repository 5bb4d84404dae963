/**
 * The proxy and HighLevel's operation table: a proxied call gets its operation's `Version` when the
 * caller sends none (the caller's own wins), and a call needing a scope the installation was not
 * granted is refused with 403 GHL_SCOPE_MISSING before it reaches HighLevel.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'undici'
import { installViaHttp, sandboxJson, startStack, type Stack } from '../helpers/stack.js'

const SCOPES = 'contacts.readonly contacts.write locations.readonly oauth.readonly oauth.write calendars.readonly'
let stack: Stack
let locationId: string

before(async () => {
  stack = await startStack({ env: { GHL_SCOPES: SCOPES } })
  stack.sandbox.configureApp({ scopes: SCOPES.split(' ') })
  locationId = stack.sandbox.companies[0]!.locations[0]!.locationId
  const res = await installViaHttp(stack, { locationId, webhookTiming: 'none' })
  assert.equal(res.status, 200, res.html)
  // The sandbox takes only the Version each operation documents (calendars: 2021-04-15).
  await sandboxJson(stack.sandbox, 'PUT', '/_sandbox/settings', { versionCheck: 'operation' })
})
after(async () => {
  await stack?.close()
})

async function proxy(path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const res = await request(`${stack.url}/proxy/locations/${locationId}${path}`, { headers: { authorization: `Bearer ${stack.apiKey}`, ...headers } })
  const text = await res.body.text()
  return { status: res.statusCode, body: text ? JSON.parse(text) : undefined }
}

test("a call without Version gets its operation's Version (calendars: 2021-04-15); the caller's own Version wins", async () => {
  const defaulted = await proxy(`/calendars/?locationId=${locationId}`)
  assert.equal(defaulted.status, 200, JSON.stringify(defaulted.body))
  // Control: the connector's default Version (2021-07-28) sent explicitly is refused by this operation.
  const explicit = await proxy(`/calendars/?locationId=${locationId}`, { version: '2021-07-28' })
  assert.equal(explicit.status, 400)
  assert.match(JSON.stringify(explicit.body), /Version header 2021-07-28 is not supported/)
})

test('a call needing a scope the installation lacks → 403 GHL_SCOPE_MISSING naming it, never sent to HighLevel', async () => {
  const before = (await sandboxJson(stack.sandbox, 'GET', '/_sandbox/stats')).api
  const refused = await proxy(`/conversations/search?locationId=${locationId}`)
  assert.equal(refused.status, 403)
  assert.equal(refused.body.code, 'GHL_SCOPE_MISSING')
  assert.match(refused.body.message, /conversations\.readonly/)
  assert.match(refused.body.message, /GHL_SCOPES/)
  assert.deepEqual((await sandboxJson(stack.sandbox, 'GET', '/_sandbox/stats')).api, before, 'HighLevel was not called')
  // Positive control: a granted operation through the same route reaches HighLevel.
  assert.equal((await proxy(`/locations/${locationId}`)).status, 200)
  const afterOk = (await sandboxJson(stack.sandbox, 'GET', '/_sandbox/stats')).api
  assert.equal(afterOk.ok, before.ok + 1)
})
