/**
 * The console's pages, server-rendered: installations list, installation detail, webhook log, login.
 * Readable without JavaScript (filters and actions are plain forms; one small script only re-fetches
 * the list every 30 s, keeping the filters, when "auto-refresh" is ticked). Charts are inline SVG drawn
 * here. Dark mode follows the system (`prefers-color-scheme`); the layout holds down to a 390 px phone
 * (wide tables scroll inside their box). Every interpolated value goes through {@link escapeHtml}; no
 * page ever receives a token.
 */
import type { CallRecord } from '../../client/steps/record.js'
import { COUNT_MAX, type ChartSeries, type InstallationDetail, type InstallationListResult, type InstallationView } from '../../operator/operator-service.js'
import type { AuditRecord, InstallationQuery, WebhookEventRecord } from '../../vault/types.js'
import { relativeTime } from '../../clock.js'
import { escapeHtml } from '../html.js'

const e = escapeHtml

const STYLE = `
  :root { color-scheme: light dark; --bg: #fff; --fg: #1d2430; --muted: #5d6b82; --line: #e3e7ee; --head: #f5f7fa; --link: #155eef; --btn: #155eef; --btn-fg: #fff;
    --ok: #067647; --warn: #b54708; --bad: #b42318; --box-ok: #ecfdf3; --box-warn: #fffaeb; --box-bad: #fef3f2;
    --c2xx: #12b76a; --c3xx: #2e90fa; --c4xx: #f79009; --c429: #ee46bc; --c5xx: #d92d20; --cnone: #98a2b3 }
  @media (prefers-color-scheme: dark) {
    :root { --bg: #0f1420; --fg: #e6e9ef; --muted: #9aa6bb; --line: #2a3345; --head: #182032; --link: #84adff; --btn: #2e6cf6; --btn-fg: #fff;
      --ok: #47cd89; --warn: #fdb022; --bad: #f97066; --box-ok: #0b2a1c; --box-warn: #2e2310; --box-bad: #301512 }
  }
  * { box-sizing: border-box }
  body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 80rem; padding: 1rem; color: var(--fg); background: var(--bg) }
  a { color: var(--link) } h1 { font-size: 1.35rem; margin: .5rem 0 } h2 { font-size: 1.1rem; margin-top: 1.8rem }
  nav { display: flex; flex-wrap: wrap; gap: .4rem 1rem; align-items: center; border-bottom: 1px solid var(--line); padding-bottom: .6rem }
  nav .brand { font-weight: 600; margin-right: auto }
  a.button, button { display: inline-block; background: var(--btn); color: var(--btn-fg); padding: .45rem .9rem; border-radius: 6px; text-decoration: none; border: 0; font-size: .95rem; cursor: pointer }
  button.secondary { background: transparent; color: var(--link); border: 1px solid var(--line) } button.danger { background: var(--bad) }
  a.button:focus-visible, button:focus-visible, a:focus-visible, input:focus-visible, select:focus-visible { outline: 3px solid var(--link); outline-offset: 2px }
  .wrap { overflow-x: auto; border: 1px solid var(--line); border-radius: 8px }
  table { border-collapse: collapse; width: 100%; font-size: .88rem } th, td { text-align: left; padding: .4rem .55rem; border-bottom: 1px solid var(--line); vertical-align: top; white-space: nowrap }
  td.wrapok { white-space: normal; min-width: 12rem } th { background: var(--head); font-weight: 600 } code { font-size: .82rem }
  .status-active { color: var(--ok) } .status-needs_reauthorization { color: var(--warn) } .status-uninstalled { color: var(--muted) } .status-suspended { color: var(--bad) }
  .muted { color: var(--muted); font-size: .85rem }
  .box { padding: .8rem 1rem; border-radius: 8px; border: 1px solid var(--line); margin: .8rem 0 }
  .box.ok { background: var(--box-ok) } .box.warning { background: var(--box-warn) } .box.error { background: var(--box-bad) }
  form.filters { display: flex; flex-wrap: wrap; gap: .5rem; align-items: end; margin: .8rem 0 }
  form.filters label { display: flex; flex-direction: column; font-size: .8rem; color: var(--muted) }
  input, select { font: inherit; padding: .35rem .5rem; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--fg); max-width: 100% }
  .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(16rem, 1fr)); gap: .8rem }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem .8rem; margin: 0 } dt { color: var(--muted) } dd { margin: 0; overflow-wrap: anywhere }
  .actions { display: flex; flex-wrap: wrap; gap: .5rem } .actions form { margin: 0 }
  .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(18rem, 1fr)); gap: .8rem }
  figure { margin: 0; border: 1px solid var(--line); border-radius: 8px; padding: .6rem } figcaption { font-size: .9rem; font-weight: 600; margin-bottom: .3rem }
  svg.chart { width: 100%; height: auto; display: block } .legend { display: flex; flex-wrap: wrap; gap: .2rem .8rem; font-size: .78rem; color: var(--muted); margin-top: .3rem }
  .swatch { display: inline-block; width: .7rem; height: .7rem; border-radius: 2px; margin-right: .25rem; vertical-align: -1px }
  .pager { display: flex; gap: 1rem; align-items: center; margin: .6rem 0 }
  @media (max-width: 600px) { body { padding: .6rem } .hide-narrow { display: none } }`

