/**
 * `--help` on every command prints help and does nothing else; `--version`; bad usage exits 2 with a
 * pointer to --help. The real CLI, in an empty folder, so anything it created would show.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { tempDir } from '../helpers/services.js'
import { freePort } from '../helpers/stack.js'
import { runCli, type CliResult } from './run-cli.js'

const COMMANDS = ['serve', 'dev', 'sandbox', 'migrate', 'keys', 'installations', 'call', 'refresh', 'webhooks', 'doctor']

/** Runs at most `n` at once (the machine is shared). */
async function limited<T, R>(items: readonly T[], n: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) {
        const i = next++
        out[i] = await fn(items[i]!)
      }
    }),
  )
  return out
}

test('--help on every command (and on subcommands) prints its usage, exits 0, and creates, starts and prints nothing else', { timeout: 180_000 }, async () => {
  const dir = tempDir()
  try {
    // Settings a command would act on if it ran: ports to listen on, a database to create.
    const env = { PORT: String(await freePort()), GHL_SANDBOX_PORT: String(await freePort()), DATABASE_URL: './made-by-cli.db', GHL_DATA_DIR: './data' }
    const cases: [string[], string][] = [
      ...COMMANDS.map((c): [string[], string] => [[c, '--help'], c]),
      [['dev', '-h'], 'dev'],
      [['keys', 'generate', '--help'], 'keys'],
      [['keys', 'rotate', '--help'], 'keys'],
      [['installations', 'show', 'some-id', '--help'], 'installations'],
      [['webhooks', 'replay', 'some-id', '--help'], 'webhooks'],
      [['call', 'LOC', 'GET', '/contacts/', '--help'], 'call'],
      [['sandbox', '--port', '0', '--help'], 'sandbox'],
      [['help', 'doctor'], 'doctor'],
    ]
    const results = await limited(cases, 3, ([args]) => runCli(args, { cwd: dir.path, env, timeoutMs: 45_000 }))
    results.forEach((r, i) => {
      const [args, command] = cases[i]!
      const what = `ghl-connect ${args.join(' ')}`
      // A command that ran instead (dev, serve, sandbox) would not exit: killed by the timeout, code null.
      assert.equal(r.code, 0, `${what}: exit ${r.code}\n${r.stderr}`)
      assert.ok(r.stdout.startsWith(`Usage: ghl-connect ${command}`), `${what} prints its usage:\n${r.stdout}`)
      assert.equal(r.stderr, '', `${what} writes nothing to stderr`)
      assert.doesNotMatch(r.stdout, /is running|listening on|Created a local|Migrations applied|Re-encrypted/, what)
    })
    assert.deepEqual(readdirSync(dir.path), [], 'no file or folder was created (no database, no data/, no key file)')
    // `keys generate --help` prints no key: no line is base64 of 32 bytes.
    const keysHelp = results[cases.findIndex(([a]) => a.join(' ') === 'keys generate --help')]!
    assert.ok(!keysHelp.stdout.split('\n').some((l) => /^[A-Za-z0-9+/]{43}=$/.test(l.trim()) && Buffer.from(l.trim(), 'base64').length === 32))
  } finally {
    dir.remove()
  }
})

test('--help, -h and "help" without a command print the overview naming every command', async () => {
  for (const args of [['--help'], ['-h'], ['help']]) {
    const r = await runCli(args)
    assert.equal(r.code, 0, r.stderr)
    for (const c of COMMANDS) assert.match(r.stdout, new RegExp(`^  ${c} `, 'm'), `${args.join(' ')} lists ${c}`)
  }
})

test('--version and -v print the version of package.json', async () => {
  const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }
  for (const flag of ['--version', '-v']) {
    const r = await runCli([flag])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, `${version}\n`)
  }
})

