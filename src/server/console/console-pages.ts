/**
 * The console's pages (see `console-html.ts`): `GET /` (installations), `GET /installations/:id`,
 * `GET /console/webhooks`, the actions (`POST /installations/:id/refresh|test-call|uninstall`,
 * `POST /console/webhooks/:id/replay`: a confirmation page first, then the action with `confirm=yes`,
 * then 303 back), and `GET|POST /login`, `POST /logout`. Every action needs the CSRF token and is
 * recorded in the audit log by the operator service.
 */
import { randomBytes } from 'node:crypto'
import formbody from '@fastify/formbody'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Connector } from '../../connector.js'
import { GhlError } from '../../errors.js'
import type { OperatorService } from '../../operator/operator-service.js'
import type { WebhookStatus } from '../../vault/types.js'
import { errorBody } from '../app.js'
import { errorPage } from '../html.js'
import { chartsBlock, confirmPage, detailPage, installationsPage, loginPage, webhooksPage } from './console-html.js'
import { relativeTime } from '../../clock.js'
import { installationQuery } from './console-api.js'
import type { OperatorAuth } from './operator-auth.js'

/** Headers of every console page; the nonce lets the list's one small script run. */
function htmlHeaders(nonce?: string): Record<string, string> {
  return {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-security-policy': `default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'${nonce ? `; script-src 'nonce-${nonce}'` : ''}`,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  }
}

const ACTIONS = {
  refresh: { title: 'Refresh the token now?', what: 'The installation\'s token is refreshed (or minted again) at once, under the same lock as every refresh; the outcome is recorded in the audit log.', danger: false },
  'test-call': { title: 'Send a test call?', what: 'One call to HighLevel with this installation\'s token: GET /locations/{id} (GET /companies/{id} for an agency). It counts against the rate limits.', danger: false },
  uninstall: { title: 'Mark uninstalled and wipe the tokens?', what: 'The tokens are deleted from the database and the installation is marked uninstalled: every call for it fails until the app is installed again. The row and its history stay.', danger: true },
} as const
type Action = keyof typeof ACTIONS

/** Registers the pages on `scope` (an encapsulated scope: the form-body parser stays inside it). */
export async function registerConsolePages(
  scope: FastifyInstance,
  connector: Connector,
  operator: OperatorService,
  auth: OperatorAuth,
  options: { sandboxUrl?: string },
): Promise<void> {
  const { config } = connector
  await scope.register(formbody, { bodyLimit: 16 * 1024 })

  const signedIn = () => auth.required
  /** Refuses a request that may not see the console: 401 with Basic auth, and the login form's link. */
  const allowed = (req: FastifyRequest, reply: FastifyReply): boolean => {
    if (auth.allows(req)) return true
    reply
      .code(401)
      .header('www-authenticate', 'Basic realm="ghl-connect", charset="UTF-8"')
      .headers(htmlHeaders())
      .send(
        errorPage({
          title: 'Sign in to the console',
          message: auth.canLogIn
            ? 'The operator console needs the operator password or the connector API key: use the Basic auth prompt (any user name), or the sign-in form at /login.'
            : 'The operator console needs GHL_CONNECTOR_API_KEY or GHL_OPERATOR_PASSWORD to be configured in production.',
          reference: '—',
          code: 'GHL_UNAUTHORIZED',
          next: { href: '/login', label: 'Sign in' },
        }),
      )
    return false
  }
  const csrfOk = (req: FastifyRequest, reply: FastifyReply): boolean => {
    if (auth.verifyCsrf(req, (req.body as Record<string, unknown> | undefined)?.csrf)) return true
    reply.code(403).send(errorBody('GHL_FORBIDDEN', 'The form is missing its CSRF token or it does not match: reload the page and try again', 403))
    return false
  }
  const back = (req: FastifyRequest, fallback: string): string => {
    const b = (req.body as Record<string, unknown> | undefined)?.back
    return typeof b === 'string' && /^\/(installations\/[^/?#]+|console\/webhooks)$/.test(b) ? b : fallback
  }
  const warnings = connector.webhooks.ed25519Configured
    ? []
    : ['GHL_WEBHOOK_ED25519_PUBLIC_KEY is not set: HighLevel signs webhooks with Ed25519 (x-ghl-signature) only since 2026-07-01, so every real webhook is refused until it is configured.']
  const windowOf = (q: Record<string, unknown>, dflt: 'hour' | 'day') => (q.window === 'day' ? 'day' : q.window === 'hour' ? 'hour' : dflt)
  const withWindow = (req: FastifyRequest, window: 'hour' | 'day') => {
    const url = new URL(req.url, 'http://x')
    url.searchParams.set('window', window)
    return `${url.pathname}${url.search}`
  }

  scope.get('/', { schema: { summary: 'The operator console: installations (HTML)', tags: ['console'], querystring: { type: 'object', additionalProperties: true } } }, async (req, reply) => {
    if (!allowed(req, reply)) return reply
    const q = req.query as Record<string, unknown>
    const query = installationQuery(q)
    const window = windowOf(q, 'hour')
    const [result, charts] = await Promise.all([operator.list(query), operator.charts(window)])
    const nonce = randomBytes(12).toString('base64')
    return reply.headers(htmlHeaders(nonce)).send(
      installationsPage({
        result,
        query,
        publicUrl: config.publicUrl,
        apiUrl: config.apiUrl,
        clientId: config.clientId,
        ...(options.sandboxUrl ? { sandboxUrl: options.sandboxUrl } : {}),
        warnings,
        charts: chartsBlock(charts, window, withWindow(req, window === 'hour' ? 'day' : 'hour')),
        chartsTitle: window === 'hour' ? 'Last hour' : 'Last day',
        nonce,
        signedIn: signedIn(),
      }),
    )
  })

  scope.get('/installations/:id', { schema: { summary: 'The operator console: one installation (HTML)', tags: ['console'], querystring: { type: 'object', additionalProperties: true } } }, async (req, reply) => {
    if (!allowed(req, reply)) return reply
    const id = (req.params as { id: string }).id
    const q = req.query as Record<string, unknown>
    let d
    try {
      d = await operator.detail(id)
    } catch (err) {
      if (err instanceof GhlError && err.code === 'GHL_NOT_INSTALLED') {
        return reply.code(404).headers(htmlHeaders()).send(errorPage({ title: 'Unknown installation', message: err.message, reference: '—', code: err.code, next: { href: '/', label: 'All installations' } }))
      }
      throw err
    }
    const notice = noticeOf(q, d.timeline.at(-1)?.detail ?? {}, d.installation.expiresAt)
    return reply.headers(htmlHeaders()).send(detailPage({ d, csrf: auth.csrfToken(req, reply), ...(notice ? { notice } : {}), signedIn: signedIn(), publicUrl: config.publicUrl }))
  })

  scope.post('/installations/:id/:action', { schema: { summary: 'A console action on an installation (form: csrf, confirm=yes): refresh, test-call, uninstall', tags: ['console'] } }, async (req, reply) => {
    if (!allowed(req, reply) || !csrfOk(req, reply)) return reply
    const { id, action } = req.params as { id: string; action: string }
    if (!(action in ACTIONS)) return reply.code(404).send(errorBody('GHL_NOT_FOUND', `No console action ${action}`, 404))
    const a = action as Action
    const detailUrl = `/installations/${encodeURIComponent(id)}`
    const body = req.body as Record<string, unknown>
    if (body.confirm !== 'yes') {
      const meta = ACTIONS[a]
      return reply.headers(htmlHeaders()).send(confirmPage({ title: meta.title, what: meta.what, action: `${detailUrl}/${a}`, csrf: auth.csrfToken(req, reply), back: detailUrl, danger: meta.danger, signedIn: signedIn() }))
    }
    try {
      if (a === 'refresh') await operator.refresh(id, 'page')
      else if (a === 'uninstall') await operator.uninstall(id, 'page')
      else await operator.testCall(id, 'page')
      return reply.redirect(`${detailUrl}?done=${a}`, 303)
    } catch (err) {
      const code = err instanceof GhlError ? err.code : 'GHL_INTERNAL'
      if (code === 'GHL_NOT_INSTALLED') throw err
      connector.logger.info({ installationId: id, action: a, code }, 'console action failed')
      return reply.redirect(`${detailUrl}?failed=${a}&code=${encodeURIComponent(code)}`, 303)
    }
  })

  scope.get('/console/webhooks', { schema: { summary: 'The operator console: webhook log (HTML)', tags: ['console'], querystring: { type: 'object', additionalProperties: true } } }, async (req, reply) => {
    if (!allowed(req, reply)) return reply
    const q = req.query as Record<string, unknown>
    const type = typeof q.type === 'string' && q.type.trim() ? q.type.trim().slice(0, 100) : undefined
    const status = typeof q.status === 'string' && ['pending', 'processed', 'failed', 'waiting'].includes(q.status) ? (q.status as WebhookStatus) : undefined
    const window = windowOf(q, 'day')
    const [events, charts] = await Promise.all([operator.webhooks({ ...(type ? { type } : {}), ...(status ? { status } : {}), limit: 200 }), operator.charts(window)])
    const outcome = typeof q.outcome === 'string' && /^[a-z]{1,20}$/.test(q.outcome) ? q.outcome : undefined
    const notice = q.done === 'replay' && outcome ? { ok: outcome !== 'failed', text: `Redelivered: ${outcome}.` } : undefined
    return reply.headers(htmlHeaders()).send(
      webhooksPage({
        events,
        ...(type ? { type } : {}),
        ...(status ? { status } : {}),
        csrf: auth.csrfToken(req, reply),
        ...(notice ? { notice } : {}),
        charts: chartsBlock(charts, window, withWindow(req, window === 'hour' ? 'day' : 'hour')),
        chartsTitle: window === 'hour' ? 'Last hour' : 'Last day',
        signedIn: signedIn(),
      }),
    )
  })

  scope.post('/console/webhooks/:id/replay', { schema: { summary: 'Console: redeliver a stored webhook event (form: csrf, confirm=yes)', tags: ['console'] } }, async (req, reply) => {
    if (!allowed(req, reply) || !csrfOk(req, reply)) return reply
    const id = (req.params as { id: string }).id
    const to = back(req, '/console/webhooks')
    if ((req.body as Record<string, unknown>).confirm !== 'yes') {
      return reply.headers(htmlHeaders()).send(
        confirmPage({ title: 'Redeliver this webhook event?', what: `Event ${id} is processed again by the app's handlers as a fresh attempt; the outcome is recorded.`, action: `/console/webhooks/${encodeURIComponent(id)}/replay`, csrf: auth.csrfToken(req, reply), back: to, signedIn: signedIn() }),
      )
    }
    const { outcome } = await operator.replayWebhook(id, 'page')
    return reply.redirect(`${to}?done=replay&outcome=${encodeURIComponent(outcome)}`, 303)
  })

  scope.get('/login', { schema: { hide: true } }, async (req, reply) => {
    if (!auth.required || auth.allows(req)) return reply.redirect('/', 303)
    return reply.headers(htmlHeaders()).send(loginPage({ failed: (req.query as Record<string, unknown>).failed === '1' }))
  })
  scope.post('/login', { schema: { hide: true } }, async (req, reply) => {
    const ok = auth.logIn((req.body as Record<string, unknown> | undefined)?.password, reply)
    if (!ok) connector.logger.info('console sign-in refused: wrong password')
    return reply.redirect(ok ? '/' : '/login?failed=1', 303)
  })
  scope.post('/logout', { schema: { hide: true } }, async (_req, reply) => {
    auth.logOut(reply)
    return reply.redirect(auth.required ? '/login' : '/', 303)
  })
}

