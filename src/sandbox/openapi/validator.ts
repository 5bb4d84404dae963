/**
 * Request and response validation against the artifact's schemas with ajv. Validators are compiled
 * once per process, on the first request of each operation (compiling all 576 operations at start
 * would cost seconds on every `startSandbox`), and shared by every sandbox of the process. Shared
 * component schemas are registered once (`hl`) and compiled once (`inlineRefs: false`). Answers are
 * not validated at run time (they are made valid, see data.ts); {@link checkResponse} is for tests.
 *
 * Messages follow HighLevel's (NestJS class-validator) wording and name the failing field:
 * `locationId should not be empty`, `limit must be a number conforming to the specified constraints`.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import ajvFormats from 'ajv-formats'
import { loadSpec, type Operation, type Schema } from './spec.js'

interface Validators {
  /** Bodies and responses: no coercion. */
  strict: Ajv
  /** Path, query and header parameters, form and multipart bodies: strings coerced to the declared type. */
  coercing: Ajv
}

let validators: Validators | undefined

function build(coerce: boolean): Ajv {
  const ajv = new Ajv({
    allErrors: true,
    strict: true,
    strictRequired: false,
    strictTypes: false,
    allowUnionTypes: true,
    inlineRefs: false,
    coerceTypes: coerce ? 'array' : false,
    // The artifact is generated and checked by its own test; meta-validating it on every start costs time.
    validateSchema: false,
  })
  ajvFormats.default(ajv, ['date-time', 'date', 'time', 'email', 'uri', 'uuid'])
  ajv.addSchema({ $id: 'hl', definitions: loadSpec().definitions })
  return ajv
}

function ajvs(): Validators {
  validators ??= { strict: build(false), coercing: build(true) }
  return validators
}

/** A validation outcome: the (possibly coerced) data, or class-validator-like messages. */
export type Checked = { ok: true } | { ok: false; messages: string[] }

interface OperationValidators {
  path: ValidateFunction
  query: ValidateFunction
  header: ValidateFunction | null
  body: ValidateFunction | null
  formBody: ValidateFunction | null
  /** Compiled on first use: answers are conformed, not validated, at run time. */
  response?: ValidateFunction | null
}

const perOperation = new Map<string, OperationValidators>()

function objectOf(params: Operation['params'], where: 'path' | 'query' | 'header'): Schema {
  const list = params.filter((p) => p.in === where)
  const properties = Object.fromEntries(list.map((p) => [where === 'header' ? p.name.toLowerCase() : p.name, p.schema]))
  const required = list.filter((p) => p.required).map((p) => (where === 'header' ? p.name.toLowerCase() : p.name))
  return { type: 'object', properties, ...(required.length > 0 ? { required } : {}) }
}

function compiled(op: Operation): OperationValidators {
  let v = perOperation.get(op.id)
  if (!v) {
    const { strict, coercing } = ajvs()
    const hasHeader = op.params.some((p) => p.in === 'header')
    const isForm = op.body !== null && op.body.contentTypes.every((t) => t !== 'application/json')
    v = {
      path: coercing.compile(objectOf(op.params, 'path')),
      query: coercing.compile(objectOf(op.params, 'query')),
      header: hasHeader ? coercing.compile(objectOf(op.params, 'header')) : null,
      body: op.body && !isForm ? strict.compile(op.body.schema) : null,
      formBody: op.body && isForm ? coercing.compile(op.body.schema) : null,
    }
    perOperation.set(op.id, v)
  }
  return v
}

/** Validates (and coerces, in place) path parameters, query and headers of a request. */
export function checkParams(op: Operation, path: Record<string, string>, query: Record<string, unknown>, headers: Record<string, unknown>): Checked {
  const v = compiled(op)
  const messages: string[] = []
  if (!v.path(path)) messages.push(...formatErrors(v.path.errors))
  if (!v.query(query)) messages.push(...formatErrors(v.query.errors))
  if (v.header && !v.header(headers)) messages.push(...formatErrors(v.header.errors))
  return messages.length > 0 ? { ok: false, messages: dedupe(messages) } : { ok: true }
}

/**
 * Validates a body. A JSON body is taken as sent; form and multipart fields (strings) are coerced to
 * the declared types in place. A missing body is validated as `{}` (class-validator's behaviour), so
 * each missing required field is named.
 */
export function checkBody(op: Operation, body: unknown): Checked {
  if (!op.body) return { ok: true }
  const v = compiled(op)
  const fn = (v.body ?? v.formBody)!
  return fn(body) ? { ok: true } : { ok: false, messages: dedupe(formatErrors(fn.errors)) }
}

