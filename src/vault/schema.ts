/**
 * The vault's tables as Kysely sees them, and the one place rows become objects and back.
 *
 * Both dialects store the same types: instants as integer milliseconds (`bigint`), booleans as
 * integers 0/1, lists and JSON as text. PostgreSQL returns `bigint` as a string (node-postgres keeps
 * 64-bit integers exact), so every read goes through {@link toMillis}.
 */
import type { ColumnType, Selectable } from 'kysely'
import { GhlError } from '../errors.js'
import type { MarketplaceTables } from './marketplace-schema.js'
import type { ConsoleTables } from './sql-console-store.js'
import type { AuditRecord, InstallInfo, InstallationStatus, InstallationSummary, TokenSource, UserType, WebhookEventRecord } from './types.js'

/** Milliseconds since the epoch: written as a number, read as a number (SQLite) or string (PostgreSQL). */
type Millis = ColumnType<number | string, number, number>
type NullableMillis = ColumnType<number | string | null, number | null, number | null>
/** A boolean stored as 0/1. */
type Flag = ColumnType<number, number, number>
type NullableFlag = ColumnType<number | null, number | null, number | null>

/** `installations`: one row per (client id, location) or (client id, company). */
export interface InstallationsTable {
  id: string
  client_id: string
  app_id: string
  company_id: string
  location_id: string | null
  /** `location:<id>` or `company:<id>`; unique together with client_id. */
  resource_key: string
  user_type: UserType
  user_id: string | null
  /** JSON array. */
  scopes: string
  plan_id: string | null
  is_bulk_installation: Flag
  install_to_future_locations: NullableFlag
  approve_all_locations: NullableFlag
  /** JSON array. */
  approved_locations: string
  source: TokenSource
  parent_id: string | null
  status: InstallationStatus
  status_reason: string | null
  /** {@link TokenCipher} values; NULL once wiped. */
  access_token: string | null
  refresh_token: string | null
  /** The key both token columns are encrypted with (NULL when no token is held). */
  key_id: string | null
  expires_at: NullableMillis
  refresh_token_issued_at: NullableMillis
  version: number
  created_at: Millis
  updated_at: Millis
  /** SQLite refresh-lock lease (unused on PostgreSQL, which uses advisory locks). */
  lock_owner: string | null
  lock_until: NullableMillis
  // Migration 0003:
  location_name: ColumnType<string | null, string | null | undefined, string | null>
  company_name: ColumnType<string | null, string | null | undefined, string | null>
  /** JSON {@link InstallInfo}. */
  install_info: ColumnType<string | null, string | null | undefined, string | null>
  refresh_failures: ColumnType<number, number | undefined, number>
  last_refresh_at: ColumnType<number | string | null, number | null | undefined, number | null>
  last_error: ColumnType<string | null, string | null | undefined, string | null>
  retry_at: ColumnType<number | string | null, number | null | undefined, number | null>
  /** Background-refresher claim (which instance sweeps this row until when). */
  sweep_owner: ColumnType<string | null, string | null | undefined, string | null>
  sweep_until: ColumnType<number | string | null, number | null | undefined, number | null>
}

/** `used_codes` (0003): SHA-256 of each authorization code exchanged, until the code would have expired. */
export interface UsedCodesTable {
  code_hash: string
  expires_at: Millis
}

/** `connector_flags` (0003): facts shared by every instance, each with an expiry. */
export interface ConnectorFlagsTable {
  name: string
  value: string
  expires_at: Millis
  updated_at: Millis
}

/** `oauth_states`: a one-time OAuth state, stored by its SHA-256 only. */
export interface OAuthStatesTable {
  state_hash: string
  /** JSON {@link OAuthStateData}. */
  data: string
  expires_at: Millis
  created_at: Millis
}

/** `webhook_events`: every verified webhook, keyed by HighLevel's webhookId (replay guard + work queue). */
export interface WebhookEventsTable {
  webhook_id: string
  type: string
  /** JSON text, as received. */
  payload: string
  status: WebhookEventRecord['status']
  attempts: number
  last_error: string | null
  location_id: string | null
  company_id: string | null
  received_at: Millis
  expires_at: Millis
  /** Who holds the processing claim (migration 0002); NULL when unclaimed. */
  claimed_by: ColumnType<string | null, string | null | undefined, string | null>
  /** Until when the claim holds (ms); NULL when unclaimed. */
  claimed_until: ColumnType<number | string | null, number | null | undefined, number | null>
}

