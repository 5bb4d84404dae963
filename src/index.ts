/**
 * ghl-connect — the library. Named exports only: nothing internal leaks.
 *
 * @example
 * import { createConnector } from 'ghl-connect'
 * const ghl = await createConnector()
 * const { data, error } = await ghl.location('LOC_ID').GET('/contacts/{contactId}', { params: { path: { contactId: 'C' } } })
 */
export { createConnector, Connector, type ConnectorOptions, type ConnectorEvents } from './connector.js'
export { loadConfig, parseKeys, ConfigError, type Config, type ConfigIssue, type LoadConfigOptions, type EncryptionKey, type RateLimitSettings } from './config.js'
export {
  ERROR_CODES,
  GhlError,
  HighLevelApiError,
  OAuthError,
  RateLimitedError,
  ReauthorizationRequiredError,
  NotInstalledError,
  ScopeMissingError,
  WebhookRejectedError,
  type ErrorCode,
} from './errors.js'
export { createLogger, type Logger } from './logger.js'
export { systemClock, ManualClock, type Clock } from './clock.js'
export { createVault, TokenCipher } from './vault/index.js'
export type { Vault, Installation, InstallationSummary, InstallationInput, InstallationStatus, TokenSet, UserType } from './vault/types.js'
export { buildAuthorizeUrl, InstallFlow } from './oauth/index.js'
export type { Target, AccessGrant, TokenProvider, TokenManager, TokenEvents } from './tokens/types.js'
export { HighLevelClient, type ResourceClient, type RequestOptions, type ApiResponse, type StreamResponse } from './client/index.js'
export type {
  Paths, Services, ServiceNamespaces, ServiceCalls, TypedPathCalls, TypedResult, TypedResponseInfo, TypedInit, TypedCallOptions, SuccessData, ErrorData, OperationAt, PathsWith,
} from './client/index.js'
export { matchOperation, API_OPERATIONS, API_V3_OPERATIONS, tokenKindsOf, type MatchOptions, type ApiOperation, type TokenKinds, type OperationSpec, type SecurityScheme } from './api/index.js'
export { createRateLimiter, type RateLimiter, type RatePermit } from './ratelimit/index.js'
export { WebhookReceiver, verifyWebhookSignature } from './webhooks/index.js'
export { decryptUserContext, type UserContext } from './sso/index.js'
export {
  ChargeError,
  WorkflowActions,
  WorkflowTriggers,
  ExternalBilling,
  ExternalAuthEndpoint,
  CustomMenus,
  createMenusOnInstall,
  resumeWorkflowAction,
  type ChargeInput,
  type ChargeResult,
  type LocationBilling,
  type LocationClient,
  type BillingOptions,
  type BillingReport,
  type ActionContext,
  type ActionDefinition,
  type PausedAction,
  type FireResult,
  type CustomMenuInput,
  type ExternalAuthOptions,
  type MarketplaceRequest,
  type MarketplaceAnswer,
} from './marketplace/index.js'
export type { ChargeRecord, ChargeStatus, TriggerSubscription, ExternalCredential } from './vault/marketplace-types.js'
export type { CallRecord, CallObserver } from './client/index.js'
export type { CallRecorder, StatusClass } from './operator/call-recorder.js'
export type { ConnectorMetrics } from './operator/connector-metrics.js'
export { OperatorService, type InstallationView, type InstallationDetail, type InstallationListResult, type InstallationKind } from './operator/operator-service.js'
