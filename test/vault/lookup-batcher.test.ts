/**
 * LookupBatcher: lookups asked for together are one load; groups, sizes and failures stay apart.
 */
import assert from 'node:assert/strict'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { describe, test } from 'node:test'
import { LookupBatcher } from '../../src/vault/lookup-batcher.js'

function recording(fail?: (keys: string[]) => Error | undefined) {
  const loads: Array<{ group: string; keys: string[] }> = []
  const batcher = new LookupBatcher<string>(async (group, keys) => {
    loads.push({ group, keys })
    const err = fail?.(keys)
    if (err) throw err
    return new Map(keys.filter((k) => !k.startsWith('missing')).map((k) => [k, `${group}/${k}`]))
  }, 3)
  return { batcher, loads }
}

describe('LookupBatcher', () => {
  test('lookups started by one burst (even a few awaits deep) are one load per group, split at the batch size', async () => {
    const { batcher, loads } = recording()
    const deep = async (group: string, key: string) => {
      await null
      await null
      return batcher.get(group, key)
    }
    const got = await Promise.all([
      batcher.get('a', 'k1'),
      deep('a', 'k2'),
      batcher.get('a', 'k1'),
      batcher.get('b', 'k1'),
      batcher.get('a', 'missing'),
      batcher.get('a', 'k3'),
      deep('c', 'y'),
      batcher.get('c', 'x'),
    ])
    assert.deepEqual(got, ['a/k1', 'a/k2', 'a/k1', 'b/k1', undefined, 'a/k3', 'c/y', 'c/x'])
    // Group a: k1, missing, k3 in the first load (size 3), then k2; b alone; c's two (one asked two
    // awaits later) together. k1 asked twice, read once.
    assert.deepEqual(
      loads.map((l) => `${l.group}:${l.keys.join(',')}`).sort(),
      ['a:k1,missing,k3', 'a:k2', 'b:k1', 'c:x,y'].sort(),
    )
  })

  test('lookups of separate turns are separate loads', async () => {
    const { batcher, loads } = recording()
    assert.equal(await batcher.get('a', 'k1'), 'a/k1')
    await nextTurn()
    assert.equal(await batcher.get('a', 'k2'), 'a/k2')
    assert.equal(loads.length, 2)
  })

  test('a failed load rejects every lookup of its batch, and only those', async () => {
    const { batcher, loads } = recording((keys) => (keys.includes('bad') ? new Error('database said no') : undefined))
    const results = await Promise.allSettled([batcher.get('a', 'bad'), batcher.get('a', 'k1'), batcher.get('b', 'k1')])
    assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected', 'fulfilled'])
    assert.match(String((results[0] as PromiseRejectedResult).reason), /database said no/)
    // The batcher is usable again afterwards.
    assert.equal(await batcher.get('a', 'k1'), 'a/k1')
    assert.equal(loads.length, 3)
  })
})
