/**
 * `ghl-connect serve` as a child process, for tests that need the real server and its real shutdown
 * (signals, exit codes): the compiled CLI when it is built, else the sources through tsx (see
 * `test/cli/run-cli.ts`). Its JSON log lines and stderr are kept for the checks (never a token; no
 * unhandled error event).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { CLI, cleanEnv } from '../cli/run-cli.js'
import type { Sandbox } from '../../src/sandbox/index.js'
import { freePort } from './stack.js'

/** A running `ghl-connect serve`. */
export interface ServeProcess {
  child: ChildProcess
  url: string
  port: number
  /** Its stdout (JSON log lines) and stderr, as far as read. */
  readonly stdout: string
  readonly stderr: string
  /** Resolves with the exit code (or the signal's name) once it ended. */
  exited: Promise<number | string>
  /** SIGKILL, and wait for the end. */
  kill(): Promise<void>
}

/**
 * The settings a connector needs to talk to a sandbox, with a given database: what every `serve` of a
 * test shares (same key, same API key) so that several processes form one deployment.
 */
export function connectorEnv(sandbox: Sandbox, options: { databaseUrl: string; key: string; apiKey: string; redirectUri: string }): Record<string, string> {
  return {
    GHL_CLIENT_ID: sandbox.app.clientId,
    GHL_CLIENT_SECRET: sandbox.app.clientSecret,
    GHL_REDIRECT_URI: options.redirectUri,
    GHL_SCOPES: sandbox.app.scopes.join(' '),
    GHL_API_URL: sandbox.url,
    GHL_MARKETPLACE_URL: sandbox.url,
    GHL_ENCRYPTION_KEY: options.key,
    GHL_CONNECTOR_API_KEY: options.apiKey,
    GHL_SHARED_SECRET: sandbox.app.sharedSecret,
    GHL_WEBHOOK_ED25519_PUBLIC_KEY: sandbox.publicKeys.ed25519,
    GHL_WEBHOOK_RSA_PUBLIC_KEY: sandbox.publicKeys.rsa,
    GHL_REFRESH_JITTER_MS: '0',
    DATABASE_URL: options.databaseUrl,
  }
}

/** Starts `ghl-connect serve` with `env` (on a clean environment, in an empty folder) and waits until it listens. */
export async function startServe(env: Record<string, string>, options: { startTimeoutMs?: number } = {}): Promise<ServeProcess> {
  const port = env.PORT ? Number(env.PORT) : await freePort()
  const cwd = mkdtempSync(join(tmpdir(), 'ghl-serve-'))
  const child = spawn(process.execPath, [...CLI, 'serve'], {
    cwd,
    env: { ...cleanEnv(), LOG_LEVEL: 'info', ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString('utf8')))
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString('utf8')))
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      rmSync(cwd, { recursive: true, force: true })
      resolve(code ?? signal ?? 'unknown')
    })
  })
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000)
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`ghl-connect serve exited (${child.exitCode ?? child.signalCode}) before listening:\n${stderr.slice(-2000)}`)
    }
    // Whatever LOG_LEVEL says: the server is up when it answers.
    const health = await timedRequest(`${url}/healthz`, { limitMs: 2000 })
    if (health.status === 200) break
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`ghl-connect serve did not listen within ${options.startTimeoutMs ?? 60_000} ms:\n${stderr.slice(-2000)}`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  return {
    child,
    url,
    port,
    get stdout() {
      return stdout
    },
    get stderr() {
      return stderr
    },
    exited,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL')
        await exited
      }
    },
  }
}

/** The outcome of one timed HTTP request: status (0 = no answer in `limitMs`), error code, time taken. */
export interface Timed {
  status: number
  code: string | undefined
  retryAfter: string | undefined
  ms: number
  body: unknown
}

/**
 * One request, timed, with a client-side limit well beyond the bound under test: a request that gets
 * no answer within `limitMs` comes back as status 0 (the bound was broken), never as a hang of the test.
 */
export async function timedRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string | Buffer; limitMs: number },
): Promise<Timed> {
  const started = performance.now()
  try {
    const res = await request(url, {
      method: (options.method ?? 'GET') as 'GET',
      headers: options.headers,
      body: options.body,
      signal: AbortSignal.timeout(options.limitMs),
      headersTimeout: options.limitMs,
      bodyTimeout: options.limitMs,
    })
    const text = await res.body.text()
    let body: unknown = text
    try {
      body = JSON.parse(text)
    } catch {
      // not JSON: kept as text
    }
    const code = body && typeof body === 'object' && typeof (body as { code?: unknown }).code === 'string' ? (body as { code: string }).code : undefined
    const retryAfter = res.headers['retry-after']
    return { status: res.statusCode, code, retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined, ms: performance.now() - started, body }
  } catch (err) {
    return { status: 0, code: (err as { name?: string }).name ?? 'error', retryAfter: undefined, ms: performance.now() - started, body: undefined }
  }
}

/** Waits until `exited` or `ms` passed; `'running'` in the second case. */
export async function exitWithin(proc: ServeProcess, ms: number): Promise<number | string> {
  let timer: NodeJS.Timeout | undefined
  const outcome = await Promise.race([proc.exited, new Promise<'running'>((r) => (timer = setTimeout(() => r('running'), ms)))])
  clearTimeout(timer)
  return outcome
}

