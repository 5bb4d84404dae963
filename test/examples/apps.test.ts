/**
 * The Express example and the Next.js-style fetch-handler example, each run as its own process with
 * the settings `sb.env()` gives, against the sandbox over real HTTP: install → the app's contacts page
 * → a webhook reaching the app's handler (Express) → the page again after the token expired.
 */
import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js'
import { freePort } from '../helpers/stack.js'
import { freshDatabase } from '../helpers/services.js'
import { builtSkipReason, run, type Running } from './process.js'

const EXAMPLES = [
  { name: 'express-app', script: 'examples/express-app/server.mjs', contacts: (body: string) => (body.match(/data-contact-id=/g) ?? []).length },
  { name: 'fetch-app', script: 'examples/fetch-app/server.mjs', contacts: (body: string) => (JSON.parse(body) as { contacts: unknown[] }).contacts.length },
] as const

for (const example of EXAMPLES) {
  describe(`examples/${example.name}`, { skip: builtSkipReason() }, () => {
    let sb: Sandbox
    let app: Running
    let url: string
    let db: Awaited<ReturnType<typeof freshDatabase>>
    before(async () => {
      sb = await startSandbox()
      db = await freshDatabase('sqlite')
      const port = await freePort()
      url = `http://127.0.0.1:${port}`
      app = run(process.execPath, [example.script], {
        ...sb.env({ appUrl: `${url}/ghl` }),
        GHL_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
        DATABASE_URL: db.url,
        PORT: String(port),
        LOG_LEVEL: 'warn',
      })
      await app.waitFor(/^listening on /)
    })
    after(async () => {
      const code = await app?.stop()
      await sb?.close()
      await db?.cleanup()
      assert.equal(code, 0, `the example stops cleanly on SIGTERM:\n${app?.lines.join('\n')}`)
    })

    test('install → the contacts page of the location; after sb.expire, the page still works', async () => {
      const locationId = sb.companies[0]!.locations[0]!.locationId
      const installed = await sb.install({ locationId })
      assert.equal(installed.redirectedTo, `/contacts?locationId=${locationId}`)
      assert.deepEqual(installed.webhooks.map((w) => [w.type, w.responseStatus]), [['INSTALL', 200]])
      const page = await fetch(`${url}${installed.redirectedTo}`)
      const body = await page.text()
      assert.equal(page.status, 200, body)
      assert.equal(example.contacts(body), 3)

      assert.equal(sb.expire({ locationId }), 1)
      const again = await fetch(`${url}${installed.redirectedTo}`)
      assert.equal(again.status, 200)
      const stats = (await (await fetch(`${sb.url}/_sandbox/stats`)).json()) as { token: { refresh_token: { ok: number } } }
      assert.equal(stats.token.refresh_token.ok, 1, 'the expired token was refreshed once, by the app')
    })

    if (example.name === 'express-app') {
      test("a signed ContactCreate reaches the app's webhook handler; an unsigned one does not", async () => {
        const locationId = sb.companies[0]!.locations[0]!.locationId
        const sent = await fetch(`${sb.url}/_sandbox/webhooks/send`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ type: 'ContactCreate', locationId, id: 'contact-from-example' }),
        })
        assert.equal(((await sent.json()) as { responseStatus: number }).responseStatus, 200)
        const forged = await fetch(`${url}/ghl/webhooks/highlevel`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'ContactCreate', locationId, id: 'forged' }) })
        assert.equal(forged.status, 401)
        let events: Array<{ type: string; id?: string }> = []
        for (let i = 0; i < 200 && !events.some((e) => e.type === 'ContactCreate'); i++) {
          events = (await (await fetch(`${url}/events`)).json()) as typeof events
          if (!events.some((e) => e.type === 'ContactCreate')) await new Promise((r) => setTimeout(r, 25))
        }
        assert.deepEqual(events.filter((e) => e.type === 'ContactCreate').map((e) => e.id), ['contact-from-example'])
      })
    }
  })
}
