/**
 * Checks every fault scenario ends with: nothing secret in what the processes printed, no unhandled
 * error event, and the installations alive and usable.
 */
import assert from 'node:assert/strict'
import pg from 'pg'
import { request } from 'undici'
import type { Sandbox } from '../../src/sandbox/index.js'
import { sandboxJson } from '../helpers/stack.js'

/** No token the sandbox ever issued appears in `outputs`; no `Unhandled error event` either. */
export async function assertCleanOutput(sandbox: Sandbox, outputs: string[]): Promise<void> {
  const tokens = await sandboxJson<Array<{ value: string }>>(sandbox, 'GET', '/_sandbox/tokens')
  const text = outputs.join('\n')
  const leaked = tokens.filter((t) => t.value.length >= 16 && text.includes(t.value)).length
  assert.equal(leaked, 0, `${leaked} issued tokens appear in the processes' output`)
  assert.ok(!/Unhandled error event/i.test(text), `an unhandled error event was printed:\n${text.split('\n').filter((l) => /Unhandled error event/i.test(l)).slice(0, 3).join('\n')}`)
  assert.ok(!/UnhandledPromiseRejection|unhandled rejection/i.test(text), 'an unhandled rejection was printed')
}

/** Status of every installation row (read straight from PostgreSQL). */
export async function installationStatuses(databaseUrl: string): Promise<Record<string, number>> {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  try {
    const { rows } = await client.query<{ status: string; n: string }>('select status, count(*) as n from installations group by status')
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]))
  } finally {
    await client.end()
  }
}

/** HighLevel's answer to GET /locations/:id through a connector's proxy (the status). */
export async function proxyStatus(url: string, apiKey: string, locationId: string): Promise<number> {
  const res = await request(`${url}/proxy/locations/${locationId}/locations/${locationId}`, {
    headers: { authorization: `Bearer ${apiKey}` },
    signal: AbortSignal.timeout(30_000),
  })
  await res.body.dump()
  return res.statusCode
}
