/**
 * examples/test-suite — the example of an app's own suite using ghl-connect's test helpers — run as a
 * user runs it (`node --test examples/test-suite/`): every test of it passes.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { builtSkipReason, run } from './process.js'

test('examples/test-suite passes', { skip: builtSkipReason() }, async () => {
  const suite = run(process.execPath, ['--test', 'examples/test-suite/'], {})
  const code = await new Promise<number | null>((resolve) => suite.child.once('exit', resolve))
  const out = suite.lines.join('\n')
  assert.equal(code, 0, out)
  assert.match(out, /^# pass 4$/m, out)
  assert.match(out, /^# fail 0$/m)
})
