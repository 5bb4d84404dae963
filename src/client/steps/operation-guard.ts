/**
 * Refuses a call whose HighLevel operation needs a scope the installation was not granted, before it
 * is sent (ScopeMissingError, `GHL_SCOPE_MISSING`). Runs right after the auth step, which brings the
 * grant and its scopes (from memory on the hot path), and before anything that would send or count the
 * call (retry, rate limit). Untyped calls carry no operation and pass straight through.
 *
 * The token-kind check needs no grant and is made earlier, before the pipeline (see `callOperation`).
 */
import { assertScopes } from '../../api/operation.js'
import type { Step } from '../types.js'

/** The operation-guard step. */
export function operationGuard(): Step {
  return (next) => (req) => {
    if (req.operation !== undefined && req.grant !== undefined) assertScopes(req.operation, req.grant)
    return next(req)
  }
}
