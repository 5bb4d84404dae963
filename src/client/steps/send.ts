/**
 * The last stage: one undici `dispatcher.request()`. Buffers and parses the body unless the caller
 * asked for a stream *and* the status is below 400 (error bodies are small and the steps above read
 * them: 401 reason, 429/5xx retry).
 */
import type { Dispatcher } from 'undici'
import { traceIdOf } from '../trace-id.js'
import type { Handler, PipelineRequest, PipelineResponse } from '../types.js'

/** Builds the send handler for one origin (`http://host:port`) and base path (`''` or `/prefix`). */
export function send(dispatcher: Dispatcher, origin: string, basePath: string): Handler {
  return async (req: PipelineRequest): Promise<PipelineResponse> => {
    const res = await dispatcher.request({
      origin,
      path: basePath + req.path,
      method: req.method as Dispatcher.HttpMethod,
      headers: req.headers,
      body: req.body,
      signal: req.signal,
    })
    const headers = res.headers as Record<string, string | string[] | undefined>
    if (req.responseType === 'stream' && res.statusCode < 400) {
      return { status: res.statusCode, headers, data: undefined, text: undefined, body: res.body, traceId: traceIdOf(headers) }
    }
    const text = await res.body.text()
    const data = parseBody(text, headers['content-type'])
    return { status: res.statusCode, headers, data, text, body: undefined, traceId: traceIdOf(headers, data) }
  }
}

/** JSON when the content type says so (and the body is not empty), else the text; `undefined` when empty. */
export function parseBody(text: string, contentType: string | string[] | undefined): unknown {
  if (text === '') return undefined
  const ct = Array.isArray(contentType) ? contentType[0] : contentType
  if (ct !== undefined && ct.includes('json')) {
    try {
      return JSON.parse(text)
    } catch {
      return text // HighLevel said JSON but sent something else: keep the text for the error
    }
  }
  return text
}
