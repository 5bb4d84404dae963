/**
 * What the proxy refuses before it reads any token: HighLevel's OAuth endpoints that issue or exchange
 * credentials, and any path a front end could read differently from HighLevel.
 *
 * The proxy hands the caller's path to HighLevel as sent (a decoded `%2F` would change the path). So the
 * check looks at every way the path could be understood: percent-decoded until it no longer changes
 * (double encoding), backslashes as slashes, `;params` stripped from segments (as some servers do),
 * repeated slashes collapsed, case folded. A path with a `.` or `..` segment in any of those readings is
 * refused (400): a front end that normalises paths would turn `/locations/L/../../oauth/token` into
 * `/oauth/token`. Under `/oauth/` only the installed-locations listings are allowed (GET, v2 and v3
 * spellings); every other OAuth endpoint — token, locationToken / location-token, reconnect, authorize,
 * billing — is refused (403): a caller of the proxy must never receive a credential or get one minted.
 */
import { GhlError } from '../errors.js'

/** OAuth paths the proxy lets through (lower case, normalised), for GET only. */
const ALLOWED_OAUTH = new Set(['/oauth/installedlocations', '/oauth/installed-locations'])

/** The normalised reading of a raw path (no query), or GhlError 400 when it has a dot segment or cannot be decoded. */
export function normalisedPath(rawPath: string): string {
  let path = rawPath
  for (let i = 0; i < 4; i++) {
    let decoded: string
    try {
      decoded = decodeURIComponent(path)
    } catch {
      throw new GhlError('GHL_BAD_REQUEST', 'The proxied path has an invalid percent-encoding')
    }
    if (decoded === path) break
    path = decoded
  }
  if (/[\u0000-\u001f\u007f]/.test(path)) throw new GhlError('GHL_BAD_REQUEST', 'The proxied path contains control characters')
  const segments = path
    .replace(/\\/g, '/')
    .split('/')
    .map((s) => s.split(';')[0]!.trim())
  if (segments.some((s) => s === '.' || s === '..')) {
    throw new GhlError('GHL_BAD_REQUEST', 'The proxied path has a "." or ".." segment (raw or encoded); send the path HighLevel should receive, already resolved')
  }
  return `/${segments.filter((s) => s !== '').join('/')}`.toLowerCase()
}

/**
 * Throws unless the proxy may forward this call (see the file comment).
 * @param method - the HTTP method.
 * @param rawPath - the HighLevel path as sent, without the query string.
 */
export function assertProxyable(method: string, rawPath: string): void {
  const path = normalisedPath(rawPath)
  if (path === '/oauth' || path.startsWith('/oauth/')) {
    if (method.toUpperCase() === 'GET' && ALLOWED_OAUTH.has(path)) return
    throw new GhlError(
      'GHL_FORBIDDEN',
      `The proxy does not forward ${method.toUpperCase()} ${path}: HighLevel's OAuth endpoints issue or exchange credentials, which never leave the connector (only GET /oauth/installedLocations is forwarded)`,
    )
  }
}
