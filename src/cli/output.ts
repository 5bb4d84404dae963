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

/**
 * A time relative to `now`, for people: "in 23 h", "in 5 min", "12 s ago", "3 d ago"; "—" when absent.
 *
 * @example
 * relativeTime(new Date(Date.now() + 23 * 3600_000), Date.now()) // "in 23 h"
 */
export function relativeTime(at: Date | null | undefined, now: number): string {
  if (!at) return '—'
  const diff = at.getTime() - now
  const span = duration(Math.abs(diff))
  return diff >= 0 ? `in ${span}` : `${span} ago`
}

/** A duration in its largest whole unit: "45 s", "12 min", "23 h", "3 d". */
export function duration(ms: number): string {
  const s = Math.floor(ms / 1000)
  if (s < 60) return `${s} s`
  const min = Math.floor(s / 60)
  if (min < 60) return `${min} min`
  const h = Math.floor(min / 60)
  if (h < 48) return `${h} h`
  return `${Math.floor(h / 24)} d`
}

/** Control characters (a newline in a stored reason) would break a table row. */
function oneLine(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f]+/g, ' ')
}
