/**
 * Installs that start on HighLevel's side (the Marketplace listing or an install link HighLevel
 * made): no `state` anywhere, and the sandbox's home page that offers such a link.
 */
import { after, before, beforeEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js'
import { call, exchange, postForm, postJson } from './helpers.js'

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

/** The href of the element with this id (the page is ours: attributes are double-quoted, `&` escaped). */
function hrefOf(page: string, id: string): string | undefined {
  const m = new RegExp(`<a [^>]*id="${id}" href="([^"]*)"`).exec(page) ?? new RegExp(`<a [^>]*href="([^"]*)" [^>]*id="${id}"`).exec(page)
  return m?.[1]?.replace(/&amp;/g, '&')
}

describe('home page', () => {
  test('/, /_sandbox and /_sandbox/ say this is the HighLevel sandbox and list the seed', async () => {
    for (const path of ['/', '/_sandbox', '/_sandbox/']) {
      const res = await call(`${sb.url}${path}`)
      assert.equal(res.status, 200, path)
      assert.match(res.headers.get('content-type')!, /^text\/html; charset=utf-8/)
      assert.match(res.text, /^<!doctype html>\n<html lang="en">/)
      assert.match(res.text, /<title>HighLevel sandbox: home<\/title>/)
      assert.match(res.text, /<h1>HighLevel sandbox<\/h1>/)
      assert.ok(res.text.includes(sb.app.appId) && res.text.includes(sb.app.clientId))
      assert.ok(res.text.includes('Sandbox Agency') && res.text.includes(companyId))
      for (const l of sb.companies[0]!.locations) assert.ok(res.text.includes(l.name) && res.text.includes(l.locationId), l.name)
    }
  })

  test('no secrets, no scripts, no external assets; a CSP that allows none', async () => {
    const res = await call(`${sb.url}/`)
    for (const secret of [sb.app.clientSecret, sb.app.sharedSecret]) assert.equal(res.text.includes(secret), false)
    assert.doesNotMatch(res.text, /<script|<link|<img|<iframe|\ssrc=|@import|url\(/i)
    assert.equal(res.headers.get('content-security-policy'), "default-src 'none'; style-src 'unsafe-inline'")
    // Every table header cell says what it heads; every section heading is reachable.
    assert.doesNotMatch(res.text, /<th>/)
    assert.match(res.text, /<main id="main">/)
  })

  test('the Marketplace install link opens the consent page without a state; approving redirects with only the code', async () => {
    const page = (await call(`${sb.url}/`)).text
    const href = hrefOf(page, `marketplace-install-${sb.app.appId}`)
    assert.ok(href, 'the home page offers the link')
    const link = new URL(href, sb.url)
    assert.equal(link.pathname, '/v2/oauth/chooselocation')
    assert.deepEqual([...link.searchParams.keys()].sort(), ['client_id', 'redirect_uri', 'response_type', 'scope'])
    assert.equal(link.searchParams.get('client_id'), sb.app.clientId)
    assert.equal(link.searchParams.get('redirect_uri'), sb.app.redirectUris[0])
    assert.equal(link.searchParams.get('scope'), sb.app.scopes.join(' '))

    const consent = await call(link.toString())
    assert.equal(consent.status, 200)
    assert.ok(consent.text.includes(`id="target-location-${loc[0]}"`))
    assert.equal(consent.text.includes('name="state"'), false)

    const form = Object.fromEntries([...consent.text.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1]!, m[2]!.replace(/&amp;/g, '&')]))
    assert.deepEqual(Object.keys(form).sort(), ['client_id', 'redirect_uri', 'response_type', 'scope'])
    const decision = await postForm(`${sb.url}/oauth/chooselocation/decision`, { ...form, target: `location:${loc[0]}`, action: 'approve' })
    assert.equal(decision.status, 302)
    const to = new URL(decision.headers.get('location')!)
    assert.equal(`${to.origin}${to.pathname}`, sb.app.redirectUris[0])
    assert.deepEqual([...to.searchParams.keys()], ['code'])
    const token = await exchange(sb, to.searchParams.get('code')!)
    assert.equal(token.status, 200)
    assert.equal(token.body.locationId, loc[0])
  })

  test('the page follows installs and suspensions; without a redirect URI there is no link', async () => {
    const before = (await call(`${sb.url}/`)).text
    assert.match(before, new RegExp(`<code>${loc[1]}</code></td><td>Active</td><td>none</td>`))
    await postJson(`${sb.url}/_sandbox/locations/${loc[1]}/suspend`, {})
    await postJson(`${sb.url}/_sandbox/authorize`, { clientId: sb.app.clientId, redirectUri: sb.app.redirectUris[0], scope: 'contacts.readonly', locationId: loc[1], webhookTiming: 'none' })
    const afterwards = (await call(`${sb.url}/`)).text
    assert.match(afterwards, new RegExp(`<code>${loc[1]}</code></td><td>Suspended</td><td><code>${sb.app.appId}</code></td>`))
    sb.configureApp({ redirectUris: [] })
    const none = (await call(`${sb.url}/`)).text
    assert.equal(hrefOf(none, `marketplace-install-${sb.app.appId}`), undefined)
    assert.match(none, /No Marketplace install link: the app has no redirect URI/)
  })

  test('seeded names are escaped', async () => {
    const other = await startSandbox({ seed: { companies: [{ name: 'A <b>&"Co"</b>', locations: [{ name: "O'Hare <script>" }] }] } })
    try {
      const page = (await call(`${other.url}/`)).text
      assert.ok(page.includes('A &lt;b&gt;&amp;&quot;Co&quot;&lt;/b&gt;'))
      assert.ok(page.includes('O&#39;Hare &lt;script&gt;'))
      assert.doesNotMatch(page, /<script>|<b>&/)
    } finally {
      await other.close()
    }
  })
})

describe('installs without state', () => {
  test('POST /_sandbox/authorize without state: approve redirects with only the code, deny with only the error', async () => {
    const base = { clientId: sb.app.clientId, redirectUri: sb.app.redirectUris[0], scope: 'contacts.readonly' }
    const approve = await postJson(`${sb.url}/_sandbox/authorize`, { ...base, companyId, webhookTiming: 'none' })
    assert.equal(approve.status, 200)
    const to = new URL(approve.body.redirect)
    assert.deepEqual([...to.searchParams.keys()], ['code'])
    assert.equal(approve.body.redirect, `${sb.app.redirectUris[0]}?code=${to.searchParams.get('code')}`)
    assert.equal((await exchange(sb, to.searchParams.get('code')!)).body.userType, 'Company')
    const deny = await postJson(`${sb.url}/_sandbox/authorize`, { ...base, locationId: loc[0], deny: true })
    assert.equal(deny.body.redirect, `${sb.app.redirectUris[0]}?error=access_denied`)
  })

  test('the consent page without state renders, and a state given is still echoed (control)', async () => {
    const q = { response_type: 'code', client_id: sb.app.clientId, redirect_uri: sb.app.redirectUris[0]!, scope: 'contacts.readonly' }
    const without = await call(`${sb.url}/oauth/chooselocation?${new URLSearchParams(q)}`)
    assert.equal(without.status, 200)
    assert.equal(without.text.includes('name="state"'), false)
    const withState = await call(`${sb.url}/oauth/chooselocation?${new URLSearchParams({ ...q, state: 'xyz' })}`)
    assert.ok(withState.text.includes('<input type="hidden" name="state" value="xyz">'))
  })
})
