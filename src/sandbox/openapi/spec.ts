/**
 * HighLevel's v2 operations as the sandbox knows them: the compact artifact `spec.json` (compiled by
 * `scripts/generate-sandbox-spec.ts` from HighLevel's OpenAPI files), loaded once per process on
 * first use, and a router from a request's method and raw path to its operation.
 */
import { readFileSync } from 'node:fs'

/** A JSON Schema as the artifact holds it (descriptions and examples stripped). */
export type Schema = boolean | { [keyword: string]: unknown }

/** Token kinds of HighLevel's `securitySchemes`. */
export type SecurityScheme = 'bearer' | 'Location-Access' | 'Location-Access-Only' | 'Agency-Access' | 'Agency-Access-Only'

/** One v2 operation. */
export interface Operation {
  /** `<service>/<operationId>` (operationIds repeat between services, e.g. `create-custom-field`). */
  id: string
  /** The OpenAPI file it comes from, e.g. `contacts`. */
  service: string
  operationId: string
  method: string
  /** Path template, e.g. `/contacts/{contactId}`. */
  path: string
  /** Values the operation's `Version` parameter allows; empty when it declares none. */
  versions: string[]
  /** Alternatives, any one of which admits the request; empty when the operation declares none. */
  security: Array<{ scheme: SecurityScheme; scopes: string[] }>
  params: Array<{ name: string; in: 'path' | 'query' | 'header'; required: boolean; schema: Schema }>
  body: { contentTypes: string[]; required: boolean; schema: Schema } | null
  /** The documented success answer; `schema` null when HighLevel documents no body. */
  response: { status: number; contentType: string | null; schema: Schema | null }
}

/** The artifact. */
export interface ApiSpec {
  version: 1
  operations: Operation[]
  /** Component schemas by `<service>.<Name>`, referenced as `hl#/definitions/<service>.<Name>`. */
  definitions: Record<string, Schema>
  /** Webhook event schemas by event page name (`ContactCreate`, …). */
  webhooks: Record<string, Schema>
}

let cached: ApiSpec | undefined

/**
 * The artifact, parsed once per process. `$ref`s are rewritten to the id under which the
 * definitions are registered with the validator (`hl`).
 */
export function loadSpec(): ApiSpec {
  if (!cached) {
    const text = readFileSync(new URL('./spec.json', import.meta.url), 'utf8')
    cached = JSON.parse(text.replaceAll('"$ref":"#/definitions/', '"$ref":"hl#/definitions/')) as ApiSpec
  }
  return cached
}

interface Route {
  op: Operation
  /** Static segment text, or null for a `{param}` segment. */
  segments: Array<string | null>
  names: Array<string | null>
}

/** A matched operation with its decoded path parameters. */
export interface RouteMatch {
  op: Operation
  params: Record<string, string>
}

/**
 * Finds the operation of a request. Static segments win over parameters, position by position from
 * the left (as HighLevel's router does: `/contacts/search/duplicate` is not `/contacts/{id}/…`).
 * Each segment of the raw path is percent-decoded on its own, so `%2F` stays inside one parameter.
 */
export class OperationRouter {
  readonly #byMethod = new Map<string, Route[]>()

  constructor(operations: readonly Operation[]) {
    for (const op of operations) {
      const parts = op.path.split('/').slice(1)
      const route: Route = {
        op,
        segments: parts.map((p) => (/^\{.+\}$/.test(p) ? null : p)),
        names: parts.map((p) => (/^\{(.+)\}$/.exec(p)?.[1] ?? null)),
      }
      const list = this.#byMethod.get(op.method) ?? []
      list.push(route)
      this.#byMethod.set(op.method, list)
    }
  }

  /** The operation for `method` and the raw (undecoded) path, or undefined. */
  match(method: string, rawPath: string): RouteMatch | undefined {
    const routes = this.#byMethod.get(method.toUpperCase())
    if (!routes) return undefined
    const parts = rawPath.split('/').slice(1)
    let best: Route | undefined
    for (const route of routes) {
      if (route.segments.length !== parts.length) continue
      let ok = true
      for (let i = 0; i < parts.length && ok; i++) {
        const s = route.segments[i]
        if (s !== null && s !== parts[i]) ok = false
        else if (s === null && parts[i] === '') ok = false
      }
      if (!ok) continue
      if (!best || moreSpecific(route, best)) best = route
    }
    if (!best) return undefined
    const params: Record<string, string> = {}
    best.names.forEach((name, i) => {
      if (name === null) return
      try {
        params[name] = decodeURIComponent(parts[i]!)
      } catch {
        params[name] = parts[i]!
      }
    })
    return { op: best.op, params }
  }
}

function moreSpecific(a: Route, b: Route): boolean {
  for (let i = 0; i < a.segments.length; i++) {
    const sa = a.segments[i] !== null
    const sb = b.segments[i] !== null
    if (sa !== sb) return sa
  }
  return false
}
