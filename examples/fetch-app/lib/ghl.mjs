/** One connector per process (in Next.js: a module-level singleton shared by the route handlers). */
import { createConnector } from 'ghl-connect'

let connector
/** @returns {Promise<import('ghl-connect').Connector>} */
export function getConnector() {
  connector ??= createConnector()
  return connector
}
