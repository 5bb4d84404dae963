import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { DEFAULT_OUT_DIR, defaultDocsDir, generateApi, README_MARKERS, stripProse } from '../../scripts/generate-api.js'
import { API_OPERATIONS, API_V3_OPERATIONS } from '../../src/api/operation.js'

const ON_CI = process.env.CI === 'true' || process.env.CI === '1'
const docsDir = defaultDocsDir()
// Without HighLevel's spec files there is nothing to compare with — allowed on a developer's machine,
// never on CI (where generateApi then fails with the path it looked in).
const skip = existsSync(join(docsDir, 'apps')) || ON_CI ? false : `HighLevel's api-docs not found at ${docsDir} (set GHL_API_DOCS_DIR)`

function files(dir: string): string[] {
  const out: string[] = []
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name)
      if (statSync(p).isDirectory()) walk(p)
      else out.push(relative(dir, p))
    }
  }
  walk(dir)
  return out
}

test('the committed src/api/generated is what the generator makes from the spec today', { skip }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'ghl-generate-'))
  try {
    const result = await generateApi({ docsDir, outDir: out, readme: false })
    assert.equal(result.operations, 576)
    const fresh = files(out)
    assert.deepEqual(files(DEFAULT_OUT_DIR), fresh, 'src/api/generated has other files than the generator writes: run npm run generate')
    const stale = fresh.filter((f) => readFileSync(join(out, f), 'utf8') !== readFileSync(join(DEFAULT_OUT_DIR, f), 'utf8'))
    assert.deepEqual(stale, [], `stale generated files (run npm run generate): ${stale.join(', ')}`)
  } finally {
    rmSync(out, { recursive: true, force: true })
  }
})

test('no prose of HighLevel\'s is copied, and property names that look like prose keywords survive', () => {
  const doc = stripProse({
    description: 'prose', summary: 'prose', 'x-tagGroups': [],
    properties: { description: { type: 'string', description: 'prose', example: 'x' }, title: { type: 'string', title: 'T' } },
    default: { description: 'kept: a default value is data' },
  })
  assert.deepEqual(doc, {
    properties: { description: { type: 'string' }, title: { type: 'string' } },
    default: { description: 'kept: a default value is data' },
  })
  const generated = files(DEFAULT_OUT_DIR).map((f) => readFileSync(join(DEFAULT_OUT_DIR, f), 'utf8')).join('\n')
  // Every description in the spec is a sentence or more; none of the spec's own phrases appear.
  for (const phrase of ['Successful response', 'Use the Access Token generated with user type', 'API Version', 'Documentation for']) {
    assert.ok(!generated.includes(phrase), `generated output contains HighLevel prose: ${phrase}`)
  }
})

test('README lists every service with its operation counts, as the table has them', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
  const section = readme.split(README_MARKERS[0])[1]!.split(README_MARKERS[1])[0]!
  const rows = [...section.matchAll(/^\| `([A-Za-z]+)` \| `([a-z-]+)\.json` \| (\d+) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \|$/gm)].map((m) => m.slice(1).map((v, i) => (i < 2 ? v : Number(v))))
  const expected = new Map<string, (string | number)[]>()
  for (const op of API_OPERATIONS) {
    const namespace = op.label.slice(0, op.label.indexOf('.'))
    const row = expected.get(op.service) ?? [namespace, op.service, 0, 0, 0, 0, 0, 0]
    row[2] = (row[2] as number) + 1
    row[3 + ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].indexOf(op.method)] = (row[3 + ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].indexOf(op.method)] as number) + 1
    expected.set(op.service, row)
  }
  assert.deepEqual(rows, [...expected.values()])
  const byMethod = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].map((m) => API_OPERATIONS.filter((o) => o.method === m).length).join(' | ')
  assert.ok(section.includes(`| **all** | | **${API_OPERATIONS.length}** | ${byMethod} |`), 'README has the totals row')
  const unscoped = API_OPERATIONS.filter((o) => o.scopes.length === 0).length
  const overridden = API_OPERATIONS.filter((o) => o.scopesFrom === 'override').length
  assert.ok(
    section.includes(`${unscoped} of the ${API_OPERATIONS.length} operations name no scope (no scope check for them); ${overridden} get theirs from the reviewed overrides. ${API_V3_OPERATIONS.length} v3 operations`),
    'README counts the operations without a scope, the overridden ones and the v3 ones',
  )
})