const SCRIPT = `(() => {
  const box = document.getElementById('auto-refresh'); if (!box) return
  box.checked = sessionStorage.getItem('ghl-auto') === '1'
  box.addEventListener('change', () => sessionStorage.setItem('ghl-auto', box.checked ? '1' : '0'))
  setInterval(async () => {
    if (!box.checked) return
    const res = await fetch(location.href, { headers: { accept: 'text/html' }, credentials: 'same-origin' })
    if (!res.ok) return
    const doc = new DOMParser().parseFromString(await res.text(), 'text/html')
    const fresh = doc.getElementById('list'); const here = document.getElementById('list')
    if (fresh && here) here.replaceWith(fresh)
  }, 30000)
})()`

/** The console's frame: navigation, content. `script`: the list's auto-refresh. */
export function consoleLayout(title: string, body: string, options: { nonce?: string; script?: boolean; signedIn?: boolean } = {}): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark"><title>${e(title)} · ghl-connect</title><style>${STYLE}</style></head>
<body><nav aria-label="Console"><span class="brand">ghl-connect</span><a href="/">Installations</a><a href="/console/webhooks">Webhooks</a><a href="/docs">API</a><a href="/metrics">Metrics</a>${
    options.signedIn ? `<form method="post" action="/logout" style="margin:0"><button class="secondary" type="submit">Sign out</button></form>` : ''
  }</nav>
