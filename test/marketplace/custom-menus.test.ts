/**
 * Custom menu links through the connector against the sandbox's stateful custom-menus API: the
 * helpers (create with HighLevel's required fields filled in, update, delete, list), `ensure` making
 * a link exist once, input HighLevel would refuse stopped before the call, and the install-time hook.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createMenusOnInstall } from '../../src/marketplace/custom-menus.js'
import { GhlError } from '../../src/errors.js'
import type { Stack } from '../helpers/stack.js'
import { install, marketplaceStack, rejection, sb, waitFor } from './helpers.js'

describe('custom menu links', () => {
  let stack: Stack
  let companyId: string
  let locA: string
  let locB: string
  let stopHook: () => void

  before(async () => {
    stack = await marketplaceStack('sqlite')
    companyId = stack.sandbox.companies[0]!.companyId
    ;[locA, locB] = stack.sandbox.companies[0]!.locations.map((l) => l.locationId) as [string, string]
    stopHook = createMenusOnInstall(stack.connector, (installation) => [
      { title: 'My App', url: `https://app.example.com/embed?company=${installation.companyId}`, openMode: 'iframe', userRole: 'admin', allowCamera: true },
    ])
    await install(stack, { companyId, locationIds: [locA, locB] })
  })
  after(async () => {
    stopHook?.()
    await stack?.close()
  })

  test('an agency install creates the app’s link (the install hook); installing again changes nothing', async () => {
    const menus = await waitFor('the install hook to create the link', async () => {
      const list = await stack.connector.customMenus.list(companyId)
      return list.length > 0 ? list : undefined
    })
    assert.equal(menus.length, 1)
    const m = menus[0]!
    assert.deepEqual(
      { title: m.title, url: m.url, openMode: m.openMode, userRole: m.userRole, allowCamera: m.allowCamera, showOnCompany: m.showOnCompany, showOnLocation: m.showOnLocation, showToAllLocations: m.showToAllLocations, locations: m.locations, icon: m.icon },
      { title: 'My App', url: `https://app.example.com/embed?company=${companyId}`, openMode: 'iframe', userRole: 'admin', allowCamera: true, showOnCompany: true, showOnLocation: true, showToAllLocations: true, locations: [], icon: { name: 'link', fontFamily: 'fas' } },
    )
    const again = await stack.connector.customMenus.ensure(companyId, { title: 'My App', url: `https://app.example.com/embed?company=${companyId}`, openMode: 'iframe', userRole: 'admin', allowCamera: true })
    assert.equal(again.action, 'unchanged')
    assert.equal((await stack.connector.customMenus.list(companyId)).length, 1)
  })

  test('create, get, update, delete; a link for some sub-accounts only', async () => {
    const menus = stack.connector.customMenus
    const created = await menus.create(companyId, { title: 'Reports', url: 'https://app.example.com/reports', locations: [locB], openMode: 'new_tab', icon: { name: 'chart-line', fontFamily: 'fas' } })
    assert.deepEqual([created.showToAllLocations, created.locations, created.openMode], [false, [locB], 'new_tab'])
    assert.equal((await menus.get(companyId, created.id)).title, 'Reports')
    assert.deepEqual((await menus.list(companyId, { locationId: locB })).map((m) => m.title).sort(), ['My App', 'Reports'])
    assert.deepEqual((await menus.list(companyId, { locationId: locA })).map((m) => m.title), ['My App'])
    const updated = await menus.update(companyId, created.id, { title: 'Reports v2', userRole: 'user' })
    assert.deepEqual([updated.title, updated.userRole, updated.url], ['Reports v2', 'user', 'https://app.example.com/reports'])
    const ensured = await menus.ensure(companyId, { title: 'Reports v3', url: 'https://app.example.com/reports', locations: [locB], openMode: 'new_tab', icon: { name: 'chart-line', fontFamily: 'fas' } })
    assert.equal(ensured.action, 'updated')
    assert.equal(ensured.menu.id, created.id)
    assert.equal(ensured.menu.title, 'Reports v3')
    await menus.delete(companyId, created.id)
    assert.deepEqual((await menus.list(companyId)).map((m) => m.title), ['My App'])
    const gone = await rejection(menus.get(companyId, created.id))
    assert.equal(gone.code, 'GHL_API_ERROR')
  })

  test('input HighLevel would refuse is stopped before the call', async () => {
    const count = (await stack.connector.customMenus.list(companyId)).length
    for (const [input, message] of [
      [{ title: 'x', url: 'javascript:alert(1)' }, /url must be an http\(s\) URL/],
      [{ title: '', url: 'https://app.example.com/' }, /title/],
      [{ title: 'x', url: 'https://app.example.com/', locations: [locA], showToAllLocations: true }, /locations apply only/],
      [{ title: 'x', url: 'https://app.example.com/', openMode: 'new_tab', allowMicrophone: true }, /iframe mode only/],
      [{ title: 'x', url: 'https://app.example.com/', userRole: 'owner' }, /userRole/],
    ] as const) {
      const err = await rejection(stack.connector.customMenus.create(companyId, input as never))
      assert.ok(err instanceof GhlError)
      assert.equal(err.code, 'GHL_BAD_REQUEST')
      assert.match(err.message, message)
    }
    assert.equal((await stack.connector.customMenus.list(companyId)).length, count)
    // The sandbox agrees: a raw create without HighLevel's required fields is refused (422).
    const token = (await stack.connector.tokens.getAccessToken({ kind: 'company', id: companyId })).accessToken
    const res = await fetch(`${stack.sandbox.url}/custom-menus/`, { method: 'POST', headers: { authorization: `Bearer ${token}`, version: '2021-07-28', 'content-type': 'application/json' }, body: JSON.stringify({ title: 'x', url: 'https://app.example.com/' }) })
    assert.equal(res.status, 422)
    assert.equal((await sb(stack, 'GET', '/_sandbox/stats')).api.error >= 1, true)
  })
})
