/**
 * Worker processes for the multi-process tests (fixtures/worker.ts): each has its own vault connection
 * on the shared database and a line protocol on stdio.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { Harness } from './harness.js'

const WORKER = fileURLToPath(new URL('./fixtures/worker.ts', import.meta.url))

/** A worker process (fixtures/worker.ts) and its line protocol. */
export interface Worker {
  child: ChildProcess
  /** Resolves with the rest of the next line starting with `prefix` (not yet consumed). */
  waitFor(prefix: string): Promise<string>
  /** Runs one round of `calls` concurrent calls (hang: block in afterRefreshResponse). */
  go(calls: number, hang?: boolean): void
  /** One call for every id of LOCATION_IDS, all at once. */
  each(): void
}

export function startWorker(h: Harness, locationId: string, extraEnv: Record<string, string> = {}): Worker {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER], {
    env: { ...process.env, WORKER_ENV: JSON.stringify(h.env), LOCATION_ID: locationId, LOCK_LEASE_MS: '1000', ...extraEnv },
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  const lines: string[] = []
  const waiters: Array<{ prefix: string; resolve: (rest: string) => void }> = []
  const deliver = (): void => {
    for (const w of [...waiters]) {
      const i = lines.findIndex((l) => l.startsWith(w.prefix))
      if (i < 0) continue
      const [line] = lines.splice(i, 1)
      waiters.splice(waiters.indexOf(w), 1)
      w.resolve(line!.slice(w.prefix.length).trim())
    }
  }
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line)
    deliver()
  })
  return {
    child,
    go: (calls, hang = false) => child.stdin!.write(`GO ${calls} ${hang ? 1 : 0}\n`),
    each: () => child.stdin!.write('EACH\n'),
    waitFor: (prefix) =>
      new Promise((resolve, reject) => {
        waiters.push({ prefix, resolve })
        deliver()
        child.once('exit', (code, signal) => reject(new Error(`worker exited (${code ?? signal}) before printing ${prefix}`)))
      }),
  }
}

export async function result(w: Worker): Promise<Record<string, number>> {
  return JSON.parse(await w.waitFor('RESULT')) as Record<string, number>
}

