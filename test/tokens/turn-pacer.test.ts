/**
 * TurnPacer: waiters are released one per turn of the event loop, in order, with timers running
 * between them.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { TurnPacer } from '../../src/tokens/turn-pacer.js'

test('each waiter gets a turn of its own, in order; a timer due meanwhile runs between them', async () => {
  const pacer = new TurnPacer()
  // An independent count of turns: a chain of immediates, one step per iteration of the loop.
  let turn = 0
  let counting = true
  const count = (): void => {
    turn++
    if (counting) setImmediate(count)
  }
  setImmediate(count)
  const seen: Array<{ i: number; turn: number }> = []
  let timerFiredBefore = -1
  setTimeout(() => (timerFiredBefore = seen.length), 0)
  await Promise.all(
    Array.from({ length: 8 }, async (_, i) => {
      await pacer.next()
      seen.push({ i, turn })
      // Synchronous work, as a SQLite statement would be: 3 ms.
      const until = performance.now() + 3
      while (performance.now() < until);
    }),
  )
  counting = false
  assert.deepEqual(seen.map((s) => s.i), [0, 1, 2, 3, 4, 5, 6, 7])
  assert.equal(new Set(seen.map((s) => s.turn)).size, 8, `turns: ${seen.map((s) => s.turn).join(', ')}`)
  // The timer became due during the first waiter's work and ran before the last waiter's.
  assert.ok(timerFiredBefore >= 1 && timerFiredBefore < 8, `timer ran after ${timerFiredBefore} waiters`)
  assert.equal(pacer.waiting, 0)
})

test('a pacer left idle releases the next waiter at once (next turn), and many waiters all come through', async () => {
  const pacer = new TurnPacer()
  await pacer.next()
  let released = 0
  await Promise.all(Array.from({ length: 3000 }, () => pacer.next().then(() => released++)))
  assert.equal(released, 3000)
  assert.equal(pacer.waiting, 0)
})
