/**
 * `ghl-connect sandbox`: the local HighLevel alone, for an app's own tests.
 */
import { defineCommand, expectPositionals, UsageError } from '../command.js'
import { print } from '../output.js'

export const sandboxCommand = defineCommand({
  name: 'sandbox',
  summary: 'Run the HighLevel sandbox alone',
  help: `Usage: ghl-connect sandbox [--port N] [--host HOST] [--seed FILE] [--state FILE]

Runs the local HighLevel (OAuth server, a few APIs, rate limits, signed webhooks, fault injection and
the /_sandbox/* controls, see src/sandbox/README.md) until Ctrl-C. Prints its URL and the seeded app's
credentials.

Options:
  --port N        port to listen on (default GHL_SANDBOX_PORT or 3100; 0 picks a free one)
  --host HOST     address to listen on (default 127.0.0.1)
  --seed FILE     seed JSON: apps, companies, locations, users, contacts
  --state FILE    keep apps, installs, tokens and keys in this JSON file (mode 0600) across restarts

Example:
  ghl-connect sandbox --port 3100 --state ./data/sandbox.json`,
  options: { port: { type: 'string' }, host: { type: 'string' }, seed: { type: 'string' }, state: { type: 'string' } },
  async run({ values, positionals }) {
    expectPositionals('sandbox', positionals, 0, 0, '')
    const rawPort = values.port ?? process.env.GHL_SANDBOX_PORT ?? '3100'
    const port = Number(rawPort)
    if (!/^\d+$/.test(rawPort) || port > 65535) throw new UsageError(`--port: expected an integer from 0 to 65535, got ${JSON.stringify(rawPort)}`, 'sandbox')
    const { humanLogger } = await import('../cli-logger.js')
    const { startSandbox } = await import('../../sandbox/index.js')
    const { onShutdown } = await import('../run-connector.js')
    const logger = await humanLogger(process.env.LOG_LEVEL ?? 'info', 1)
    const sb = await startSandbox({ port, host: values.host ?? '127.0.0.1', seed: values.seed, statePath: values.state, logger })
    // The signal handlers go in before the ready line: whoever waits for that line may signal at once.
    const stopped = onShutdown(() => sb.close())
    print(
      `HighLevel sandbox listening on ${sb.url}`,
      `  app id        ${sb.app.appId}`,
      `  client id     ${sb.app.clientId}`,
      `  client secret ${sb.app.clientSecret}`,
      `  shared secret ${sb.app.sharedSecret}`,
    )
    await stopped
    return 0
  },
})