<main>${body}</main>${options.script && options.nonce ? `<script nonce="${e(options.nonce)}">${SCRIPT}</script>` : ''}</body></html>`
}

function time(at: Date | null | undefined): string {
  if (!at) return '—'
  return `<time datetime="${e(at.toISOString())}" title="${e(at.toISOString().replace('T', ' ').slice(0, 19))} UTC">${e(relativeTime(at, Date.now()))}</time>`
}

const KIND_LABEL = { agency: 'Agency', location: 'Sub-account', minted: 'Sub-account (from agency)' } as const

function nameLink(i: InstallationView): string {
  return `<a href="/installations/${encodeURIComponent(i.id)}" class="name">${e(i.name ?? i.locationId ?? i.companyId)}</a>`
}

function nameCell(i: InstallationView): string {
  const name = i.name ?? (i.locationId ?? i.companyId)
  return `<a href="/installations/${encodeURIComponent(i.id)}" class="name">${e(name)}</a><br><span class="muted">${e(KIND_LABEL[i.kind])}</span>`
}

function statusCell(i: InstallationView, publicUrl: string): string {
  return `<span class="status-${e(i.status)}">${e(i.status.replace('_', ' '))}</span>${i.statusReason ? `<br><span class="muted">${e(i.statusReason)}</span>` : ''}${
    i.status === 'needs_reauthorization'
      ? `<br><a class="reauthorize" href="${e(`${publicUrl}/oauth/reauthorize/${encodeURIComponent(i.id)}`)}">Re-authorization link</a>`
      : ''
  }${i.refreshFailures > 0 && i.status === 'active' ? `<br><span class="muted refresh-failing">${e(`${i.refreshFailures} refresh failure(s) in a row: ${i.lastError ?? ''}`)}</span>` : ''}`
}

function budget(i: InstallationView): string {
  const pct = i.dailyBudget > 0 ? (i.callsToday / i.dailyBudget) * 100 : 0
  return `${e(i.callsToday.toLocaleString('en-US'))} / ${e(i.dailyBudget.toLocaleString('en-US'))}${pct >= 1 ? ` <span class="muted">(${e(pct.toFixed(0))} %)</span>` : ''}${i.throttledToday ? `<br><span class="muted">${e(i.throttledToday)} × 429</span>` : ''}`
}

function queryString(q: Record<string, string | number | undefined>): string {
  const p = new URLSearchParams()
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== '') p.set(k, String(v))
  const s = p.toString()
  return s ? `?${s}` : ''
}

function option(value: string, label: string, selected: string | undefined): string {
  return `<option value="${e(value)}"${selected === value ? ' selected' : ''}>${e(label)}</option>`
}

/** The installations list with its filters, pager and charts. */
export function installationsPage(input: {
  result: InstallationListResult
  query: InstallationQuery
  publicUrl: string
  apiUrl: string
  clientId: string
  sandboxUrl?: string
  warnings: string[]
  charts: string
  chartsTitle: string
  nonce: string
  signedIn: boolean
}): string {
  const { result, query: q } = input
  const filtered = Boolean(q.search || q.status || q.kind || q.planId || q.cursor)
  const rows = result.items
    .map(
      (i) => `<tr data-installation-id="${e(i.id)}">
  <td class="wrapok">${nameLink(i)}</td>
  <td class="wrapok">${statusCell(i, input.publicUrl)}</td>
  <td>${time(i.expiresAt)}</td>
  <td>${budget(i)}</td>
  <td>${time(i.lastCallAt)}</td>
  <td>${e(KIND_LABEL[i.kind])}</td>
  <td><code>${e(i.locationId ?? '—')}</code><br><code class="muted">${e(i.companyId)}</code></td>
  <td class="hide-narrow">${e(i.planId ?? '—')}</td>
  <td class="hide-narrow">${time(i.lastRefreshAt)}</td>
</tr>`,
    )
    .join('\n')
  const table = result.items.length
    ? `<div class="wrap"><table id="installations"><caption class="muted" style="text-align:left;padding:.4rem .55rem">${e(result.total.toLocaleString('en-US'))}${result.total >= COUNT_MAX ? '+' : ''} installation${result.total === 1 ? '' : 's'}${filtered ? (result.total === 1 ? ' matches' : ' match') : ''}</caption><thead><tr><th scope="col">Name</th><th scope="col">Status</th><th scope="col">Token expires</th><th scope="col">Calls today / budget</th><th scope="col">Last call</th><th scope="col">Kind</th><th scope="col">Location · company</th><th scope="col" class="hide-narrow">Plan</th><th scope="col" class="hide-narrow">Last refresh</th></tr></thead><tbody>${rows}</tbody></table></div>`
    : filtered
      ? `<p id="no-match" class="muted">No installation matches these filters.</p>`
      : `<p id="no-installations" class="muted">No installations yet. Click Install to add one.</p>`
  const base = { search: q.search, status: q.status, kind: q.kind, plan: q.planId, limit: q.limit }
  const pager = `<div class="pager">${q.cursor ? `<a href="/${e(queryString(base))}">First page</a>` : ''}${result.next ? `<a id="next-page" rel="next" href="/${e(queryString({ ...base, cursor: result.next }))}">Next page</a>` : ''}</div>`
  return consoleLayout(
    'Installations',
    `<h1>Installations</h1>
<p class="muted">HighLevel app <code>${e(input.clientId)}</code> · API <code>${e(input.apiUrl)}</code>${input.sandboxUrl ? ` · <a href="${e(input.sandboxUrl)}/_sandbox/apps">sandbox</a>` : ''}</p>
${input.warnings.map((w) => `<div class="box warning" role="alert">${e(w)}</div>`).join('\n')}
<p><a class="button" id="install" href="/oauth/install">Install</a></p>
<form class="filters" method="get" action="/" role="search" aria-label="Filter installations">
  <label for="f-search">Name or id<input id="f-search" type="search" name="search" value="${e(q.search ?? '')}" placeholder="Acme or an id" maxlength="200"></label>
  <label for="f-status">Status<select id="f-status" name="status">${option('', 'any', q.status)}${option('active', 'active', q.status)}${option('suspended', 'suspended', q.status)}${option('needs_reauthorization', 'needs reauthorization', q.status)}${option('uninstalled', 'uninstalled', q.status)}</select></label>
  <label for="f-kind">Kind<select id="f-kind" name="kind">${option('', 'any', q.kind)}${option('agency', 'agency', q.kind)}${option('location', 'sub-account', q.kind)}${option('minted', 'minted from agency', q.kind)}</select></label>
  <label for="f-plan">Plan<input id="f-plan" name="plan" value="${e(q.planId ?? '')}" size="10" maxlength="200"></label>
  <button type="submit">Filter</button>
  <label style="flex-direction:row;gap:.3rem;align-items:center"><input type="checkbox" id="auto-refresh"> auto-refresh</label>
