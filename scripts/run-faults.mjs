#!/usr/bin/env node
// The fault suite (`npm run test:faults`): test/faults/*.fault.ts, one file at a time, each in its own
// process (each scenario starts several processes; two at once on a small machine would measure each
// other). The files end in .fault.ts so that `npm test` (scripts/run-tests.mjs, every *.test.ts)
// never runs them. `npm run test:faults` builds first: the scenarios run the compiled `ghl-connect
// serve` and connector processes. Each scenario records its figures in fault-report.json
// (GHL_FAULTS_REPORT); they are printed as one table at the end.
//
// Each file runs directly (node's runner inside the file's own process, spec reporter) under a
// watchdog rather than under `node --test`: a scenario process that spawned and killed many children
// can spin in Node 20's exit-time handle cleanup after its tests have finished (seen on this machine:
// 100% CPU in Environment::CleanupHandles with every test reported), and `node --test` would wait for
// it forever. The watchdog reads the file's own summary; once it is printed the process gets
// EXIT_GRACE_MS to exit, then it is killed and its summary decides. A file that prints no summary
// within FILE_LIMIT_MS fails.
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { spawn } from 'node:child_process'

const EXIT_GRACE_MS = 20_000
const FILE_LIMIT_MS = Number(process.env.GHL_FAULTS_FILE_LIMIT_MS ?? 30 * 60_000)

const filter = process.argv.slice(2)
const files = readdirSync('test/faults')
  .filter((name) => name.endsWith('.fault.ts') && (filter.length === 0 || filter.some((f) => name.includes(f))))
  .sort()
  .map((name) => join('test/faults', name))
const report = resolve(process.env.GHL_FAULTS_REPORT ?? 'fault-report.json')
rmSync(report, { force: true })
const started = Date.now()

/** Runs one file; resolves with what its summary said (or why there was none). */
function runFile(file) {
  return new Promise((done) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--test-reporter=spec', '--test-reporter-destination=stdout', file], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, GHL_FAULTS_REPORT: report },
    })
    let text = ''
    let graceTimer
    let killedAfterSummary = false
    const summary = () => {
      const count = (name) => {
        const m = new RegExp(`^ℹ ${name} (\\d+)$`, 'm').exec(text)
        return m ? Number(m[1]) : undefined
      }
      return { tests: count('tests'), fail: count('fail'), cancelled: count('cancelled'), printed: /^ℹ duration_ms /m.test(text) }
    }
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk)
      text += chunk.toString('utf8')
      if (!graceTimer && summary().printed) {
        graceTimer = setTimeout(() => {
          killedAfterSummary = true
          child.kill('SIGKILL')
        }, EXIT_GRACE_MS)
      }
    })
    const limit = setTimeout(() => child.kill('SIGKILL'), FILE_LIMIT_MS)
    child.once('exit', (code, signal) => {
      clearTimeout(limit)
      clearTimeout(graceTimer)
      const s = summary()
      if (killedAfterSummary) {
        console.log(`\n(${file}: its tests had finished but the process did not exit within ${EXIT_GRACE_MS / 1000} s; stopped by the runner, its summary decides)`)
      }
      let ok
      let why
      if (!s.printed) {
        ok = false
        why = signal ? `killed (${signal}) before its tests finished${signal === 'SIGKILL' ? ` (limit ${FILE_LIMIT_MS / 60_000} min)` : ''}` : `exited ${code} without a summary`
      } else {
        ok = s.fail === 0 && s.cancelled === 0 && (killedAfterSummary || code === 0)
        why = `${s.tests} tests, ${s.fail} failed, ${s.cancelled} cancelled${killedAfterSummary ? '' : `, exit ${code}`}`
      }
      done({ file, ok, why })
    })
  })
}

const outcomes = []
for (const file of files) outcomes.push(await runFile(file))

if (existsSync(report)) {
  const entries = JSON.parse(readFileSync(report, 'utf8'))
  const width = Math.max(...entries.flatMap((e) => Object.keys(e.figures).map((k) => k.length)))
  console.log('\n=== Fault suite figures')
  for (const { scenario, figures } of entries) {
    console.log(`\n${scenario}`)
    for (const [k, v] of Object.entries(figures)) console.log(`  ${k.padEnd(width)}  ${v}`)
  }
}
console.log('\n=== Fault suite files')
for (const o of outcomes) console.log(`  ${o.ok ? 'ok  ' : 'FAIL'}  ${o.file}: ${o.why}`)
console.log(`\n(${report}; run time ${Math.round((Date.now() - started) / 1000)} s)`)
process.exit(outcomes.every((o) => o.ok) ? 0 : 1)