/** `audit_log`: append-only. */
export interface AuditLogTable {
  /** Generated; PostgreSQL returns bigint as a string. */
  id: ColumnType<number | string, never, never>
  installation_id: string | null
  action: string
  /** JSON object. */
  detail: string
  at: Millis
}

/** The whole database, for `Kysely<VaultDatabase>` (the Marketplace tables of 0004: `marketplace-schema.ts`). */
export interface VaultDatabase extends MarketplaceTables, ConsoleTables {
  installations: InstallationsTable
  oauth_states: OAuthStatesTable
  webhook_events: WebhookEventsTable
  audit_log: AuditLogTable
  used_codes: UsedCodesTable
  connector_flags: ConnectorFlagsTable
}

/** An `installations` row as read. */
export type InstallationRow = Selectable<InstallationsTable>

/** A stored integer millisecond value (number or PostgreSQL's bigint string) as a number. */
export function toMillis(value: number | string | bigint): number {
  const n = Number(value)
  if (!Number.isSafeInteger(n)) throw new GhlError('GHL_INTERNAL', `expected an integer millisecond value in the database, got ${typeof value}`)
  return n
}

function toDate(value: number | string | null): Date | null {
  return value === null ? null : new Date(toMillis(value))
}

function toFlag(value: number | null): boolean | null {
  return value === null ? null : Number(value) !== 0
}

/** `true`/`false`/`null` → 1/0/NULL. */
export function fromFlag(value: boolean | null | undefined): number | null {
  return value === null || value === undefined ? null : value ? 1 : 0
}

/** The row minus its secrets: what may be listed, logged or returned. */
export function toSummary(row: InstallationRow): InstallationSummary {
  return {
    id: row.id,
    clientId: row.client_id,
    appId: row.app_id,
    companyId: row.company_id,
    locationId: row.location_id,
    userType: row.user_type,
    userId: row.user_id,
    scopes: parseStringArray(row.scopes),
    planId: row.plan_id,
    isBulkInstallation: toFlag(row.is_bulk_installation) ?? false,
    installToFutureLocations: toFlag(row.install_to_future_locations),
    approveAllLocations: toFlag(row.approve_all_locations),
    approvedLocations: parseStringArray(row.approved_locations),
    source: row.source,
    parentId: row.parent_id,
    status: row.status,
    statusReason: row.status_reason,
    expiresAt: toDate(row.expires_at),
    refreshTokenIssuedAt: toDate(row.refresh_token_issued_at),
    locationName: row.location_name ?? null,
    companyName: row.company_name ?? null,
    installInfo: parseObject(row.install_info) as InstallInfo,
    refreshFailures: Number(row.refresh_failures ?? 0),
    lastRefreshAt: toDate(row.last_refresh_at ?? null),
    lastError: row.last_error ?? null,
    retryAt: toDate(row.retry_at ?? null),
    version: Number(row.version),
    createdAt: new Date(toMillis(row.created_at)),
    updatedAt: new Date(toMillis(row.updated_at)),
  }
}

/** A `webhook_events` row as a {@link WebhookEventRecord}. */
export function toWebhookRecord(row: Selectable<WebhookEventsTable>): WebhookEventRecord {
  return {
    webhookId: row.webhook_id,
    type: row.type,
    payload: JSON.parse(row.payload) as unknown,
    status: row.status,
    attempts: Number(row.attempts),
    lastError: row.last_error,
    locationId: row.location_id,
    companyId: row.company_id,
    receivedAt: new Date(toMillis(row.received_at)),
    expiresAt: new Date(toMillis(row.expires_at)),
  }
}

/** An `audit_log` row as an {@link AuditRecord}. */
export function toAuditRecord(row: Selectable<AuditLogTable>): AuditRecord {
  return {
    id: Number(row.id),
    installationId: row.installation_id,
    action: row.action,
    detail: JSON.parse(row.detail) as Record<string, unknown>,
    at: new Date(toMillis(row.at)),
  }
}

/** `location:<id>` for a location installation, `company:<id>` for an agency one. */
export function resourceKey(locationId: string | null, companyId: string): string {
  return locationId ? `location:${locationId}` : `company:${companyId}`
}

function parseObject(text: string | null | undefined): Record<string, unknown> {
  if (!text) return {}
  const value = JSON.parse(text) as unknown
  return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {}
}

function parseStringArray(text: string): string[] {
  const value = JSON.parse(text) as unknown
  return Array.isArray(value) ? value.map(String) : []
}
