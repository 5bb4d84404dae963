/**
 * The sandbox's pages for people: the shared HTML shell and the home page (`GET /`, `GET /_sandbox/`)
 * that says this is the HighLevel sandbox, lists the seeded apps, agencies and locations, and offers
 * each app's "Marketplace install link" — the consent page without a `state`, as HighLevel's
 * Marketplace listing opens it (Faqs.md: the admin installs from the app's page in the Marketplace).
 * Plain HTML with inline styles: no scripts, no external assets.
 */
import type { FastifyInstance, FastifyReply } from 'fastify'
import { html, type SandboxContext } from './http.js'
import type { AppRecord } from './types.js'

// The look of the connector's console (system font, quiet lines, dark mode following the system,
// visible focus), with a banner of its own colour so no one mistakes the sandbox for HighLevel.
const STYLE = `
:root{color-scheme:light dark;--bg:#fff;--fg:#1d2430;--muted:#5d6b82;--line:#e3e7ee;--head:#f5f7fa;--link:#155eef;--banner:#fff4ce;--banner-line:#d4a72c}
@media (prefers-color-scheme:dark){:root{--bg:#0f1420;--fg:#e6e9ef;--muted:#9aa6bb;--line:#2a3345;--head:#182032;--link:#84adff;--banner:#3a2e0b;--banner-line:#b38a1c}}
*{box-sizing:border-box}
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:var(--fg);background:var(--bg)}
.banner{margin:0;padding:.6rem 1rem;background:var(--banner);border-bottom:1px solid var(--banner-line)}
main{max-width:60rem;margin:0 auto;padding:1rem}
h1{font-size:1.35rem;margin:.5rem 0}h2{font-size:1.1rem;margin-top:1.6rem}h3{font-size:1rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem;display:block;overflow-x:auto;max-width:100%}
th,td{border-bottom:1px solid var(--line);padding:.35rem .55rem;text-align:left;vertical-align:top}
th{background:var(--head);font-weight:600}
caption{text-align:left;font-weight:600;padding:.25rem 0}
code{font-size:.88em;overflow-wrap:anywhere}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem .8rem}dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
a{color:var(--link)}a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible{outline:3px solid var(--link);outline-offset:2px}
.install,button{display:inline-block;background:var(--link);color:var(--bg);padding:.45rem .9rem;border-radius:6px;border:0;text-decoration:none;font:inherit;font-weight:600;cursor:pointer}
fieldset{border:1px solid var(--line);border-radius:8px;margin:.6rem 0;padding:.5rem .8rem}
ul{padding-left:1.25rem}
fieldset ul{list-style:none;padding-left:.25rem}
button[value=deny]{background:transparent;color:var(--link);border:1px solid var(--line)}
input,select{font:inherit;color:var(--fg);background:var(--bg)}
@media (max-width:600px){main{padding:.6rem}dl{grid-template-columns:1fr}}
`

/**
 * The HTML shell of every sandbox page: language, viewport, inline style, and a banner that says
 * this is the sandbox, not HighLevel.
 */
export function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="color-scheme" content="light dark">
<title>HighLevel sandbox: ${html(title)}</title>
<style>${STYLE}</style></head>
<body>
<header><p class="banner"><strong>HighLevel sandbox</strong> — a local stand-in for HighLevel, for development and tests. Nothing here reaches HighLevel.</p></header>
<main id="main">
${body}
</main>
</body></html>`
}

/** The app's Marketplace install link: chooselocation with the app's first redirect URI and all its scopes, no `state`. */
export function marketplaceInstallPath(app: AppRecord): string | undefined {
  const redirectUri = app.redirectUris[0]
  if (redirectUri === undefined) return undefined
  const query = new URLSearchParams({ response_type: 'code', client_id: app.clientId, redirect_uri: redirectUri, scope: app.scopes.join(' ') })
  return `/v2/oauth/chooselocation?${query}`
}

function appSection(app: AppRecord): string {
  const link = marketplaceInstallPath(app)
  const list = (items: string[]): string => (items.length === 0 ? 'none' : `<ul>${items.map((i) => `<li><code>${html(i)}</code></li>`).join('')}</ul>`)
  const install = link
    ? `<p><a class="install" id="marketplace-install-${html(app.appId)}" href="${html(link)}">Marketplace install link</a></p>
<p>Opens the consent page without a <code>state</code>, as the app's Marketplace listing does. After approval the browser goes to
<code>${html(app.redirectUris[0]!)}</code> with only <code>?code=…</code>.</p>`
    : '<p>No Marketplace install link: the app has no redirect URI.</p>'
  return `<section aria-labelledby="app-${html(app.appId)}">
