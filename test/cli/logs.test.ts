/**
 * Log formats of the long-running commands: `serve` writes JSON lines, `sandbox` (like `dev`) lines for
 * people; an ordinary install outcome (the user declined, a used link) is one info line, no stack.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { request } from 'undici'
import { startSandbox } from '../../src/sandbox/index.js'
import { tempDir, testKey } from '../helpers/services.js'
import { freePort } from '../helpers/stack.js'
import { appEnv, cleanEnv, CLI } from './run-cli.js'

/** Starts `ghl-connect ...args`; resolves once stdout has matched `ready`. `stop()` ends it and returns everything it printed. */
async function startCli(args: string[], env: Record<string, string>, cwd: string, ready: RegExp) {
  const child = spawn(process.execPath, [...CLI, ...args], { cwd, env: { ...cleanEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')))
  child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')))
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  await new Promise<void>((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready:\n${out}${err}`)), 45_000)
    const check = () => {
      if (ready.test(out)) {
        clearTimeout(timer)
        child.stdout.off('data', check)
        resolveReady()
      }
    }
    child.stdout.on('data', check)
    void exited.then((code) => reject(new Error(`exited ${code}:\n${out}${err}`)))
  })
  return {
    output: () => out,
    stop: async () => {
      child.kill('SIGTERM')
      const code = await exited
      return { code, out, err }
    },
  }
}

test('sandbox logs lines for people, not JSON', { timeout: 60_000 }, async () => {
  const dir = tempDir()
  try {
    const cli = await startCli(['sandbox', '--port', '0'], { LOG_LEVEL: 'info' }, dir.path, /HighLevel sandbox listening on/)
    const { code, out } = await cli.stop()
    assert.equal(code, 0)
    assert.match(out, /^\[\d\d:\d\d:\d\d\] INFO: sandbox listening /m)
    assert.ok(!out.split('\n').some((l) => l.startsWith('{')), `no JSON line:\n${out}`)
  } finally {
    dir.remove()
  }
})

test('serve logs JSON lines; a declined install and a used link are one info line each, without a stack', { timeout: 60_000 }, async () => {
  const sandbox = await startSandbox({ port: 0 })
  const dir = tempDir()
  try {
    const port = await freePort()
    const env = {
      ...appEnv(sandbox, { redirectUri: `http://127.0.0.1:${port}/oauth/callback`, scopes: sandbox.app.scopes }, `${dir.path}/vault.db`, testKey()),
      PORT: String(port),
      LOG_LEVEL: 'info',
    }
    const cli = await startCli(['serve'], env, dir.path, /"msg":"ghl-connect listening"/)
    for (const query of ['error=access_denied&state=whatever', 'code=abc&state=never-issued']) {
      const res = await request(`http://127.0.0.1:${port}/oauth/callback?${query}`)
      await res.body.dump()
      assert.equal(res.statusCode, 400)
    }
    const { out } = await cli.stop()
    const lines = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; msg: string; code?: string; err?: unknown })
    assert.ok(lines.length > 3 && out.split('\n').filter(Boolean).every((l) => l.startsWith('{')), `only JSON lines on stdout:\n${out}`)
    const outcomes = lines.filter((l) => /^install /.test(l.msg))
    assert.deepEqual(
      outcomes.map((l) => [l.level, l.code, l.err]),
      [
        [30, 'GHL_OAUTH_DENIED', undefined],
        [30, 'GHL_OAUTH_STATE_INVALID', undefined],
      ],
    )
    assert.match(outcomes[0]!.msg, /^install not completed: You declined the installation/)
    assert.doesNotMatch(out, /"stack"/)
  } finally {
    await sandbox.close()
    dir.remove()
  }
})
