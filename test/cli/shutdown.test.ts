/**
 * `sandbox`, `serve` and `dev` announce that they listen only once their SIGINT/SIGTERM handlers are in:
 * a supervisor (or a test) that signals as soon as it reads the ready line must get a clean shutdown
 * (exit code 0), not the default action of a signal nobody handles yet (killed, exit code null).
 * Run in this process: the ready line is caught as it is written, the signal is then emitted by hand.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { sandboxCommand } from '../../src/cli/commands/sandbox.js'
import { runConnector } from '../../src/cli/run-connector.js'
import { loadConfig } from '../../src/config.js'
import { createLogger } from '../../src/logger.js'
import { startSandbox } from '../../src/sandbox/index.js'
import { tempDir, testKey } from '../helpers/services.js'
import { appEnv } from './run-cli.js'

const signals = (): number => process.listenerCount('SIGTERM') + process.listenerCount('SIGINT')

test('sandbox: the signal handlers are in when "listening" is printed; SIGTERM then ends it with 0', async () => {
  const before = signals()
  let atReady: number | undefined
  const write = process.stdout.write.bind(process.stdout)
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
    if (!String(chunk).includes('HighLevel sandbox listening on')) return write(chunk, ...rest)
    atReady = signals() // the app's credentials are not printed in the test's output
    return true
  }) as typeof process.stdout.write
  let code: Promise<number>
  const level = process.env.LOG_LEVEL
  process.env.LOG_LEVEL = 'warn'
  try {
    code = sandboxCommand.execute(['--port', '0'])
    while (atReady === undefined) await new Promise((r) => setTimeout(r, 10))
  } finally {
    process.stdout.write = write
    if (level === undefined) delete process.env.LOG_LEVEL
    else process.env.LOG_LEVEL = level
  }
  assert.equal(atReady, before + 2, 'SIGTERM and SIGINT handled when the ready line is written')
  process.emit('SIGTERM')
  assert.equal(await code, 0)
  assert.equal(signals(), before + 1, 'the SIGTERM handler ran (once); SIGINT still waits')
  process.removeAllListeners('SIGINT')
})

test('serve/dev: the signal handlers are in when the server announces its URL; SIGTERM then ends it with 0', async () => {
  const sandbox = await startSandbox({ port: 0 })
  const dir = tempDir()
  try {
    const env = appEnv(sandbox, { redirectUri: 'http://127.0.0.1:1/oauth/callback', scopes: sandbox.app.scopes }, `${dir.path}/vault.db`, testKey())
    const config = loadConfig({ env: { ...env, PORT: '0' }, envFile: false })
    const before = signals()
    let atReady: number | undefined
    const code = runConnector(config, createLogger({ level: 'silent' }), { onListening: () => (atReady = signals()) })
    while (atReady === undefined) await new Promise((r) => setTimeout(r, 10))
    assert.equal(atReady, before + 2, 'SIGTERM and SIGINT handled when the URL is announced')
    process.emit('SIGTERM')
    assert.equal(await code, 0)
    process.removeAllListeners('SIGINT')
  } finally {
    dir.remove()
    await sandbox.close()
  }
})