<h3 id="app-${html(app.appId)}">App <code>${html(app.appId)}</code></h3>
${install}
<dl>
<dt>Client id</dt><dd><code>${html(app.clientId)}</code></dd>
<dt>Distribution</dt><dd>${html(app.distribution)}</dd>
<dt>Redirect URIs</dt><dd>${list(app.redirectUris)}</dd>
<dt>Scopes</dt><dd><code>${html(app.scopes.join(' '))}</code></dd>
<dt>Webhook URL</dt><dd>${app.webhookUrl ? `<code>${html(app.webhookUrl)}</code>` : 'none'}</dd>
<dt>Plan</dt><dd>${app.planId ? `<code>${html(app.planId)}</code>` : 'free'}</dd>
</dl>
</section>`
}

/** The home page. */
export function homePage(ctx: SandboxContext): string {
  const store = ctx.store
  const companies = store.companies
    .map((c) => {
      const rows = c.locations
        .map((l) => {
          const installed = store.apps.filter((a) => store.installForLocation(a.appId, l.locationId)).map((a) => `<code>${html(a.appId)}</code>`)
          return `<tr><th scope="row">${html(l.name)}</th><td><code>${html(l.locationId)}</code></td><td>${l.suspended ? 'Suspended' : 'Active'}</td><td>${installed.join(', ') || 'none'}</td></tr>`
        })
        .join('\n')
      const agencyApps = store.apps.filter((a) => store.activeInstall(a.appId, 'Company', c.companyId)).map((a) => `<code>${html(a.appId)}</code>`)
      return `<section aria-labelledby="company-${html(c.companyId)}">
<h3 id="company-${html(c.companyId)}">${html(c.name)}</h3>
<p>Company id <code>${html(c.companyId)}</code>${c.whitelabel ? ` · white-label (${html(c.whitelabel.domain)})` : ''} · agency installs: ${agencyApps.join(', ') || 'none'}</p>
<table><caption>Locations of ${html(c.name)}</caption>
<thead><tr><th scope="col">Location</th><th scope="col">Location id</th><th scope="col">Status</th><th scope="col">Apps installed</th></tr></thead>
<tbody>
${rows}
</tbody></table>
</section>`
    })
    .join('\n')
  const s = store.settings
  const settings: Array<[string, string]> = [
    ['reconnect', s.reconnect],
    ['userTypeCheck', s.userTypeCheck],
    ['locationPickToken', s.locationPickToken],
    ['webhookSignatures', s.webhookSignatures],
    ['webhookTiming', s.webhookTiming],
    ['suspendedApiStatus', String(s.suspendedApiStatus)],
    ['accessTokenTtlSec', String(s.accessTokenTtlSec)],
  ]
  return layout(
    'home',
    `<h1>HighLevel sandbox</h1>
<p>This server plays HighLevel's side for ghl-connect: the install consent page, the OAuth endpoints, HighLevel's APIs, rate
limits, signed webhooks and fault injection. Its apps, agencies, tokens and webhooks exist only here.</p>
<h2>Apps</h2>
${store.apps.map(appSection).join('\n')}
<h2>Agencies and locations</h2>
${companies}
<h2>Settings</h2>
<table><caption>Current settings (change with <code>PUT /_sandbox/settings</code>)</caption>
<tbody>${settings.map(([k, v]) => `<tr><th scope="row"><code>${k}</code></th><td><code>${html(v)}</code></td></tr>`).join('')}</tbody></table>
<h2>Controls</h2>
<p>JSON controls live under <code>/_sandbox/</code>, for example <a href="/_sandbox/apps">apps</a>, <a href="/_sandbox/companies">companies</a>,
<a href="/_sandbox/installs">installs</a>, <a href="/_sandbox/settings">settings</a>, <a href="/_sandbox/stats">stats</a> and
<a href="/_sandbox/webhooks">webhooks</a>.</p>`,
  )
}

function sendPage(reply: FastifyReply, page: string): FastifyReply {
  return reply
    .header('content-type', 'text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'")
    .send(page)
}

/** Registers the home page at `/`, `/_sandbox` and `/_sandbox/`. */
export function registerPageRoutes(app: FastifyInstance, ctx: SandboxContext): void {
  for (const path of ['/', '/_sandbox', '/_sandbox/']) app.get(path, async (_req, reply) => sendPage(reply, homePage(ctx)))
}
