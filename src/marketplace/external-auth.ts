/**
 * External authentication (`api-docs/docs/oauth/ExternalAuthentication.md`): at install, HighLevel asks
 * the user for the app's own credential and calls the app's authentication endpoint to validate it.
 *
 * - API key / basic mode (verified against that page): HighLevel sends the user's fields (at most three,
 *   by their keys) plus `companyId` (the agency, `null` for a location install), `locationId` (the
 *   picked locations, or `null` when all were approved), `approveAllLocations` and `excludedLocations`
 *   — in the body for POST/PUT/PATCH, as query parameters for GET — with the headers the developer
 *   configured. Only 200, 201, 202 and 204 count as success.
 * - OAuth 2 mode: HighLevel runs the authorization-code flow with the third party itself and calls a
 *   "test API" with the access token; pointed at this route (`mode: 'oauth2'`), the token arrives as
 *   `Authorization: Bearer …` and the app's validator checks it. Which ids that call carries depends
 *   on the developer's configuration (the page shows none): add `locationId`/`companyId` parameters to
 *   have the token stored.
 *
 * A valid credential is stored in the vault (`vault.credentials`) encrypted like tokens — AES-256-GCM,
 * bound to the app and the location or agency — keyed by the agency when HighLevel names one, else by
 * each picked location. It is never logged, echoed or put in an error.
 *
 * @example
 * const externalAuth = {
 *   headers: { 'x-app-secret': process.env.AUTH_SECRET! },
 *   fields: z.object({ apiKey: z.string().min(1) }),
 *   validate: async ({ fields }) => (await myApi.checkKey(fields.apiKey)) ? true : { ok: false, message: 'Unknown API key' },
 * }
 * await registerMarketplaceRoutes(app, ghl, { externalAuth })
 */
import { z } from 'zod'
import { GhlError } from '../errors.js'
import type { Logger } from '../logger.js'
import type { Vault } from '../vault/types.js'
import type { CredentialDetails } from '../vault/marketplace-types.js'
import { describeIssues } from './billing/billing-shapes.js'
import { answerFromError, errorAnswer, type MarketplaceAnswer, type MarketplaceRequest } from './exchange.js'
import { StaticHeaders } from './static-headers.js'

/** The install the credential is for, as HighLevel describes it. */
export interface ExternalAuthContext {
  companyId: string | null
  locationIds: string[] | null
  approveAllLocations: boolean | null
  excludedLocations: string[] | null
}

/** A credential to validate. */
export type ExternalCredentialInput<F> = { kind: 'basic'; fields: F } | { kind: 'oauth2'; accessToken: string }

/** What a validator answers: `true`, or a refusal with a message for the installer. */
export type ValidationVerdict = true | false | { ok: false; message?: string }

/** Options of the external-authentication endpoint. */
export interface ExternalAuthOptions<F extends Record<string, string> = Record<string, string>> {
  /** `basic` (API key / basic fields, default) or `oauth2` (the test API of HighLevel's OAuth 2 mode). */
  mode?: 'basic' | 'oauth2'
  /** The static headers configured in HighLevel's authentication request (recommended; checked in constant time). */
  headers?: Record<string, string>
  /** Schema of the fields (basic mode); default: any string fields. */
  fields?: z.ZodType<F>
  /** The app's check of the credential. */
  validate(credential: ExternalCredentialInput<F>, context: ExternalAuthContext): ValidationVerdict | Promise<ValidationVerdict>
  /** Store a valid credential in the vault (default true). */
  store?: boolean
}

/** The keys HighLevel adds beside the user's fields. */
const RESERVED = new Set(['companyId', 'locationId', 'approveAllLocations', 'excludedLocations'])

const idList = z
  .union([z.array(z.string()), z.string(), z.null()])
  .optional()
  .transform((v) => (v === undefined || v === null ? null : (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim()).filter(Boolean)))
const flag = z
  .union([z.boolean(), z.enum(['true', 'false']), z.null()])
  .optional()
  .transform((v) => (v === undefined || v === null ? null : v === true || v === 'true'))

