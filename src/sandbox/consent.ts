/**
 * The install consent (chooselocation), shared by the HTML page and `POST /_sandbox/authorize`:
 * validation of the authorization request, the install it creates, the code, the INSTALL webhooks
 * and the redirect. See Authorization.md and AppInstall.md.
 */
import type { SandboxContext } from './http.js'
import { html } from './http.js'
import type { AppRecord, InstallRecord, WebhookTiming } from './types.js'

/** Raw authorization request parameters (query of chooselocation). */
export interface AuthorizeParams {
  clientId?: unknown
  redirectUri?: unknown
  responseType?: unknown
  scope?: unknown
}

/** A valid authorization request, or why it is not. Errors are never redirected. */
export type AuthorizeCheck =
  | { ok: true; app: AppRecord; redirectUri: string; scopes: string[] }
  | { ok: false; message: string }

/** Validates client_id, redirect_uri (exact match), response_type=code and scope ⊆ app scopes. */
export function checkAuthorizeRequest(ctx: SandboxContext, p: AuthorizeParams): AuthorizeCheck {
  if (typeof p.clientId !== 'string' || p.clientId === '') return { ok: false, message: 'client_id is required' }
  const app = ctx.store.appByClientId(p.clientId)
  if (!app) return { ok: false, message: 'Unknown client_id' }
  if (typeof p.redirectUri !== 'string' || p.redirectUri === '') return { ok: false, message: 'redirect_uri is required' }
  if (!app.redirectUris.includes(p.redirectUri)) return { ok: false, message: 'redirect_uri is not registered for this app' }
  if (p.responseType !== 'code') return { ok: false, message: 'response_type must be "code"' }
  if (typeof p.scope !== 'string' || p.scope.trim() === '') return { ok: false, message: 'scope is required' }
  const scopes = [...new Set(p.scope.split(/\s+/).filter(Boolean))]
  const outside = scopes.filter((s) => !app.scopes.includes(s))
  if (outside.length > 0) return { ok: false, message: `scope not enabled for this app: ${outside.join(' ')}` }
  return { ok: true, app, redirectUri: p.redirectUri, scopes }
}

/** The user's decision on the consent page (or its JSON twin). */
export interface ConsentDecision {
  locationId?: string | undefined
  companyId?: string | undefined
  /** Agency only: locations approved in bulk. Absent → every location of the agency. */
  locationIds?: string[] | undefined
  installToFutureLocations?: boolean | undefined
  deny?: boolean | undefined
  state?: string | undefined
  webhookTiming?: WebhookTiming | undefined
}

function withParams(base: string, params: Record<string, string | undefined>): string {
  const url = new URL(base)
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v)
  return url.toString()
}

/** INSTALL events of an install (AppInstall.md): agency one + one per approved location, or one location one. */
function installEvents(ctx: SandboxContext, app: AppRecord, install: InstallRecord): Array<Record<string, unknown>> {
  const company = ctx.store.company(install.companyId)
  const plan = app.planId ? { planId: app.planId } : {}
  const locationEvent = (locationId: string): Record<string, unknown> => ({
    type: 'INSTALL',
    appId: app.appId,
    locationId,
    companyId: install.companyId,
    userId: install.userId,
    ...plan,
    isWhitelabelCompany: false,
    whitelabelDetails: {},
    companyName: company?.name ?? '',
  })
  if (install.userType === 'Location') return [locationEvent(install.locationId!)]
  return [{ type: 'INSTALL', appId: app.appId, companyId: install.companyId, ...plan }, ...install.approvedLocations.map(locationEvent)]
}

/** Sends events one after another to the app's webhook URL. */
export async function sendEvents(ctx: SandboxContext, appId: string, events: Array<Record<string, unknown>>): Promise<void> {
  for (const event of events) {
    const app = ctx.store.appById(appId)
    await ctx.webhooks.send(app?.webhookUrl ?? null, event)
  }
}

/**
 * Completes a consent: creates (or refreshes) the install, issues a code, sends INSTALL webhooks per
 * timing, and returns the redirect. Returns `{error}` for a bad decision (never redirected).
 */
