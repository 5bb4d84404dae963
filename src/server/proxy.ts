/**
 * The proxy: `ALL /proxy/locations/:locationId/<HighLevel path>` and `/proxy/companies/:companyId/<path>`.
 * Any app, in any language, calls HighLevel through it: the connector adds the installation's token
 * and applies refresh, rate limits and retries (the same client as the library); HighLevel's status,
 * headers and body stream back unchanged. Authenticated with the connector API key.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Connector } from '../connector.js'
import { GhlError, HighLevelApiError } from '../errors.js'
import type { ResourceClient, StreamResponse } from '../client/index.js'
import { API_KEY_REFUSED, apiKeyChecker } from './api-key.js'
import { assertProxyable } from './proxy-guard.js'
import { matchOperation } from '../api/matcher.js'

/** Request headers passed on to HighLevel (never the caller's Authorization: that is our API key). */
const FORWARDED_REQUEST_HEADERS = ['content-type', 'accept', 'accept-language', 'version', 'if-none-match']
/** Response headers not copied back (hop-by-hop, or recomputed by our server). */
const DROPPED_RESPONSE_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'upgrade', 'proxy-authenticate', 'trailer'])
/**
 * An answer whose length HighLevel declares up to this is read whole and sent as one buffer; a longer
 * one, or one of unknown length, is streamed. Nearly every API answer is small, and a stream costs
 * per request what a small body does not: two end-of-stream watchers and a pipe between undici's body
 * and the response, and chunked framing (`npm run bench:proxy`: the proxy's CPU per call).
 */
const BUFFERED_MAX = 64 * 1024

/** undici's answer body, which reads itself whole (an answer the client had buffered comes as a plain Readable). */
type UndiciBody = StreamResponse['body'] & { arrayBuffer(): Promise<ArrayBuffer> }

/** Registers the proxy routes on an encapsulated scope (its bodies are taken as raw bytes). */
export function registerProxy(scope: FastifyInstance, connector: Connector): void {
  scope.removeAllContentTypeParsers()
  scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 10 * 1024 * 1024 }, (_req, body, done) => done(null, body))

  const authorized = apiKeyChecker(connector.config.connectorApiKey)
  const handle = (pick: (params: Record<string, string>) => ResourceClient) => async (req: FastifyRequest, reply: FastifyReply) => {
    if (!authorized(req)) {
      return reply.code(401).send({ code: 'GHL_UNAUTHORIZED', message: API_KEY_REFUSED, status: 401 })
    }
    const params = req.params as Record<string, string>
    // The HighLevel path is taken from the raw URL: Fastify's wildcard param is URL-decoded, and a
    // decoded %2F or %3F would change which path or query HighLevel is called with.
    const rest = req.url.replace(/^\/proxy\/(?:locations|companies)\/[^/?]+/, '')
    const pathAndQuery = rest.startsWith('/') ? rest : `/${rest}`
    const q = pathAndQuery.indexOf('?')
    // Before any token is read: no OAuth credential endpoint, no dot segment (see proxy-guard.ts).
    assertProxyable(req.method, q < 0 ? pathAndQuery : pathAndQuery.slice(0, q))
    if (connector.closing) throw new GhlError('GHL_SHUTTING_DOWN')
    const headers: Record<string, string> = {}
    for (const name of FORWARDED_REQUEST_HEADERS) {
      const v = req.headers[name]
      if (typeof v === 'string' && name !== 'version') headers[name] = v
    }
    const version = typeof req.headers.version === 'string' ? req.headers.version : undefined
    // The operation HighLevel's spec says this is: its Version when the caller sends none, and its
    // token kind and scopes checked before the call (the same table as typed calls).
    const operation = matchOperation(req.method, q < 0 ? pathAndQuery : pathAndQuery.slice(0, q), { version })
    const body = Buffer.isBuffer(req.body) && req.body.length > 0 ? req.body : undefined
    const abort = new AbortController()
    // The caller went away before the answer was written: stop waiting on HighLevel (and the limiter).
    reply.raw.once('close', () => {
      if (!reply.raw.writableEnded) abort.abort()
    })
    try {
      const res = await pick(params).request(req.method, pathAndQuery, {
        headers,
        version,
        rawBody: body,
        operation,
        signal: abort.signal,
        responseType: 'stream',
      })
      if (!('body' in res) || typeof (res.body as NodeJS.ReadableStream).pipe !== 'function') {
        return reply.code(res.status).send((res as { data?: unknown }).data)
      }
      reply.code(res.status)
      for (const [name, value] of Object.entries(res.headers)) {
        if (value !== undefined && !DROPPED_RESPONSE_HEADERS.has(name.toLowerCase())) reply.header(name, value)
      }
      const answer = res.body as StreamResponse['body'] | UndiciBody
      if (Number(res.headers['content-length']) <= BUFFERED_MAX && req.method !== 'HEAD' && 'arrayBuffer' in answer) {
        let bytes: Buffer
        try {
          bytes = Buffer.from(await answer.arrayBuffer())
        } catch (err) {
          throw new GhlError('GHL_NETWORK', "HighLevel's answer broke off before its end", { cause: err })
        }
        return reply.send(bytes)
      }
      return reply.send(res.body)
    } catch (err) {
      if (err instanceof HighLevelApiError) {
        // HighLevel's own answer, passed through unchanged.
        if (err.traceId) reply.header('x-trace-id', err.traceId)
        return reply.code(err.upstreamStatus).send(err.body)
      }
      throw err
    }
  }

  scope.all('/proxy/locations/:locationId/*', handle((p) => connector.location(p.locationId!)))
  scope.all('/proxy/companies/:companyId/*', handle((p) => connector.company(p.companyId!)))
}
