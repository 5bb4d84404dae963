/**
 * Token management: the {@link TokenService} behind the {@link TokenManager} contract.
 */
export type { AccessGrant, Target, TokenEvents, TokenManager, TokenProvider, TokenRequestOptions } from './types.js'
export {
  TokenService,
  INVALIDATION_CHANNEL,
  type BackgroundRefresher,
  type BackgroundRefresherOptions,
  type RetryOptions,
  type TokenServiceHooks,
  type TokenServiceOptions,
} from './token-service.js'
