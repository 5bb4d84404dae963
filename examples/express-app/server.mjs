/**
 * Runs the Express example: `PORT=4000 GHL_REDIRECT_URI=http://127.0.0.1:4000/ghl/oauth/callback … node examples/express-app/server.mjs`
 * (settings from the environment or ./.env, as `ghl-connect serve` reads them).
 */
import { createConnector } from 'ghl-connect'
import { createApp } from './app.mjs'

const ghl = await createConnector()
const { app } = createApp(ghl)
const port = Number(process.env.PORT ?? 4000)
const server = app.listen(port, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${server.address().port}`))

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => server.close(() => ghl.close().then(() => process.exit(0))))
}