test('bad usage exits 2 with the problem and a pointer to --help, and does nothing', { timeout: 120_000 }, async () => {
  const dir = tempDir()
  try {
    const env = { DATABASE_URL: './made-by-cli.db', GHL_DATA_DIR: './data' }
    const cases: [string[], RegExp, string][] = [
      [[], /Usage: ghl-connect <command>/, 'no command'],
      [['frobnicate'], /unknown command "frobnicate"[\s\S]*Run "ghl-connect --help"/, 'unknown command'],
      [['--frob'], /unknown option "--frob"[\s\S]*Run "ghl-connect --help"/, 'unknown top-level option'],
      [['installations', '--frob'], /ghl-connect installations: Unknown option '--frob'[\s\S]*Run "ghl-connect installations --help"/, 'unknown option'],
      [['migrate', '--dry-run'], /ghl-connect migrate: Unknown option '--dry-run'/, 'unknown option on migrate'],
      [['installations', '--status'], /ghl-connect installations: Option '--status <value>' argument missing/, 'option without its value'],
      [['installations', '--status', 'gone'], /--status: expected one of active, needs_reauthorization, uninstalled, got "gone"/, 'bad status'],
      [['installations', '--kind', 'reseller'], /--kind: expected one of agency, sub-account, minted/, 'bad kind'],
      [['installations', 'show'], /ghl-connect installations: missing the installation ID/, 'show without ID'],
      [['installations', 'remove', 'x'], /unknown subcommand "remove"/, 'unknown subcommand'],
      [['webhooks', '--status', 'done'], /--status: expected one of pending, processed, failed, waiting/, 'bad webhook status'],
      [['webhooks', '--limit', '0'], /--limit: expected a positive integer/, 'bad limit'],
      [['webhooks', 'replay'], /missing the WEBHOOK_ID/, 'replay without id'],
      [['call', 'LOC'], /ghl-connect call: missing METHOD and PATH/, 'call without method'],
      [['call', 'LOC', 'FETCH', '/x'], /METHOD: expected one of GET, POST, PUT, PATCH, DELETE, got "FETCH"/, 'bad method'],
      [['call', 'LOC', 'GET', 'contacts'], /PATH: expected a path starting with "\/"/, 'bad path'],
      [['call', 'LOC', 'GET', '/x', '--query', 'novalue'], /--query: expected KEY=VALUE, got "novalue"/, 'bad query'],
      [['call', 'LOC', 'POST', '/x', '--body', '{nope'], /--body: expected JSON/, 'bad body'],
      [['refresh'], /ghl-connect refresh: missing the installation ID/, 'refresh without id'],
      [['keys'], /missing subcommand: "generate" or "rotate"/, 'keys without subcommand'],
      [['keys', 'shred'], /unknown subcommand "shred"/, 'unknown keys subcommand'],
      [['serve', 'now'], /ghl-connect serve: unexpected argument "now"/, 'extra argument'],
      [['sandbox', '--port', 'high'], /--port: expected an integer from 0 to 65535, got "high"/, 'bad port'],
    ]
    const results: CliResult[] = await limited(cases, 3, ([args]) => runCli(args, { cwd: dir.path, env }))
    results.forEach((r, i) => {
      const [args, pattern, what] = cases[i]!
      assert.equal(r.code, 2, `${what} (${args.join(' ')}): exit ${r.code}\n${r.stdout}${r.stderr}`)
      assert.match(r.stderr, pattern, what)
      assert.equal(r.stdout, '', `${what}: nothing on stdout`)
    })
    // dev registers its redirect URI with the sandbox before it listens: it needs a fixed port.
    const port0 = await runCli(['dev'], { cwd: dir.path, env: { ...env, PORT: '0' } })
    assert.equal(port0.code, 2, port0.stderr)
    assert.match(port0.stderr, /ghl-connect dev: PORT must be a fixed port number \(the redirect URI names it\), not "0"/)
    assert.deepEqual(readdirSync(dir.path), [], 'nothing was created')
  } finally {
    dir.remove()
  }
})
