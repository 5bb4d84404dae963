/**
 * What a `ghl-connect` command is, and how its arguments are parsed: node's `util.parseArgs`, strict
 * (an unknown option is an error), positionals allowed, `--help`/`-h` on every command. A command's
 * `run` is only reached when the arguments parsed and `--help` was not given, so `--help` never does
 * anything but print.
 *
 * Command modules import only light modules at the top (config, errors, output); what a command runs
 * (the server, the sandbox, the vault, drivers) is imported inside `run`, so that `--help`, `--version`
 * and usage errors answer at once and load nothing they do not need.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util'

/** The options a command accepts (`util.parseArgs` format). */
export type CommandOptions = NonNullable<ParseArgsConfig['options']>

const HELP_OPTION = { help: { type: 'boolean', short: 'h' } } as const

/** The parsed arguments of a command with options `O`. */
export type ParsedArgs<O extends CommandOptions> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O & typeof HELP_OPTION; allowPositionals: true; strict: true }>
>

/**
 * Bad usage (a missing argument, an unknown subcommand, a malformed value): `ghl-connect` prints the
 * message with a pointer to `--help` and exits with code 2.
 */
export class UsageError extends Error {
  /** The command whose `--help` to point at (e.g. `installations`), or `undefined` for the overview. */
  readonly command: string | undefined
  constructor(message: string, command?: string) {
    super(message)
    this.name = 'UsageError'
    this.command = command
  }
}

/** A command as `main` sees it. */
export interface Command {
  readonly name: string
  /** One line for the overview (`ghl-connect --help`). */
  readonly summary: string
  /** The whole `ghl-connect <name> --help` text. */
  readonly help: string
  /** Parses `argv` (the words after the command's name) and runs it; resolves with the exit code. */
  execute(argv: readonly string[]): Promise<number>
}

/** How a command is written: its options, help, and a `run` that gets the parsed arguments. */
export interface CommandSpec<O extends CommandOptions> {
  name: string
  summary: string
  help: string
  options: O
  run(args: ParsedArgs<O>): Promise<number>
}

/** Builds a {@link Command}: strict parsing, `--help` handled before anything else. */
export function defineCommand<O extends CommandOptions>(spec: CommandSpec<O>): Command {
  return {
    name: spec.name,
    summary: spec.summary,
    help: spec.help,
    async execute(argv) {
      let parsed: ParsedArgs<O>
      try {
        parsed = parseArgs({ args: [...argv], options: { ...spec.options, ...HELP_OPTION }, allowPositionals: true, strict: true }) as ParsedArgs<O>
      } catch (err) {
        // node's messages name the option ("Unknown option '--frob'", "Option '--status <value>' argument missing").
        if (isParseArgsError(err)) throw new UsageError(firstSentence(err.message), spec.name)
        throw err
      }
      if ((parsed.values as { help?: boolean }).help) {
        process.stdout.write(`${spec.help.trimEnd()}\n`)
        return 0
      }
      return spec.run(parsed)
    },
  }
}

/** The one value of a string option, checked against a list of allowed values. */
export function oneOf<T extends string>(command: string, option: string, value: string | undefined, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`--${option}: expected one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`, command)
  }
  return value as T
}

/** Checks the number of positional words; `missing` names what is missing when there are too few (e.g. "the installation ID"). */
export function expectPositionals(command: string, positionals: readonly string[], min: number, max: number, missing: string): void {
  if (positionals.length < min) throw new UsageError(`missing ${missing}`, command)
  if (positionals.length > max) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[max])}`, command)
}

function isParseArgsError(err: unknown): err is Error & { code: string } {
  const code = (err as { code?: unknown } | null)?.code
  return err instanceof Error && typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_')
}

/** node appends advice about `--` to unknown-option messages; the pointer to --help is ours. */
function firstSentence(message: string): string {
  const end = message.indexOf('. ')
  return end === -1 ? message : message.slice(0, end + 1)
}
