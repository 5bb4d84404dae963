/**
 * examples/python-client (python3, standard library only) against `ghl-connect serve`'s routes and
 * the sandbox: its receiver verifies the forwarded INSTALL (Standard Webhooks) and acknowledges it; its
 * proxy client lists installations and contacts and creates a contact; a wrong API key is an error.
 * Skipped, with the reason, when python3 is not installed.
 */
import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { freePort, installViaHttp, startStack, type Stack } from '../helpers/stack.js'
import { run, type Running } from './process.js'

const python = spawnSync('python3', ['--version'], { encoding: 'utf8' })
const skip = python.status === 0 ? false : 'python3 is not installed'
const SCRIPT = 'examples/python-client/ghl_proxy.py'

describe('examples/python-client', { skip }, () => {
  let stack: Stack
  let receiver: Running
  const secret = `whsec_${randomBytes(32).toString('base64')}`

  before(async () => {
    const port = await freePort()
    receiver = run('python3', [SCRIPT, 'receive', String(port)], { GHL_WEBHOOK_FORWARD_SECRET: secret })
    await receiver.waitFor(/"listening"/)
    stack = await startStack({ background: true, env: { GHL_WEBHOOK_FORWARD_URL: `http://127.0.0.1:${port}/ghl-events`, GHL_WEBHOOK_FORWARD_SECRET: secret } })
  })
  after(async () => {
    await stack?.close()
    await receiver?.stop()
  })

  /** The client as its own process (asynchronously: the connector it calls runs in this process). */
  const client = (args: string[], apiKey = stack.apiKey) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = execFile('python3', [SCRIPT, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', GHL_CONNECTOR_URL: stack.url, GHL_CONNECTOR_API_KEY: apiKey } }, (_err, stdout, stderr) =>
        resolve({ status: child.exitCode, stdout, stderr }),
      )
    })

  test('the forwarded INSTALL is verified by the Python receiver; the proxy client reads and writes', async () => {
    const locationId = stack.sandbox.companies[0]!.locations[0]!.locationId
    const installed = await installViaHttp(stack, { locationId })
    assert.equal(installed.status, 200, installed.html)
    const line = await receiver.waitFor(/"type": "INSTALL"/)
    assert.equal((JSON.parse(line) as { locationId: string }).locationId, locationId)
    assert.ok(!receiver.lines.some((l) => l.includes('rejected')), receiver.lines.join('\n'))
    // Acknowledged (204): the event is processed and not retried.
    await stack.connector.webhooks.idle()
    const install = (await stack.connector.webhooks.list({ type: 'INSTALL' }))[0]
    assert.deepEqual([install?.status, install?.attempts], ['processed', 0])

    const installations = await client(['installations'])
    assert.equal(installations.status, 0, installations.stderr)
    assert.deepEqual((JSON.parse(installations.stdout) as Array<{ locationId: string }>).map((i) => i.locationId), [locationId])

    const contacts = await client(['contacts', locationId])
    assert.equal(contacts.status, 0, contacts.stderr)
    assert.equal((JSON.parse(contacts.stdout) as unknown[]).length, 3)

    const created = await client(['create-contact', locationId, 'grace@example.com', 'Grace'])
    assert.equal(created.status, 0, created.stderr)
    const contact = JSON.parse(created.stdout) as { id: string; email: string }
    assert.equal(contact.email, 'grace@example.com')
    const after = await client(['contacts', locationId])
    assert.ok((JSON.parse(after.stdout) as Array<{ id: string }>).some((c) => c.id === contact.id))

    const refused = await client(['installations'], 'wrong-key-wrong-key-wrong-key')
    assert.equal(refused.status, 1)
    assert.equal((JSON.parse(refused.stderr) as { status: number; error: { code: string } }).error.code, 'GHL_UNAUTHORIZED')
  })
})
