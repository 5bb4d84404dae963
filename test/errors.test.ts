import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { inspect } from 'node:util'
import { ERROR_CODES, GhlError, HighLevelApiError, OAuthError } from '../src/errors.js'

test('the README lists exactly the codes of the error table, with their statuses and meanings', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
  const section = readme.split('<!-- error-codes:start -->')[1]!.split('<!-- error-codes:end -->')[0]!
  const rows = [...section.matchAll(/^\| `([A-Z_]+)` \| (\d+) \| (.+) \|$/gm)].map((m) => [m[1], Number(m[2]), m[3]])
  const table = Object.entries(ERROR_CODES).map(([code, [status, meaning]]) => [code, status, meaning])
  assert.deepEqual(rows, table)
})

test('errors serialise without their cause; codes and statuses come from the table', () => {
  const secret = 'super-secret-refresh-token-value'
  const err = new OAuthError('GHL_OAUTH_GRANT_REJECTED', 'HighLevel rejected the refresh token', { cause: new Error(secret), upstreamStatus: 400, oauthError: 'invalid_grant' })
  assert.equal(err.status, 400)
  assert.ok(err instanceof GhlError)
  assert.ok(!JSON.stringify(err).includes(secret))
  assert.deepEqual(JSON.parse(JSON.stringify(err)), { code: 'GHL_OAUTH_GRANT_REJECTED', message: 'HighLevel rejected the refresh token', status: 400 })
  const api = new HighLevelApiError(422, { statusCode: 422, message: ['email must be an email'], error: 'Unprocessable Entity' }, 'trace-1')
  assert.equal(api.code, 'GHL_API_ERROR')
  assert.match(api.message, /HighLevel answered 422: email must be an email/)
  assert.ok(inspect(api).includes('trace-1'))
})
