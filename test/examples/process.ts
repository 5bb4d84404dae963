/**
 * Runs an example as its own process (as its README says to) and waits for a line of its output.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** The examples import the package by name (`ghl-connect`, `ghl-connect/express`, …): its built files. */
export function builtSkipReason(): string | false {
  return existsSync(`${ROOT}dist/index.js`) && existsSync(`${ROOT}dist/http/index.js`) ? false : 'the examples import the built package: run `npm run build` first'
}

export interface Running {
  child: ChildProcess
  /** Every line printed so far (stdout and stderr). */
  lines: string[]
  /** Resolves with the first line (past or future) matching `pattern`; rejects after `timeoutMs` or on exit. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>
}

export function run(command: string, args: string[], env: Record<string, string>): Running {
  const child = spawn(command, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: string[] = []
  const waiters = new Set<() => void>()
  let exited = false
  const onData = (chunk: Buffer): void => {
    lines.push(...chunk.toString('utf8').split('\n').filter(Boolean))
    for (const w of waiters) w()
  }
  child.stdout!.on('data', onData)
  child.stderr!.on('data', onData)
  const exit = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      exited = true
      for (const w of waiters) w()
      resolve(code)
    }),
  )
  return {
    child,
    lines,
    waitFor(pattern, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => done(new Error(`no line matching ${pattern} within ${timeoutMs} ms:\n${lines.join('\n')}`)), timeoutMs)
        const check = (): void => {
          const line = lines.find((l) => pattern.test(l))
          if (line !== undefined) done(undefined, line)
          else if (exited) done(new Error(`${command} exited before printing ${pattern}:\n${lines.join('\n')}`))
        }
        const done = (err?: Error, line?: string): void => {
          clearTimeout(timer)
          waiters.delete(check)
          if (err) reject(err)
          else resolve(line!)
        }
        waiters.add(check)
        check()
      })
    },
    async stop() {
      if (!exited) child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      const code = await exit
      clearTimeout(timer)
      return code
    },
  }
}
