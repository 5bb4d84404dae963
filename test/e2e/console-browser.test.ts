/**
 * The operator console in a real browser (Debian's Chromium via playwright-core), on a desktop and on a
 * 390 px phone: install through the sandbox's consent page, find the installation by name, open its
 * detail, refresh now (confirmed) and see the refresh in the token timeline, redeliver a webhook, read
 * the calls chart. Screenshots go to `test-output/console/` (gitignored) for a person to look at.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import { startStack, type Stack } from '../helpers/stack.js'

const CHROMIUM = process.env.GHL_TEST_CHROMIUM ?? '/usr/bin/chromium'
const ON_CI = process.env.CI === 'true' || process.env.CI === '1'
if (!existsSync(CHROMIUM) && ON_CI) throw new Error(`CI requires Chromium at ${CHROMIUM} (apt-get install chromium)`)
const skip = existsSync(CHROMIUM) ? false : `Chromium not found at ${CHROMIUM} (set GHL_TEST_CHROMIUM or apt-get install chromium)`
const SHOTS = join(process.cwd(), 'test-output', 'console')

let stack: Stack
let browser: Browser

before(async () => {
  if (skip) return
  mkdirSync(SHOTS, { recursive: true })
  stack = await startStack()
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
  })
})
after(async () => {
  await browser?.close()
  await stack?.close()
})

/** The page does not scroll sideways (wide tables scroll inside their own box). */
async function assertNoSidewaysScroll(page: Page, width: number, what: string): Promise<void> {
  const scrollWidth = (await page.evaluate('document.documentElement.scrollWidth')) as number
  assert.ok(scrollWidth <= width, `${what}: page is ${scrollWidth} px wide on a ${width} px screen`)
}

const VIEWPORTS = [
  { name: 'desktop', width: 1280, height: 800, location: 0 },
  { name: 'phone', width: 390, height: 844, location: 1 },
] as const

for (const vp of VIEWPORTS) {
  test(`console on ${vp.name} (${vp.width} px): install, find by name, detail, refresh now, timeline, redeliver a webhook, chart`, { skip, timeout: 120_000 }, async () => {
    const location = stack.sandbox.companies[0]!.locations[vp.location]!
    const context = await browser.newContext({ viewport: { width: vp.width, height: vp.height }, colorScheme: vp.name === 'phone' ? 'dark' : 'light' })
    const page = await context.newPage()
    const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${vp.name}-${name}.png`), fullPage: true })

    // Install through the sandbox's consent page.
    await page.goto(`${stack.url}/`)
    await page.click('#install')
    await page.waitForURL((u) => u.toString().startsWith(stack.sandbox.url))
    await page.check(`input[name="target"][value="location:${location.locationId}"]`)
    await page.click('#approve')
    await page.waitForURL((u) => u.toString().startsWith(`${stack.url}/oauth/callback`))
    const row = await stack.connector.vault.installations.findByLocation(stack.config.clientId, location.locationId)
    assert.ok(row)

    // The list looks the name up (GET /locations/{id}) in the background; a reload shows it.
    await page.goto(`${stack.url}/`)
    for (let i = 0; i < 50 && !(await page.locator('#installations').innerText()).includes(location.name); i++) {
      await page.waitForTimeout(100)
      await page.reload()
    }
    await page.fill('#f-search', location.name.slice(0, 5).toLowerCase())
    await page.click('form.filters button[type="submit"]')
    await page.waitForURL((u) => u.searchParams.get('search') !== null)
    const found = page.locator(`#installations tr[data-installation-id="${row.id}"]`)
    assert.equal(await found.count(), 1, 'found by the start of its name')
    assert.match(await found.innerText(), /active/)
    assert.match(await found.innerText(), /in \d+ h/)
    await assertNoSidewaysScroll(page, vp.width, 'list')
    await shot('list')

    // Detail.
    await found.locator('a.name').click()
    await page.waitForURL(`${stack.url}/installations/${row.id}`)
    assert.equal(await page.locator('h1#title').innerText().then((t) => t.includes(location.name)), true)
    assert.match(await page.locator('#scopes').innerText(), /contacts/)
    await assertNoSidewaysScroll(page, vp.width, 'detail')

    // Refresh now: a confirmation, then the refresh, in the timeline.
    const versionBefore = row.version
    await page.click('#refresh-now')
    await page.waitForSelector('#confirm')
    await shot('confirm')
    await page.click('#confirm')
    await page.waitForURL(`${stack.url}/installations/${row.id}?done=refresh`)
    assert.match(await page.locator('#notice').innerText(), /Refreshed/)
    assert.equal(await page.locator('#timeline tr[data-action="refreshed"]').count(), 1)
    assert.equal(await page.locator('#timeline tr[data-action="operator.refresh"]').count(), 1)
    assert.ok((await stack.connector.vault.installations.get(row.id))!.version > versionBefore)

    // Redeliver the INSTALL webhook from the detail page.
    const hook = page.locator('#webhooks tbody tr').first()
    assert.equal(await hook.count(), 1, 'the INSTALL webhook is listed')
    const webhookId = await hook.getAttribute('data-webhook-id')
    await hook.locator('button').click()
    await page.waitForSelector('#confirm')
    await page.click('#confirm')
    await page.waitForURL((u) => u.searchParams.get('done') === 'replay')
    assert.match(await page.locator('#notice').innerText(), /redelivered: processed/i)
    const replays = (await stack.connector.vault.audit.list(row.id)).filter((e) => e.action === 'operator.webhook_replay' && e.detail.webhookId === webhookId)
    assert.equal(replays.length, 1)
    await shot('detail')

    // A call shows in the calls chart of the list.
    await stack.connector.location(location.locationId).get(`/locations/${location.locationId}`)
    await page.goto(`${stack.url}/`)
    const chart = page.locator('#chart-calls')
    assert.ok(Number(await chart.getAttribute('data-total')) >= 1)
    assert.ok((await chart.locator('svg rect').count()) >= 1)
    assert.match(String(await chart.locator('svg').getAttribute('aria-label')), /2xx: \d+/)
    await assertNoSidewaysScroll(page, vp.width, 'list with charts')
    await shot('charts')

    // The webhook log, filtered by type.
    await page.goto(`${stack.url}/console/webhooks?type=INSTALL`)
    assert.ok((await page.locator('#webhook-log tbody tr').count()) >= 1)
    assert.match(await page.locator('#chart-webhooks').innerText(), /INSTALL/)
    await assertNoSidewaysScroll(page, vp.width, 'webhook log')
    await shot('webhooks')

    // Never a token on any page seen.
    const stored = await stack.connector.vault.installations.get(row.id)
    for (const url of [`${stack.url}/`, `${stack.url}/installations/${row.id}`, `${stack.url}/console/webhooks`]) {
      await page.goto(url)
      const html = await page.content()
      assert.ok(!html.includes(stored!.tokens!.accessToken) && !html.includes(stored!.tokens!.refreshToken!), `${url} shows no token`)
    }
    await context.close()
  })
}
