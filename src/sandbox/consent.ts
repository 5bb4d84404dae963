/**
 * The install consent (chooselocation), shared by the HTML page and `POST /_sandbox/authorize`:
 * validation of the authorization request, the install it creates, the code, the INSTALL webhooks
 * and the redirect. See Authorization.md and AppInstall.md.
 */
import type { SandboxContext } from './http.js'
import { html } from './http.js'
import { installEvents, sendEvents } from './lifecycle.js'
import { layout } from './pages.js'
import type { AppRecord, InstallRecord, UserRecord, WebhookTiming } from './types.js'

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
  /** The installing user (default: the first seeded user of the target's agency). */
  userId?: string | undefined
}

function withParams(base: string, params: Record<string, string | undefined>): string {
  const url = new URL(base)
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v)
  return url.toString()
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
  const installerOf = (companyId: string): UserRecord | { error: string } => {
    if (decision.userId === undefined) return store.userOf(companyId)
    const user = store.users.find((u) => u.userId === decision.userId)
    if (!user) return { error: 'Unknown user' }
    if (user.companyId !== companyId) return { error: 'The user does not belong to this agency' }
    return user
  }
  let install: InstallRecord
  /** Set when an agency user's pick of one location yields a Company grant. */
  let picked: string | undefined
  if (decision.locationId) {
    if (app.distribution === 'agency') return { error: 'This app can only be installed on an agency' }
    const location = store.location(decision.locationId)
    if (!location) return { error: 'Unknown location' }
    const installer = installerOf(location.companyId)
    if ('error' in installer) return installer
    // HighLevel decides the token kind from the installer and the app's bulk-install setting: an
    // agency user who picks one location can get a Company token (API docs issue #294).
    if (store.settings.locationPickToken === 'company' && installer.type === 'agency' && app.distribution !== 'location') {
      const company = store.company(location.companyId)!
      const existing = store.activeInstall(app.appId, 'Company', company.companyId)
      const approved = [...new Set([...(existing?.approvedLocations ?? []), location.locationId])]
      const excluded = (existing?.excludedLocations ?? []).filter((id) => id !== location.locationId)
      const all = company.locations.map((l) => l.locationId)
      install = store.upsertInstall({
        appId: app.appId,
        userType: 'Company',
        companyId: company.companyId,
        locationId: null,
        userId: installer.userId,
        scopes,
        approvedLocations: approved,
        installToFutureLocations: existing?.installToFutureLocations ?? false,
        approveAllLocations: all.every((id) => approved.includes(id)),
        isBulkInstallation: true,
      })
      install.excludedLocations = excluded
      picked = location.locationId
    } else {
      install = store.upsertInstall({
        appId: app.appId,
        userType: 'Location',
        companyId: location.companyId,
        locationId: location.locationId,
        userId: installer.userId,
        scopes,
        approvedLocations: [],
        installToFutureLocations: false,
        approveAllLocations: false,
        isBulkInstallation: false,
      })
    }
  } else if (decision.companyId) {
    if (app.distribution === 'location') return { error: 'This app can only be installed on a location' }
    const company = store.company(decision.companyId)
    if (!company) return { error: 'Unknown company' }
    const installer = installerOf(company.companyId)
    if ('error' in installer) return installer
    const all = company.locations.map((l) => l.locationId)
    const approved = decision.locationIds === undefined ? all : [...new Set(decision.locationIds)]
    const foreign = approved.filter((id) => !all.includes(id))
    if (foreign.length > 0) return { error: `Locations not in this agency: ${foreign.join(', ')}` }
    install = store.upsertInstall({
      appId: app.appId,
      userType: 'Company',
      companyId: company.companyId,
      locationId: null,
      userId: installer.userId,
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
  const events = timing === 'none' ? [] : installEvents(ctx, app, install, picked === undefined ? undefined : [picked])
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
    locationPick: picked ?? null,
  })
  ctx.logger.info({ appId: app.appId, userType: install.userType, companyId: install.companyId, locationId: install.locationId }, 'sandbox consent approved')
  if (timing === 'early') await sendEvents(ctx, app.appId, events)
  ctx.persist()
  // Without a `state` (installs that start on HighLevel's side) the redirect carries only the code.
  return { redirect: withParams(redirectUri, { code: code.value, state: decision.state }) }
}

/** The HTML error page (status 400): an authorization error is shown, never redirected. */
export function errorPage(message: string): string {
  return layout('Authorization error', `<h1>Authorization error</h1>\n<p id="error" role="alert">${html(message)}</p>`)
}

/**
 * The consent page: a radio per location and per agency, bulk checkboxes for an agency install,
 * Approve / Deny. Reached from an install link the app built (with `state`) or from the Marketplace
 * listing (without one) alike.
 */
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
        const inactive = l.suspended ? ' <small>(not active)</small>' : ''
        rows.push(
          `<li><label><input type="radio" name="target" id="target-location-${html(l.locationId)}" value="location:${html(l.locationId)}"${checked()}> ${html(l.name)} <small>(${html(company.name)})</small>${inactive}</label></li>`,
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
  return layout(
    `Install ${app.appId}`,
    `<h1>Install app ${html(app.appId)}</h1>
<p>Requested scopes: <code id="scopes">${html(scopes.join(' '))}</code></p>
<form method="post" action="/oauth/chooselocation/decision" id="consent">
${hidden('client_id', app.clientId)}${hidden('redirect_uri', redirectUri)}${hidden('response_type', 'code')}${hidden('scope', scopes.join(' '))}${state === undefined ? '' : hidden('state', state)}
<fieldset><legend>Where to install</legend>
<ul id="targets">${rows.join('\n')}</ul>
</fieldset>
<p><button type="submit" name="action" value="approve" id="approve">Approve</button>
<button type="submit" name="action" value="deny" id="deny">Deny</button></p>
</form>`,
  )
}
