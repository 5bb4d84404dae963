/**
 * `POST /oauth/reconnect` in each `reconnect` setting: `removed` (the default, HighLevel since
 * September 2026), `allow`, `refuse`, and per-installation refusals.
 */
import { after, before, beforeEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js'
import { call, exchange, installAgency, installLocation, postForm, postJson, putSettings } from './helpers.js'

let sb: Sandbox
let loc: string[]
let companyId: string

before(async () => {
  sb = await startSandbox()
  loc = sb.companies[0]!.locations.map((l) => l.locationId)
  companyId = sb.companies[0]!.companyId
})
after(() => sb.close())
beforeEach(async () => {
  await postJson(`${sb.url}/_sandbox/reset`, {})
})

const REMOVED = '{"message":"API endpoint has been removed","error":"Bad Request","statusCode":400}'
const reconnect = (body: Record<string, unknown>, headers: Record<string, string> = {}) => postJson(`${sb.url}/oauth/reconnect`, body, headers)
const credentials = (): Record<string, string> => ({ clientKey: sb.app.clientId, clientSecret: sb.app.clientSecret })

describe('reconnect', () => {
  test("'removed' (default): every call gets HighLevel's 400, whatever it sends", async () => {
    await installLocation(sb, loc[0]!)
    assert.equal((await call(`${sb.url}/_sandbox/settings`)).body.reconnect, 'removed')
    const answers = [
      await reconnect({ ...credentials(), locationId: loc[0] }),
      await reconnect({ ...credentials(), locationId: loc[0] }, { version: '2021-07-28' }),
      await reconnect({ ...credentials(), companyId }),
      await reconnect({ clientKey: sb.app.clientId, clientSecret: 'wrong', locationId: loc[0] }),
      await reconnect({}),
      await postForm(`${sb.url}/oauth/reconnect`, { ...credentials(), locationId: loc[0]! }),
    ]
    for (const res of answers) {
      assert.equal(res.status, 400)
      assert.equal(res.text, REMOVED)
    }
    assert.deepEqual((await call(`${sb.url}/_sandbox/stats`)).body.reconnect, { ok: 0, error: 6 })
  })

  test("'allow': a code that exchanges for the installation (the old behaviour)", async () => {
    await putSettings(sb, { reconnect: 'allow' })
    await installLocation(sb, loc[0]!)
    const res = await reconnect({ ...credentials(), locationId: loc[0] })
    assert.equal(res.status, 200)
    assert.deepEqual(Object.keys(res.body).sort(), ['authorizationCode', 'expiresAt', 'traceId'])
    const t = await exchange(sb, res.body.authorizationCode)
    assert.equal(t.status, 200)
    assert.equal(t.body.locationId, loc[0])
  })

  test("'refuse': every installation is refused; back to 'allow', the same call works", async () => {
    await installLocation(sb, loc[0]!)
    await putSettings(sb, { reconnect: 'refuse' })
    const refused = await reconnect({ ...credentials(), locationId: loc[0] })
    assert.equal(refused.status, 400)
    assert.deepEqual(refused.body, { statusCode: 400, message: 'Reconnect is not allowed for this installation' })
    await putSettings(sb, { reconnect: 'allow' })
    assert.equal((await reconnect({ ...credentials(), locationId: loc[0] })).status, 200)
  })

  test('reconnectRefusedIds refuse those installations only', async () => {
    await installLocation(sb, loc[0]!)
    await installLocation(sb, loc[1]!)
    await installAgency(sb)
    await putSettings(sb, { reconnect: 'allow', reconnectRefusedIds: [loc[0], companyId] })
    for (const target of [{ locationId: loc[0] }, { companyId }]) {
      const res = await reconnect({ ...credentials(), ...target })
      assert.equal(res.status, 400, JSON.stringify(target))
      assert.equal(res.body.message, 'Reconnect is not allowed for this installation')
    }
    assert.equal((await reconnect({ ...credentials(), locationId: loc[1] })).status, 200, 'another installation is not refused')
  })

  test("the startSandbox option sets the mode, and reset goes back to it", async () => {
    const other = await startSandbox({ reconnect: 'allow', reconnectRefusedIds: ['someLocation'] })
    try {
      const settings = (await call(`${other.url}/_sandbox/settings`)).body
      assert.equal(settings.reconnect, 'allow')
      assert.deepEqual(settings.reconnectRefusedIds, ['someLocation'])
      await putSettings(other, { reconnect: 'removed', reconnectRefusedIds: [] })
      await postJson(`${other.url}/_sandbox/reset`, {})
      const reset = (await call(`${other.url}/_sandbox/settings`)).body
      assert.equal(reset.reconnect, 'allow')
      assert.deepEqual(reset.reconnectRefusedIds, ['someLocation'])
    } finally {
      await other.close()
    }
    await assert.rejects(startSandbox({ reconnect: 'maybe' as never }), /expected reconnect to be one of "allow", "removed", "refuse", got "maybe"/)
  })

  test('bad values are refused and change nothing', async () => {
    for (const body of [{ reconnect: 'maybe' }, { reconnectRefusedIds: 'loc' }, { reconnectRefusedIds: [''] }]) {
      const res = await call(`${sb.url}/_sandbox/settings`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
      assert.equal(res.status, 400, JSON.stringify(body))
    }
    const settings = (await call(`${sb.url}/_sandbox/settings`)).body
    assert.equal(settings.reconnect, 'removed')
    assert.deepEqual(settings.reconnectRefusedIds, [])
  })
})
