/**
 * Validate mode (`validate: true`): checks a typed call's parameters and body, and HighLevel's answer,
 * against the operation's JSON Schemas (generated from the spec), and reports each mismatch as a logger
 * warning naming the operation and the field — never the value. Nothing is refused: HighLevel's spec
 * is often looser or stricter than HighLevel itself, so a mismatch is a hint, not an error.
 *
 * This module, ajv and a service's schemas are loaded on first use only; each operation's validators
 * are compiled once (ajv) and kept.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import type { Logger } from '../logger.js'
import type { ApiOperation } from './operation.js'
import type { ServiceSchemas } from './types.js'

/** At most this many problems are reported per check. */
const MAX_PROBLEMS = 10

/** One mismatch: where, and what the schema expected. */
export interface Mismatch {
  /** JSON pointer into the checked value, e.g. `/body/email` or `/contact/id`. */
  field: string
  message: string
}

interface Compiled {
  params: ValidateFunction | undefined
  body: ValidateFunction | undefined
  responses: Map<string, ValidateFunction>
}

/** Reports mismatches between typed calls and HighLevel's spec. One per client. */
export class OperationValidator {
  readonly #logger: Logger
  readonly #ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false, validateSchema: false })
  readonly #services = new Map<string, Promise<ServiceSchemas>>()
  readonly #compiled = new Map<ApiOperation, Compiled | null>()

  constructor(logger: Logger) {
    this.#logger = logger
  }

  /** Checks `params` (`{path, query, header}`) and `body` of a call; warns on mismatches. */
  async checkRequest(op: ApiOperation, params: unknown, body: unknown): Promise<Mismatch[]> {
    const c = await this.#get(op)
    if (!c) return []
    const problems: Mismatch[] = []
    if (c.params) collect(c.params, params ?? {}, '/params', problems)
    if (c.body && body !== undefined && !isFormData(body)) collect(c.body, body, '/body', problems)
    if (problems.length) this.#logger.warn({ operation: op.label, operationId: op.operationId, method: op.method, path: op.path, problems }, 'typed call does not match HighLevel\'s spec')
    return problems
  }

  /** Checks an answer's JSON body against the schema of its status (or `2XX`/`4XX`/`default`); warns on mismatches. */
  async checkResponse(op: ApiOperation, status: number, data: unknown): Promise<Mismatch[]> {
    const c = await this.#get(op)
    if (!c) return []
    const v = c.responses.get(String(status)) ?? c.responses.get(`${String(status)[0]}XX`) ?? c.responses.get('default')
    if (!v || data === undefined) return []
    const problems: Mismatch[] = []
    collect(v, data, '', problems)
    if (problems.length) this.#logger.warn({ operation: op.label, operationId: op.operationId, method: op.method, path: op.path, status, problems }, 'HighLevel\'s answer does not match its spec')
    return problems
  }

  async #get(op: ApiOperation): Promise<Compiled | null> {
    const known = this.#compiled.get(op)
    if (known !== undefined) return known
    const schemas = (await this.#load(op.service)).operations[op.operationId]
    let compiled: Compiled | null
    try {
      const base = `ghl-api:${op.service}#/operations/${encodePointer(op.operationId)}`
      const responses = new Map<string, ValidateFunction>()
      for (const status of Object.keys(schemas?.responses ?? {})) {
        const v = this.#ajv.getSchema(`${base}/responses/${encodePointer(status)}`)
        if (v) responses.set(status, v)
      }
      compiled = {
        params: schemas?.params ? this.#ajv.getSchema(`${base}/params`) : undefined,
        body: schemas?.body ? this.#ajv.getSchema(`${base}/body`) : undefined,
        responses,
      }
    } catch (err) {
      // A pattern or construct ajv cannot compile: this operation is not validated (said once).
      this.#logger.warn({ operation: op.label, err }, 'validate mode: the spec of this operation cannot be compiled; it is not validated')
      compiled = null
    }
    this.#compiled.set(op, compiled)
    return compiled
  }

  #load(service: string): Promise<ServiceSchemas> {
    let loading = this.#services.get(service)
    if (!loading) {
      loading = (async () => {
        // The service name comes from the generated table, never from a caller.
        const mod = (await import(`./generated/schemas/${service}.js`)) as ServiceSchemas
        const schemas: ServiceSchemas = { components: mod.components, operations: mod.operations }
        this.#ajv.addSchema({ $id: `ghl-api:${service}`, components: { schemas: schemas.components }, operations: schemas.operations })
        return schemas
      })()
      this.#services.set(service, loading)
    }
    return loading
  }
}

function encodePointer(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1')
}

function isFormData(v: unknown): boolean {
  return typeof v === 'object' && v !== null && typeof (v as { entries?: unknown }).entries === 'function' && typeof (v as { append?: unknown }).append === 'function'
}

function collect(validate: ValidateFunction, value: unknown, prefix: string, into: Mismatch[]): void {
  if (validate(value)) return
  for (const e of (validate.errors ?? []) as ErrorObject[]) {
    if (into.length >= MAX_PROBLEMS) return
    const missing = e.keyword === 'required' ? `/${String((e.params as { missingProperty?: unknown }).missingProperty)}` : ''
    into.push({ field: `${prefix}${e.instancePath}${missing}` || '/', message: e.message ?? e.keyword })
  }
}
