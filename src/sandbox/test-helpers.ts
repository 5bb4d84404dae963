/**
 * The sandbox's helpers for an app's own test suite (`sb.env()`, `sb.install()`, `sb.expire()`,
 * `sb.events()`): the connector settings for this sandbox, a finished install through the real OAuth
 * flow (the app's `/oauth/install`, the consent, the app's callback), expired tokens, and the webhooks
 * sent. They drive HighLevel's side only: the app is reached over HTTP, as HighLevel reaches it.
 */
import { checkAuthorizeRequest, completeConsent } from './consent.js'
import type { SandboxContext } from './http.js'
import { expireTokens } from './routes/controls.js'
import type { SandboxEnvOptions, SandboxInstall, SandboxInstallTarget, SandboxWebhookEvent } from './types.js'

/** See {@link Sandbox.env}. */
export function sandboxEnv(
  ctx: SandboxContext,
  url: string,
  publicKeys: { ed25519: string; rsa: string },
  options: SandboxEnvOptions = {},
): Record<string, string> {
  const app = ctx.store.apps[0]!
  const env: Record<string, string> = {
    GHL_CLIENT_ID: app.clientId,
    GHL_CLIENT_SECRET: app.clientSecret,
    GHL_SCOPES: app.scopes.join(' '),
    GHL_API_URL: url,
    GHL_MARKETPLACE_URL: url,
    GHL_SHARED_SECRET: app.sharedSecret,
    GHL_WEBHOOK_ED25519_PUBLIC_KEY: publicKeys.ed25519,
    GHL_WEBHOOK_RSA_PUBLIC_KEY: publicKeys.rsa,
  }
  if (options.appUrl !== undefined) {
    let base: URL
    try {
      base = new URL(options.appUrl)
    } catch {
      throw new Error(`expected appUrl to be an absolute URL such as http://127.0.0.1:3000, got ${JSON.stringify(options.appUrl)}`)
    }
    const root = base.toString().replace(/\/+$/, '')
    const webhookPath = options.webhookPath ?? '/webhooks/highlevel'
    if (!webhookPath.startsWith('/')) throw new Error(`expected webhookPath to start with "/", got ${JSON.stringify(webhookPath)}`)
    // The app's callback and webhook URL, as the developer registers them in the Marketplace.
    app.redirectUris = [`${root}/oauth/callback`]
    app.webhookUrl = `${root}${webhookPath}`
    ctx.persist()
    env.GHL_REDIRECT_URI = `${root}/oauth/callback`
    if (options.webhookPath !== undefined) env.GHL_WEBHOOK_PATH = webhookPath
  }
  return env
}

/** See {@link Sandbox.install}. */
export async function sandboxInstall(ctx: SandboxContext, target: SandboxInstallTarget): Promise<SandboxInstall> {
  const app = ctx.store.apps[0]!
  const callback = app.redirectUris[0]
  const installUrl = target.installUrl ?? (callback?.endsWith('/oauth/callback') ? `${callback.slice(0, -'/oauth/callback'.length)}/oauth/install` : undefined)
  if (!installUrl) {
    throw new Error('sb.install: the app has no redirect URI ending in /oauth/callback; call sb.env({ appUrl }) first, or pass installUrl')
  }
  // 1. The app starts the install: a redirect to HighLevel's choose-location page, with its state.
  let start: Response
  try {
    start = await fetch(installUrl, { redirect: 'manual' })
  } catch (err) {
    throw new Error(`sb.install: the app's install route ${installUrl} could not be reached (${(err as Error).message}); is the app listening there? (sb.env({ appUrl }) registers its URL)`, { cause: err })
  }
  await start.body?.cancel()
  const location = start.headers.get('location')
  if (start.status !== 302 || !location) throw new Error(`sb.install: ${installUrl} answered ${start.status} instead of a redirect to HighLevel`)
  const authorize = new URL(location)
  const check = checkAuthorizeRequest(ctx, {
    clientId: authorize.searchParams.get('client_id') ?? undefined,
    redirectUri: authorize.searchParams.get('redirect_uri') ?? undefined,
    responseType: authorize.searchParams.get('response_type') ?? 'code',
    scope: authorize.searchParams.get('scope') ?? undefined,
  })
  if (!check.ok) throw new Error(`sb.install: the app's authorization request was refused: ${check.message}`)
  // 2. The user picks the location (or agency) and approves.
  const before = ctx.webhooks.list().length
  const consent = await completeConsent(ctx, check, {
    locationId: target.locationId,
    companyId: target.companyId,
    locationIds: target.locationIds,
    userId: target.userId,
    state: authorize.searchParams.get('state') ?? undefined,
  })
  if ('error' in consent) throw new Error(`sb.install: ${consent.error}`)
  // 3. HighLevel redirects the browser to the app's callback, which exchanges the code.
  let res: Response
  try {
    res = await fetch(consent.redirect, { redirect: 'manual' })
  } catch (err) {
    throw new Error(`sb.install: the app's callback could not be reached (${(err as Error).message})`, { cause: err })
  }
  const body = await res.text()
  if (res.status >= 400) throw new Error(`sb.install: the app's callback answered ${res.status}: ${body.slice(0, 500)}`)
  // 4. The INSTALL webhooks (sent once the code is exchanged) have been answered.
  const webhooks = await settled(ctx, before, target.timeoutMs ?? 10_000)
  return {
    locationId: target.locationId ?? null,
    companyId: target.companyId ?? ctx.store.location(target.locationId ?? '')?.companyId ?? null,
    callbackStatus: res.status,
    redirectedTo: res.headers.get('location'),
    webhooks,
  }
}

/** The deliveries after index `from`, once none is pending (or `timeoutMs` passed). */
async function settled(ctx: SandboxContext, from: number, timeoutMs: number): Promise<SandboxWebhookEvent[]> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const sent = ctx.webhooks.list().slice(from)
    if (sent.every((d) => d.status !== 'pending') || Date.now() > deadline) return sent.map(eventView)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** See {@link Sandbox.expire}. */
export function sandboxExpire(ctx: SandboxContext, target: { locationId?: string; companyId?: string; token?: string }): number {
  const given = [target.token, target.locationId, target.companyId].filter((x) => x !== undefined)
  if (given.length !== 1) throw new Error('sb.expire: give exactly one of token, locationId or companyId')
  const expired = expireTokens(ctx, target)
  if (expired === undefined) throw new Error('sb.expire: unknown token')
  return expired
}

/** See {@link Sandbox.events}. */
export function sandboxEvents(ctx: SandboxContext, filter: { type?: string; locationId?: string } = {}): SandboxWebhookEvent[] {
  return ctx.webhooks
    .list()
    .filter((d) => (filter.type === undefined || d.type === filter.type) && (filter.locationId === undefined || d.payload.locationId === filter.locationId))
    .map(eventView)
}

function eventView(d: ReturnType<SandboxContext['webhooks']['list']>[number]): SandboxWebhookEvent {
  return { webhookId: d.webhookId, type: d.type, status: d.status, responseStatus: d.responseStatus, attempts: d.attempts, url: d.url, error: d.error, payload: d.payload }
}
