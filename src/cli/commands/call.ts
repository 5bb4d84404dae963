/**
 * `ghl-connect call TARGET METHOD PATH`: one HighLevel API call through the vault and the client, as
 * the library makes it (token from the vault, refreshed or minted when needed, rate limits, retries).
 */
import { readFileSync } from 'node:fs'
import { GhlError, HighLevelApiError } from '../../errors.js'
import type { ApiResponse, QueryValue, RequestOptions } from '../../client/index.js'
import { defineCommand, expectPositionals, UsageError } from '../command.js'
import { print, printError, printJson } from '../output.js'

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const

export const callCommand = defineCommand({
  name: 'call',
  summary: 'Call the HighLevel API for a location (or, with --company, an agency)',
  help: `Usage: ghl-connect call LOCATION_ID METHOD PATH [--query KEY=VALUE]… [--body JSON | --body @FILE]
       ghl-connect call COMPANY_ID METHOD PATH --company […]

Makes one API call the way the library does: the token comes from the vault (refreshed, or minted from
the agency's, when needed), under the rate limits, with safe retries. Prints "HTTP <status>" on stderr
and HighLevel's JSON body on stdout; on an error, the error code and message (and HighLevel's body).
Never prints a token.

  METHOD           GET, POST, PUT, PATCH or DELETE
  PATH             relative to GHL_API_URL, e.g. /contacts/

Options:
  --query KEY=VALUE   a query parameter (repeat for more; a repeated key sends several values)
  --body JSON         a JSON request body, or @FILE to read it from a file
  --company           the id is a company (agency installation) rather than a location

Needs the full configuration of the server (GHL_CLIENT_ID, GHL_CLIENT_SECRET, GHL_ENCRYPTION_KEY, …).

Examples:
  ghl-connect call LOC_ID GET /contacts/ --query locationId=LOC_ID --query limit=5
  ghl-connect call LOC_ID POST /contacts/ --body '{"locationId":"LOC_ID","email":"ann@example.com"}'
  ghl-connect call COMPANY_ID GET /oauth/installedLocations --company --query companyId=COMPANY_ID --query appId=APP_ID`,
  options: { query: { type: 'string', multiple: true }, body: { type: 'string' }, company: { type: 'boolean' } },
  async run({ values, positionals }) {
    expectPositionals('call', positionals, 3, 3, positionals.length === 0 ? 'LOCATION_ID, METHOD and PATH' : positionals.length === 1 ? 'METHOD and PATH' : 'PATH')
    const [target, rawMethod, path] = positionals as [string, string, string]
    const method = rawMethod.toUpperCase()
    if (!(METHODS as readonly string[]).includes(method)) throw new UsageError(`METHOD: expected one of ${METHODS.join(', ')}, got ${JSON.stringify(rawMethod)}`, 'call')
    if (!path.startsWith('/')) throw new UsageError(`PATH: expected a path starting with "/", got ${JSON.stringify(path)}`, 'call')
    const options: RequestOptions = { query: parseQuery(values.query ?? []) }
    if (values.body !== undefined) options.body = parseBody(values.body)

    const { humanLogger } = await import('../cli-logger.js')
    const { openConnector } = await import('../open.js')
    const connector = await openConnector(await humanLogger(process.env.LOG_LEVEL ?? 'warn', 2))
    try {
      const client = values.company ? connector.company(target) : connector.location(target)
      const res = (await client.request(method, path, options)) as ApiResponse
      printError(`HTTP ${res.status}${res.traceId ? ` (trace id ${res.traceId})` : ''}`)
      printBody(res.data)
      return 0
    } catch (err) {
      if (err instanceof HighLevelApiError) {
        printError(`HTTP ${err.upstreamStatus}${err.traceId ? ` (trace id ${err.traceId})` : ''}`, `${err.code}: ${err.message}`)
        printBody(err.body)
        return 1
      }
      if (err instanceof GhlError) {
        printError(`${err.code}: ${err.message}`)
        return 1
      }
      throw err
    } finally {
      await connector.close()
    }
  },
})

/** HighLevel's answer: JSON pretty-printed, text as it came, nothing for an empty body. */
function printBody(body: unknown): void {
  if (body === undefined) return
  if (typeof body === 'string') print(body)
  else printJson(body)
}

/** `k=v` pairs; a repeated key becomes an array (`a=1&a=2`). */
function parseQuery(pairs: readonly string[]): Record<string, QueryValue> {
  const query: Record<string, QueryValue> = {}
  for (const pair of pairs) {
    const eq = pair.indexOf('=')
    if (eq <= 0) throw new UsageError(`--query: expected KEY=VALUE, got ${JSON.stringify(pair)}`, 'call')
    const key = pair.slice(0, eq)
    const value = pair.slice(eq + 1)
    const existing = query[key]
    query[key] = existing === undefined ? value : Array.isArray(existing) ? [...existing, value] : [String(existing), value]
  }
  return query
}

function parseBody(raw: string): unknown {
  let text = raw
  if (raw.startsWith('@')) {
    try {
      text = readFileSync(raw.slice(1), 'utf8')
    } catch (err) {
      throw new UsageError(`--body: cannot read ${raw.slice(1)} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, 'call')
    }
  }
  try {
    return JSON.parse(text) as unknown
  } catch (err) {
    throw new UsageError(`--body: expected JSON, got ${JSON.stringify(text.slice(0, 60))} (${(err as Error).message})`, 'call')
  }
}