/** HighLevel's parameters of the authentication request (ExternalAuthentication.md, "External auth request parameters"). */
const requestContext = z.looseObject({
  companyId: z.union([z.string(), z.null()]).optional().transform((v) => (v ? v : null)),
  locationId: idList,
  approveAllLocations: flag,
  excludedLocations: idList,
})

/** A checked external-authentication request. */
export interface ParsedExternalAuth<F> {
  credential: ExternalCredentialInput<F>
  context: ExternalAuthContext
}

/**
 * Parses HighLevel's authentication request: GET reads the query, other methods the JSON body (the
 * page: "In the POST, PATCH, and PUT requests, the above fields would be sent as part of the body").
 * @throws GhlError `GHL_BAD_REQUEST` naming each problem (never a value).
 */
export function parseExternalAuth<F extends Record<string, string>>(options: ExternalAuthOptions<F>, request: MarketplaceRequest): ParsedExternalAuth<F> {
  const source = request.method.toUpperCase() === 'GET' ? normaliseQuery(request.query) : request.body ?? {}
  if (typeof source !== 'object' || source === null || Array.isArray(source)) throw new GhlError('GHL_BAD_REQUEST', 'Invalid external authentication: expected a JSON object')
  const ctx = requestContext.safeParse(source)
  if (!ctx.success) throw new GhlError('GHL_BAD_REQUEST', `Invalid external authentication: ${describeIssues(ctx.error)}`)
  const context: ExternalAuthContext = {
    companyId: ctx.data.companyId,
    locationIds: ctx.data.locationId,
    approveAllLocations: ctx.data.approveAllLocations,
    excludedLocations: ctx.data.excludedLocations,
  }
  if ((options.mode ?? 'basic') === 'oauth2') {
    const header = request.headers.authorization
    const m = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null
    if (!m) throw new GhlError('GHL_BAD_REQUEST', 'Invalid external authentication: expected the access token as "Authorization: Bearer <token>"')
    return { credential: { kind: 'oauth2', accessToken: m[1]! }, context }
  }
  const raw: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(source as Record<string, unknown>)) if (!RESERVED.has(k)) raw[k] = v
  const schema = options.fields ?? (z.record(z.string(), z.string()) as unknown as z.ZodType<F>)
  const fields = schema.safeParse(raw)
  if (!fields.success) throw new GhlError('GHL_BAD_REQUEST', `Invalid external authentication fields: ${describeIssues(fields.error)}`)
  if (Object.keys(fields.data).length === 0) throw new GhlError('GHL_BAD_REQUEST', 'Invalid external authentication: no credential fields were sent')
  return { credential: { kind: 'basic', fields: fields.data }, context }
}

function normaliseQuery(query: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(query ?? {})) {
    // `locationId[]=A&locationId[]=B` and repeated keys both mean a list.
    const key = k.endsWith('[]') ? k.slice(0, -2) : k
    out[key] = Array.isArray(v) && !['locationId', 'excludedLocations'].includes(key) ? v[0] : v
  }
  return out
}

/** What the endpoint needs from the connector. */
export interface ExternalAuthDeps {
  clientId: string
  vault: Pick<Vault, 'credentials'>
  logger: Logger
}

/** Options checked once: the static headers are parsed up front. */
export class ExternalAuthEndpoint<F extends Record<string, string> = Record<string, string>> {
  readonly #options: ExternalAuthOptions<F>
  readonly #headers: StaticHeaders | undefined

  /** @throws GhlError `GHL_CONFIG_INVALID` without a validate function, or for bad headers. */
  constructor(options: ExternalAuthOptions<F>) {
    if (typeof options?.validate !== 'function') throw new GhlError('GHL_CONFIG_INVALID', 'Invalid externalAuth: expected a validate function')
    if (options.mode !== undefined && options.mode !== 'basic' && options.mode !== 'oauth2') {
      throw new GhlError('GHL_CONFIG_INVALID', `Invalid externalAuth: expected mode to be basic or oauth2, got ${JSON.stringify(String(options.mode))}`)
    }
    this.#options = options
    this.#headers = options.headers ? new StaticHeaders(options.headers, 'externalAuth.headers') : undefined
  }