</form>
<div id="list">${table}${pager}</div>
<h2>${e(input.chartsTitle)}</h2>
${input.charts}`,
    { nonce: input.nonce, script: true, signedIn: input.signedIn },
  )
}

function csrfField(token: string): string {
  return `<input type="hidden" name="csrf" value="${e(token)}">`
}

/**
 * An action's button: a POST form with the CSRF token. The server answers it with a confirmation page
 * (what will happen, Confirm / Cancel); only the Confirm form (`confirm=yes`) acts.
 */
function actionForm(action: string, label: string, csrf: string, options: { id: string; danger?: boolean; confirm: string; back?: string }): string {
  return `<form method="post" action="${e(action)}">${csrfField(csrf)}${options.back ? `<input type="hidden" name="back" value="${e(options.back)}">` : ''}<button type="submit" id="${e(options.id)}"${options.danger ? ' class="danger"' : ''} title="${e(options.confirm)}">${e(label)}</button></form>`
}

/** The confirmation step of an action. */
export function confirmPage(input: { title: string; what: string; action: string; csrf: string; back: string; danger?: boolean; signedIn: boolean }): string {
  return consoleLayout(
    input.title,
    `<h1>${e(input.title)}</h1><div class="box ${input.danger ? 'error' : 'warning'}" role="alert"><p id="confirm-what">${e(input.what)}</p>
<div class="actions"><form method="post" action="${e(input.action)}">${csrfField(input.csrf)}<input type="hidden" name="confirm" value="yes"><input type="hidden" name="back" value="${e(input.back)}"><button type="submit" id="confirm"${input.danger ? ' class="danger"' : ''}>Confirm</button></form>
<a class="button" style="background:transparent;color:var(--link);border:1px solid var(--line)" id="cancel" href="${e(input.back)}">Cancel</a></div></div>`,
    { signedIn: input.signedIn },
  )
}

function timelineRow(r: AuditRecord): string {
  const d = r.detail as Record<string, unknown>
  const facts = Object.entries(d)
    .filter(([, v]) => v !== null && v !== undefined && typeof v !== 'object')
    .map(([k, v]) => `${k}: ${String(v)}`)
    .join(' · ')
  const bad = /fail|required|suspended/.test(r.action) || d.ok === false
  return `<tr data-action="${e(r.action)}"><td>${time(r.at)}</td><td class="${bad ? 'status-suspended' : ''}">${e(r.action)}</td><td class="wrapok muted">${e(facts)}</td></tr>`
}

function callRow(c: CallRecord): string {
  return `<tr><td>${time(new Date(c.at))}</td><td><code>${e(c.method)} ${e(c.path)}</code></td><td>${c.status || e(c.errorCode ?? 'no answer')}</td><td>${e(c.durationMs.toFixed(0))} ms</td><td><code>${e(c.traceId ?? '—')}</code></td></tr>`
}

function webhookRows(events: WebhookEventRecord[], csrf: string, back: string): string {
  return events
    .map(
      (w) => `<tr data-webhook-id="${e(w.webhookId)}"><td>${time(w.receivedAt)}</td><td>${e(w.type)}</td><td><code>${e(w.locationId ?? w.companyId ?? '—')}</code></td><td>verified</td><td class="status-${w.status === 'failed' ? 'suspended' : w.status === 'processed' ? 'active' : 'needs_reauthorization'}">${e(w.status)}</td><td>${e(w.attempts)}</td><td class="wrapok muted">${e(w.lastError ?? '')}</td>
