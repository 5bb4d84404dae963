/**
 * The install link: HighLevel's "choose location" page for this app.
 *
 * @see https://highlevel.stoplight.io/docs/integrations/a04191c0fabf9-authorization (Authorization.md §3)
 */

/** Parameters of {@link buildAuthorizeUrl}. */
export interface AuthorizeUrlParams {
  /** `https://marketplace.gohighlevel.com` or the white-label `https://marketplace.leadconnectorhq.com`. */
  marketplaceUrl: string
  clientId: string
  redirectUri: string
  scopes: readonly string[]
  /** The one-time anti-CSRF value (RFC 6749 §10.12). */
  state: string
  /** `self`: a user who is not logged in logs in in the same tab instead of a new one. */
  loginWindowOpenMode?: 'self'
}

/**
 * Builds `<marketplaceUrl>/v2/oauth/chooselocation?response_type=code&client_id=…&redirect_uri=…&scope=…&state=…`
 * with the scopes space-separated.
 *
 * @example
 * buildAuthorizeUrl({ marketplaceUrl: 'https://marketplace.gohighlevel.com', clientId: 'abc-123',
 *   redirectUri: 'https://app.example/oauth/callback', scopes: ['contacts.readonly'], state })
 */
export function buildAuthorizeUrl(params: AuthorizeUrlParams): string {
  const url = new URL('/v2/oauth/chooselocation', `${params.marketplaceUrl.replace(/\/+$/, '')}/`)
  url.searchParams.set('response_type', 'code')
  url.searchParams.set('client_id', params.clientId)
  url.searchParams.set('redirect_uri', params.redirectUri)
  url.searchParams.set('scope', params.scopes.join(' '))
  url.searchParams.set('state', params.state)
  if (params.loginWindowOpenMode) url.searchParams.set('loginWindowOpenMode', params.loginWindowOpenMode)
  return url.toString()
}
