/**
 * Types of the typed calls, after openapi-fetch's conventions:
 * `await ghl.location(id).GET('/contacts/{contactId}', { params: { path: { contactId } } })` →
 * `{ data, error, response }`, `data` typed from the operation's 2xx schema and `error` from its error
 * schemas; `params` and `body` are required exactly when the operation requires them. The same
 * operation by name: `ghl.location(id).contacts.getContact({ params: { path: { contactId } } })`.
 *
 * The generated `Paths` / `Services` (src/api/generated/api.ts) point at openapi-typescript's
 * `operations` types: `{ parameters: { query?, header?, path?, cookie? }, requestBody?, responses }`.
 * `Version` and `Authorization` are not parameters: the client sets them.
 */
import type { Paths, Services } from '../api/generated/api.js'

/** The methods of the typed calls. */
export type TypedMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'

/** The path templates that have an operation for `M`. */
export type PathsWith<M extends TypedMethod> = {
  [P in keyof Paths]: Lowercase<M> extends keyof Paths[P] ? P : never
}[keyof Paths]

/** The operation at a path template and method. */
export type OperationAt<P extends keyof Paths, M extends TypedMethod> = Paths[P] extends { [K in Lowercase<M>]: infer Op } ? Op : never

/** Options every typed call takes besides `params` and `body`. */
export interface TypedCallOptions {
  /** Extra headers (`Authorization` and `Version` are the client's). */
  headers?: Record<string, string>
  /** Deadline of this call in ms (default: the client's). */
  timeoutMs?: number
  /** Aborts the call wherever it is (GhlError `GHL_ABORTED`). */
  signal?: AbortSignal
}

type ParamsInit<Op> = Op extends { parameters: infer P }
  ? {} extends P
    ? { params?: P }
    : { params: P }
  : { params?: never }

/** A body by media type: JSON, a form (an object of strings), or multipart (a FormData, or an object of parts). */
type MediaBody<C> = C extends { 'application/json': infer T }
  ? T
  : C extends { 'application/x-www-form-urlencoded': infer T }
    ? T
    : C extends { 'multipart/form-data': infer T }
      ? T | FormData
      : unknown

type BodyInit<Op> = Op extends { requestBody?: never }
  ? { body?: never }
  : Op extends { requestBody: { content: infer C } }
    ? { body: MediaBody<C> }
    : Op extends { requestBody?: { content: infer C } }
      ? { body?: MediaBody<C> }
      : { body?: never }

/** What a typed call takes: `params` (`path`, `query`, `header`), `body`, and {@link TypedCallOptions}. */
export type TypedInit<Op> = TypedCallOptions & ParamsInit<Op> & BodyInit<Op>

/** The init argument: optional when nothing in it is required. */
export type TypedInitArgs<Op> = {} extends TypedInit<Op> ? [init?: TypedInit<Op>] : [init: TypedInit<Op>]

type Responses<Op> = Op extends { responses: infer R } ? R : {}
type SuccessStatus = 200 | 201 | 202 | 203 | 204 | 205 | 206 | '2XX'
type JsonBody<Res, Status> = Res extends { content: { 'application/json': infer T } } ? T : Status extends 204 | 205 ? undefined : unknown
type OrUnknown<T> = [T] extends [never] ? unknown : T

/** `data` of a typed call: the JSON of the operation's 2xx answers (`unknown` where the spec gives none). */
export type SuccessData<Op> = OrUnknown<{ [S in keyof Responses<Op> & SuccessStatus]: JsonBody<Responses<Op>[S], S> }[keyof Responses<Op> & SuccessStatus]>

/** `error` of a typed call: the JSON of the operation's documented error answers (`unknown` where it documents none). */
export type ErrorData<Op> = OrUnknown<{ [S in Exclude<keyof Responses<Op>, SuccessStatus>]: JsonBody<Responses<Op>[S], S> }[Exclude<keyof Responses<Op>, SuccessStatus>]>

/** HighLevel's answer's status line and headers. */
export interface TypedResponseInfo {
  status: number
  headers: Record<string, string | string[] | undefined>
  /** HighLevel's trace id (header or body), when it sent one. */
  traceId?: string
}

/**
 * A typed call's result. HighLevel answered 2xx/3xx: `data`. HighLevel answered 4xx/5xx (after the
 * client's retries, so a 429 too): `error`, HighLevel's body. Everything that is not an answer from
 * HighLevel — a refused call (wrong token kind, missing scope, bad params), not installed,
 * reauthorization required, timeout, network, a rate-limit wait past the deadline — rejects with a
 * GhlError, as untyped calls do.
 */
export type TypedResult<Op> =
  | { data: SuccessData<Op>; error?: undefined; response: TypedResponseInfo }
  | { data?: undefined; error: ErrorData<Op>; response: TypedResponseInfo }

type TypedCall<M extends TypedMethod> = <P extends PathsWith<M>>(path: P, ...init: TypedInitArgs<OperationAt<P, M>>) => Promise<TypedResult<OperationAt<P, M>>>

/** The typed calls by path template. */
export interface TypedPathCalls {
  GET: TypedCall<'GET'>
  POST: TypedCall<'POST'>
  PUT: TypedCall<'PUT'>
  PATCH: TypedCall<'PATCH'>
  DELETE: TypedCall<'DELETE'>
}

/** One service's operations by method name. */
export type ServiceCalls<Ops> = {
  readonly [N in keyof Ops]: (...init: TypedInitArgs<Ops[N]>) => Promise<TypedResult<Ops[N]>>
}

/** Every service namespace: `contacts`, `locations`, `calendars`, … (README "Services"). */
export type ServiceNamespaces = {
  readonly [S in keyof Services]: ServiceCalls<Services[S]>
}

export type { Paths, Services }
