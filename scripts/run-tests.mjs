#!/usr/bin/env node
// Runs every test/**/*.test.ts with node's test runner (TypeScript through tsx).
// Node 20's runner does not expand globs itself, so the files are listed here. The spec reporter
// writes to the terminal; a TAP copy is read back for one plain closing line ("N passed, N failed").
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'

const filter = process.argv.slice(2)
const files = []
const walk = (dir) => {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) walk(p)
    else if (name.endsWith('.test.ts') && (filter.length === 0 || filter.some((f) => p.includes(f)))) files.push(p)
  }
}
walk('test')
const dir = mkdtempSync(join(tmpdir(), 'ghl-tests-'))
const tap = join(dir, 'report.tap')
const args = [
  '--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=180000',
  '--test-reporter=spec', '--test-reporter-destination=stdout',
  '--test-reporter=tap', `--test-reporter-destination=${tap}`,
  ...files,
]
const result = spawnSync(process.execPath, args, { stdio: 'inherit' })
try {
  const text = readFileSync(tap, 'utf8')
  const count = (name) => Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(text)?.[1] ?? 0)
  // Skipped suites (a service not reachable) are not counted by the runner's totals: count every "# SKIP".
  const skipped = (text.match(/^\s*ok \d+ - .* # SKIP/gm) ?? []).length
  console.log(`\n${count('pass')} passed, ${count('fail') + count('cancelled')} failed, ${skipped} skipped`)
} catch {
  // no TAP copy (the runner did not start): the exit code below says it
} finally {
  rmSync(dir, { recursive: true, force: true })
}
process.exit(result.status ?? 1)