  /**
   * Handles HighLevel's call: headers (401) → parse (400) → the app's validator → 200 `{success: true}`
   * and the credential stored, or 401 `GHL_EXTERNAL_AUTH_REJECTED` with the validator's message.
   */
  async handle(deps: ExternalAuthDeps, request: MarketplaceRequest): Promise<MarketplaceAnswer> {
    if (this.#headers && !this.#headers.matches(request.headers)) {
      return errorAnswer('GHL_MARKETPLACE_UNAUTHORIZED', 'The authentication call does not carry the headers configured for the app’s external authentication')
    }
    let parsed: ParsedExternalAuth<F>
    try {
      parsed = parseExternalAuth(this.#options, request)
    } catch (err) {
      if (err instanceof GhlError) return answerFromError(err)
      throw err
    }
    let verdict: ValidationVerdict
    try {
      verdict = await this.#options.validate(parsed.credential, parsed.context)
    } catch (err) {
      if (err instanceof GhlError) return answerFromError(err)
      deps.logger.error({ err: err instanceof Error ? { name: err.name } : undefined, companyId: parsed.context.companyId }, 'external authentication: the validator threw')
      return errorAnswer('GHL_INTERNAL', 'The credential could not be checked; try again')
    }
    if (verdict !== true) {
      const message = typeof verdict === 'object' && verdict && typeof verdict.message === 'string' ? verdict.message.slice(0, 300) : 'The credential was not accepted'
      deps.logger.info({ companyId: parsed.context.companyId, locationIds: parsed.context.locationIds }, 'external authentication: credential refused')
      return errorAnswer('GHL_EXTERNAL_AUTH_REJECTED', message)
    }
    if (this.#options.store ?? true) await storeCredential(deps, parsed)
    return { status: 200, body: { success: true } }
  }
}

/**
 * Stores a validated credential: under the agency when HighLevel named one (with the locations it
 * covers, not secret), else under each picked location. Without either there is nothing to key it
 * by: it is not stored (logged).
 */
export async function storeCredential<F extends Record<string, string>>(deps: ExternalAuthDeps, parsed: ParsedExternalAuth<F>): Promise<number> {
  const { context, credential } = parsed
  const secret: Record<string, string> = credential.kind === 'oauth2' ? { accessToken: credential.accessToken } : { ...credential.fields }
  const details: CredentialDetails = {
    locationIds: context.locationIds,
    approveAllLocations: context.approveAllLocations,
    excludedLocations: context.excludedLocations,
  }
  if (context.companyId) {
    await deps.vault.credentials.put({ clientId: deps.clientId, companyId: context.companyId, locationId: null, kind: credential.kind, secret, details })
    return 1
  }
  const locations = context.locationIds ?? []
  for (const locationId of locations) {
    await deps.vault.credentials.put({ clientId: deps.clientId, companyId: null, locationId, kind: credential.kind, secret, details })
  }
  if (locations.length === 0) deps.logger.warn({}, 'external authentication: a valid credential named no location or agency, so it was not stored')
  return locations.length
}

/**
 * The third-party credential that applies to a location: its own, else its agency's when that one
 * covers it (all locations approved and this one not excluded, or this one picked).
 */
export async function credentialForLocation(
  deps: { clientId: string; vault: Pick<Vault, 'credentials' | 'installations'> },
  locationId: string,
): Promise<import('../vault/marketplace-types.js').ExternalCredential | undefined> {
  const own = await deps.vault.credentials.get(deps.clientId, { locationId })
  if (own) return own
  const installation = await deps.vault.installations.findByLocation(deps.clientId, locationId)
  if (!installation) return undefined
  const agency = await deps.vault.credentials.get(deps.clientId, { companyId: installation.companyId })
  if (!agency) return undefined
  const d = agency.details
  const covered = d.approveAllLocations === true ? !(d.excludedLocations ?? []).includes(locationId) : d.locationIds == null || d.locationIds.includes(locationId)
  return covered ? agency : undefined
}
