/**
 * HighLevel answered 401 because the access token is invalid or expired (its 401 body is
 * `{statusCode: 401, message: "Invalid token: access token is invalid", error: "Unauthorized"}`,
 * common-schemas.json `UnauthorizedDTO`; expired JWTs read "Invalid JWT"): ask the token provider
 * for a fresh token (it re-reads the store and refreshes at most once across instances) and resend
 * ONCE. A second 401 goes up unchanged and becomes a HighLevelApiError.
 *
 * A 401 that names a scope ("The token is not authorized for this scope.") is not a token problem:
 * refreshing would not help, so it is not retried.
 */
import type { Logger } from '../../logger.js'
import type { TokenProvider } from '../../tokens/types.js'
import type { Step } from '../types.js'

const TOKEN_PROBLEM = /(invalid|expired|malformed|revoked).{0,40}(token|jwt)|(token|jwt).{0,40}(invalid|expired|malformed|revoked)|unauthori[sz]ed/i
const NOT_A_TOKEN_PROBLEM = /scope|not authori[sz]ed for|permission/i

/**
 * Whether a 401 body says the token itself was rejected. A 401 without any message is taken as a
 * token problem too (the safe guess: one extra refresh at most).
 */
export function isTokenRejected(body: unknown): boolean {
  let message: string | undefined
  if (typeof body === 'string') message = body
  else if (body && typeof body === 'object') {
    const m = (body as { message?: unknown }).message
    message = Array.isArray(m) ? m.join(' ') : typeof m === 'string' ? m : undefined
  }
  if (message === undefined || message.trim() === '') return true
  if (NOT_A_TOKEN_PROBLEM.test(message)) return false
  return TOKEN_PROBLEM.test(message)
}

/** The refresh-on-401 step. */
export function refreshOn401(tokens: TokenProvider, logger: Logger): Step {
  return (next) => async (req) => {
    const res = await next(req)
    if (res.status !== 401 || !req.replayable || req.grant === undefined || !isTokenRejected(res.data)) return res
    logger.debug({ method: req.method, path: req.path, installationId: req.grant.installationId }, 'HighLevel rejected the access token; refreshing once')
    const grant = await tokens.onUnauthorized(req.target, req.grant, req as { signal?: AbortSignal })
    req.grant = grant
    req.headers.authorization = `Bearer ${grant.accessToken}`
    return next(req)
  }
}
