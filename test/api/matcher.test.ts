import { test } from 'node:test'
import assert from 'node:assert/strict'
import { matchOperation } from '../../src/api/matcher.js'
import { API_OPERATIONS, API_V3_OPERATIONS, tokenKindsOf } from '../../src/api/operation.js'

const idOf = (method: string, path: string, version?: string): string | undefined => matchOperation(method, path, { version })?.operationId

test('every v2 operation is found from its own path with its parameters filled in', () => {
  let checked = 0
  for (const op of API_OPERATIONS) {
    const path = op.path.replace(/\{([^}]+)\}/g, (_, name: string) => `x-${name}-1`)
    const found = matchOperation(op.method, path)
    assert.equal(found, op, `${op.method} ${path} should be ${op.operationId}, got ${found?.operationId}`)
    checked++
  }
  assert.equal(checked, 576)
})

test('every v3 operation is found from its own path when the Version is v3', () => {
  for (const op of API_V3_OPERATIONS) {
    const path = op.path.replace(/\{([^}]+)\}/g, (_, name: string) => `x-${name}-1`)
    assert.equal(matchOperation(op.method, path, { version: 'v3' }), op, `${op.method} ${path}`)
  }
  assert.ok(API_V3_OPERATIONS.length > 400, `expected the v3 table, got ${API_V3_OPERATIONS.length} rows`)
})

test('literal segments win over parameters; a literal that leads nowhere falls back to the parameter', () => {
  assert.equal(idOf('GET', '/contacts/search/duplicate'), 'get-duplicate-contact')
  assert.equal(idOf('GET', '/contacts/abc123'), 'get-contact')
  assert.equal(idOf('POST', '/contacts/search'), 'search-contacts-advanced')
  // GET has a literal `search` under /contacts (search/duplicate), but no search/tasks: `search` is a contactId here.
  assert.equal(idOf('GET', '/contacts/search/tasks'), 'get-all-tasks')
  assert.equal(idOf('GET', '/contacts/upsert'), 'get-contact') // /contacts/upsert is POST only
})

test('the query string, a trailing slash and the method case do not matter; the rest does', () => {
  const op = matchOperation('get', '/contacts/abc/notes/n1?x=1&y=%2F#frag')
  assert.equal(op?.operationId, 'get-note')
  assert.deepEqual(
    { version: op?.version, scopes: op?.scopes, security: op?.security, kinds: op?.tokenKinds },
    { version: '2021-07-28', scopes: ['contacts.readonly'], security: ['bearer'], kinds: { location: true, company: false, pit: true } },
  )
  assert.equal(idOf('GET', '/contacts/abc/'), 'get-contact')
  assert.equal(idOf('GET', '/contacts'), idOf('GET', '/contacts/'))
  assert.equal(idOf('GET', '/contacts/a%2Fb'), 'get-contact', 'an encoded slash stays inside its segment')
  assert.equal(idOf('PATCH', '/contacts/abc'), undefined)
  assert.equal(idOf('GET', '/contacts//notes'), undefined, 'an empty segment is no parameter value')
  assert.equal(idOf('GET', '/no-such-api/x'), undefined)
  assert.equal(idOf('GET', '/'), undefined)
  assert.equal(idOf('GET', ''), undefined)
  assert.equal(idOf('TRACE', '/contacts/abc'), undefined)
})

test('the Version header picks the table: v3 operations only for v3', () => {
  const v2 = matchOperation('GET', '/contacts/abc')
  const v3 = matchOperation('GET', '/contacts/abc', { version: ['v3'] })
  assert.equal(v2?.version, '2021-07-28')
  assert.equal(v3?.version, 'v3')
  assert.equal(matchOperation('GET', '/contacts/abc', { version: '2021-07-28' }), v2)
})

test('token kinds follow the security schemes', () => {
  assert.deepEqual(tokenKindsOf(['Location-Access']), { location: true, company: false, pit: true })
  assert.deepEqual(tokenKindsOf(['Location-Access-Only']), { location: true, company: false, pit: false })
  assert.deepEqual(tokenKindsOf(['Agency-Access']), { location: false, company: true, pit: true })
  assert.deepEqual(tokenKindsOf(['Agency-Access-Only']), { location: false, company: true, pit: false })
  assert.deepEqual(tokenKindsOf(['bearer']), { location: true, company: false, pit: true })
  assert.deepEqual(tokenKindsOf(['Location-Access-Only', 'Agency-Access-Only']), { location: true, company: true, pit: false })
  assert.equal(tokenKindsOf([]), undefined)
  const installed = matchOperation('GET', '/oauth/installedLocations')
  assert.deepEqual(installed?.tokenKinds, { location: false, company: true, pit: false })
  assert.deepEqual(installed?.scopes, ['oauth.readonly'])
})
