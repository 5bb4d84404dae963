/**
 * Server-rendered HTML for the connector's own pages. Every interpolated value goes through
 * {@link escapeHtml}; no page ever receives a token (the data passed in are summaries).
 */
import type { InstallationSummary } from '../vault/types.js'

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ESCAPES[c]!)
}

const STYLE = `
  body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #1d2430 }
  h1 { font-size: 1.4rem } h2 { font-size: 1.1rem; margin-top: 2rem }
  a.button, button { display: inline-block; background: #155eef; color: #fff; padding: .55rem 1.1rem; border-radius: 6px; text-decoration: none; border: 0; font-size: 1rem; cursor: pointer }
  table { border-collapse: collapse; width: 100%; font-size: .9rem } th, td { text-align: left; padding: .4rem .5rem; border-bottom: 1px solid #e3e7ee; vertical-align: top }
  th { background: #f5f7fa } code { font-size: .85rem }
  .status-active { color: #067647 } .status-needs_reauthorization { color: #b54708 } .status-uninstalled { color: #667085 } .status-suspended { color: #b42318 }
  .warning { border-color: #fec84b; background: #fffaeb }
  .box { padding: 1rem 1.2rem; border-radius: 8px; border: 1px solid #e3e7ee; margin: 1rem 0 }
  .error { border-color: #fda29b; background: #fef3f2 } .ok { border-color: #75e0a7; background: #ecfdf3 }
  .muted { color: #667085; font-size: .85rem }`

/** The page frame. */
export function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body>${body}</body></html>`
}

/** After a successful install. */
export function installedPage(i: InstallationSummary): string {
  const what = i.locationId ? `sub-account <code>${escapeHtml(i.locationId)}</code>` : `agency <code>${escapeHtml(i.companyId)}</code>`
  return layout(
    'Installed',
    `<h1>Installed</h1><div class="box ok" id="result">The app is installed for ${what}.</div>
<p><a href="/">Back to installations</a></p>`,
  )
}

/**
 * An error page (a failed install by default), with the reference id the operator finds in the log.
 * `next` is the way on beside "Back" (default: try the installation again).
 */
export function errorPage(input: { title: string; message: string; reference: string; code: string; next?: { href: string; label: string } }): string {
  const next = input.next ?? { href: '/oauth/install', label: 'Try the installation again' }
  return layout(
    input.title,
    `<h1>${escapeHtml(input.title)}</h1>
<div class="box error" id="error" data-code="${escapeHtml(input.code)}"><p>${escapeHtml(input.message)}</p>
<p class="muted">Reference: <code id="reference">${escapeHtml(input.reference)}</code> (error ${escapeHtml(input.code)})</p></div>
<p><a href="/">Back</a> · <a href="${escapeHtml(next.href)}">${escapeHtml(next.label)}</a></p>`,
  )
}
