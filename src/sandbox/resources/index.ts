/**
 * The stateful operations, by operation id (`<service>/<operationId>`). Every other operation of the
 * spec answers generated, schema-valid data derived from the request (`openapi/engine.ts`).
 */
import type { Handler } from './context.js'
import { contactHandlers } from './contacts.js'
import { locationHandlers } from './locations.js'

/** Every stateful handler. */
export function resourceHandlers(): Map<string, Handler> {
  return new Map(Object.entries({ ...contactHandlers, ...locationHandlers }))
}
