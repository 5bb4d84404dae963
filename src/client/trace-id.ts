/**
 * HighLevel puts a trace id on every answer (FACTS.md, "Calls"): a header, or `traceId` in the body.
 * One reading of it for the API client and the OAuth requests, so errors of both name it the same way.
 */

const TRACE_HEADERS = ['x-trace-id', 'traceid', 'trace-id', 'x-request-id'] as const

/** The trace id of an answer: from its headers, else from its (parsed) body; `undefined` when absent. */
export function traceIdOf(headers: Record<string, string | string[] | undefined>, body?: unknown): string | undefined {
  for (const name of TRACE_HEADERS) {
    const v = headers[name]
    if (typeof v === 'string' && v) return v
    if (Array.isArray(v) && v[0]) return v[0]
  }
  if (body && typeof body === 'object' && 'traceId' in body && typeof (body as { traceId: unknown }).traceId === 'string') {
    return (body as { traceId: string }).traceId
  }
  return undefined
}
