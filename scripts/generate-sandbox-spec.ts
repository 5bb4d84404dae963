/**
 * Compiles HighLevel's OpenAPI files (`../shared/reference/highlevel/api-docs/apps/*.json`) and the
 * webhook event pages (`docs/webhook events/*.md`) into the sandbox's own compact artifact,
 * `src/sandbox/openapi/spec.json`: for every v2 operation its method, path template, `Version`,
 * security alternatives (token kind + scopes), parameters, request body schema and 2xx response
 * schema; the component schemas they reach, in one definitions map; and each webhook event's schema.
 *
 * Descriptions, summaries, examples and titles are dropped (HighLevel's prose stays in its docs).
 * A few spec quirks are normalised so a JSON Schema validator takes every schema as written: OpenAPI
 * `nullable` becomes a JSON Schema type union, `type: "any"` and formats no validator knows
 * (`binary`) are dropped, enum values of the wrong type and repeated enum values are dropped, and the
 * few plain mistakes listed in ERRATA are corrected. Nothing else is changed.
 *
 * The sandbox reads only the artifact (it runs from the npm package, without the docs). Run
 * `npm run generate:sandbox` after the docs change; test/sandbox/spec-artifact.test.ts fails when
 * the committed artifact is stale.
 *
 * Usage: `node --import tsx scripts/generate-sandbox-spec.ts [--docs <api-docs dir>] [--check]`
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Where the docs live relative to the repository (a sibling checkout of the shared reference). */
export const DEFAULT_DOCS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../shared/reference/highlevel/api-docs')
/** The committed artifact. */
export const ARTIFACT_PATH = resolve(dirname(fileURLToPath(import.meta.url)), '../src/sandbox/openapi/spec.json')

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
type JsonObject = { [key: string]: Json }

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const
/** Schema keywords the artifact keeps; everything else (description, example, title, …) is dropped. */
const KEEP = new Set([
  'type', 'properties', 'required', 'items', 'enum', 'allOf', 'oneOf', 'anyOf', 'not', 'format',
  'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minLength', 'maxLength', 'pattern',
  'minItems', 'maxItems', 'uniqueItems', 'additionalProperties', '$ref', 'nullable', 'const',
])
/**
 * Corrections of plain mistakes in HighLevel's docs, applied to a component schema after cleaning.
 * Each names the schema, the property path and the corrected schema, with the reason. Keep it short.
 */
