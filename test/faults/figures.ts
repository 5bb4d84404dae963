/**
 * The figures of the fault suite: each scenario records what happened (kills, refreshes, grants lost
 * and how each was recovered, calls failed and why, the longest call during each outage, the time to
 * full recovery). They are printed as the scenario ends and appended to one JSON file
 * (`GHL_FAULTS_REPORT`, default `fault-report.json`), which `scripts/run-faults.mjs` prints as a table
 * at the end of the run. Never a token: only counts, codes and times.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { resolve } from 'node:path'

export type FigureValue = string | number | boolean | null
export type Figures = Record<string, FigureValue>

/** The report file: one entry per scenario, in the order they ran. */
export const REPORT_PATH = resolve(process.env.GHL_FAULTS_REPORT ?? 'fault-report.json')

/** Records one scenario's figures (replacing an earlier entry of the same name) and prints them. */
export function recordFigures(scenario: string, figures: Figures): void {
  const entries = existsSync(REPORT_PATH) ? (JSON.parse(readFileSync(REPORT_PATH, 'utf8')) as Array<{ scenario: string; figures: Figures }>) : []
  const kept = entries.filter((e) => e.scenario !== scenario)
  kept.push({ scenario, figures })
  writeFileSync(REPORT_PATH, `${JSON.stringify(kept, null, 2)}\n`)
  const width = Math.max(...Object.keys(figures).map((k) => k.length))
  process.stdout.write(`\n== ${scenario}\n${Object.entries(figures).map(([k, v]) => `   ${k.padEnd(width)}  ${String(v)}`).join('\n')}\n`)
}

/** Counts of outcomes by name (`ok`, an error code, `no answer`). */
export class Tally {
  readonly counts: Record<string, number> = {}
  add(outcome: string, n = 1): void {
    this.counts[outcome] = (this.counts[outcome] ?? 0) + n
  }
  get total(): number {
    return Object.values(this.counts).reduce((a, b) => a + b, 0)
  }
  /** Everything but `ok`, as "CODE×n, …" (or "none"). */
  failures(): string {
    const parts = Object.entries(this.counts).filter(([k]) => k !== 'ok').sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}×${v}`)
    return parts.length > 0 ? parts.join(', ') : 'none'
  }
}

/** Milliseconds as seconds with one decimal. */
export function seconds(ms: number): number {
  return Math.round(ms / 100) / 10
}
