/**
 * `ghl-connect keys generate | rotate`: encryption keys of the token vault.
 */
import { randomBytes } from 'node:crypto'
import { loadDatabaseConfig } from '../../config.js'
import { defineCommand, expectPositionals, UsageError } from '../command.js'
import { requireExistingDatabase } from '../database-url.js'
import { print } from '../output.js'

export const keysCommand = defineCommand({
  name: 'keys',
  summary: 'Encryption keys: generate a new one, or re-encrypt every token with the first',
  help: `Usage: ghl-connect keys generate
       ghl-connect keys rotate

  generate   Print a new random key (base64, 32 bytes) for GHL_ENCRYPTION_KEY.
  rotate     Re-encrypt every stored token with the first key of GHL_ENCRYPTION_KEY. Keep the old
             key after the new one until this has run; then it can be dropped.
             Needs only DATABASE_URL and GHL_ENCRYPTION_KEY.

Example (rotation):
  GHL_ENCRYPTION_KEY="new:$(ghl-connect keys generate),old:<the current key>" ghl-connect keys rotate`,
  options: {},
  async run({ positionals }) {
    const [sub] = positionals
    if (sub === undefined) throw new UsageError('missing subcommand: "generate" or "rotate"', 'keys')
    expectPositionals('keys', positionals, 1, 1, '')
    if (sub === 'generate') {
      print(randomBytes(32).toString('base64'))
      return 0
    }
    if (sub === 'rotate') {
      const config = loadDatabaseConfig()
      requireExistingDatabase(config.databaseUrl)
      const { humanLogger } = await import('../cli-logger.js')
      const { createVault } = await import('../../vault/create-vault.js')
      const logger = await humanLogger(process.env.LOG_LEVEL ?? 'warn', 2)
      const vault = await createVault({ databaseUrl: config.databaseUrl, keys: config.encryptionKeys, logger })
      try {
        const count = await vault.keys.rotate()
        print(`Re-encrypted ${count} installation(s) with key ${config.encryptionKeys[0]!.id}.`)
      } finally {
        await vault.close()
      }
      return 0
    }
    throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}: use "generate" or "rotate"`, 'keys')
  },
})