<td>${actionForm(`/console/webhooks/${encodeURIComponent(w.webhookId)}/replay`, 'Redeliver', csrf, { id: `replay-${w.webhookId}`, confirm: 'Process this event again (a fresh attempt)', back })}</td></tr>`,
    )
    .join('\n')
}

const WEBHOOK_HEAD = `<thead><tr><th scope="col">Received</th><th scope="col">Type</th><th scope="col">Location / company</th><th scope="col">Signature</th><th scope="col">State</th><th scope="col">Attempts</th><th scope="col">Last error</th><th scope="col">Action</th></tr></thead>`

/** One installation. */
export function detailPage(input: { d: InstallationDetail; csrf: string; notice?: { ok: boolean; text: string }; signedIn: boolean; publicUrl: string }): string {
  const { d, csrf } = input
  const i = d.installation
  const title = i.name ?? i.locationId ?? i.companyId
  const b = d.budget
  const minted = d.minted.length
    ? `<div class="wrap"><table id="minted"><thead><tr><th scope="col">Location</th><th scope="col">Status</th><th scope="col">Token expires</th><th scope="col">Last call</th></tr></thead><tbody>${d.minted
        .map((m) => `<tr><td>${nameCell(m)}<br><code class="muted">${e(m.locationId ?? '')}</code></td><td>${statusCell(m, input.publicUrl)}</td><td>${time(m.expiresAt)}</td><td>${time(m.lastCallAt)}</td></tr>`)
        .join('')}</tbody></table></div>`
    : `<p class="muted">None.</p>`
  return consoleLayout(
    title,
    `<p><a href="/">← Installations</a></p>
<h1 id="title">${e(title)} <span class="muted">${e(KIND_LABEL[i.kind])}</span></h1>
${input.notice ? `<div id="notice" class="box ${input.notice.ok ? 'ok' : 'error'}" role="status">${e(input.notice.text)}</div>` : ''}
<div class="grid">
<section class="box" aria-labelledby="h-install"><h2 id="h-install" style="margin-top:0">Installation</h2><dl>
<dt>Status</dt><dd id="status">${statusCell(i, input.publicUrl)}</dd>
<dt>Id</dt><dd><code>${e(i.id)}</code></dd>
<dt>Location</dt><dd><code>${e(i.locationId ?? '—')}</code></dd>
<dt>Company</dt><dd><code>${e(i.companyId)}</code>${i.companyName ? ` (${e(i.companyName)})` : ''}</dd>
<dt>Plan</dt><dd>${e(i.planId ?? '—')}</dd>
<dt>Installed by</dt><dd><code>${e(i.userId ?? '—')}</code></dd>
<dt>Token expires</dt><dd id="expires">${time(i.expiresAt)}</dd>
<dt>Last refresh</dt><dd>${time(i.lastRefreshAt)}</dd>
<dt>Refresh token issued</dt><dd>${time(i.refreshTokenIssuedAt)}</dd>
<dt>Last call</dt><dd>${time(i.lastCallAt)}</dd>
<dt>Installed</dt><dd>${time(i.createdAt)}</dd>
</dl></section>
<section class="box" aria-labelledby="h-budget"><h2 id="h-budget" style="margin-top:0">Rate-limit budget now</h2><dl id="budget">
<dt>Burst (ours)</dt><dd>${e(b.burst.usedByThisProcess)} of ${e(b.burst.max)} per ${e(b.burst.windowMs / 1000)} s used by this process</dd>
<dt>Burst (HighLevel)</dt><dd>${b.burst.highLevelRemaining === null ? '—' : `${e(b.burst.highLevelRemaining)} left at the last answer`}</dd>
<dt>Daily (ours)</dt><dd>${e(b.daily.usedToday.toLocaleString('en-US'))} of ${e(b.daily.max.toLocaleString('en-US'))} today (UTC)</dd>
<dt>Daily (HighLevel)</dt><dd>${b.daily.highLevelRemaining === null ? '—' : `${e(b.daily.highLevelRemaining.toLocaleString('en-US'))} left at the last answer`}</dd>
</dl>
<h2>Scopes</h2><p id="scopes">${i.scopes.length ? i.scopes.map((s) => `<code>${e(s)}</code>`).join(' ') : '<span class="muted">none recorded</span>'}</p></section>
</div>
<h2>Actions</h2>
<div class="actions">
${actionForm(`/installations/${encodeURIComponent(i.id)}/refresh`, i.kind === 'minted' ? 'Mint a new token now' : 'Refresh now', csrf, { id: 'refresh-now', confirm: 'Refresh the token now' })}
${actionForm(`/installations/${encodeURIComponent(i.id)}/test-call`, i.locationId ? 'Test call GET /locations/{id}' : 'Test call GET /companies/{id}', csrf, { id: 'test-call', confirm: 'Send one call to HighLevel' })}
<a class="button" id="reauthorize" href="${e(d.reauthorizationUrl)}">Re-authorize (install link)</a>
${i.status !== 'uninstalled' ? actionForm(`/installations/${encodeURIComponent(i.id)}/uninstall`, 'Mark uninstalled and wipe tokens', csrf, { id: 'uninstall', danger: true, confirm: 'The tokens are deleted; the app stops working for this account until it is installed again' }) : ''}
</div>
<h2>Token timeline</h2>
${d.timeline.length ? `<div class="wrap"><table id="timeline"><thead><tr><th scope="col">When</th><th scope="col">What</th><th scope="col">Detail</th></tr></thead><tbody>${[...d.timeline].reverse().map(timelineRow).join('')}</tbody></table></div>` : '<p class="muted">Nothing recorded yet.</p>'}
${i.kind === 'agency' ? `<h2>Minted location tokens</h2>${minted}` : ''}
<h2>Last calls <span class="muted">(this process)</span></h2>
${d.calls.length ? `<div class="wrap"><table id="calls"><thead><tr><th scope="col">When</th><th scope="col">Call</th><th scope="col">Status</th><th scope="col">Duration</th><th scope="col">Trace id</th></tr></thead><tbody>${d.calls.map(callRow).join('')}</tbody></table></div>` : '<p class="muted">No calls since this process started.</p>'}
<h2>Webhooks</h2>
${d.webhooks.length ? `<div class="wrap"><table id="webhooks">${WEBHOOK_HEAD}<tbody>${webhookRows(d.webhooks, csrf, `/installations/${encodeURIComponent(i.id)}`)}</tbody></table></div>` : '<p class="muted">No stored webhook events.</p>'}`,
    { signedIn: input.signedIn },
  )
}

/** The webhook log with its filters. */
export function webhooksPage(input: { events: WebhookEventRecord[]; type?: string; status?: string; csrf: string; notice?: { ok: boolean; text: string }; charts: string; chartsTitle: string; signedIn: boolean }): string {
  return consoleLayout(
    'Webhooks',
    `<h1>Webhook log</h1>