/** The notice after an action's redirect: from fixed codes and the stored outcome only (never from free text in the URL). */
function noticeOf(q: Record<string, unknown>, lastDetail: Record<string, unknown>, expiresAt: Date | null): { ok: boolean; text: string } | undefined {
  if (q.done === 'refresh') return { ok: true, text: `Refreshed: the access token expires ${relativeTime(expiresAt, Date.now())}.` }
  if (q.done === 'uninstall') return { ok: true, text: 'Marked uninstalled; the tokens are wiped.' }
  if (q.done === 'test-call') {
    const ok = lastDetail.ok === true
    return { ok, text: `Test call ${String(lastDetail.path ?? '')}: ${ok ? `HTTP ${String(lastDetail.status)}` : String(lastDetail.error ?? 'failed')} in ${String(lastDetail.ms ?? '?')} ms${lastDetail.traceId ? ` (trace id ${String(lastDetail.traceId)})` : ''}.` }
  }
  if (q.done === 'replay' && typeof q.outcome === 'string' && /^[a-z]{1,20}$/.test(q.outcome)) return { ok: q.outcome !== 'failed', text: `Webhook redelivered: ${q.outcome}.` }
  if (typeof q.failed === 'string' && q.failed in ACTIONS) {
    const code = typeof q.code === 'string' && /^GHL_[A-Z_]{1,60}$/.test(q.code) ? q.code : 'GHL_INTERNAL'
    return { ok: false, text: `${q.failed} failed (${code}); the timeline below has the details.` }
  }
  return undefined
}
