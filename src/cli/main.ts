#!/usr/bin/env node
/**
 * The `ghl-connect` command: finds the command, parses its arguments (node's `util.parseArgs`, strict),
 * and maps the outcome to an exit code: 0 done, 1 failed, 2 bad usage (with a pointer to --help).
 * Every command answers `--help` by printing its help and doing nothing else.
 *
 *   ghl-connect serve | dev | sandbox | migrate | keys | installations | call | refresh | webhooks | doctor
 */
import { readFileSync } from 'node:fs'
import { ConfigError } from '../config.js'
import { GhlError } from '../errors.js'
import { UsageError, type Command } from './command.js'
import { callCommand } from './commands/call.js'
import { devCommand } from './commands/dev.js'
import { doctorCommand } from './commands/doctor.js'
import { installationsCommand } from './commands/installations.js'
import { keysCommand } from './commands/keys.js'
import { migrateCommand } from './commands/migrate.js'
import { refreshCommand } from './commands/refresh.js'
import { sandboxCommand } from './commands/sandbox.js'
import { serveCommand } from './commands/serve.js'
import { webhooksCommand } from './commands/webhooks.js'
import { print, printError } from './output.js'

/** Exit codes. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const

const COMMANDS: readonly Command[] = [
  serveCommand,
  devCommand,
  sandboxCommand,
  migrateCommand,
  keysCommand,
  installationsCommand,
  callCommand,
  refreshCommand,
  webhooksCommand,
  doctorCommand,
]

function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length))
  return `Usage: ghl-connect <command> [options]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Options:
  -h, --help     Show help (also "ghl-connect <command> --help")
  -v, --version  Show the version

Configuration comes from environment variables and ./.env — see README.md.`
}

/** The version in package.json (two folders up from both src/cli/ and dist/cli/). */
function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  return pkg.version
}

async function main(argv: readonly string[]): Promise<number> {
  const [first, ...rest] = argv
  if (first === undefined) {
    printError(overview())
    return EXIT.usage
  }
  if (first === '--help' || first === '-h') {
    print(overview())
    return EXIT.ok
  }
  if (first === '--version' || first === '-v') {
    print(version())
    return EXIT.ok
  }
  if (first === 'help') {
    const topic = rest[0]
    if (topic === undefined) {
      print(overview())
      return EXIT.ok
    }
    return find(topic).execute(['--help'])
  }
  if (first.startsWith('-')) throw new UsageError(`unknown option ${JSON.stringify(first)}`)
  return find(first).execute(rest)
}

function find(name: string): Command {
  const command = COMMANDS.find((c) => c.name === name)
  if (!command) throw new UsageError(`unknown command ${JSON.stringify(name)}`)
  return command
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      const prefix = err.command ? `ghl-connect ${err.command}` : 'ghl-connect'
      printError(`${prefix}: ${err.message}`, `Run "${prefix} --help" for usage.`)
      process.exitCode = EXIT.usage
      return
    }
    if (err instanceof ConfigError) printError(err.message)
    else if (err instanceof GhlError) printError(`${err.code}: ${err.message}`)
    else printError(`ghl-connect: ${(err as Error).message}`)
    process.exitCode = EXIT.failed
  },
)
