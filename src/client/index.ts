/**
 * The HighLevel API client and its composable steps.
 */
export { HighLevelClient, buildPath } from './highlevel-client.js'
export { compose } from './compose.js'
export { auth } from './steps/auth.js'
export { refreshOn401, isTokenRejected } from './steps/refresh-on-401.js'
export { rateLimit, resourceOf } from './steps/rate-limit.js'
export { retry, NEVER_SENT_CODES, IDEMPOTENT_RETRY_CODES, networkErrorCode } from './steps/retry.js'
export { deadline } from './steps/deadline.js'
export { operationGuard } from './steps/operation-guard.js'
export { record, type CallObserver, type CallRecord } from './steps/record.js'
export { send, parseBody } from './steps/send.js'
export type {
  ApiResponse, ClientOptions, Handler, PipelineRequest, PipelineResponse, QueryValue, RequestOptions, ResourceClient, RetryOptions, Step, StreamResponse,
} from './types.js'
export type {
  Paths, Services, ServiceNamespaces, ServiceCalls, TypedPathCalls, TypedResult, TypedResponseInfo, TypedInit, TypedInitArgs, TypedCallOptions, TypedMethod, SuccessData, ErrorData, OperationAt, PathsWith,
} from './typed.js'
