/**
 * Schema-driven data for the sandbox's answers: {@link generate} makes a value that satisfies a
 * schema, {@link conform} repairs a value (a stored record, say) until it does, keeping every part
 * that already fits.
 *
 * Why our own and not json-schema-faker: answers must be *derived from the request* (ids and fields
 * the caller sent are echoed where the schema has a property of that name), *deterministic* (the same
 * request answers the same data, list pages are consistent with each other) and *valid* against
 * HighLevel's schemas including their `oneOf`s; the schemas use a small subset of JSON Schema
 * (type, properties, required, items, enum, allOf/oneOf/anyOf, format, min/max, pattern), so a
 * ~300-line generator covers them and the contract suite checks every answer with ajv.
 */
import { createHash } from 'node:crypto'
import { loadSpec, type Schema } from './spec.js'

type Obj = Record<string, unknown>

/** A schema with `$ref`s resolved and `allOf` merged. */
interface Flat {
  types: string[] | null
  properties: Record<string, Schema>
  required: string[]
  items: Schema | null
  additionalProperties: Schema | undefined
  enum: unknown[] | null
  const: unknown
  hasConst: boolean
  format: string | null
  pattern: string | null
  minimum: number | null
  maximum: number | null
  exclusiveMinimum: number | null
  exclusiveMaximum: number | null
  minLength: number | null
  maxLength: number | null
  minItems: number | null
  maxItems: number | null
  oneOf: Schema[] | null
  anyOf: Schema[] | null
}

const flatCache = new WeakMap<object, Flat>()

function resolveRef(ref: string): Schema {
  const m = /^hl#\/definitions\/(.+)$/.exec(ref)
  const schema = m ? loadSpec().definitions[m[1]!] : undefined
  if (schema === undefined) throw new Error(`unresolved $ref ${ref}`)
  return schema
}

/** Resolves `$ref` and merges `allOf` (properties and required united, the first value of other keywords wins). */
export function flatten(schema: Schema): Flat {
  if (typeof schema === 'boolean') return emptyFlat()
  const hit = flatCache.get(schema)
  if (hit) return hit
  const flat = emptyFlat()
  flatCache.set(schema, flat)
  const parts: Obj[] = []
  const collect = (s: Schema, depth: number): void => {
    if (typeof s === 'boolean' || depth > 20) return
    if (typeof s.$ref === 'string') collect(resolveRef(s.$ref), depth + 1)
    parts.push(s)
    if (Array.isArray(s.allOf)) for (const sub of s.allOf as Schema[]) collect(sub, depth + 1)
  }
  collect(schema, 0)
  for (const s of parts) {
    if (s.type !== undefined && flat.types === null) flat.types = Array.isArray(s.type) ? (s.type as string[]) : [String(s.type)]
    if (s.properties && typeof s.properties === 'object') {
      for (const [k, v] of Object.entries(s.properties as Record<string, Schema>)) if (!(k in flat.properties)) flat.properties[k] = v
    }
    if (Array.isArray(s.required)) for (const r of s.required as string[]) if (!flat.required.includes(r)) flat.required.push(r)
    if (s.items !== undefined && flat.items === null) flat.items = s.items as Schema
    if (s.additionalProperties !== undefined && flat.additionalProperties === undefined) flat.additionalProperties = s.additionalProperties as Schema
    if (Array.isArray(s.enum) && flat.enum === null) flat.enum = s.enum
    if ('const' in s && !flat.hasConst) {
      flat.const = s.const
      flat.hasConst = true
    }
    for (const k of ['format', 'pattern'] as const) if (typeof s[k] === 'string' && flat[k] === null) flat[k] = s[k] as string
    for (const k of ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minLength', 'maxLength', 'minItems', 'maxItems'] as const) {
      if (typeof s[k] === 'number' && flat[k] === null) flat[k] = s[k] as number
    }
    if (Array.isArray(s.oneOf) && flat.oneOf === null) flat.oneOf = s.oneOf as Schema[]
    if (Array.isArray(s.anyOf) && flat.anyOf === null) flat.anyOf = s.anyOf as Schema[]
  }
  if (flat.types === null) {
    if (Object.keys(flat.properties).length > 0 || flat.required.length > 0) flat.types = ['object']
    else if (flat.items !== null) flat.types = ['array']
  }
  return flat
}