const ERRATA: Array<{ schema: string; path: string[]; value: Json; why: string }> = [
  {
    schema: 'opportunities.PipelinesResponseSchema',
    path: ['properties', 'stages', 'items'],
    value: { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' }, position: { type: 'number' }, showInFunnel: { type: 'boolean' }, showInPieChart: { type: 'boolean' } } },
    why: 'stages are documented as an array of arrays; HighLevel answers stage objects ({id, name, position, …})',
  },
  // Dates documented as `type: object` (a JS Date in HighLevel's DTO); HighLevel answers ISO 8601 strings.
  ...[
    ['calendars.CalendarEventDTO', 'startTime'],
    ['calendars.CalendarEventDTO', 'endTime'],
    ['calendars.CalendarEventDTO', 'dateAdded'],
    ['calendars.CalendarEventDTO', 'dateUpdated'],
    ['calendars.BlockedSlotSuccessfulResponseDto', 'startTime'],
    ['calendars.BlockedSlotSuccessfulResponseDto', 'endTime'],
  ].map(([schema, prop]) => ({ schema: schema!, path: ['properties', prop!], value: { type: 'string' }, why: 'a date documented as an object' })),
]

/** Formats the sandbox's validator checks (ajv-formats); others are documentation only. */
const KNOWN_FORMATS = new Set(['date-time', 'date', 'time', 'email', 'uri', 'uuid'])
const SCHEMES = new Set(['bearer', 'Location-Access', 'Location-Access-Only', 'Agency-Access', 'Agency-Access-Only'])

/** One compiled operation (the shape `src/sandbox/openapi/spec.ts` reads). */
export interface CompiledOperation {
  /** `<service>/<operationId>`, unique across the files (operationIds repeat between services). */
  id: string
  service: string
  operationId: string
  method: string
  path: string
  /** Values the `Version` header parameter allows; empty when the operation declares none. */
  versions: string[]
  /** Alternatives: any one satisfies the operation. Empty when the operation declares none. */
  security: Array<{ scheme: string; scopes: string[] }>
  params: Array<{ name: string; in: 'path' | 'query' | 'header'; required: boolean; schema: Json }>
  body: { contentTypes: string[]; required: boolean; schema: Json } | null
  response: { status: number; contentType: string | null; schema: Json }
}

/** The artifact. */
export interface CompiledSpec {
  version: 1
  operations: CompiledOperation[]
  definitions: Record<string, Json>
  webhooks: Record<string, Json>
}

/** Counts of what the compiler normalised, printed by the script. */
export interface CompileNotes {
  nullable: number
  anyType: number
  unknownFormats: number
  enumValuesDropped: number
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

const typeOf = (v: Json): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : Number.isInteger(v) ? 'integer' : typeof v)
function valueFitsType(v: Json, type: Json): boolean {
  const types = Array.isArray(type) ? type : [type]
  const t = typeOf(v)
  return types.some((x) => x === t || (x === 'number' && t === 'integer'))
}

/**
 * Compiles the docs into the artifact. Pure: takes the parsed OpenAPI files (by service name) and the
 * webhook pages (by file name without `.md`).
 */
export function compileSpec(files: Record<string, JsonObject>, webhookPages: Record<string, string>): { spec: CompiledSpec; notes: CompileNotes } {
  const notes: CompileNotes = { nullable: 0, anyType: 0, unknownFormats: 0, enumValuesDropped: 0 }
  const definitions: Record<string, Json> = {}
  const pending: Array<[string, string]> = []

  const defName = (service: string, ref: string): string => {
    const m = /^(?:(.*?\.json))?#\/components\/schemas\/(.+)$/.exec(ref)
    if (!m) throw new Error(`unsupported $ref ${ref} in ${service}`)
    const owner = m[1] ? basename(m[1], '.json').replace(/-schemas$/, '') : service
    const name = `${owner}.${m[2]}`
    if (!(name in definitions)) {
      definitions[name] = null
      pending.push([owner, m[2]!])
    }
    return name
  }

  const clean = (service: string, node: Json): Json => {
    if (Array.isArray(node)) return node.map((x) => clean(service, x))
    if (!isObject(node)) return node
    const out: JsonObject = {}
    for (const [k, v] of Object.entries(node)) {
      if (!KEEP.has(k)) continue
      if (k === '$ref' && typeof v === 'string') out.$ref = `#/definitions/${defName(service, v)}`
      else if (k === 'properties' && isObject(v)) out.properties = Object.fromEntries(Object.entries(v).map(([p, s]) => [p, clean(service, s)]))
      else if ((k === 'items' || k === 'additionalProperties' || k === 'not') && isObject(v)) out[k] = clean(service, v)
      else if ((k === 'allOf' || k === 'oneOf' || k === 'anyOf') && Array.isArray(v)) out[k] = v.map((s) => clean(service, s))
      else out[k] = v
    }
    if (out.type === 'any') {
      delete out.type
      notes.anyType++
    }
    if (typeof out.format === 'string' && !KNOWN_FORMATS.has(out.format)) {
      delete out.format
      notes.unknownFormats++
    }
    if (Array.isArray(out.enum)) {
      const kept = [...new Set(out.enum)].filter((e) => out.type === undefined || valueFitsType(e, out.type))
      notes.enumValuesDropped += out.enum.length - kept.length
      if (kept.length === 0) delete out.enum
      else out.enum = kept
    }
    if (Array.isArray(out.required)) {
      if (out.required.length === 0) delete out.required
      else out.required = [...new Set(out.required)]
    }
    // OpenAPI 3.0 `nullable` → a JSON Schema type union (and null among the enum values).
    if ('nullable' in out) {
      const nullable = out.nullable === true
      delete out.nullable
      if (nullable && out.type !== undefined) {
        out.type = Array.isArray(out.type) ? [...out.type, 'null'] : [out.type, 'null']
        if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null]
        notes.nullable++
      }
    }
    return out
  }

  const operations: CompiledOperation[] = []
  for (const service of Object.keys(files).sort()) {
    const doc = files[service]!
    const paths = isObject(doc.paths) ? doc.paths : {}
    for (const [path, item] of Object.entries(paths)) {
      if (!isObject(item)) continue
      for (const method of METHODS) {
        const op = item[method]
        if (!isObject(op)) continue
        const operationId = String(op.operationId)
        const params: CompiledOperation['params'] = []
        let versions: string[] = []
        for (const p of Array.isArray(op.parameters) ? op.parameters : []) {
          if (!isObject(p)) continue
          const name = String(p.name)
          const where = String(p.in) as 'path' | 'query' | 'header'
          if (where === 'header' && name.toLowerCase() === 'version') {
            const s = isObject(p.schema) ? p.schema : {}
            versions = Array.isArray(s.enum) ? s.enum.map(String) : []
            continue
          }
          // Authorization is the Bearer credential: the guard handles it, not the validator.
          if (where === 'header' && name.toLowerCase() === 'authorization') continue
          params.push({ name, in: where, required: p.required === true || where === 'path', schema: clean(service, p.schema ?? {}) })
        }
        const security: CompiledOperation['security'] = []
        for (const alt of Array.isArray(op.security) ? op.security : []) {
          if (!isObject(alt)) continue
          for (const [scheme, scopes] of Object.entries(alt)) {
            if (!SCHEMES.has(scheme)) throw new Error(`unknown security scheme ${scheme} in ${service} ${operationId}`)
            security.push({ scheme, scopes: Array.isArray(scopes) ? scopes.map(String) : [] })
          }
        }
        let body: CompiledOperation['body'] = null
        if (isObject(op.requestBody) && isObject(op.requestBody.content)) {
          const content = op.requestBody.content
          const types = Object.keys(content)
          const first = content[types.find((t) => t === 'application/json') ?? types[0]!]
          body = {
            contentTypes: types,
            required: op.requestBody.required === true,
            schema: clean(service, isObject(first) && first.schema !== undefined ? first.schema : {}),
          }
        }
        const responses = isObject(op.responses) ? op.responses : {}
        const success = Object.keys(responses).filter((c) => /^2\d\d$/.test(c))
        // The first documented 2xx that has a body, else the first 2xx.
        const withBody = success.find((c) => {
          const r = responses[c]
          return isObject(r) && isObject(r.content) && Object.keys(r.content).length > 0
        })
        const status = withBody ?? success[0] ?? '200'
        const r = responses[status]
        const content = isObject(r) && isObject(r.content) ? r.content : {}
        const contentType = Object.keys(content)[0] ?? null
        const media = contentType ? content[contentType] : undefined
        operations.push({
          id: `${service}/${operationId}`,
          service,
          operationId,
          method: method.toUpperCase(),
          path,
          versions,
          security,
          params,
          body,
          response: { status: Number(status), contentType, schema: isObject(media) && media.schema !== undefined ? clean(service, media.schema) : null },
        })
      }
    }
  }

  // Component schemas reached from the operations (and from each other).
  while (pending.length > 0) {
    const [owner, name] = pending.shift()!
    const doc = files[owner]
    const components = doc && isObject(doc.components) && isObject(doc.components.schemas) ? doc.components.schemas : undefined
    const schema = components?.[name]
    if (schema === undefined) throw new Error(`unresolved schema ${owner}#/components/schemas/${name}`)
    definitions[`${owner}.${name}`] = clean(owner, schema)
  }
  for (const fix of ERRATA) {
    let node = definitions[fix.schema]
    for (const key of fix.path.slice(0, -1)) node = isObject(node) ? node[key]! : null
    if (!isObject(node) || !(fix.path[fix.path.length - 1]! in node)) throw new Error(`erratum does not apply: ${fix.schema} ${fix.path.join('.')}`)
    node[fix.path[fix.path.length - 1]!] = fix.value
  }

  const webhooks: Record<string, Json> = {}
  for (const name of Object.keys(webhookPages).sort()) {
    const m = /```json json_schema\s*\n([\s\S]*?)```/.exec(webhookPages[name]!)
    if (!m) continue
    // Some pages carry trailing commas (not JSON); those are the only repair made.
    webhooks[name] = clean('webhooks', JSON.parse(m[1]!.replace(/,(\s*[}\]])/g, '$1')) as Json)
  }

  const sortedDefs = Object.fromEntries(Object.keys(definitions).sort().map((k) => [k, definitions[k]!]))
  return { spec: { version: 1, operations, definitions: sortedDefs, webhooks }, notes }
}

