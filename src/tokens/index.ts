/**
 * Token management: the {@link TokenService} behind the {@link TokenManager} contract.
 */
export type { AccessGrant, Target, TokenEvents, TokenManager, TokenProvider, TokenRequestOptions } from './types.js'
export {
  TokenService,
  INVALIDATION_CHANNEL,
  type BackgroundRefresherOptions,
  type RetryOptions,
  type TokenServiceHooks,
  type TokenServiceOptions,
} from './token-service.js'
export { BackgroundRefresher, type SweepResult } from './background-refresher.js'
export { RECONNECT_FLAG } from './refresh-coordinator.js'
