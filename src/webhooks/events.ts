/**
 * The webhook event types ghl-connect accepts, their TypeScript shapes, and the schemas checked on
 * receipt. Every webhook carries `type`, `timestamp` and `webhookId` (WebhookAuthentication.md);
 * app lifecycle events are described in AppInstall.md and AppUninstall.md.
 *
 * @see https://highlevel.stoplight.io/docs/integrations/ — "Webhook Events"
 */
import { z } from 'zod'

/**
 * Every event type HighLevel documents for Marketplace-app webhooks that this connector accepts.
 * A webhook of any other type is rejected (400 `GHL_WEBHOOK_INVALID` "unknown event type"): an app
 * only receives types it subscribed to, so an unknown type is a forgery, a misconfiguration or a new
 * HighLevel event — in that last case add it here.
 */
export const WEBHOOK_TYPES = [
  // App lifecycle (AppInstall.md, AppUninstall.md)
  'INSTALL',
  'UNINSTALL',
  'PLAN_CHANGE',
  'ExternalAuthConnected',
  // Contacts
  'ContactCreate',
  'ContactUpdate',
  'ContactDelete',
  'ContactTagUpdate',
  'ContactDndUpdate',
  // Notes and tasks
  'NoteCreate',
  'NoteUpdate',
  'NoteDelete',
  'TaskCreate',
  'TaskComplete',
  'TaskDelete',
  // Opportunities
  'OpportunityCreate',
  'OpportunityUpdate',
  'OpportunityDelete',
  'OpportunityStatusUpdate',
  'OpportunityStageUpdate',
  'OpportunityAssignedToUpdate',
  'OpportunityMonetaryValueUpdate',
  // Calendars
  'AppointmentCreate',
  'AppointmentUpdate',
  'AppointmentDelete',
  // Conversations
  'InboundMessage',
  'OutboundMessage',
  'ProviderOutboundMessage',
  'ConversationUnreadUpdate',
  'LCEmailStats',
  // Campaigns
  'CampaignStatusUpdate',
  // Locations and users
  'LocationCreate',
  'LocationUpdate',
  'UserCreate',
  'UserUpdate',
  'UserDelete',
  // Payments
  'InvoiceCreate',
  'InvoiceUpdate',
  'InvoiceDelete',
  'InvoiceSent',
  'InvoicePaid',
  'InvoicePartiallyPaid',
  'InvoiceVoid',
  'OrderCreate',
  'OrderStatusUpdate',
  // Products
  'ProductCreate',
  'ProductUpdate',
  'ProductDelete',
  'PriceCreate',
  'PriceUpdate',
  'PriceDelete',
  // Custom objects and associations
  'ObjectSchemaCreate',
  'ObjectSchemaUpdate',
  'RecordCreate',
  'RecordUpdate',
  'RecordDelete',
  'AssociationCreate',
  'AssociationUpdate',
  'AssociationDelete',
  'RelationCreate',
  'RelationDelete',
] as const

/** A HighLevel webhook event type. */
export type WebhookEventType = (typeof WEBHOOK_TYPES)[number]
/** What `WebhookReceiver.on` accepts: an event type, or `'*'` for every verified event. */
export type WebhookType = WebhookEventType | '*'

const TYPE_SET: ReadonlySet<string> = new Set(WEBHOOK_TYPES)

/** True when `type` is one of {@link WEBHOOK_TYPES}. */
export function isWebhookEventType(type: string): type is WebhookEventType {
  return TYPE_SET.has(type)
}

/** Fields every webhook carries (WebhookAuthentication.md). `webhookId` may be derived, see the receiver. */
export interface WebhookEventBase {
  type: string
  /** HighLevel's id of this delivery; redeliveries keep it. Derived from the body hash when absent. */
  webhookId: string
  /** ISO 8601, set by HighLevel when it sent the event. */
  timestamp: string
  locationId?: string
  [key: string]: unknown
}

/** `INSTALL` (AppInstall.md): location-level with `locationId` (+ `companyId`, `userId`), agency-level with `companyId` only. */
export interface InstallEvent extends WebhookEventBase {
  type: 'INSTALL'
  appId: string
  companyId?: string
  locationId?: string
  userId?: string
  planId?: string
  trial?: { onTrial?: boolean; trialDuration?: number; trialStartDate?: string }
  isWhitelabelCompany?: boolean
  whitelabelDetails?: { domain?: string; logoUrl?: string }
  companyName?: string
  versionId?: string
  installType?: string
}

/** `PLAN_CHANGE` (PlanChange.md): a paid app's plan changed for a location or company. */
export interface PlanChangeEvent extends WebhookEventBase {
  type: 'PLAN_CHANGE'
  appId: string
  companyId?: string
  locationId?: string
  userId?: string
  currentPlanId?: string
  newPlanId?: string
}