/**
 * Serialises the artifact: valid JSON with one operation, definition or webhook per line, so a change
 * in HighLevel's docs shows as a readable diff.
 */
export function serializeSpec(spec: CompiledSpec): string {
  const lines: string[] = ['{"version":1,', '"operations":[']
  spec.operations.forEach((op, i) => lines.push(JSON.stringify(op) + (i < spec.operations.length - 1 ? ',' : '')))
  lines.push('],', '"definitions":{')
  const defs = Object.entries(spec.definitions)
  defs.forEach(([k, v], i) => lines.push(`${JSON.stringify(k)}:${JSON.stringify(v)}${i < defs.length - 1 ? ',' : ''}`))
  lines.push('},', '"webhooks":{')
  const hooks = Object.entries(spec.webhooks)
  hooks.forEach(([k, v], i) => lines.push(`${JSON.stringify(k)}:${JSON.stringify(v)}${i < hooks.length - 1 ? ',' : ''}`))
  lines.push('}}', '')
  return lines.join('\n')
}

/** Reads the docs directory and compiles it. */
export function compileDocsDir(docsDir: string): { text: string; spec: CompiledSpec; notes: CompileNotes } {
  const appsDir = join(docsDir, 'apps')
  const files: Record<string, JsonObject> = {}
  for (const name of readdirSync(appsDir).filter((n) => n.endsWith('.json')).sort()) {
    files[basename(name, '.json')] = JSON.parse(readFileSync(join(appsDir, name), 'utf8')) as JsonObject
  }
  files.common = JSON.parse(readFileSync(join(docsDir, 'common', 'common-schemas.json'), 'utf8')) as JsonObject
  // `common` holds shared schemas only; it has no paths, so it contributes no operations.
  const hooksDir = join(docsDir, 'docs', 'webhook events')
  const pages: Record<string, string> = {}
  for (const name of readdirSync(hooksDir).filter((n) => n.endsWith('.md')).sort()) {
    pages[basename(name, '.md')] = readFileSync(join(hooksDir, name), 'utf8')
  }
  const { spec, notes } = compileSpec(files, pages)
  return { text: serializeSpec(spec), spec, notes }
}

