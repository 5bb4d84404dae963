/**
 * The vault's Marketplace roles: wallet charges (the idempotency record of each `eventId`), workflow
 * trigger subscriptions, third-party credentials from external authentication (encrypted), and the
 * external-billing reports sent to HighLevel. Each is its own object on {@link Vault}, beside the
 * installation roles in `types.ts`; backends live beside this file.
 */

/**
 * A charge's life in the vault:
 * - `pending`: stored before the call; HighLevel has not confirmed it (never sent, in flight, or its
 *   answer was lost — `attempts` says how many POSTs may have reached HighLevel).
 * - `charged`: HighLevel answered with a charge id (or the charge was found by its eventId).
 * - `failed`: HighLevel refused it; nothing was charged. A later call with the same eventId tries again.
 * - `refunded`: charged, then deleted (refunded) through the connector.
 */
export type ChargeStatus = 'pending' | 'charged' | 'failed' | 'refunded'

/** Which charge: the app (client id), the sub-account charged, and the app's own eventId. */
export interface ChargeKey {
  clientId: string
  locationId: string
  eventId: string
}

/** A charge row. `request` is the body sent to HighLevel (no secret in it). */
export interface ChargeRecord extends ChargeKey {
  companyId: string
  meterId: string
  /** The charge as sent: `{meterId, units, description, price?, userId?, eventTime?}`. */
  request: Record<string, unknown>
  status: ChargeStatus
  chargeId: string | null
  /** POSTs that may have reached HighLevel. */
  attempts: number
  lastError: string | null
  /** Who is working on it, until when (a lease: a holder that dies frees it when it passes). */
  claimedBy: string | null
  claimedUntil: Date | null
  createdAt: Date
  updatedAt: Date
}

/** What {@link ChargeStore.begin} answers. */
export interface ChargeBegin {
  /** The row as it is now. */
  record: ChargeRecord
  /** Whether the caller holds the claim (it inserted the row, or took over an unclaimed/expired one). */
  claimed: boolean
  /** The eventId is stored with another request (a different charge): nothing was changed. */
  conflict: boolean
}

/** A claim on a charge row: `owner` holds it until `until`; `now` is the claimant's clock (default: the vault's). */
export interface ChargeClaim {
  owner: string
  until: Date
  now?: Date
}

/** Wallet charges keyed by the app's eventId: the record that makes a charge happen once. */
export interface ChargeStore {
  /**
   * Stores a charge before it is sent — or finds the one stored under the same key — and claims it for
   * `owner` until `until` when nobody holds a live claim on it and it is not charged. Atomic across
   * every process sharing the database: of concurrent callers exactly one holds the claim.
   */
  begin(input: ChargeKey & { companyId: string; meterId: string; request: Record<string, unknown> }, claim: ChargeClaim): Promise<ChargeBegin>
  /** Claims an existing, not charged row whose claim is absent or past. `true` for exactly one of concurrent claimants. */
  claim(key: ChargeKey, claim: ChargeClaim): Promise<boolean>
  /** Counts one more POST that may reach HighLevel (written before it is sent); only while `owner` holds the claim. */
  markAttempt(key: ChargeKey, owner: string): Promise<boolean>
  /**
   * Records the outcome and clears the claim — only while `owner` holds it (`false`: nothing written).
   * `status: 'pending'` only releases the claim (the outcome is still unknown).
   */
  complete(key: ChargeKey, owner: string, outcome: { status: ChargeStatus; chargeId?: string | null; lastError?: string | null }): Promise<boolean>
  get(key: ChargeKey): Promise<ChargeRecord | undefined>
  /** The row of a HighLevel charge id, if the connector made it. */
  findByChargeId(clientId: string, locationId: string, chargeId: string): Promise<ChargeRecord | undefined>
  /** Marks a charged row refunded (its charge was deleted). */
  markRefunded(clientId: string, locationId: string, chargeId: string): Promise<boolean>
  /** Pending rows nobody holds (no claim, or a claim past `now`), oldest first: what a reconciliation sweep settles. */
  unsettled(clientId: string, options?: { now?: Date; locationId?: string; limit?: number }): Promise<ChargeRecord[]>
}

/**
 * A workflow's subscription to one of the app's triggers, as HighLevel sent it to the subscription URL
 * (`triggerData` + `extras`). `filters` are kept as sent.
 */
