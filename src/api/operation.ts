/**
 * HighLevel operations as the client uses them: the generated table rows plus what each row implies —
 * which tokens may call it, and its path template split for building URLs — and the two checks made
 * before a typed call reaches HighLevel (token kind, scopes).
 *
 * Token kinds follow each file's `components.securitySchemes` (FACTS.md "Calls"):
 * | scheme | location client | company client | Private Integration Token |
 * |---|---|---|---|
 * | `Location-Access` | yes | — | yes |
 * | `Location-Access-Only` | yes | — | — |
 * | `Agency-Access` | — | yes | yes |
 * | `Agency-Access-Only` | — | yes | — |
 * | `bearer` | yes | — | yes |
 * An operation accepts the union of its schemes. `bearer` is described in 40 of the 41 files as "the
 * sub-account token or a sub-account Private Integration Token", i.e. as `Location-Access` (saas-api's
 * differing description is used by none of its operations). An operation that declares no security is
 * not checked. A PIT's kind (sub-account or agency) and scopes are unknown to the connector, so a
 * `withToken()` client is only refused for operations no PIT may call (every scheme `…-Only`).
 *
 * Scopes: an operation lists at most one scope per scheme, the same for each scheme; any listed scope
 * suffices. An operation that lists none (README counts them) is not checked, nor is a grant whose scopes are
 * unknown (a PIT) or not recorded (an empty list).
 */
import { GhlError, ScopeMissingError } from '../errors.js'
import type { AccessGrant, Target } from '../tokens/types.js'
import { OPERATIONS, V3_OPERATIONS } from './generated/operations.js'
import type { HttpMethod, OperationSpec } from './types.js'

/** Which callers an operation accepts. */
export interface TokenKinds {
  /** A sub-account (location) token: `ghl.location(id)`. */
  readonly location: boolean
  /** An agency (company) token: `ghl.company(id)`. */
  readonly company: boolean
  /** A Private Integration Token: `ghl.withToken(pit, id)`. */
  readonly pit: boolean
}

/** A table row with what it implies. Frozen; one object per operation for the life of the process. */
export interface ApiOperation extends OperationSpec {
  /** `undefined` when the operation declares no security: no token-kind check. */
  readonly tokenKinds: TokenKinds | undefined
  /** `contacts.getContact`: how errors and warnings name it. */
  readonly label: string
  /** The template split at its parameters: literal, name, literal, name, …, literal. */
  readonly template: readonly string[]
}

const LOCATION_SCHEMES: ReadonlySet<string> = new Set(['Location-Access', 'Location-Access-Only', 'bearer'])
const COMPANY_SCHEMES: ReadonlySet<string> = new Set(['Agency-Access', 'Agency-Access-Only'])
const PIT_SCHEMES: ReadonlySet<string> = new Set(['Location-Access', 'Agency-Access', 'bearer'])

/** The token kinds a list of security schemes accepts (see the file comment); `undefined` for none. */
export function tokenKindsOf(security: OperationSpec['security']): TokenKinds | undefined {
  if (security.length === 0) return undefined
  return Object.freeze({
    location: security.some((s) => LOCATION_SCHEMES.has(s)),
    company: security.some((s) => COMPANY_SCHEMES.has(s)),
    pit: security.some((s) => PIT_SCHEMES.has(s)),
  })
}

function compile(spec: OperationSpec): ApiOperation {
  const namespace = spec.service.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase())
  return Object.freeze({
    ...spec,
    tokenKinds: tokenKindsOf(spec.security),
    label: `${namespace}.${spec.name}`,
    template: Object.freeze(spec.path.split(/\{([^}]+)\}/)),
  })
}

/** Every v2 operation, compiled once. */
export const API_OPERATIONS: readonly ApiOperation[] = Object.freeze(OPERATIONS.map(compile))

/** Every operation that declares `Version: v3`, compiled once (table only: no types). */
export const API_V3_OPERATIONS: readonly ApiOperation[] = Object.freeze(V3_OPERATIONS.map(compile))

