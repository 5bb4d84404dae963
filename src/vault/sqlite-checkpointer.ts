/**
 * Checkpoints a SQLite WAL from a worker thread, so the event loop never waits for one.
 *
 * better-sqlite3 is synchronous. In WAL mode with `synchronous = NORMAL` a commit does not fsync, but
 * the automatic checkpoint SQLite runs inside a commit once the WAL passes 1000 pages copies those pages
 * into the database file and fsyncs it — a statement that usually takes a millisecond then holds the
 * event loop for 100 ms or more (measured with `npm run bench:scale` while the background refresher
 * writes). So the vault's connection turns automatic checkpoints off (`wal_autocheckpoint = 0`), and
 * this worker, with its own connection to the same file, runs a PASSIVE checkpoint every interval: it
 * copies what no reader still needs and never blocks a writer or a reader (other processes on the file
 * keep their own automatic checkpoints).
 *
 * @see https://www.sqlite.org/wal.html#automatic_checkpoint
 * @see https://www.sqlite.org/c3ref/wal_checkpoint_v2.html (PASSIVE)
 */
import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'
import type { Logger } from '../logger.js'

/** How often the worker checkpoints (the WAL grows by at most this long's writes in between). */
export const CHECKPOINT_INTERVAL_MS = 1000

// The worker is plain CommonJS evaluated from a string: it needs no build step and runs the same from
// `src/` under tsx and from `dist/`. It loads better-sqlite3 from the path resolved here.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const Database = require(workerData.driver)
const db = new Database(workerData.file)
db.pragma('busy_timeout = 0')
const tick = () => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)')
  } catch (err) {
    parentPort.postMessage({ error: String(err && err.message || err) })
  }
}
const timer = setInterval(tick, workerData.intervalMs)
parentPort.on('message', (m) => {
  if (m === 'close') {
    clearInterval(timer)
    tick()
    db.close()
    parentPort.close()
  }
})
`

/** A running checkpointer; `close()` runs a last checkpoint and ends the thread. */
export interface SqliteCheckpointer {
  close(): Promise<void>
}

/** Starts the worker for a SQLite file (not `:memory:`, whose WAL no other connection can see). */
export function startCheckpointer(file: string, logger: Logger, intervalMs = CHECKPOINT_INTERVAL_MS): SqliteCheckpointer {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3')
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { file, driver, intervalMs } })
  worker.unref()
  let reported = false
  worker.on('message', (m: { error?: string }) => {
    // SQLITE_BUSY now and then is normal (another process checkpoints); report a lasting failure once.
    if (m.error && !/busy|locked/i.test(m.error) && !reported) {
      reported = true
      logger.warn({ error: m.error }, 'vault: the SQLite checkpoint worker failed; the WAL is checkpointed when the vault closes')
    }
  })
  worker.on('error', (err) => logger.warn({ err }, 'vault: the SQLite checkpoint worker stopped'))
  let closing: Promise<void> | undefined
  return {
    close() {
      closing ??= new Promise<void>((resolve) => {
        const timer = setTimeout(() => void worker.terminate().finally(resolve), 5000)
        worker.once('exit', () => {
          clearTimeout(timer)
          resolve()
        })
        worker.postMessage('close')
      })
      return closing
    },
  }
}