function emptyFlat(): Flat {
  return {
    types: null, properties: {}, required: [], items: null, additionalProperties: undefined, enum: null, const: undefined,
    hasConst: false, format: null, pattern: null, minimum: null, maximum: null, exclusiveMinimum: null, exclusiveMaximum: null,
    minLength: null, maxLength: null, minItems: null, maxItems: null, oneOf: null, anyOf: null,
  }
}

function jsonType(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number'
  return typeof v
}

function typeAllowed(types: string[] | null, v: unknown): boolean {
  if (types === null) return true
  const t = jsonType(v)
  return types.includes(t) || (t === 'integer' && types.includes('number'))
}

const DATE_TIME = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:?\d{2})$/
const FORMAT_CHECKS: Record<string, (s: string) => boolean> = {
  'date-time': (s) => DATE_TIME.test(s) && !Number.isNaN(Date.parse(s)),
  date: (s) => /^\d{4}-\d{2}-\d{2}$/.test(s) && !Number.isNaN(Date.parse(s)),
  time: (s) => /^\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:?\d{2})?$/.test(s),
  email: (s) => /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(s),
  uri: (s) => /^[a-z][a-z0-9+.-]*:[^\s]*$/i.test(s),
  uuid: (s) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s),
}

const regexCache = new Map<string, RegExp>()
function regex(p: string): RegExp {
  let r = regexCache.get(p)
  if (!r) {
    r = new RegExp(p, 'u')
    regexCache.set(p, r)
  }
  return r
}

/** Whether `v` satisfies `schema` (the subset of JSON Schema the artifact uses). */
export function fits(schema: Schema, v: unknown, depth = 0): boolean {
  if (schema === true) return true
  if (schema === false) return false
  if (depth > 40) return true
  const f = flatten(schema)
  if (v === undefined) return false
  if (!typeAllowed(f.types, v)) return false
  if (f.enum !== null && !f.enum.some((e) => e === v)) return false
  if (f.hasConst && f.const !== v) return false
  if (typeof v === 'string') {
    if (f.minLength !== null && [...v].length < f.minLength) return false
    if (f.maxLength !== null && [...v].length > f.maxLength) return false
    if (f.pattern !== null && !regex(f.pattern).test(v)) return false
    if (f.format !== null && FORMAT_CHECKS[f.format] && !FORMAT_CHECKS[f.format]!(v)) return false
  }
  if (typeof v === 'number') {
    if (f.types && f.types.includes('integer') && !f.types.includes('number') && !Number.isInteger(v)) return false
    if (f.minimum !== null && v < f.minimum) return false
    if (f.maximum !== null && v > f.maximum) return false
    if (f.exclusiveMinimum !== null && v <= f.exclusiveMinimum) return false
    if (f.exclusiveMaximum !== null && v >= f.exclusiveMaximum) return false
  }
  if (Array.isArray(v)) {
    if (f.minItems !== null && v.length < f.minItems) return false
    if (f.maxItems !== null && v.length > f.maxItems) return false
    if (f.items !== null && !v.every((x) => fits(f.items!, x, depth + 1))) return false
  }
  if (jsonType(v) === 'object') {
    const o = v as Obj
    for (const r of f.required) if (o[r] === undefined) return false
    for (const [k, x] of Object.entries(o)) {
      if (x === undefined) continue
      const ps = f.properties[k]
      if (ps !== undefined) {
        if (!fits(ps, x, depth + 1)) return false
      } else if (f.additionalProperties === false) return false
      else if (f.additionalProperties !== undefined && f.additionalProperties !== true && !fits(f.additionalProperties, x, depth + 1)) return false
    }
  }
  if (f.anyOf !== null && !f.anyOf.some((s) => fits(s, v, depth + 1))) return false
  if (f.oneOf !== null && f.oneOf.filter((s) => fits(s, v, depth + 1)).length !== 1) return false
  return true
}