/** v2 operations by method, then by path template exactly as the spec spells it (the typed calls' lookup). */
export const OPERATIONS_BY_TEMPLATE: Readonly<Record<HttpMethod, ReadonlyMap<string, ApiOperation>>> = (() => {
  const by: Record<HttpMethod, Map<string, ApiOperation>> = { GET: new Map(), POST: new Map(), PUT: new Map(), PATCH: new Map(), DELETE: new Map() }
  for (const op of API_OPERATIONS) by[op.method].set(op.path, op)
  return Object.freeze(by)
})()

/** v2 operations by namespace (`contacts`) and method name (`getContact`). */
export const OPERATIONS_BY_NAME: ReadonlyMap<string, ReadonlyMap<string, ApiOperation>> = (() => {
  const by = new Map<string, Map<string, ApiOperation>>()
  for (const op of API_OPERATIONS) {
    const namespace = op.label.slice(0, op.label.indexOf('.'))
    let names = by.get(namespace)
    if (!names) by.set(namespace, (names = new Map()))
    names.set(op.name, op)
  }
  return by
})()

function describe(op: ApiOperation): string {
  return `${op.label} (${op.method} ${op.path})`
}

/**
 * Refuses a call the target's token cannot make (see the file comment), before any token is fetched
 * or request sent: GhlError `GHL_WRONG_TOKEN_KIND`, saying which client to use.
 */
export function assertTokenKind(op: ApiOperation, target: Target): void {
  const kinds = op.tokenKinds
  if (kinds === undefined) return
  if (target.kind === 'location') {
    if (kinds.location) return
    throw new GhlError('GHL_WRONG_TOKEN_KIND', `${describe(op)} takes an agency (company) token: call it through ghl.company(companyId), not ghl.location(locationId)`)
  }
  if (target.kind === 'company') {
    if (kinds.company) return
    throw new GhlError('GHL_WRONG_TOKEN_KIND', `${describe(op)} takes a sub-account (location) token: call it through ghl.location(locationId), not ghl.company(companyId)`)
  }
  if (kinds.pit) return
  const use = kinds.location ? 'ghl.location(locationId)' : 'ghl.company(companyId)'
  throw new GhlError('GHL_WRONG_TOKEN_KIND', `${describe(op)} takes an OAuth access token, not a Private Integration Token: call it through ${use}`)
}

/**
 * Refuses a call whose operation needs a scope the installation was not granted: ScopeMissingError
 * (`GHL_SCOPE_MISSING`, 403). Skipped when the operation lists no scope or the grant's scopes are
 * unknown (a PIT).
 */
export function assertScopes(op: ApiOperation, grant: AccessGrant): void {
  const granted = grant.scopes
  const needed = op.scopes
  // An empty list is "not recorded" rather than "nothing granted": HighLevel grants an app at least one scope.
  if (granted === undefined || granted.length === 0 || needed.length === 0) return
  for (let i = 0; i < needed.length; i++) if (granted.includes(needed[i]!)) return
  const scopes = needed.join(' or ')
  const who = grant.installationId ? `installation ${grant.installationId}` : 'this token'
  throw new ScopeMissingError(
    op.operationId,
    needed,
    granted,
    `${describe(op)} needs the scope ${scopes}, which ${who} was not granted (granted: ${granted.join(' ')}). ` +
      `Add ${needed[0]} to GHL_SCOPES (and to the app's scopes in the Marketplace) and install the app again.`,
  )
}

/** Fills a template's parameters (URL-encoded): `/contacts/{contactId}` + `{contactId: 'a b'}` → `/contacts/a%20b`. */
export function fillPath(op: ApiOperation, values: Record<string, unknown> | undefined): string {
  const t = op.template
  if (t.length === 1) return t[0]!
  let out = t[0]!
  for (let i = 1; i < t.length; i += 2) {
    const v = values?.[t[i]!]
    if ((typeof v !== 'string' && typeof v !== 'number') || v === '') {
      throw new GhlError('GHL_BAD_REQUEST', `${describe(op)} needs params.path.${t[i]} (a non-empty string), got ${v === '' ? 'an empty string' : typeof v}`)
    }
    out += encodeURIComponent(v) + t[i + 1]!
  }
  return out
}
