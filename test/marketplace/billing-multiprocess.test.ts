/**
 * Three processes, one database, one sandbox: 100 concurrent charge() calls, 80 distinct eventIds and
 * 20 repeated ones (each repeat in another process than its original), while the sandbox drops the
 * answers of some charges (charged, connection closed) and refuses others with a 500 before charging.
 * Exactly 80 charges must exist at the sandbox, one per eventId, and every call must get its charge.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { Stack } from '../helpers/stack.js'
import { DIALECTS, dialectSkipReason } from '../helpers/services.js'
import { install, MARKETPLACE_SCOPES, marketplaceStack, sb } from './helpers.js'

const WORKER = fileURLToPath(new URL('./fixtures/charge-worker.ts', import.meta.url))
const DISTINCT = 80
const REPEATED = 20
const DROPS = 6
const ERRORS = 4

interface Outcome {
  eventId: string
  chargeId?: string
  duplicate?: boolean
  error?: string
}

interface Worker {
  child: ChildProcess
  waitFor(prefix: string): Promise<string>
}

function startWorker(env: Record<string, string>, locationId: string, meterId: string): Worker {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER], {
    env: { ...process.env, WORKER_ENV: JSON.stringify(env), LOCATION_ID: locationId, METER_ID: meterId },
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
    waitFor: (prefix) =>
      new Promise((resolve, reject) => {
        waiters.push({ prefix, resolve })
        deliver()
        child.once('exit', (code, signal) => reject(new Error(`worker exited (${code ?? signal}) before printing ${prefix}`)))
      }),
  }
}

/** The connector's configuration as environment variables, for the workers. */
function workerEnv(stack: Stack): Record<string, string> {
  const c = stack.config
  return {
    GHL_CLIENT_ID: c.clientId,
    GHL_CLIENT_SECRET: c.clientSecret,
    GHL_REDIRECT_URI: c.redirectUri,
    GHL_SCOPES: MARKETPLACE_SCOPES.join(' '),
    GHL_API_URL: c.apiUrl,
    GHL_MARKETPLACE_URL: c.marketplaceUrl,
    GHL_ENCRYPTION_KEY: c.encryptionKeys.map((k) => `${k.id}:${k.key.toString('base64')}`).join(','),
    DATABASE_URL: stack.databaseUrl,
    LOG_LEVEL: 'silent',
  }
}

for (const dialect of DIALECTS) {
  describe(`charges from 3 processes (${dialect})`, { skip: await dialectSkipReason(dialect) }, () => {
    let stack: Stack
    let loc: string
    let workers: Worker[] = []

    before(async () => {
      stack = await marketplaceStack(dialect)
      loc = stack.sandbox.companies[0]!.locations[0]!.locationId
      await install(stack, { locationId: loc })
      const meterId = (await sb<Array<{ meterId: string; priceType: string }>>(stack, 'GET', '/_sandbox/billing/meters')).find((m) => m.priceType === 'fixed')!.meterId
      workers = [0, 1, 2].map(() => startWorker(workerEnv(stack), loc, meterId))
      await Promise.all(workers.map((w) => w.waitFor('READY')))
    })
    after(async () => {
      for (const w of workers) {
        if (w.child.exitCode === null && w.child.signalCode === null) {
          w.child.stdin!.write('EXIT\n')
          await new Promise((resolve) => w.child.once('exit', resolve))
        }
      }
      await stack?.close()
    })

    test(`100 calls, ${REPEATED} repeated eventIds, answers dropped and refused: exactly ${DISTINCT} charges`, async () => {
      await sb(stack, 'PUT', `/_sandbox/billing/wallets/${loc}`, { balance: 1000 })
      await sb(stack, 'POST', '/_sandbox/faults', { endpoint: 'billing', kind: 'drop', count: DROPS })
      await sb(stack, 'POST', '/_sandbox/faults', { endpoint: 'billing', kind: 'error500', count: ERRORS })
      const ids = Array.from({ length: DISTINCT }, (_, i) => `mp-${dialect}-${i}`)
      const calls = [...ids, ...ids.slice(0, REPEATED)]
      const perWorker: string[][] = [[], [], []]
      calls.forEach((eventId, i) => {
        // A repeat goes to another process than its original (call i went to i % 3).
        const w = i < DISTINCT ? i % 3 : (i - DISTINCT + 1) % 3
        perWorker[w]!.push(eventId)
      })
      const results = workers.map((w) => w.waitFor('RESULT'))
      workers.forEach((w, i) => w.child.stdin!.write(`GO ${JSON.stringify(perWorker[i])}\n`))
      const outcomes = (await Promise.all(results)).flatMap((r) => JSON.parse(r) as Outcome[])

      assert.equal(outcomes.length, 100)
      assert.deepEqual(outcomes.filter((o) => o.error !== undefined), [], 'every call got its charge')
      const byEvent = new Map<string, Set<string>>()
      for (const o of outcomes) byEvent.set(o.eventId, (byEvent.get(o.eventId) ?? new Set()).add(o.chargeId!))
      assert.equal(byEvent.size, DISTINCT)
      for (const [eventId, chargeIds] of byEvent) assert.equal(chargeIds.size, 1, `${eventId}: one charge for every call`)
      assert.equal(outcomes.filter((o) => o.duplicate === false).length, DISTINCT, 'one call per eventId sent it')

      const charges = await sb<Array<{ chargeId: string; meta: { eventId: string } }>>(stack, 'GET', `/_sandbox/billing/charges?locationId=${loc}`)
      assert.equal(charges.length, DISTINCT)
      assert.deepEqual(charges.map((c) => c.meta.eventId).sort(), [...ids].sort())
      for (const c of charges) assert.deepEqual([...byEvent.get(c.meta.eventId)!], [c.chargeId])
      assert.equal((await sb(stack, 'GET', '/_sandbox/stats')).faults.billing, DROPS + ERRORS, 'every fault was hit')
      const rows = await Promise.all(ids.map((eventId) => stack.connector.vault.charges.get({ clientId: stack.config.clientId, locationId: loc, eventId })))
      assert.deepEqual(
        rows.map((r) => r?.status),
        ids.map(() => 'charged'),
      )
    })
  })
}
