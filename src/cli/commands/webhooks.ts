/**
 * `ghl-connect webhooks [list | replay ID]`: the stored webhook events, and replaying one.
 */
import { GhlError } from '../../errors.js'
import type { WebhookEventRecord } from '../../vault/types.js'
import { defineCommand, expectPositionals, oneOf, UsageError } from '../command.js'
import { print, printError, printJson, relativeTime, table } from '../output.js'

const STATUSES: readonly WebhookEventRecord['status'][] = ['pending', 'processed', 'failed', 'waiting']

export const webhooksCommand = defineCommand({
  name: 'webhooks',
  summary: 'List the stored webhook events, or replay one',
  help: `Usage: ghl-connect webhooks [list] [--status STATUS] [--limit N] [--json]
       ghl-connect webhooks replay WEBHOOK_ID

  list     The stored events, newest first: id, type, status, attempts, when received, location,
           company, last error. Events are kept until their replay window has passed (an hour or more).
  replay   Process a stored event again as a fresh attempt, whatever its status: INSTALL/UNINSTALL
           handling, and forwarding to GHL_WEBHOOK_FORWARD_URL (what "ghl-connect serve" does with an
           event). The outcome is recorded like any attempt. Exits 1 when the attempt failed.

Options:
  --status STATUS   pending, processed, failed or waiting
  --limit N         at most N events (default 50)
  --json            JSON instead of a table (with each event's payload)

"list" needs only DATABASE_URL; "replay" the full configuration of the server.

Examples:
  ghl-connect webhooks --status failed
  ghl-connect webhooks replay 0f8e6b1a-…`,
  options: { status: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } },
  async run({ values, positionals }) {
    const sub = positionals[0] ?? 'list'
    if (sub !== 'list' && sub !== 'replay') throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}: use "list" or "replay WEBHOOK_ID"`, 'webhooks')
    const logger = async () => (await import('../cli-logger.js')).humanLogger(process.env.LOG_LEVEL ?? 'warn', 2)
    if (sub === 'replay') {
      expectPositionals('webhooks', positionals, 2, 2, 'the WEBHOOK_ID to replay')
      const webhookId = positionals[1]!
      const { openConnector } = await import('../open.js')
      const connector = await openConnector(await logger())
      try {
        const record = await connector.vault.webhooks.get(webhookId)
        if (!record) throw new GhlError('GHL_NOT_FOUND', `No stored webhook event with id ${JSON.stringify(webhookId)} (see "ghl-connect webhooks list")`)
        const result = { type: record.type, outcome: await connector.webhooks.replay(webhookId) }
        switch (result.outcome) {
          case 'processed':
            print(`Replayed ${webhookId} (${result.type}): processed.`)
            return 0
          case 'waiting':
            print(`Replayed ${webhookId} (${result.type}): still waiting for the installation's code exchange.`)
            return 0
          case 'skipped':
            printError(`Not replayed: another instance is processing ${webhookId} right now. Try again in a moment.`)
            return 1
          case 'failed': {
            const after = await connector.vault.webhooks.get(webhookId)
            printError(`Replayed ${webhookId} (${result.type}): failed (attempt ${after?.attempts ?? '?'}): ${after?.lastError ?? 'unknown error'}`)
            return 1
          }
        }
      } finally {
        await connector.close()
      }
    }
    expectPositionals('webhooks', positionals, 0, 1, '')
    const status = oneOf('webhooks', 'status', values.status, STATUSES)
    const limit = values.limit === undefined ? 50 : Number(values.limit)
    if (!/^\d+$/.test(values.limit ?? '50') || limit < 1) throw new UsageError(`--limit: expected a positive integer, got ${JSON.stringify(values.limit)}`, 'webhooks')
    const { openVaultForListing } = await import('../open.js')
    const vault = await openVaultForListing(await logger())
    try {
      const events = await vault.webhooks.list({ status, limit, newestFirst: true })
      if (values.json) {
        printJson(events)
        return 0
      }
      if (events.length === 0) {
        print(status ? `No ${status} webhook events.` : 'No webhook events.')
        return 0
      }
      const now = Date.now()
      print(
        table(
          ['WEBHOOK ID', 'TYPE', 'STATUS', 'ATTEMPTS', 'RECEIVED', 'LOCATION', 'COMPANY', 'LAST ERROR'],
          events.map((e) => [e.webhookId, e.type, e.status, String(e.attempts), relativeTime(e.receivedAt, now), e.locationId ?? '—', e.companyId ?? '—', e.lastError ?? '']),
        ),
        '',
        `${events.length} event${events.length === 1 ? '' : 's'}${events.length === limit ? ` (the newest ${limit}; --limit shows more)` : ''}.`,
      )
      return 0
    } finally {
      await vault.close()
    }
  },
})