// --- generation ---------------------------------------------------------------------------------

/** What a generated answer derives from. */
export interface GenContext {
  /** Seed text: the same seed and schema give the same value. */
  seed: string
  /** Values from the request (path, query, body fields) echoed into properties of the same name. */
  hints: Map<string, unknown>
  /** Clock for dates. */
  now: number
  /** Pagination of the answer's main list: page size and offset from the request. */
  page: { limit: number; offset: number; total: number }
  /** Objects get their required properties only (the smallest valid value, e.g. for a request body). */
  requiredOnly?: boolean
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
const WORDS = ['alpha', 'bravo', 'cedar', 'delta', 'ember', 'fjord', 'grove', 'harbor', 'iris', 'juniper', 'kestrel', 'lumen']
const FIRST = ['Ada', 'Grace', 'Alan', 'Katherine', 'Edsger', 'Barbara', 'Donald', 'Margaret']
const LAST = ['Lovelace', 'Hopper', 'Turing', 'Johnson', 'Dijkstra', 'Liskov', 'Knuth', 'Hamilton']
/** Samples tried against a `pattern` (the artifact's patterns are times, dates and time zones). */
const PATTERN_SAMPLES = ['09:00', '17:30', '2026-01-15', 'America/New_York', 'sample', 'ABC123', '1', 'a']

function hash(text: string): Buffer {
  return createHash('sha256').update(text).digest()
}

/** A deterministic number in [0, 1) for a seed and a position. */
function unit(seed: string): number {
  return hash(seed).readUInt32BE(0) / 2 ** 32
}

/** A HighLevel-style 20-character id derived from the seed. */
export function derivedId(seed: string): string {
  const h = hash(seed)
  let out = ''
  for (let i = 0; i < 20; i++) out += ALNUM[h[i]! % ALNUM.length]
  return out
}

/** Request values that hold for every item of a list too (the items of a location's list are that location's). */
const SCOPE_KEYS = new Set(['locationId', 'companyId', 'altId', 'altType'])

/** Names of the numeric properties that carry a list's total. */
const TOTAL_NAMES = new Set(['total', 'count', 'totalCount', 'total_count', 'totalRecords', 'totalItems'])

/**
 * A value satisfying `schema`. `name` is the property it is for (guides plausible strings), `path`
 * the position (part of the seed), `listed` whether it sits inside an array (request hints then apply
 * only to the location/company: an echoed id belongs to the answer's own object, not to every item).
 */
export function generate(schema: Schema, ctx: GenContext, name = '', path = '$', depth = 0, listed = false): unknown {
  if (schema === true || schema === false) return sampleString(name, ctx, path)
  const f = flatten(schema)
  if (f.hasConst) return f.const
  if (f.oneOf !== null) return pickAlternative(f.oneOf, 'oneOf', ctx, name, path, depth, listed)
  if (f.anyOf !== null) return pickAlternative(f.anyOf, 'anyOf', ctx, name, path, depth, listed)
  if (f.enum !== null && f.enum.length > 0) {
    const choices = f.enum.filter((e) => e !== null)
    const pool = choices.length > 0 ? choices : f.enum
    return pool[Math.floor(unit(`${ctx.seed}|${path}`) * pool.length)]
  }
  const type = f.types?.find((t) => t !== 'null') ?? (f.types?.includes('null') ? 'null' : 'string')
  switch (type) {
    case 'null':
      return null
    case 'boolean':
      return unit(`${ctx.seed}|${path}`) < 0.5
    case 'integer':
    case 'number':
      return sampleNumber(f, type === 'integer', name, ctx, path, depth, listed)
    case 'array':
      return sampleArray(f, ctx, name, path, depth, listed)
    case 'object':
      return sampleObject(f, ctx, path, depth, listed)
    default:
      return sampleConstrainedString(f, name, ctx, path)
  }
}

function pickAlternative(alts: Schema[], kind: 'oneOf' | 'anyOf', ctx: GenContext, name: string, path: string, depth: number, listed: boolean): unknown {
  let first: unknown
  for (let i = 0; i < alts.length; i++) {
    const v = generate(alts[i]!, ctx, name, `${path}/${kind}${i}`, depth + 1, listed)
    if (i === 0) first = v
    if (kind === 'anyOf' || alts.filter((s) => fits(s, v)).length === 1) return v
    // Several alternatives accept it (HighLevel's oneOfs rarely exclude each other): try the value
    // with only the alternative's required properties, which overlaps least with the others, then
    // one that breaks the others on a property only they declare.
    const lean = generateLean(alts[i]!, ctx, name, `${path}/${kind}${i}`, depth + 1)
    if (alts.filter((s) => fits(s, lean)).length === 1) return lean
    const apart = breakOthers(alts, i, v)
    if (apart !== undefined && alts.filter((s) => fits(s, apart)).length === 1) return apart
  }
  return first
}

/**
 * `v` (a value of alternative `i`) with, for each other alternative that also accepts it, a property
 * that alternative declares and `i` does not, set to a value of another type. Undefined when `v` is
 * not an object or no such property exists.
 */
function breakOthers(alts: Schema[], i: number, v: unknown): unknown {
  if (jsonType(v) !== 'object') return undefined
  const own = flatten(alts[i]!)
  if (own.additionalProperties === false) return undefined
  const out: Obj = { ...(v as Obj) }
  for (let j = 0; j < alts.length; j++) {
    if (j === i || !fits(alts[j]!, out)) continue
    const other = flatten(alts[j]!)
    const prop = Object.keys(other.properties).find((p) => !(p in own.properties) && flatten(other.properties[p]!).types !== null)
    if (prop === undefined) return undefined
    const types = flatten(other.properties[prop]!).types!
    out[prop] = !types.includes('string') ? 'x' : !types.includes('number') ? 0 : !types.includes('boolean') ? false : []
  }
  return out
}

function generateLean(schema: Schema, ctx: GenContext, name: string, path: string, depth: number): unknown {
  const f = flatten(schema)
  if (!f.types?.includes('object')) return generate(schema, ctx, name, path, depth, true)
  const out: Obj = {}
  for (const r of f.required) out[r] = generate(f.properties[r] ?? true, ctx, r, `${path}.${r}`, depth + 1, true)
  return out
}

function sampleNumber(f: Flat, integer: boolean, name: string, ctx: GenContext, path: string, depth: number, listed: boolean): number {
  let lo = f.minimum ?? (f.exclusiveMinimum !== null ? f.exclusiveMinimum + 1 : null)
  let hi = f.maximum ?? (f.exclusiveMaximum !== null ? f.exclusiveMaximum - 1 : null)
  if (!listed && depth <= 2 && TOTAL_NAMES.has(name)) {
    const total = ctx.page.total
    if ((lo === null || total >= lo) && (hi === null || total <= hi)) return total
  }
  lo ??= hi !== null ? Math.min(0, hi) : 1
  hi ??= lo + 99
  if (hi < lo) hi = lo
  const n = lo + unit(`${ctx.seed}|${path}`) * (hi - lo)
  if (integer || /count|total|limit|page|size|duration|quantity|qty|position|index|number|interval|skip|offset/i.test(name)) {
    const r = Math.round(n)
    return Math.min(Math.max(r, Math.ceil(lo)), Math.floor(hi))
  }
  return Math.round(n * 100) / 100
}

function sampleArray(f: Flat, ctx: GenContext, name: string, path: string, depth: number, listed: boolean): unknown[] {
  const items = f.items ?? { type: 'string' }
  let length: number
  if (!listed && depth <= 2) {
    // The answer's main list: a page of a small virtual collection, as the request asked for.
    length = Math.max(0, Math.min(ctx.page.limit, ctx.page.total - ctx.page.offset))
  } else length = depth > 6 ? 0 : 1
  if (f.minItems !== null) length = Math.max(length, f.minItems)
  if (f.maxItems !== null) length = Math.min(length, f.maxItems)
  const offset = !listed && depth <= 2 ? ctx.page.offset : 0
  const out: unknown[] = []
  for (let i = 0; i < length; i++) out.push(generate(items, ctx, name, `${path}[${offset + i}]`, depth + 1, true))
  return out
}

function sampleObject(f: Flat, ctx: GenContext, path: string, depth: number, listed: boolean): Obj {
  const out: Obj = {}
  const names = Object.keys(f.properties)
  // Deep in a schema only the required properties, so recursive schemas end.
  const chosen = depth > 6 || ctx.requiredOnly ? f.required : [...names, ...f.required.filter((r) => !names.includes(r))]
  for (const key of chosen) {
    const ps = f.properties[key] ?? { type: 'string' }
    if (ctx.hints.has(key) && (!listed || SCOPE_KEYS.has(key))) {
      const hint = ctx.hints.get(key)
      if (fits(ps, hint)) {
        out[key] = hint
        continue
      }
    }
    out[key] = generate(ps, ctx, key, `${path}.${key}`, depth + 1, listed)
  }
  return out
}

function sampleConstrainedString(f: Flat, name: string, ctx: GenContext, path: string): string {
  if (f.pattern !== null) {
    const re = regex(f.pattern)
    const hit = PATTERN_SAMPLES.find((s) => re.test(s) && lengthOk(f, s))
    if (hit) return hit
  }
  let s: string
  switch (f.format) {
    case 'date-time':
      s = new Date(ctx.now - Math.floor(unit(`${ctx.seed}|${path}`) * 30 * 86_400_000)).toISOString()
      break
    case 'date':
      s = new Date(ctx.now).toISOString().slice(0, 10)
      break
    case 'time':
      s = '09:00:00Z'
      break
    case 'email':
      s = `${WORDS[Math.floor(unit(`${ctx.seed}|${path}`) * WORDS.length)]}@sandbox.example`
      break
    case 'uri':
      s = `https://sandbox.example/${derivedId(`${ctx.seed}|${path}`)}`
      break
    case 'uuid': {
      const h = hash(`${ctx.seed}|${path}`).toString('hex')
      s = `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`
      break
    }
    default:
      s = sampleString(name, ctx, path)
  }
  if (f.minLength !== null && s.length < f.minLength) s = s.padEnd(f.minLength, 'x')
  if (f.maxLength !== null && s.length > f.maxLength) s = s.slice(0, f.maxLength)
  return s
}

function lengthOk(f: Flat, s: string): boolean {
  return (f.minLength === null || s.length >= f.minLength) && (f.maxLength === null || s.length <= f.maxLength)
}

function sampleString(name: string, ctx: GenContext, path: string): string {
  const r = unit(`${ctx.seed}|${path}`)
  const pick = <T>(list: readonly T[]): T => list[Math.floor(r * list.length)]!
  const n = name.toLowerCase()
  if (n === 'id' || n === '_id' || n.endsWith('id') || n.endsWith('ids')) return derivedId(`${ctx.seed}|${path}`)
  if (n.includes('email')) return `${pick(FIRST).toLowerCase()}.${pick(LAST).toLowerCase()}@sandbox.example`
  if (n.includes('phone')) return `+1555${String(Math.floor(r * 10_000_000)).padStart(7, '0')}`
  if (/(url|link|website|href|src|avatar|image|logo|icon)/.test(n)) return `https://sandbox.example/${derivedId(`${ctx.seed}|${path}`)}`
  if (/(date|time|at)$/.test(n) || n.includes('date')) return new Date(ctx.now - Math.floor(r * 30 * 86_400_000)).toISOString()
  if (n === 'firstname') return pick(FIRST)
  if (n === 'lastname') return pick(LAST)
  if (n.includes('name') || n === 'title') return `${pick(FIRST)} ${pick(LAST)}`
  if (n.includes('currency')) return 'USD'
  if (n.includes('timezone')) return 'America/Chicago'
  if (n.includes('country')) return 'US'
  if (n.includes('color')) return '#3b82f6'
  if (n === 'status') return 'active'
  return `${pick(WORDS)} ${WORDS[Math.floor(unit(`${ctx.seed}|${path}|2`) * WORDS.length)]}`
}

// --- conforming ---------------------------------------------------------------------------------

/**
 * `value` repaired until it satisfies `schema`: parts that fit are kept as they are (a stored
 * record's fields), wrong or missing required parts are generated. Objects keep properties the schema
 * does not name (unless it forbids them), as HighLevel's answers carry more than its docs list.
 */
export function conform(schema: Schema, value: unknown, ctx: GenContext, name = '', path = '$', depth = 0): unknown {
  if (schema === true) return value === undefined ? null : value
  if (schema === false) return undefined
  if (value === undefined) return generate(schema, ctx, name, path, depth, true)
  const f = flatten(schema)
  if (depth > 40) return value
  if (f.oneOf !== null || f.anyOf !== null) {
    if (fits(schema, value)) return value
    const alts = (f.oneOf ?? f.anyOf)!
    for (let i = 0; i < alts.length; i++) {
      const repaired = conform(alts[i]!, value, ctx, name, `${path}/alt${i}`, depth + 1)
      if (fits(schema, repaired)) return repaired
    }
    return generate(schema, ctx, name, path, depth, true)
  }
  if (f.hasConst) return f.const
  if (f.enum !== null) return f.enum.includes(value) ? value : generate(schema, ctx, name, path, depth, true)
  if (!typeAllowed(f.types, value)) {
    const coerced = coerce(f, value)
    if (coerced !== undefined && typeAllowed(f.types, coerced)) return conform(schema, coerced, ctx, name, path, depth)
    return generate(schema, ctx, name, path, depth, true)
  }
  if (Array.isArray(value)) {
    const items = f.items
    let out = items === null ? [...value] : value.map((x, i) => conform(items, x, ctx, name, `${path}[${i}]`, depth + 1))
    if (f.maxItems !== null) out = out.slice(0, f.maxItems)
    while (f.minItems !== null && out.length < f.minItems) out.push(generate(items ?? true, ctx, name, `${path}[${out.length}]`, depth + 1, true))
    return out
  }
  if (jsonType(value) === 'object') {
    const o = value as Obj
    const out: Obj = {}
    for (const [k, x] of Object.entries(o)) {
      if (x === undefined) continue
      const ps = f.properties[k]
      // An optional property that is null where the schema has no null is left out, not invented.
      if (ps !== undefined && x === null && !f.required.includes(k) && !fits(ps, null)) continue
      if (ps !== undefined) out[k] = conform(ps, x, ctx, k, `${path}.${k}`, depth + 1)
      else if (f.additionalProperties === false) continue
      else if (f.additionalProperties !== undefined && f.additionalProperties !== true) out[k] = conform(f.additionalProperties, x, ctx, k, `${path}.${k}`, depth + 1)
      else out[k] = x
    }
    for (const r of f.required) if (out[r] === undefined) out[r] = generate(f.properties[r] ?? true, ctx, r, `${path}.${r}`, depth + 1, true)
    return out
  }
  return fits(schema, value) ? value : generate(schema, ctx, name, path, depth, true)
}

function coerce(f: Flat, v: unknown): unknown {
  const types = f.types ?? []
  if (types.includes('string') && (typeof v === 'number' || typeof v === 'boolean')) return String(v)
  if ((types.includes('number') || types.includes('integer')) && typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v)
  if (types.includes('boolean') && (v === 'true' || v === 'false')) return v === 'true'
  if (types.includes('array') && v !== null && !Array.isArray(v)) return [v]
  if (types.includes('string') && v instanceof Date) return v.toISOString()
  return undefined
}
