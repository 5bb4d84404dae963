import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startSandbox } from '../../src/sandbox/index.js'
import { HighLevelClient } from '../../src/client/index.js'
import { MemoryRateLimiter } from '../../src/ratelimit/memory-rate-limiter.js'
import { HighLevelApiError } from '../../src/errors.js'
import type { AccessGrant, Target, TokenProvider } from '../../src/tokens/types.js'

/** A real TokenProvider over one Private Integration Token from the sandbox (static: never refreshed). */
class PitTokens implements TokenProvider {
  constructor(readonly token: string, readonly locationId: string) {}
  async getAccessToken(_target: Target): Promise<AccessGrant> {
    return { accessToken: this.token, installationId: null, version: 0, expiresAt: Number.MAX_SAFE_INTEGER, resourceId: this.locationId, scopes: [], userType: undefined }
  }
  async onUnauthorized(target: Target): Promise<AccessGrant> {
    return this.getAccessToken(target)
  }
  invalidate(): void {}
}

test('against the sandbox: PIT calls, JSON errors with trace id, and 25 parallel calls within a 10 per 500 ms limit with zero 429s', async () => {
  const sb = await startSandbox({ rateLimit: { burstMax: 10, burstWindowMs: 500, dailyMax: 200_000, dailyWindowMs: 86_400_000 } })
  const locationId = sb.companies[0]!.locations[0]!.locationId
  const pit = await fetch(`${sb.url}/_sandbox/pit`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ locationId }) })
  const { token } = (await pit.json()) as { token: string }
  const limiter = new MemoryRateLimiter({ enabled: true, burstMax: 10, burstWindowMs: 500, dailyMax: 200_000, dailyWindowMs: 86_400_000, maxQueue: 100 })
  // maxRetries 0: any 429 would surface as an error instead of being retried away.
  const client = new HighLevelClient({ baseUrl: sb.url, apiVersion: '2021-07-28', tokens: new PitTokens(token, locationId), limiter, retry: { maxRetries: 0 } })
  try {
    const loc = client.forTarget({ kind: 'static', token, resourceId: locationId })
    const list = await loc.get<{ contacts: unknown[] }>('/contacts/', { query: { locationId, limit: 10 } })
    assert.equal(list.status, 200)
    assert.ok(Array.isArray(list.data.contacts) && list.data.contacts.length > 0)
    assert.ok(list.traceId)
    const bad = await loc.get('/contacts/', { query: { locationId }, version: '1999-01-01' }).catch((e: unknown) => e)
    assert.ok(bad instanceof HighLevelApiError)
    assert.equal(bad.upstreamStatus, 400)
    assert.ok(bad.traceId)
    const all = await Promise.all(Array.from({ length: 25 }, () => loc.get('/contacts/', { query: { locationId, limit: 1 } })))
    assert.equal(all.filter((r) => r.status === 200).length, 25)
  } finally {
    await client.close()
    await limiter.close()
    await sb.close()
  }
})
