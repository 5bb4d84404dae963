/**
 * The stateful operations, by operation id (`<service>/<operationId>`). Every other operation of the
 * spec answers generated, schema-valid data derived from the request (`openapi/engine.ts`).
 */
import { billingHandlers } from './billing.js'
import { calendarHandlers } from './calendars.js'
import type { Handler } from './context.js'
import { contactHandlers } from './contacts.js'
import { conversationHandlers } from './conversations.js'
import { customMenuHandlers } from './custom-menus.js'
import { locationHandlers } from './locations.js'
import { opportunityHandlers } from './opportunities.js'
import { userHandlers } from './users.js'

/** Every stateful handler. */
export function resourceHandlers(): Map<string, Handler> {
  return new Map(
    Object.entries({ ...contactHandlers, ...locationHandlers, ...opportunityHandlers, ...calendarHandlers, ...conversationHandlers, ...userHandlers, ...billingHandlers, ...customMenuHandlers }),
  )
}
