/**
 * Runs the connector server until SIGINT/SIGTERM: what `serve` and `dev` share.
 */
import type { Config } from '../config.js'
import type { Logger } from '../logger.js'
import { createConnector } from '../connector.js'
import { buildServer } from '../server/app.js'

export interface RunConnectorOptions {
  /** The sandbox's URL, for the operator page's links (`dev`). */
  sandboxUrl?: string
  /** Called once the server listens, with its URL. */
  onListening?: (url: string) => void
  /** Called after the connector closed (on shutdown or a failed start). */
  onClose?: () => Promise<void>
}

/** Starts the connector and its HTTP server; resolves with exit code 0 after a signal has been handled. */
export async function runConnector(config: Config, logger: Logger, extra: RunConnectorOptions = {}): Promise<number> {
  const connector = await createConnector({ config, logger })
  const app = await buildServer(connector, { sandboxUrl: extra.sandboxUrl })
  try {
    await app.listen({ port: config.port, host: config.host })
  } catch (err) {
    // e.g. EADDRINUSE: release everything that was opened so the process ends with the error.
    await app.close()
    await connector.close()
    await extra.onClose?.()
    throw err
  }
  const url = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${config.port}`
  // The signal handlers go in before the ready line: whoever waits for that line may signal at once.
  const stopped = onShutdown(async (step) => {
    // Stop taking requests (answering those under way), then let refreshes in flight store their rows.
    step('the HTTP server (requests under way)')
    await app.close()
    step('the connector (refreshes in flight, background work, the database)')
    await connector.close()
    step('the sandbox')
    await extra.onClose?.()
    // Requests under way may take their whole timeout; then refreshes in flight their shutdown timeout.
  }, config.requestTimeoutMs + config.shutdownTimeoutMs + 15_000)
  extra.onListening?.(url)
  logger.info({ url, database: connector.vault.dialect, redis: Boolean(config.redisUrl) }, 'ghl-connect listening')
  await stopped
  return 0
}

/**
 * Resolves once a SIGINT/SIGTERM has been handled by `stop` (bounded: a stuck close does not keep the
 * process). `stop` names each step as it starts, so that a shutdown cut short says what it waited for.
 */
export function onShutdown(stop: (step: (name: string) => void) => Promise<void>, limitMs = 10_000): Promise<void> {
  return new Promise((resolveDone) => {
    let stopping = false
    let current = 'starting'
    const handler = (signal: string) => {
      if (stopping) return
      stopping = true
      // stderr: `serve`'s stdout carries JSON log lines only.
      process.stderr.write(`\n${signal}: shutting down\n`)
      const limit = setTimeout(() => {
        process.stderr.write(`shutdown took longer than ${Math.round(limitMs / 1000)} s (still closing ${current}); exiting\n`)
        process.exit(1)
      }, limitMs).unref()
      stop((name) => (current = name))
        .catch((err) => process.stderr.write(`shutdown error: ${(err as Error).message}\n`))
        .finally(() => {
          clearTimeout(limit)
          resolveDone()
        })
    }
    process.once('SIGINT', () => handler('SIGINT'))
    process.once('SIGTERM', () => handler('SIGTERM'))
  })
}