export interface TriggerSubscription {
  clientId: string
  /** `triggerData.id`: the trigger's instance in one workflow. */
  triggerId: string
  /** `triggerData.key`: the app's trigger. */
  key: string
  locationId: string
  companyId: string | null
  workflowId: string
  targetUrl: string
  filters: unknown[]
  /** `meta.version` of the trigger, when sent. */
  version: string | null
  createdAt: Date
  updatedAt: Date
}

/** The registry of trigger subscriptions. */
export interface TriggerSubscriptionStore {
  /** Creates or replaces the subscription of a trigger instance (HighLevel's CREATED and UPDATED). */
  upsert(subscription: Omit<TriggerSubscription, 'createdAt' | 'updatedAt'>): Promise<TriggerSubscription>
  /** Removes it (HighLevel's DELETED); `false` when there was none. */
  remove(clientId: string, triggerId: string): Promise<boolean>
  get(clientId: string, triggerId: string): Promise<TriggerSubscription | undefined>
  /** The subscriptions of a location, optionally of one trigger key (an index read). */
  list(filter: { clientId: string; locationId: string; key?: string; limit?: number }): Promise<TriggerSubscription[]>
  /** Removes every subscription of a location (the app was uninstalled there); returns how many. */
  removeLocation(clientId: string, locationId: string): Promise<number>
}

/** What kind of third-party credential: API key / basic fields, or an OAuth 2 access token. */
export type CredentialKind = 'basic' | 'oauth2'

/** A third-party credential from HighLevel's external authentication, decrypted (memory only). */
export interface ExternalCredential {
  clientId: string
  /** The sub-account, for a location install; `null` for an agency's credential. */
  locationId: string | null
  /** The agency, when HighLevel sent it (agency installs). */
  companyId: string | null
  kind: CredentialKind
  /** The secret part: the user's fields (`apiKey`, `username`, `password`…) or `{accessToken}`. */
  secret: Record<string, string>
  /** What is not secret: which locations an agency's credential covers, field names. */
  details: CredentialDetails
  createdAt: Date
  updatedAt: Date
}

/** The non-secret part of a stored credential. */
export interface CredentialDetails {
  /** Locations picked at install (`locationId` of the request), when HighLevel sent them. */
  locationIds?: string[] | null
  approveAllLocations?: boolean | null
  excludedLocations?: string[] | null
}

/** Third-party credentials, encrypted like tokens (AES-256-GCM, bound to their row). */
export interface CredentialStore {
  /** Stores (or replaces) the credential of a location or an agency. */
  put(input: Omit<ExternalCredential, 'createdAt' | 'updatedAt'>): Promise<void>
  /** The credential stored for exactly that location (`{locationId}`) or agency (`{companyId}`). */
  get(clientId: string, owner: { locationId: string } | { companyId: string }): Promise<ExternalCredential | undefined>
  delete(clientId: string, owner: { locationId: string } | { companyId: string }): Promise<boolean>
}

/** One external-billing report, as sent to `POST /oauth/billing/webhook` (never the client secret). */
export interface BillingReportRecord {
  clientId: string
  /** `location:<id>` or `company:<id>`. */
  resourceKey: string
  /** The payment it reports: its paymentId, subscriptionId, or the caller's reference. */
  reference: string
  status: 'pending' | 'sent' | 'failed'
  body: Record<string, unknown>
  attempts: number
  lastError: string | null
  claimedBy: string | null
  claimedUntil: Date | null
  createdAt: Date
  updatedAt: Date
}

/** External-billing reports: each (resource, payment) is reported to HighLevel once. */
export interface BillingReportStore {
  /**
   * Stores a report before it is sent, or finds the one stored under the same key, and claims it for
   * `owner` unless it was sent or someone holds a live claim. Atomic across processes.
   */
  begin(
    input: { clientId: string; resourceKey: string; reference: string; body: Record<string, unknown> },
    claim: { owner: string; until: Date },
  ): Promise<{ record: BillingReportRecord; claimed: boolean }>
  /** Records the outcome of a claimed send and clears the claim (only while `owner` holds it). */
  complete(
    key: { clientId: string; resourceKey: string; reference: string },
    owner: string,
    outcome: { status: 'pending' | 'sent' | 'failed'; lastError?: string | null; incrementAttempts?: boolean },
  ): Promise<boolean>
  list(filter: { clientId: string; status?: BillingReportRecord['status']; limit?: number }): Promise<BillingReportRecord[]>
}
