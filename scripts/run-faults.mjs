#!/usr/bin/env node
// The fault suite (`npm run test:faults`): test/faults/*.fault.ts with node's test runner, one file at a
// time (each scenario starts several processes; two at once on a small machine would measure each
// other). The files end in .fault.ts so that `npm test` (scripts/run-tests.mjs, every *.test.ts)
// never runs them. `npm run test:faults` builds first: the scenarios run the compiled `ghl-connect
// serve` and connector processes. Each scenario records its figures in fault-report.json
// (GHL_FAULTS_REPORT); they are printed as one table at the end.
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { spawnSync } from 'node:child_process'

const filter = process.argv.slice(2)
const files = readdirSync('test/faults')
  .filter((name) => name.endsWith('.fault.ts') && (filter.length === 0 || filter.some((f) => name.includes(f))))
  .sort()
  .map((name) => join('test/faults', name))
const report = resolve(process.env.GHL_FAULTS_REPORT ?? 'fault-report.json')
rmSync(report, { force: true })
const started = Date.now()
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-timeout=900000', '--test-reporter=spec', ...files],
  { stdio: 'inherit', env: { ...process.env, GHL_FAULTS_REPORT: report } },
)
if (existsSync(report)) {
  const entries = JSON.parse(readFileSync(report, 'utf8'))
  const width = Math.max(...entries.flatMap((e) => Object.keys(e.figures).map((k) => k.length)))
  console.log('\n=== Fault suite figures')
  for (const { scenario, figures } of entries) {
    console.log(`\n${scenario}`)
    for (const [k, v] of Object.entries(figures)) console.log(`  ${k.padEnd(width)}  ${v}`)
  }
  console.log(`\n(${report}; run time ${Math.round((Date.now() - started) / 1000)} s)`)
}
process.exit(result.status ?? 1)