function main(argv: string[]): void {
  const docsAt = argv.indexOf('--docs')
  const docsDir = docsAt >= 0 && argv[docsAt + 1] ? resolve(argv[docsAt + 1]!) : DEFAULT_DOCS_DIR
  const { text, spec, notes } = compileDocsDir(docsDir)
  if (argv.includes('--check')) {
    let current = ''
    try {
      current = readFileSync(ARTIFACT_PATH, 'utf8')
    } catch {
      // missing counts as stale
    }
    if (current !== text) {
      console.error(`${ARTIFACT_PATH} is stale: run npm run generate:sandbox`)
      process.exit(1)
    }
    console.log(`${ARTIFACT_PATH} is up to date`)
    return
  }
  writeFileSync(ARTIFACT_PATH, text)
  console.log(
    `wrote ${ARTIFACT_PATH}: ${spec.operations.length} operations, ${Object.keys(spec.definitions).length} definitions, ` +
      `${Object.keys(spec.webhooks).length} webhook schemas, ${(Buffer.byteLength(text) / 1024).toFixed(0)} KiB ` +
      `(normalised: ${notes.nullable} nullable, ${notes.anyType} type "any", ${notes.unknownFormats} unknown formats, ` +
      `${notes.enumValuesDropped} mistyped or repeated enum values)`,
  )
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main(process.argv.slice(2))