${input.notice ? `<div id="notice" class="box ${input.notice.ok ? 'ok' : 'error'}" role="status">${e(input.notice.text)}</div>` : ''}
<p class="muted">Every stored event (verified on arrival; refused ones are never stored), newest first. Events are kept until their replay window has passed.</p>
<form class="filters" method="get" action="/console/webhooks" aria-label="Filter webhooks">
  <label for="w-type">Type<input id="w-type" name="type" value="${e(input.type ?? '')}" maxlength="100" placeholder="ContactCreate"></label>
  <label for="w-status">State<select id="w-status" name="status">${option('', 'any', input.status)}${option('pending', 'pending', input.status)}${option('processed', 'processed', input.status)}${option('failed', 'failed', input.status)}${option('waiting', 'waiting', input.status)}</select></label>
  <button type="submit">Filter</button>
</form>
${input.events.length ? `<div class="wrap"><table id="webhook-log">${WEBHOOK_HEAD}<tbody>${webhookRows(input.events, input.csrf, '/console/webhooks')}</tbody></table></div>` : '<p id="no-webhooks" class="muted">No webhook events stored.</p>'}
<h2>${e(input.chartsTitle)}</h2>
${input.charts}`,
    { signedIn: input.signedIn },
  )
}

/** The login form (production, when a password or API key is configured). */
export function loginPage(input: { failed: boolean }): string {
  return consoleLayout(
    'Sign in',
    `<h1>Sign in</h1>${input.failed ? '<div class="box error" role="alert" id="login-failed">Wrong password.</div>' : ''}