export async function completeConsent(
  ctx: SandboxContext,
  check: Extract<AuthorizeCheck, { ok: true }>,
  decision: ConsentDecision,
): Promise<{ redirect: string } | { error: string }> {
  const { app, redirectUri, scopes } = check
  if (decision.deny) return { redirect: withParams(redirectUri, { error: 'access_denied', state: decision.state }) }
  const store = ctx.store
  if (decision.locationId && decision.companyId) return { error: 'Choose either a location or the agency, not both' }
  let install: InstallRecord
  if (decision.locationId) {
    if (app.distribution === 'agency') return { error: 'This app can only be installed on an agency' }
    const location = store.location(decision.locationId)
    if (!location) return { error: 'Unknown location' }
    install = store.upsertInstall({
      appId: app.appId,
      userType: 'Location',
      companyId: location.companyId,
      locationId: location.locationId,
      userId: store.userOf(location.companyId).userId,
      scopes,
      approvedLocations: [],
      installToFutureLocations: false,
      approveAllLocations: false,
      isBulkInstallation: false,
    })
  } else if (decision.companyId) {
    if (app.distribution === 'location') return { error: 'This app can only be installed on a location' }
    const company = store.company(decision.companyId)
    if (!company) return { error: 'Unknown company' }
    const all = company.locations.map((l) => l.locationId)
    const approved = decision.locationIds === undefined ? all : [...new Set(decision.locationIds)]
    const foreign = approved.filter((id) => !all.includes(id))
    if (foreign.length > 0) return { error: `Locations not in this agency: ${foreign.join(', ')}` }
    install = store.upsertInstall({
      appId: app.appId,
      userType: 'Company',
      companyId: company.companyId,
      locationId: null,
      userId: store.userOf(company.companyId).userId,
      scopes,
      approvedLocations: approved,
      installToFutureLocations: decision.installToFutureLocations ?? false,
      approveAllLocations: all.length > 0 && all.every((id) => approved.includes(id)),
      isBulkInstallation: approved.length > 0,
    })
  } else {
    return { error: 'Choose a location or the agency' }
  }
  const timing = decision.webhookTiming ?? store.settings.webhookTiming
  const events = timing === 'none' ? [] : installEvents(ctx, app, install)
  const code = store.issue({
    type: 'code',
    clientId: app.clientId,
    appId: app.appId,
    companyId: install.companyId,
    locationId: install.locationId,
    userType: install.userType,
    userId: install.userId,
    scopes,
    expiresAt: store.now() + store.settings.codeTtlSec * 1000,
    installId: install.installId,
    source: 'consent',
    parent: null,
    redirectUri,
    webhookTiming: timing,
    pendingWebhooks: timing === 'after-exchange' ? events : [],
  })
  ctx.logger.info({ appId: app.appId, userType: install.userType, companyId: install.companyId, locationId: install.locationId }, 'sandbox consent approved')
  if (timing === 'early') await sendEvents(ctx, app.appId, events)
  ctx.persist()
  return { redirect: withParams(redirectUri, { code: code.value, state: decision.state }) }
}

/** The HTML error page (status 400): an authorization error is shown, never redirected. */
export function errorPage(message: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>Sandbox: authorization error</title></head>
<body><h1>Authorization error</h1><p id="error">${html(message)}</p></body></html>`
}

/** The consent page: radio per location / agency, bulk checkboxes, Approve / Deny. */
export function consentPage(ctx: SandboxContext, check: Extract<AuthorizeCheck, { ok: true }>, state: string | undefined): string {
  const { app, redirectUri, scopes } = check
  const rows: string[] = []
  let first = true
  const checked = (): string => {
    const c = first ? ' checked' : ''
    first = false
    return c
  }
  for (const company of ctx.store.companies) {
    if (app.distribution !== 'agency') {
      for (const l of company.locations) {
        rows.push(
          `<li><label><input type="radio" name="target" id="target-location-${html(l.locationId)}" value="location:${html(l.locationId)}"${checked()}> ${html(l.name)} <small>(${html(company.name)})</small></label></li>`,
        )
      }
    }
    if (app.distribution !== 'location') {
      const bulk = company.locations
        .map(
          (l) =>
            `<li><label><input type="checkbox" name="locationIds" id="bulk-${html(l.locationId)}" value="${html(l.locationId)}" checked> ${html(l.name)}</label></li>`,
        )
        .join('')
      rows.push(
        `<li><label><input type="radio" name="target" id="target-company-${html(company.companyId)}" value="company:${html(company.companyId)}"${checked()}> Agency: ${html(company.name)}</label>
<fieldset><legend>Agency install: locations to approve</legend><ul>${bulk}</ul>
<label><input type="checkbox" name="installToFutureLocations" id="install-future-${html(company.companyId)}" value="${html(company.companyId)}"> Install to future locations</label></fieldset></li>`,
      )
    }
  }
  const hidden = (name: string, value: string): string => `<input type="hidden" name="${name}" value="${html(value)}">`
  return `<!doctype html><html><head><meta charset="utf-8"><title>Sandbox: install ${html(app.appId)}</title></head>
<body><h1>Install app ${html(app.appId)}</h1>
<p>Requested scopes: <code id="scopes">${html(scopes.join(' '))}</code></p>
<form method="post" action="/oauth/chooselocation/decision" id="consent">
${hidden('client_id', app.clientId)}${hidden('redirect_uri', redirectUri)}${hidden('response_type', 'code')}${hidden('scope', scopes.join(' '))}${state === undefined ? '' : hidden('state', state)}
<ul id="targets">${rows.join('\n')}</ul>
<button type="submit" name="action" value="approve" id="approve">Approve</button>
<button type="submit" name="action" value="deny" id="deny">Deny</button>
</form></body></html>`
}
