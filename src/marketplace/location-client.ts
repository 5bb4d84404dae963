/**
 * The client of one location as the connector hands it out: the API calls of {@link ResourceClient}
 * plus the location's wallet billing (`ghl.location(id).billing.charge(…)`).
 */
import type { ResourceClient } from '../client/types.js'
import type { Logger } from '../logger.js'
import type { LocationBilling } from './billing/billing-service.js'

/** A location's API client with its billing calls. */
export type LocationClient = ResourceClient & { readonly billing: LocationBilling }

/** The part of the connector the Marketplace handlers use (a Connector fits). */
export interface MarketplaceHost {
  location(locationId: string): LocationClient
  /** Where handler failures are logged (never a payload). */
  readonly logger?: Logger
}