/** `UNINSTALL` (AppUninstall.md): `locationId` for a location, `companyId` only for an agency. */
export interface UninstallEvent extends WebhookEventBase {
  type: 'UNINSTALL'
  appId: string
  companyId?: string
  locationId?: string
}

/** The contact fields of `ContactCreate` / `ContactUpdate` (loosely after contacts.json; all optional but `id`). */
export interface ContactEventFields {
  id: string
  locationId: string
  name?: string
  firstName?: string
  lastName?: string
  email?: string
  phone?: string
  companyName?: string
  address1?: string
  city?: string
  state?: string
  country?: string
  postalCode?: string
  website?: string
  timezone?: string
  source?: string
  dnd?: boolean
  tags?: string[]
  assignedTo?: string
  dateOfBirth?: string
  dateAdded?: string
  customFields?: Array<{ id: string; value?: unknown }>
  attachments?: unknown[]
}

/** `ContactCreate`. */
export interface ContactCreateEvent extends WebhookEventBase, ContactEventFields {
  type: 'ContactCreate'
  locationId: string
}
/** `ContactUpdate`. */
export interface ContactUpdateEvent extends WebhookEventBase, ContactEventFields {
  type: 'ContactUpdate'
  locationId: string
}
/** `ContactDelete`. */
export interface ContactDeleteEvent extends WebhookEventBase, Partial<ContactEventFields> {
  type: 'ContactDelete'
  id: string
  locationId: string
}

/** Any other event: the common fields plus whatever HighLevel sent. */
export interface GenericWebhookEvent<T extends string = string> extends WebhookEventBase {
  type: T
}

type Specific = {
  INSTALL: InstallEvent
  PLAN_CHANGE: PlanChangeEvent
  UNINSTALL: UninstallEvent
  ContactCreate: ContactCreateEvent
  ContactUpdate: ContactUpdateEvent
  ContactDelete: ContactDeleteEvent
}

/** Event type → the event's TypeScript shape (`'*'` → any event). */
export type WebhookEventMap = {
  [K in WebhookEventType]: K extends keyof Specific ? Specific[K] : GenericWebhookEvent<K>
} & { '*': WebhookEvent }

/** Any verified event. */
export type WebhookEvent = { [K in WebhookEventType]: K extends keyof Specific ? Specific[K] : GenericWebhookEvent<K> }[WebhookEventType]

// ---- Schemas checked on receipt ----

/** The fields every webhook must have (`webhookId` optional: derived when absent). */
export const commonWebhookSchema = z.looseObject({
  type: z.string().min(1).max(100),
  webhookId: z.string().min(1).max(200).optional(),
  timestamp: z.union([z.string().max(100), z.number()]).optional(),
  locationId: z.string().min(1).max(100).optional(),
  companyId: z.string().min(1).max(100).optional(),
})

const id = z.string().min(1).max(100)

/** AppInstall.md: needs `appId` and at least `locationId` or `companyId`. */
export const installSchema = z
  .looseObject({
    type: z.literal('INSTALL'),
    appId: id,
    companyId: id.optional(),
    locationId: id.optional(),
    userId: z.string().optional(),
    planId: z.string().optional(),
    trial: z.looseObject({}).optional(),
    isWhitelabelCompany: z.boolean().optional(),
    whitelabelDetails: z.looseObject({}).optional(),
    companyName: z.string().optional(),
    versionId: z.string().optional(),
    installType: z.string().optional(),
  })
  .refine((e) => e.locationId !== undefined || e.companyId !== undefined, {
    message: 'an INSTALL webhook needs a locationId (location install) or a companyId (agency install)',
  })

/** AppUninstall.md: needs `appId` and `locationId` or `companyId`. */
export const uninstallSchema = z
  .looseObject({
    type: z.literal('UNINSTALL'),
    appId: id,
    companyId: id.optional(),
    locationId: id.optional(),
  })
  .refine((e) => e.locationId !== undefined || e.companyId !== undefined, {
    message: 'an UNINSTALL webhook needs a locationId (location uninstall) or a companyId (agency uninstall)',
  })

/** PlanChange.md: needs `appId`, `locationId` or `companyId`, and the new plan. */
export const planChangeSchema = z
  .looseObject({
    type: z.literal('PLAN_CHANGE'),
    appId: id,
    companyId: id.optional(),
    locationId: id.optional(),
    userId: z.string().optional(),
    currentPlanId: z.string().max(200).optional(),
    newPlanId: z.string().min(1).max(200),
  })
  .refine((e) => e.locationId !== undefined || e.companyId !== undefined, {
    message: 'a PLAN_CHANGE webhook needs a locationId or a companyId',
  })
