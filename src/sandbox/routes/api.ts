/**
 * HighLevel's resource APIs: every v2 operation of HighLevel's OpenAPI files, served from the
 * sandbox's compiled copy of them (`openapi/spec.json`). Contacts (with tags, notes, tasks),
 * opportunities and pipelines, calendars and appointments, conversations and messages, users, custom
 * fields and values, and locations keep state (`resources/`); every other operation answers
 * schema-valid data derived from the request. Checks and their order: `openapi/engine.ts`.
 */
import type { FastifyInstance } from 'fastify'
import type { SandboxContext } from '../http.js'
import { registerOperations } from '../openapi/engine.js'
import { resourceHandlers } from '../resources/index.js'

/** Registers the resource APIs. */
export function registerApiRoutes(app: FastifyInstance, ctx: SandboxContext): void {
  registerOperations(app, ctx, resourceHandlers())
}
