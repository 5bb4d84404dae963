/**
 * The Marketplace tables of migration 0004 as Kysely sees them, and their rows as objects. Same
 * conventions as `schema.ts`: instants are integer milliseconds, JSON is text, PostgreSQL's bigint
 * comes back as a string (read through {@link toMillis}).
 */
import type { ColumnType, Selectable } from 'kysely'
import type { BillingReportRecord, ChargeRecord, ChargeStatus, CredentialKind, TriggerSubscription } from './marketplace-types.js'
import { toMillis } from './schema.js'

type Millis = ColumnType<number | string, number, number>
type NullableMillis = ColumnType<number | string | null, number | null | undefined, number | null>

/** `marketplace_charges`: one row per (client id, location, eventId). */
export interface MarketplaceChargesTable {
  client_id: string
  location_id: string
  event_id: string
  company_id: string
  meter_id: string
  /** JSON: the charge as sent. */
  request: string
  /** SHA-256 of the canonical request: a different charge under the same eventId is a conflict. */
  request_hash: string
  status: ChargeStatus
  charge_id: string | null
  attempts: number
  last_error: string | null
  claimed_by: string | null
  claimed_until: NullableMillis
  created_at: Millis
  updated_at: Millis
}

/** `trigger_subscriptions`: one row per (client id, trigger instance). */
export interface TriggerSubscriptionsTable {
  client_id: string
  trigger_id: string
  trigger_key: string
  location_id: string
  company_id: string | null
  workflow_id: string
  target_url: string
  /** JSON array, as HighLevel sent it. */
  filters: string
  version: string | null
  created_at: Millis
  updated_at: Millis
}

/** `external_credentials`: one row per (client id, `location:<id>` | `company:<id>`). */
export interface ExternalCredentialsTable {
  client_id: string
  resource_key: string
  location_id: string | null
  company_id: string | null
  kind: CredentialKind
  /** {@link TokenCipher} value of the JSON secret, bound to client id and resource key. */
  secret: string
  key_id: string
  /** JSON {@link CredentialDetails} (nothing secret). */
  details: string
  created_at: Millis
  updated_at: Millis
}

/** `billing_reports`: one row per (client id, resource key, payment reference). */
export interface BillingReportsTable {
  client_id: string
  resource_key: string
  reference: string
  status: BillingReportRecord['status']
  /** JSON body sent to HighLevel (no secret: the client secret goes in a header only). */
  body: string
  attempts: number
  last_error: string | null
  claimed_by: string | null
  claimed_until: NullableMillis
  created_at: Millis
  updated_at: Millis
}

/** The Marketplace part of the database. */
export interface MarketplaceTables {
  marketplace_charges: MarketplaceChargesTable
  trigger_subscriptions: TriggerSubscriptionsTable
  external_credentials: ExternalCredentialsTable
  billing_reports: BillingReportsTable
}

const dateOrNull = (v: number | string | null): Date | null => (v === null ? null : new Date(toMillis(v)))

export function toChargeRecord(row: Selectable<MarketplaceChargesTable>): ChargeRecord {
  return {
    clientId: row.client_id,
    locationId: row.location_id,
    eventId: row.event_id,
    companyId: row.company_id,
    meterId: row.meter_id,
    request: JSON.parse(row.request) as Record<string, unknown>,
    status: row.status,
    chargeId: row.charge_id,
    attempts: Number(row.attempts),
    lastError: row.last_error,
    claimedBy: row.claimed_by,
    claimedUntil: dateOrNull(row.claimed_until),
    createdAt: new Date(toMillis(row.created_at)),
    updatedAt: new Date(toMillis(row.updated_at)),
  }
}

export function toTriggerSubscription(row: Selectable<TriggerSubscriptionsTable>): TriggerSubscription {
  const filters = JSON.parse(row.filters) as unknown
  return {
    clientId: row.client_id,
    triggerId: row.trigger_id,
    key: row.trigger_key,
    locationId: row.location_id,
    companyId: row.company_id,
    workflowId: row.workflow_id,
    targetUrl: row.target_url,
    filters: Array.isArray(filters) ? filters : [],
    version: row.version,
    createdAt: new Date(toMillis(row.created_at)),
    updatedAt: new Date(toMillis(row.updated_at)),
  }
}

export function toBillingReport(row: Selectable<BillingReportsTable>): BillingReportRecord {
  return {
    clientId: row.client_id,
    resourceKey: row.resource_key,
    reference: row.reference,
    status: row.status,
    body: JSON.parse(row.body) as Record<string, unknown>,
    attempts: Number(row.attempts),
    lastError: row.last_error,
    claimedBy: row.claimed_by,
    claimedUntil: dateOrNull(row.claimed_until),
    createdAt: new Date(toMillis(row.created_at)),
    updatedAt: new Date(toMillis(row.updated_at)),
  }
}
