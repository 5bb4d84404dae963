/**
 * HighLevel's API as data: the generated operation table, what each operation accepts, and the matcher
 * the proxy uses to find the operation of a raw request.
 */
export { API_OPERATIONS, API_V3_OPERATIONS, OPERATIONS_BY_NAME, OPERATIONS_BY_TEMPLATE, assertScopes, assertTokenKind, fillPath, tokenKindsOf } from './operation.js'
export type { ApiOperation, TokenKinds } from './operation.js'
export { matchOperation, type MatchOptions } from './matcher.js'
export type { BodyEncoding, HttpMethod, OperationSpec, SecurityScheme } from './types.js'
