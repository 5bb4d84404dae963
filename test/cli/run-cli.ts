/**
 * Runs the real `ghl-connect` as a child process — the compiled `dist/cli/main.js` that users run
 * (`npm test` builds it first; without a build, the sources through tsx) — and collects what it
 * printed. Asynchronous, so that servers of the test process (the sandbox, a connector) keep answering
 * the child while it runs.
 */
import { spawn } from 'node:child_process'
import { existsSync, statSync } from 'node:fs'
import { resolve } from 'node:path'
import type { Config } from '../../src/config.js'
import type { Sandbox } from '../../src/sandbox/index.js'

const BUILT = resolve('dist/cli/main.js')
/** tsx resolved from the project, so that children started in a temp folder find it. */
export const TSX = import.meta.resolve('tsx')
/** The node arguments that start `ghl-connect`: the build when it is at least as new as the sources. */
export const CLI: readonly string[] =
  existsSync(BUILT) && statSync(BUILT).mtimeMs >= statSync(resolve('src/cli/main.ts')).mtimeMs ? [BUILT] : ['--import', TSX, resolve('src/cli/main.ts')]

export interface CliResult {
  /** Exit code; `null` when killed (the timeout). */
  code: number | null
  stdout: string
  stderr: string
}

/** The test process's environment without any ghl-connect setting, so a child sees only what a test gives it. */
export function cleanEnv(): Record<string, string> {
  const drop = new Set(['DATABASE_URL', 'PORT', 'HOST', 'REDIS_URL', 'LOG_LEVEL', 'NODE_ENV', 'NODE_OPTIONS'])
  return Object.fromEntries(
    Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined && !e[0].startsWith('GHL_') && !drop.has(e[0])),
  )
}

/** Every output of every run, for the "never prints a token" checks. */
export const transcript: string[] = []

/** Runs `ghl-connect ...args` with `env` added to a clean environment; kills it after `timeoutMs`. */
export function runCli(args: readonly string[], options: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [...CLI, ...args], {
      cwd: options.cwd,
      env: { ...cleanEnv(), ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')))
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000)
    child.once('error', reject)
    child.once('close', (code) => {
      clearTimeout(timer)
      transcript.push(stdout, stderr)
      resolveRun({ code, stdout, stderr })
    })
  })
}

/** `JSON.parse` with the output in the message when it is not JSON. */
export function parseJson<T = any>(r: CliResult): T {
  try {
    return JSON.parse(r.stdout) as T
  } catch {
    throw new Error(`not JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`)
  }
}

/** The environment a server of this sandbox app would have, on `databaseUrl`, with this key. */
export function appEnv(sandbox: Sandbox, config: Pick<Config, 'redirectUri' | 'scopes'>, databaseUrl: string, encryptionKey: string): Record<string, string> {
  return {
    GHL_CLIENT_ID: sandbox.app.clientId,
    GHL_CLIENT_SECRET: sandbox.app.clientSecret,
    GHL_REDIRECT_URI: config.redirectUri,
    GHL_SCOPES: config.scopes.join(' '),
    GHL_API_URL: sandbox.url,
    GHL_MARKETPLACE_URL: sandbox.url,
    GHL_WEBHOOK_ED25519_PUBLIC_KEY: sandbox.publicKeys.ed25519,
    GHL_WEBHOOK_RSA_PUBLIC_KEY: sandbox.publicKeys.rsa,
    DATABASE_URL: databaseUrl,
    GHL_ENCRYPTION_KEY: encryptionKey,
    LOG_LEVEL: 'warn',
  }
}
