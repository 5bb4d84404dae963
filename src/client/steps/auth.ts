/**
 * Sets `Authorization: Bearer <token>` from the {@link TokenProvider} (served from memory on the hot
 * path). The token is only ever put in the request headers: never in a log line or an error.
 */
import type { TokenProvider } from '../../tokens/types.js'
import type { Step } from '../types.js'

/** The auth step. */
export function auth(tokens: TokenProvider): Step {
  return (next) => async (req) => {
    // `req` carries `signal`, so it serves as the TokenRequestOptions (no allocation).
    const grant = await tokens.getAccessToken(req.target, req as { signal?: AbortSignal })
    req.grant = grant
    req.headers.authorization = `Bearer ${grant.accessToken}`
    return next(req)
  }
}
