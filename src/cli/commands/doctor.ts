/**
 * `ghl-connect doctor`: checks a deployment's configuration and surroundings, one line each.
 */
import { ConfigError, DEFAULT_API_URL, loadConfig, loadDatabaseConfig, readEnvFile, type Config, type DatabaseConfig } from '../../config.js'
import { defineCommand, expectPositionals } from '../command.js'
import type { CheckResult } from '../doctor/checks.js'
import { print } from '../output.js'

export const doctorCommand = defineCommand({
  name: 'doctor',
  summary: 'Check the configuration, database, Redis, keys, clock and HighLevel',
  help: `Usage: ghl-connect doctor

Checks what the server needs, one line each ("ok", "warn" or "fail", and what to do):
  config           every setting valid (the same validation as "serve")
  database         reachable; every migration applied
  encryption keys  every key id named by a stored token is in GHL_ENCRYPTION_KEY; none left on an old key
  installations    none waiting for a HighLevel user to install the app again
  redis            answers PING (when REDIS_URL is set)
  highlevel        GHL_API_URL answers
  clock            agrees with the Date header of HighLevel's answer
  redirect uri     https in production, and its path ends with /oauth/callback
  webhook key      an Ed25519 public key for x-ghl-signature is configured

Changes nothing. Exits 1 when any check fails, 0 otherwise (warnings included).

Example:
  NODE_ENV=production ghl-connect doctor`,
  options: {},
  async run({ positionals }) {
    expectPositionals('doctor', positionals, 0, 0, '')
    const env: Record<string, string | undefined> = { ...readEnvFile('.env'), ...process.env }
    const { checkDatabase, checkHighLevel, checkRedirectUri, checkRedis, checkWebhookKey } = await import('../doctor/checks.js')
    const production = (env.NODE_ENV ?? '').toLowerCase() === 'production'
    const results: CheckResult[] = []
    const report = (more: CheckResult | CheckResult[]): void => {
      for (const r of [more].flat()) {
        results.push(r)
        print(...formatResult(r))
      }
    }

    let config: Config | undefined
    try {
      config = loadConfig()
      report({ check: 'config', status: 'ok', message: `valid (${production ? 'production' : 'development: NODE_ENV is not "production"'})` })
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      err.issues.forEach((i, n) =>
        report({
          check: 'config',
          status: 'fail',
          message: `${i.variable}: expected ${i.expected}, got ${i.received}`,
          fix: n === err.issues.length - 1 ? 'set these in the environment or ./.env (README.md, "Configuration")' : undefined,
        }),
      )
    }

    // The rest runs even when the config is invalid, on what can be read of it.
    const database = readDatabaseConfig()
    if (database) report(await checkDatabase(database.databaseUrl, database.encryptionKeys))
    else report({ check: 'database', status: 'fail', message: 'DATABASE_URL is not usable (see the config lines)', fix: 'set DATABASE_URL to a SQLite file path or a postgres:// URL' })
    report(await checkRedis(config?.redisUrl ?? (env.REDIS_URL?.trim() || undefined)))
    report(await checkHighLevel(config?.apiUrl ?? (env.GHL_API_URL?.trim().replace(/\/+$/, '') || DEFAULT_API_URL), config?.webhookToleranceMs ?? 5 * 60_000))
    // Unset, it is already a failed config line.
    const redirectUri = config?.redirectUri ?? (env.GHL_REDIRECT_URI?.trim() || undefined)
    if (redirectUri) report(checkRedirectUri(redirectUri, production))
    report(
      checkWebhookKey({
        ed25519: config ? config.webhookEd25519PublicKeys[0] : env.GHL_WEBHOOK_ED25519_PUBLIC_KEY?.trim() || undefined,
        rsa: config?.webhookRsaPublicKey,
        allowUnsigned: config?.allowUnsignedWebhooks ?? false,
        production,
        now: Date.now(),
      }),
    )

    const failed = results.filter((r) => r.status === 'fail').length
    const warned = results.filter((r) => r.status === 'warn').length
    print('', failed + warned === 0 ? 'Every check passed.' : `${failed} failed, ${warned} warning${warned === 1 ? '' : 's'}.`)
    return failed > 0 ? 1 : 0
  },
})

/** The database settings; with unusable keys (reported on the config lines), as if none were configured. */
function readDatabaseConfig(): DatabaseConfig | undefined {
  for (const overrides of [{}, { GHL_ENCRYPTION_KEY: '' }]) {
    try {
      return loadDatabaseConfig({ allowMissingKey: true, overrides })
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
    }
  }
  return undefined
}

/** "fail  encryption keys  …" and, indented under it, "→ what to do". */
function formatResult(r: CheckResult): string[] {
  const head = `${r.status.padEnd(4)}  ${r.check.padEnd(15)}  ${r.message}`
  return r.fix ? [head, `${' '.repeat(23)}→ ${r.fix}`] : [head]
}