/** Validates an answer against the operation's documented 2xx schema (tests, diagnostics). */
export function checkResponse(op: Operation, body: unknown): Checked {
  const v = compiled(op)
  if (v.response === undefined) v.response = op.response.schema !== null ? ajvs().strict.compile(op.response.schema) : null
  const fn = v.response
  if (!fn) return { ok: true }
  return fn(body) ? { ok: true } : { ok: false, messages: dedupe(formatErrors(fn.errors)) }
}

const webhookValidators = new Map<string, ValidateFunction>()

/** Validates a webhook payload against the schema of its event page (`ContactCreate`, …). */
export function checkWebhook(event: string, payload: unknown): Checked {
  let fn = webhookValidators.get(event)
  if (!fn) {
    const schema = loadSpec().webhooks[event]
    if (schema === undefined) return { ok: false, messages: [`no schema for webhook event ${event}`] }
    fn = ajvs().strict.compile(schema)
    webhookValidators.set(event, fn)
  }
  return fn(payload) ? { ok: true } : { ok: false, messages: dedupe(formatErrors(fn.errors)) }
}

function dedupe(messages: string[]): string[] {
  return [...new Set(messages)]
}

const TYPE_WORDS: Record<string, string> = {
  string: 'must be a string',
  number: 'must be a number conforming to the specified constraints',
  integer: 'must be an integer number',
  boolean: 'must be a boolean value',
  array: 'must be an array',
  object: 'must be an object',
  null: 'must be null',
}

/** ajv errors → class-validator-like messages naming the field (`customFields.0.id …`). */
export function formatErrors(errors: ErrorObject[] | null | undefined): string[] {
  if (!errors) return []
  // A failing anyOf/oneOf reports every branch's errors too (at its value or below); keep the one summary.
  const branches = errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf').map((e) => e.instancePath)
  const out: string[] = []
  for (const e of errors) {
    const isSummary = e.keyword === 'anyOf' || e.keyword === 'oneOf'
    if (!isSummary && branches.some((p) => e.instancePath === p || e.instancePath.startsWith(`${p}/`))) continue
    const field = e.instancePath.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~')).join('.')
    const name = (suffix: string): string => (field ? `${field}.${suffix}` : suffix)
    const p = e.params as Record<string, unknown>
    switch (e.keyword) {
      case 'required':
        out.push(`${name(String(p.missingProperty))} should not be empty`)
        break
      case 'type': {
        const types = String(p.type).split(',')
        out.push(`${field || 'body'} ${types.map((t) => TYPE_WORDS[t] ?? `must be ${t}`).join(' or ')}`)
        break
      }
      case 'enum':
        out.push(`${field || 'body'} must be one of the following values: ${(p.allowedValues as unknown[]).map(String).join(', ')}`)
        break
      case 'const':
        out.push(`${field || 'body'} must be equal to ${String(p.allowedValue)}`)
        break
      case 'format':
        out.push(`${field || 'body'} ${FORMAT_WORDS[String(p.format)] ?? `must match the format ${String(p.format)}`}`)
        break
      case 'minimum':
      case 'exclusiveMinimum':
        out.push(`${field} must not be less than ${String(p.limit)}`)
        break
      case 'maximum':
      case 'exclusiveMaximum':
        out.push(`${field} must not be greater than ${String(p.limit)}`)
        break
      case 'minLength':
        out.push(`${field} must be longer than or equal to ${String(p.limit)} characters`)
        break
      case 'maxLength':
        out.push(`${field} must be shorter than or equal to ${String(p.limit)} characters`)
        break
      case 'pattern':
        out.push(`${field} must match ${String(p.pattern)} regular expression`)
        break
      case 'minItems':
        out.push(`${field} must contain at least ${String(p.limit)} elements`)
        break
      case 'maxItems':
        out.push(`${field} must contain no more than ${String(p.limit)} elements`)
        break
      case 'uniqueItems':
        out.push(`${field} all elements must be unique`)
        break
      case 'additionalProperties':
        out.push(`property ${name(String(p.additionalProperty))} should not exist`)
        break
      case 'anyOf':
        out.push(`${field || 'body'} must match one of the documented shapes`)
        break
      case 'oneOf':
        out.push(`${field || 'body'} must match exactly one of the documented shapes`)
        break
      default:
        out.push(`${field || 'body'} ${e.message ?? 'is invalid'}`)
    }
  }
  return out
}

const FORMAT_WORDS: Record<string, string> = {
  'date-time': 'must be a valid ISO 8601 date string',
  date: 'must be a valid ISO 8601 date string',
  email: 'must be an email',
  uri: 'must be a URL address',
  uuid: 'must be a UUID',
}
