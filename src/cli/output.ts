/**
 * Plain-text output of the operator commands: aligned tables and "in 23 h" times. Nothing here ever
 * receives a token: callers pass summaries ({@link InstallationSummary}) and webhook records only.
 */

/** Writes lines to stdout. */
export function print(...lines: string[]): void {
  process.stdout.write(lines.map((l) => `${l}\n`).join(''))
}

/** Writes lines to stderr. */
export function printError(...lines: string[]): void {
  process.stderr.write(lines.map((l) => `${l}\n`).join(''))
}

/** JSON for `--json` (dates as ISO strings), two-space indented. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`)
}

/**
 * An aligned table: a header row, then one row per item. Cells are cut to `maxWidth` characters
 * (with "…") so one long reason does not push the other columns off screen; the last column, which
 * pushes nothing, gets twice as much.
 */
export function table(headers: readonly string[], rows: readonly (readonly string[])[], maxWidth = 60): string {
  const cut = (s: string, max: number): string => (s.length > max ? `${s.slice(0, max - 1)}…` : s)
  const all = [headers, ...rows].map((r) => r.map((c, i) => cut(oneLine(c), i === r.length - 1 ? 2 * maxWidth : maxWidth)))
  const widths = headers.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)))
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n')
}

export { duration, relativeTime } from '../clock.js'

/** Control characters (a newline in a stored reason) would break a table row. */
function oneLine(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f]+/g, ' ')
}
