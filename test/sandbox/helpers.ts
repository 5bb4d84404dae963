/**
 * Small HTTP helpers for the sandbox tests (global fetch as the client, real HTTP).
 */
import { createServer } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import type { Sandbox } from '../../src/sandbox/index.js'

/** An answer: status, headers and the parsed JSON body (or the text when not JSON). */
export interface Answer<T = any> {
  status: number
  headers: Headers
  body: T
  text: string
}

/** Sends a request and reads the whole answer. */
export async function call<T = any>(url: string, init: RequestInit = {}): Promise<Answer<T>> {
  const res = await fetch(url, { redirect: 'manual', ...init })
  const text = await res.text()
  let body: unknown = text
  try {
    body = JSON.parse(text)
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, headers: res.headers, body: body as T, text }
}

/** POST with a JSON body. */
export function postJson<T = any>(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer<T>> {
  return call<T>(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
}

/** POST with an x-www-form-urlencoded body. */
export function postForm<T = any>(url: string, body: Record<string, string>, headers: Record<string, string> = {}): Promise<Answer<T>> {
  return call<T>(url, { method: 'POST', headers, body: new URLSearchParams(body) })
}

/** GET with a Bearer token and (by default) the Version header. */
export function getApi<T = any>(url: string, token: string | undefined, version: string | null = '2021-07-28'): Promise<Answer<T>> {
  const headers: Record<string, string> = {}
  if (token !== undefined) headers.authorization = `Bearer ${token}`
  if (version !== null) headers.version = version
  return call<T>(url, { headers })
}

/** Runs `/_sandbox/authorize` and returns the code (throws on failure). */
export async function authorize(sb: Sandbox, decision: Record<string, unknown>, scope = sb.app.scopes.join(' ')): Promise<string> {
  const res = await postJson<{ redirect: string }>(`${sb.url}/_sandbox/authorize`, {
    clientId: sb.app.clientId,
    redirectUri: sb.app.redirectUris[0],
    scope,
    ...decision,
  })
  if (res.status !== 200) throw new Error(`authorize failed: ${res.status} ${res.text}`)
  const code = new URL(res.body.redirect).searchParams.get('code')
  if (!code) throw new Error(`no code in ${res.body.redirect}`)
  return code
}

/** Exchanges a code at /oauth/token (form body). */
export function exchange(sb: Sandbox, code: string, extra: Record<string, string> = {}): Promise<Answer> {
  return postForm(`${sb.url}/oauth/token`, {
    client_id: sb.app.clientId,
    client_secret: sb.app.clientSecret,
    grant_type: 'authorization_code',
    code,
    redirect_uri: sb.app.redirectUris[0]!,
    ...extra,
  })
}

/** Refreshes at /oauth/token (form body). */
export function refresh(sb: Sandbox, refreshToken: string, extra: Record<string, string> = {}): Promise<Answer> {
  return postForm(`${sb.url}/oauth/token`, {
    client_id: sb.app.clientId,
    client_secret: sb.app.clientSecret,
    grant_type: 'refresh_token',
    refresh_token: refreshToken,
    ...extra,
  })
}

/** Installs on a location and exchanges the code; returns the token answer body. */
export async function installLocation(sb: Sandbox, locationId: string, scope?: string): Promise<any> {
  const code = await authorize(sb, { locationId, webhookTiming: 'none' }, scope)
  const res = await exchange(sb, code)
  if (res.status !== 200) throw new Error(`exchange failed: ${res.status} ${res.text}`)
  return res.body
}

/** Installs on the agency and exchanges the code; returns the token answer body. */
export async function installAgency(sb: Sandbox, decision: Record<string, unknown> = {}): Promise<any> {
  const code = await authorize(sb, { companyId: sb.companies[0]!.companyId, webhookTiming: 'none', ...decision })
  const res = await exchange(sb, code)
  if (res.status !== 200) throw new Error(`exchange failed: ${res.status} ${res.text}`)
  return res.body
}

/** Issued credentials as the sandbox lists them. */
export async function tokens(sb: Sandbox): Promise<Array<{ type: string; value: string; state: string; locationId: string | null }>> {
  return (await call(`${sb.url}/_sandbox/tokens`)).body
}

/** Changes settings with `PUT /_sandbox/settings` (throws unless 200). */
export async function putSettings(sb: Sandbox, change: Record<string, unknown>): Promise<any> {
  const res = await call(`${sb.url}/_sandbox/settings`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(change) })
  if (res.status !== 200) throw new Error(`settings failed: ${res.status} ${res.text}`)
  return res.body
}

/** Webhook deliveries the sandbox recorded (`GET /_sandbox/webhooks`), payloads included. */
export async function deliveries(sb: Sandbox): Promise<Array<{ webhookId: string; type: string; status: string; payload: Record<string, any> }>> {
  return (await call(`${sb.url}/_sandbox/webhooks`)).body
}

/** A webhook received by {@link startReceiver}. */
export interface ReceivedWebhook {
  body: Buffer
  headers: Record<string, string | string[] | undefined>
}

/** A real HTTP server that records every webhook POSTed to it and answers 200. */
export async function startReceiver(): Promise<{ url: string; received: ReceivedWebhook[]; close: () => Promise<void> }> {
  const received: ReceivedWebhook[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      received.push({ body: Buffer.concat(chunks), headers: req.headers })
      res.end()
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/webhooks`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
