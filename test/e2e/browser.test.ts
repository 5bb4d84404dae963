/**
 * The install flow in a real browser: Debian's Chromium driven by playwright-core clicks Install on the
 * connector's page, chooses a sub-account on the sandbox's consent page, approves, and lands back on
 * the connector, which lists the new installation.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { chromium, type Browser } from 'playwright-core'
import { startStack, type Stack } from '../helpers/stack.js'
import { tempDir } from '../helpers/services.js'

const CHROMIUM = process.env.GHL_TEST_CHROMIUM ?? '/usr/bin/chromium'
const ON_CI = process.env.CI === 'true' || process.env.CI === '1'
if (!existsSync(CHROMIUM) && ON_CI) throw new Error(`CI requires Chromium at ${CHROMIUM} (apt-get install chromium)`)
const skip = existsSync(CHROMIUM) ? false : `Chromium not found at ${CHROMIUM} (set GHL_TEST_CHROMIUM or apt-get install chromium)`

let stack: Stack
let browser: Browser
const shots = tempDir('ghl-browser-')

before(async () => {
  if (skip) return
  stack = await startStack()
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
  })
})
after(async () => {
  await browser?.close()
  await stack?.close()
  shots.remove()
})

test('click Install, choose a location, approve → installation listed', { skip, timeout: 60_000 }, async () => {
  const location = stack.sandbox.companies[0]!.locations[2]!
  const page = await browser.newPage()
  await page.goto(`${stack.url}/`)
  assert.equal(await page.locator('#no-installations').count(), 1)
  await page.click('#install')
  await page.waitForURL((u) => u.toString().startsWith(stack.sandbox.url))
  assert.match(new URL(page.url()).pathname, /\/v2\/oauth\/chooselocation$/)
  await page.check(`input[name="target"][value="location:${location.locationId}"]`)
  await page.screenshot({ path: join(shots.path, 'consent.png') })
  await page.click('#approve')
  await page.waitForURL((u) => u.toString().startsWith(`${stack.url}/oauth/callback`))
  assert.match(await page.locator('#result').innerText(), /installed/i)
  await page.goto(`${stack.url}/`)
  const row = page.locator('#installations tbody tr')
  assert.equal(await row.count(), 1)
  const text = await row.first().innerText()
  assert.match(text, new RegExp(location.locationId))
  assert.match(text, /active/)
  const html = await page.content()
  const [installation] = await stack.connector.installations()
  const stored = await stack.connector.vault.installations.get(installation!.id)
  assert.ok(!html.includes(stored!.tokens!.accessToken), 'no token in the page')
  await page.screenshot({ path: join(shots.path, 'installed.png') })
})

test('Deny on the consent page shows a clear "declined" page and stores nothing', { skip, timeout: 60_000 }, async () => {
  const before = (await stack.connector.installations()).length
  const page = await browser.newPage()
  await page.goto(`${stack.url}/oauth/install`)
  await page.locator(`input[name="target"][value^="location:"]`).first().check()
  await page.click('#deny')
  await page.waitForURL((u) => u.toString().startsWith(`${stack.url}/oauth/callback`))
  assert.match(await page.locator('h1').innerText(), /declined/i)
  assert.equal(await page.locator('#error').getAttribute('data-code'), 'GHL_OAUTH_DENIED')
  assert.equal((await stack.connector.installations()).length, before)
})

test("the sandbox's Marketplace install link (no state, as HighLevel's listing opens it) installs a sub-account", { skip, timeout: 60_000 }, async () => {
  const location = stack.sandbox.companies[0]!.locations[1]!
  const page = await browser.newPage()
  await page.goto(`${stack.sandbox.url}/`)
  assert.match(await page.locator('body').innerText(), /sandbox/i)
  const link = page.locator(`#marketplace-install-${stack.sandbox.app.appId}`)
  const href = (await link.getAttribute('href'))!
  assert.equal(new URL(href, stack.sandbox.url).searchParams.get('state'), null, 'the listing sends no state')
  await link.click()
  await page.waitForURL((u) => new URL(u.toString()).pathname.endsWith('/oauth/chooselocation'))
  await page.check(`input[name="target"][value="location:${location.locationId}"]`)
  await page.click('#approve')
  await page.waitForURL((u) => u.toString().startsWith(`${stack.url}/oauth/callback`))
  assert.equal(new URL(page.url()).searchParams.get('state'), null)
  assert.match(await page.locator('#result').innerText(), new RegExp(`installed for sub-account ${location.locationId}`, 'i'))
  const row = await stack.connector.vault.installations.findByLocation(stack.config.clientId, location.locationId)
  assert.equal(row?.status, 'active')
  await page.screenshot({ path: join(shots.path, 'marketplace-installed.png') })
})

test('the agency chosen on the consent page with the default config (user_type Location) → an agency installation', { skip, timeout: 60_000 }, async () => {
  assert.equal(stack.config.userType, 'Location')
  const company = stack.sandbox.companies[0]!
  const page = await browser.newPage()
  await page.goto(`${stack.url}/`)
  await page.click('#install')
  await page.waitForURL((u) => u.toString().startsWith(stack.sandbox.url))
  await page.check(`input[name="target"][value="company:${company.companyId}"]`)
  await page.click('#approve')
  await page.waitForURL((u) => u.toString().startsWith(`${stack.url}/oauth/callback`))
  assert.match(await page.locator('#result').innerText(), new RegExp(`installed for agency ${company.companyId}`, 'i'))
  const row = await stack.connector.vault.installations.findByCompany(stack.config.clientId, company.companyId)
  assert.equal(row?.userType, 'Company')
  await page.goto(`${stack.url}/`)
  assert.match(await page.locator('#installations').innerText(), /Agency/)
})
