/**
 * The OAuth client: stateless request/process pairs for HighLevel's OAuth endpoints, and the install flow.
 */
export type { OAuthHttp, RawResponse } from './http.js'
export { buildAuthorizeUrl, type AuthorizeUrlParams } from './authorize-url.js'
export {
  authorizationCodeGrantRequest,
  refreshTokenGrantRequest,
  processTokenResponse,
  TokenResponseSchema,
  type AuthorizationCodeGrantParams,
  type RefreshTokenGrantParams,
  type TokenResponse,
} from './token-endpoint.js'
export {
  locationTokenRequest,
  processLocationTokenResponse,
  LocationTokenResponseSchema,
  type LocationTokenParams,
  type LocationTokenResponse,
} from './location-token.js'
export {
  installedLocationsRequest,
  processInstalledLocationsResponse,
  iterateInstalledLocations,
  listInstalledLocations,
  type InstalledLocation,
  type InstalledLocationsParams,
  type InstalledLocationsResponse,
  type ListInstalledLocationsParams,
} from './installed-locations.js'
export { reconnectRequest, processReconnectResponse, type ReconnectParams, type ReconnectResponse } from './reconnect.js'
export { InstallFlow, STATE_TTL_MS, type InstallFlowOptions } from './install-flow.js'
