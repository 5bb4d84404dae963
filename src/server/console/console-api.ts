/**
 * The console's JSON API (API key required, as every `/api/*` route), and `GET /metrics`:
 *
 * - `GET /api/installations`            filters (`search`, `status`, `kind`, `plan`), keyset paging (`limit`, `cursor`)
 * - `GET /api/installations/:id`        detail: installation, token timeline, minted locations, budget, last calls, webhooks
 * - `POST /api/installations/:id/refresh`  refresh (or re-mint) the token now; audited
 * - `GET /api/webhooks`                 stored webhook events, newest first (`type`, `status`, `limit`)
 * - `POST /api/webhooks/:id/replay`     redeliver a stored event to the app's handlers; audited
 * - `GET /metrics`                      Prometheus text (API key required in production)
 *
 * Answers are plain JSON (dates as ISO strings); the schemas below feed the OpenAPI document and
 * validate the query strings (a bad filter is a 400 in the one error body).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Connector } from '../../connector.js'
import type { OperatorService } from '../../operator/operator-service.js'
import type { InstallationQuery, WebhookStatus } from '../../vault/types.js'
import { API_KEY_REFUSED, apiKeyChecker } from '../api-key.js'
import { errorBody } from '../app.js'

const STATUS = ['active', 'suspended', 'needs_reauthorization', 'uninstalled'] as const
const KIND = ['agency', 'location', 'minted'] as const
const WEBHOOK_STATUS = ['pending', 'processed', 'failed', 'waiting'] as const

const error = {
  type: 'object',
  properties: { code: { type: 'string' }, message: { type: 'string' }, status: { type: 'integer' }, retryAfterMs: { type: 'integer' } },
  required: ['code', 'message', 'status'],
} as const
const anyObject = { type: 'object', additionalProperties: true } as const
const security = [{ apiKey: [] }]
const idParam = { type: 'object', properties: { id: { type: 'string', minLength: 1, maxLength: 200 } }, required: ['id'] } as const

/** The list's query string: the same filters as the page. */
export const INSTALLATION_QUERY_SCHEMA = {
  type: 'object',
  properties: {
    search: { type: 'string', maxLength: 200, description: 'An installation, location or company id (exact), or the start of a name (any case)' },
    status: { type: 'string', enum: [...STATUS] },
    kind: { type: 'string', enum: [...KIND], description: 'agency: company installs; location: own sub-account installs; minted: location tokens minted from an agency' },
    plan: { type: 'string', maxLength: 200 },
    limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
    cursor: { type: 'string', maxLength: 500, description: 'The `next` of the previous page' },
  },
  additionalProperties: false,
} as const

/** The filters of a query string as an {@link InstallationQuery} (empty values are no filter). */
export function installationQuery(q: Record<string, unknown>): InstallationQuery {
  const text = (v: unknown) => (typeof v === 'string' && v.trim() ? v.trim() : undefined)
  const status = text(q.status)
  const kind = text(q.kind)
  const limit = Number(q.limit)
  return {
    ...(text(q.search) ? { search: text(q.search) } : {}),
    ...(status && (STATUS as readonly string[]).includes(status) ? { status: status as InstallationQuery['status'] } : {}),
    ...(kind && (KIND as readonly string[]).includes(kind) ? { kind: kind as InstallationQuery['kind'] } : {}),
    ...(text(q.plan) ? { planId: text(q.plan) } : {}),
    ...(Number.isInteger(limit) && limit >= 1 && limit <= 500 ? { limit } : {}),
    ...(text(q.cursor) ? { cursor: text(q.cursor) } : {}),
  }
}

/** Registers the API routes and `/metrics` on `app`. */
export function registerConsoleApi(app: FastifyInstance, connector: Connector, operator: OperatorService): void {
  const { config } = connector
  // Plain JSON.stringify: Dates become ISO strings and nothing is dropped by a response schema.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data))
  const authorized = apiKeyChecker(config.connectorApiKey)
  const refuse = (reply: FastifyReply) => reply.code(401).send(errorBody('GHL_UNAUTHORIZED', API_KEY_REFUSED, 401))
  const guard = async (req: FastifyRequest, reply: FastifyReply) => {
    if (!authorized(req)) return refuse(reply)
  }

  app.get(
    '/api/installations',
    {
      preHandler: guard,
      schema: {
        summary: 'Installations: search, filters and keyset paging (never a token)',
        tags: ['console'],
        security,
        querystring: INSTALLATION_QUERY_SCHEMA,
        response: { 200: { type: 'object', properties: { installations: { type: 'array', items: anyObject }, next: { type: 'string' }, total: { type: 'integer' } } }, 401: error },
      },
    },
    async (req) => {
      const result = await operator.list(installationQuery(req.query as Record<string, unknown>))
      return { installations: result.items, ...(result.next ? { next: result.next } : {}), total: result.total }
    },
  )

  app.get(
    '/api/installations/:id',
    {
      preHandler: guard,
      schema: {
        summary: 'One installation: detail, token timeline (audit log), minted locations, rate-limit budget now, last calls, webhooks',
        tags: ['console'],
        security,
        params: idParam,
        response: { 200: anyObject, 401: error, 404: error },
      },
    },
    async (req) => operator.detail((req.params as { id: string }).id),
  )

  app.post(
    '/api/installations/:id/refresh',
    {
      preHandler: guard,
      schema: {
        summary: 'Refresh (or re-mint) the installation\'s token now; recorded in the audit log',
        tags: ['console'],
        security,
        params: idParam,
        response: { 200: anyObject, 401: error, 404: error },
      },
    },
    async (req) => ({ installation: await operator.refresh((req.params as { id: string }).id, 'api') }),
  )

  app.get(
    '/api/webhooks',
    {
      preHandler: guard,
      schema: {
        summary: 'Stored webhook events, newest first',
        tags: ['console'],
        security,
        querystring: {
          type: 'object',
          properties: { type: { type: 'string', maxLength: 100 }, status: { type: 'string', enum: [...WEBHOOK_STATUS] }, limit: { type: 'integer', minimum: 1, maximum: 500, default: 100 } },
          additionalProperties: false,
        },
        response: { 200: { type: 'object', properties: { webhooks: { type: 'array', items: anyObject } } }, 401: error },
      },
    },
    async (req) => {
      const q = req.query as { type?: string; status?: WebhookStatus; limit?: number }
      return { webhooks: await operator.webhooks({ ...(q.type ? { type: q.type } : {}), ...(q.status ? { status: q.status } : {}), limit: q.limit ?? 100 }) }
    },
  )

  app.post(
    '/api/webhooks/:id/replay',
    {
      preHandler: guard,
      schema: {
        summary: 'Redeliver a stored webhook event to the app\'s handlers (a fresh attempt); recorded in the audit log',
        tags: ['console'],
        security,
        params: idParam,
        response: { 200: anyObject, 401: error, 404: error },
      },
    },
    async (req) => operator.replayWebhook((req.params as { id: string }).id, 'api'),
  )

  app.get(
    '/metrics',
    {
      schema: {
        summary: 'Prometheus metrics (text format); the API key is required in production',
        tags: ['operations'],
        response: { 200: { type: 'string' }, 401: error },
      },
    },
    async (req, reply) => {
      if (config.production && !authorized(req)) return refuse(reply)
      const { contentType, body } = await connector.metrics.text()
      return reply.header('content-type', contentType).header('cache-control', 'no-store').serializer((s: string) => s).send(body)
    },
  )
}
