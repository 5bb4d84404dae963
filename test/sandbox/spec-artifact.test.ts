/**
 * The committed spec artifact (src/sandbox/openapi/spec.json) is what the generator makes of
 * HighLevel's docs today. Needs the docs beside the repository (../shared/reference/highlevel); on CI
 * their absence fails the run, elsewhere the test is skipped with the reason.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ARTIFACT_PATH, compileDocsDir, DEFAULT_DOCS_DIR } from '../../scripts/generate-sandbox-spec.js'
import { loadSpec, OperationRouter } from '../../src/sandbox/openapi/spec.js'

const docsPresent = existsSync(join(DEFAULT_DOCS_DIR, 'apps'))
const skip = !docsPresent && process.env.CI !== 'true' ? `HighLevel's docs are not at ${DEFAULT_DOCS_DIR}` : false

test('the committed artifact equals a fresh compilation of the docs (npm run generate:sandbox)', { skip }, () => {
  assert.ok(docsPresent, `CI needs HighLevel's docs at ${DEFAULT_DOCS_DIR}`)
  const { text, spec } = compileDocsDir(DEFAULT_DOCS_DIR)
  assert.equal(spec.operations.length, 576)
  assert.ok(readFileSync(ARTIFACT_PATH, 'utf8') === text, `${ARTIFACT_PATH} is stale: run npm run generate:sandbox and commit it`)
})

test('the artifact: 576 operations with unique ids and routes, no prose, every route found by the router', () => {
  const spec = loadSpec()
  assert.equal(spec.operations.length, 576)
  assert.equal(new Set(spec.operations.map((o) => o.id)).size, 576)
  assert.equal(new Set(spec.operations.map((o) => `${o.method} ${o.path}`)).size, 576)
  // No prose: no description/summary/title/example keyword anywhere (a *property* of that name maps to a schema object).
  const prose: string[] = []
  const walk = (node: unknown, at: string): void => {
    if (Array.isArray(node)) node.forEach((x, i) => walk(x, `${at}/${i}`))
    else if (node && typeof node === 'object') {
      for (const [k, v] of Object.entries(node)) {
        if (['description', 'summary', 'title', 'example', 'examples'].includes(k) && (typeof v !== 'object' || v === null || Array.isArray(v))) prose.push(`${at}/${k}`)
        walk(v, `${at}/${k}`)
      }
    }
  }
  walk(spec, '')
  assert.deepEqual(prose, [])
  const router = new OperationRouter(spec.operations)
  for (const op of spec.operations) {
    const path = op.path.replace(/\{[^}]+\}/g, 'x1')
    assert.equal(router.match(op.method, path)?.op.id, op.id, `${op.method} ${op.path}`)
  }
})

test('router: static segments win over parameters, and %2F stays inside one parameter', () => {
  const router = new OperationRouter(loadSpec().operations)
  assert.equal(router.match('GET', '/contacts/search/duplicate')?.op.id, 'contacts/get-duplicate-contact')
  assert.equal(router.match('POST', '/contacts/search')?.op.id, 'contacts/search-contacts-advanced')
  assert.equal(router.match('GET', '/contacts/abc')?.op.id, 'contacts/get-contact')
  assert.deepEqual(router.match('GET', '/contacts/a%2Fb%3Fc')?.params, { contactId: 'a/b?c' })
  assert.equal(router.match('GET', '/contacts'), undefined)
  assert.equal(router.match('PATCH', '/contacts/abc'), undefined)
})
