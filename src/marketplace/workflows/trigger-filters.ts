/**
 * Whether a trigger's payload passes the filters a workflow set on it. HighLevel sends each filter as
 * `{field, id, operator, title, type, value}` (the "CustomTriggers" page shows `operator: "=="`; `!=`
 * appears in community code). Unverified: HighLevel does not document the operators, so the connector
 * applies the two it knows and refuses to guess on any other — such a filter does not match, and the
 * caller is told why.
 *
 * - `field` (else `id`) names the payload value; dots walk into objects (`order.status`).
 * - A filter without a value (`undefined`, `null`, `''`, `[]`) was left empty in the workflow: it passes.
 * - `==`: equal as strings (`"10"` matches `10`); a list on either side matches when they share an item
 *   (multi-select filters, list payload values).
 * - `!=`: the opposite of `==`.
 */
import type { TriggerFilter } from './workflow-shapes.js'

/** The outcome: passes, or the first filter that does not and why. */
export type FilterVerdict = { pass: true } | { pass: false; reason: string }

const KNOWN = new Set(['==', '!='])

/** Applies every filter (all must pass). */
export function matchFilters(filters: readonly unknown[], payload: unknown): FilterVerdict {
  for (const raw of filters) {
    const f = (raw ?? {}) as TriggerFilter
    const name = typeof f.field === 'string' && f.field !== '' ? f.field : typeof f.id === 'string' ? f.id : ''
    if (isEmpty(f.value)) continue
    const operator = typeof f.operator === 'string' && f.operator !== '' ? f.operator : '=='
    if (!KNOWN.has(operator)) return { pass: false, reason: `filter on ${name || '(no field)'} uses the operator ${JSON.stringify(operator.slice(0, 20))}, which the connector does not know` }
    if (name === '') return { pass: false, reason: 'a filter names no field' }
    const equal = same(valueAt(payload, name), f.value)
    if (operator === '==' ? !equal : equal) return { pass: false, reason: `filter on ${name} (${operator}) does not match` }
  }
  return { pass: true }
}

function isEmpty(v: unknown): boolean {
  return v === undefined || v === null || v === '' || (Array.isArray(v) && v.length === 0)
}

function valueAt(payload: unknown, path: string): unknown {
  let v: unknown = payload
  for (const part of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined
    v = (v as Record<string, unknown>)[part]
  }
  return v
}

function scalars(v: unknown): string[] {
  if (Array.isArray(v)) return v.flatMap(scalars)
  if (v === undefined || v === null || typeof v === 'object') return []
  return [String(v)]
}

function same(actual: unknown, expected: unknown): boolean {
  const a = scalars(actual)
  const e = new Set(scalars(expected))
  return a.some((x) => e.has(x))
}