<form method="post" action="/login" class="box" style="max-width:24rem">
<p><label for="password">Operator password or connector API key</label><br><input id="password" name="password" type="password" autocomplete="current-password" required style="width:100%"></p>
<button type="submit">Sign in</button></form>`,
  )
}

// ---- charts (inline SVG) ----

const CLASS_COLOURS: Record<string, string> = { '2xx': 'var(--c2xx)', '3xx': 'var(--c3xx)', '4xx': 'var(--c4xx)', '429': 'var(--c429)', '5xx': 'var(--c5xx)', none: 'var(--cnone)' }
const PALETTE = ['#2e90fa', '#12b76a', '#f79009', '#ee46bc', '#7a5af8', '#d92d20', '#06aed4', '#98a2b3']

/**
 * A stacked bar chart of counts per bucket, as inline SVG with a text alternative (its totals per series).
 * Series with no count are left out of the legend.
 */
export function barChart(id: string, caption: string, s: ChartSeries, colours?: Record<string, string>): string {
  const W = 600
  const H = 160
  const left = 34
  const bottom = 18
  const n = Math.max(1, s.values.length)
  const totals = s.values.map((row) => row.reduce((a, b) => a + b, 0))
  const max = Math.max(1, ...totals)
  const bw = (W - left) / n
  const colour = (name: string, k: number) => colours?.[name] ?? PALETTE[k % PALETTE.length]!
  let bars = ''
  s.values.forEach((row, i) => {
    let y = H - bottom
    row.forEach((v, k) => {
      if (v <= 0) return
      const h = (v / max) * (H - bottom - 8)
      y -= h
      bars += `<rect x="${(left + i * bw + 0.5).toFixed(1)}" y="${y.toFixed(1)}" width="${Math.max(1, bw - 1).toFixed(1)}" height="${h.toFixed(1)}" fill="${colour(s.series[k]!, k)}"><title>${e(`${new Date(s.start + i * s.bucketMs).toISOString().slice(11, 16)} UTC · ${s.series[k]}: ${v}`)}</title></rect>`
    })
  })
  const sums = s.series.map((name, k) => [name, s.values.reduce((a, row) => a + (row[k] ?? 0), 0)] as const).filter(([, v]) => v > 0)
  const label = sums.length ? sums.map(([name, v]) => `${name}: ${v}`).join(', ') : 'nothing'
  const axis = `<line x1="${left}" y1="${H - bottom}" x2="${W}" y2="${H - bottom}" stroke="currentColor" stroke-opacity=".3"/><text x="${left - 4}" y="12" font-size="11" text-anchor="end" fill="currentColor">${max}</text><text x="${left - 4}" y="${H - bottom}" font-size="11" text-anchor="end" fill="currentColor">0</text>
<text x="${left}" y="${H - 4}" font-size="11" fill="currentColor">${e(new Date(s.start).toISOString().slice(11, 16))}</text><text x="${W}" y="${H - 4}" font-size="11" text-anchor="end" fill="currentColor">now (UTC)</text>`
  return `<figure id="${e(id)}" data-total="${totals.reduce((a, b) => a + b, 0)}"><figcaption>${e(caption)}</figcaption>
<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="${e(`${caption}: ${label}`)}">${axis}${bars}</svg>
<div class="legend">${sums.length ? sums.map(([name, v]) => `<span><span class="swatch" style="background:${colour(name, s.series.indexOf(name))}"></span>${e(name)} ${e(v)}</span>`).join('') : '<span>no data in this window</span>'}</div></figure>`
}

/** The three charts of a window. */
export function chartsBlock(c: { calls: ChartSeries; limits: ChartSeries; tokens: ChartSeries; webhooks: ChartSeries }, window: 'hour' | 'day', otherWindowHref: string): string {
  const per = window === 'hour' ? 'per minute' : 'per 30 min'
  return `<div class="charts">${barChart('chart-calls', `Calls to HighLevel ${per}, by status`, c.calls, CLASS_COLOURS)}${barChart('chart-limits', `Rate limit ${per}: calls queued (429s avoided) vs 429s received`, c.limits, { 'queued (429 avoided)': 'var(--c3xx)', '429 received': 'var(--c429)' })}${barChart('chart-tokens', `Token refreshes and mints ${per}, by outcome`, c.tokens)}${barChart('chart-webhooks', `Webhook events ${per}, by type`, c.webhooks)}</div>
<p class="muted"><a id="chart-window" href="${e(otherWindowHref)}">Show the last ${window === 'hour' ? 'day' : 'hour'}</a></p>`
}
