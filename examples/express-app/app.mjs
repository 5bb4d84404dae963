/**
 * An Express app with the connector's routes mounted inside it: install, a page listing a location's
 * contacts, and a webhook handler. `createApp(ghl)` builds it (tests call it with their own connector);
 * `server.mjs` runs it.
 */
import express from 'express'
import { ghlConnectExpress } from 'ghl-connect/express'

const escape = (value) => String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

/**
 * @param {import('ghl-connect').Connector} ghl
 * @returns {{ app: import('express').Express, events: Array<{ type: string, locationId?: string, id?: string }> }}
 */
export function createApp(ghl) {
  const app = express()
  /** The webhook handler's record of what it saw (an app would update its own database here). */
  const events = []
  ghl.webhooks.on('ContactCreate', async (event) => {
    events.push({ type: event.type, locationId: event.locationId, id: event.id })
  })
  ghl.webhooks.on('INSTALL', async (event) => {
    events.push({ type: event.type, locationId: event.locationId })
  })

  // The connector's routes under /ghl — before any body parser: webhooks are verified over the raw bytes.
  // In HighLevel's Marketplace: redirect URL <APP>/ghl/oauth/callback, webhook URL <APP>/ghl/webhooks/highlevel.
  app.use('/ghl', ghlConnectExpress(ghl, { afterInstall: (i) => `/contacts?locationId=${encodeURIComponent(i.locationId ?? '')}` }))
  app.use(express.json())

  app.get('/', (_req, res) => {
    res.type('html').send('<!doctype html><title>My app</title><h1>My app</h1><p><a id="install" href="/ghl/oauth/install">Install on HighLevel</a></p>')
  })

  // A page listing the location's contacts, read through the connector (token, refresh and rate limits handled).
  app.get('/contacts', async (req, res, next) => {
    try {
      const locationId = String(req.query.locationId ?? '')
      const { data } = await ghl.location(locationId).get('/contacts/', { query: { locationId, limit: 20 } })
      const rows = data.contacts.map((c) => `<li data-contact-id="${escape(c.id)}">${escape(c.contactName ?? [c.firstName, c.lastName].filter(Boolean).join(' '))} — ${escape(c.email)}</li>`)
      res.type('html').send(`<!doctype html><title>Contacts</title><h1>Contacts of ${escape(locationId)}</h1><ul id="contacts">${rows.join('')}</ul>`)
    } catch (err) {
      next(err)
    }
  })

  app.get('/events', (_req, res) => res.json(events))

  // The connector's errors carry a status and a message meant for people (never a token).
  app.use((err, _req, res, _next) => {
    res.status(err.status ?? 500).json({ code: err.code ?? 'INTERNAL', message: err.message })
  })
  return { app, events }
}
