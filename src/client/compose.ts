import type { Handler, Step } from './types.js'

/**
 * Composes steps around a final handler, outermost first: `compose([a, b], send)` is `a(b(send))`.
 * Done once per client, so a call allocates no closures for the pipeline.
 */
export function compose(steps: readonly Step[], last: Handler): Handler {
  let handler = last
  for (let i = steps.length - 1; i >= 0; i--) handler = steps[i]!(handler)
  return handler
}
