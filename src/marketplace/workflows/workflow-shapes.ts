/**
 * The shapes of HighLevel's Marketplace workflow actions and triggers, each in one zod schema.
 *
 * NOT VERIFIED against HighLevel's API reference: none of these is in HighLevel's OpenAPI files or in
 * the reference copy under `shared/reference/highlevel/` (FACTS.md: "Shapes are from community code,
 * not HighLevel's docs: treat as uncertain"). Sources:
 * - the action call `{data, extras: {locationId, contactId, workflowId}, meta: {key, version}}`, branch
 *   payloads (`data.branches`), `branchId` in the answer, and the trigger subscription
 *   `{triggerData: {id, key, filters, eventType, targetUrl}, meta: {key, version}, extras: {locationId,
 *   workflowId, companyId}}` with filters `{field, id, operator, title, type, value}`: HighLevel's
 *   Marketplace-modules pages "CustomActions" and "CustomTriggers", as captured in community
 *   repositories (not in our copy of the docs);
 * - `companyId` in action extras: FACTS.md;
 * - the resume call of a paused action (`POST /workflows-marketplace/actions/resume-internal-action`,
 *   `{success, successMessage, executionResponse, extras}`; extras with `stepId`, `statusId`,
 *   `stepIndex`, `key`) and trigger target URLs on `services.leadconnectorhq.com/workflows-marketplace/
 *   triggers/execute/{locationId}/{triggerId}`: community code only.
 * Everything is parsed leniently: fields HighLevel adds are kept, and only what the connector needs
 * is required.
 */
import { z } from 'zod'

const id = z.string().min(1)
/** `meta.version` is a string in the samples ("1.0", "2.4"); a number is taken too. */
const version = z.union([z.string(), z.number().transform(String)]).optional()

/** `extras` of an action call: where the workflow runs. */
export const actionExtras = z.looseObject({
  locationId: id,
  companyId: z.string().optional(),
  workflowId: z.string().optional(),
  contactId: z.string().optional(),
})
export type ActionExtras = z.infer<typeof actionExtras>

/** One branch of a multi-branch action (`data.branches[]`). */
export const actionBranch = z.looseObject({
  id,
  name: z.string().optional(),
  fields: z.record(z.string(), z.unknown()).optional(),
})
export type ActionBranch = z.infer<typeof actionBranch>

/** The body HighLevel POSTs to an action's URL. `data` holds the action's fields by their reference key. */
export const actionCall = z.looseObject({
  data: z.record(z.string(), z.unknown()).default({}),
  extras: actionExtras,
  meta: z.looseObject({ key: z.string().optional(), version }).optional(),
})
export type ActionCall = z.infer<typeof actionCall>

/** What answers an action call: its outputs (custom variables), and the branch to take. */
export const actionAnswer = z.looseObject({ branchId: z.string().min(1).optional() })

/** The body of the resume call of a paused action. */
export const resumeBody = z.object({
  success: z.boolean(),
  successMessage: z.string().optional(),
  errorMessage: z.string().optional(),
  executionResponse: z.record(z.string(), z.unknown()).optional(),
  branchId: z.string().min(1).optional(),
  extras: z.record(z.string(), z.unknown()),
})
export type ResumeBody = z.infer<typeof resumeBody>

/** HighLevel's resume endpoint for paused actions, relative to the API base URL (community code). */
export const RESUME_PATH = '/workflows-marketplace/actions/resume-internal-action'

/** A filter a workflow set on a trigger (`triggerData.filters[]`). */
export const triggerFilter = z.looseObject({
  field: z.string().optional(),
  id: z.string().optional(),
  operator: z.string().optional(),
  value: z.unknown().optional(),
  title: z.string().optional(),
  type: z.string().optional(),
})
export type TriggerFilter = z.infer<typeof triggerFilter>

/** The body HighLevel POSTs to the trigger's subscription URL when a workflow adds, changes or removes it. */
export const triggerSubscription = z
  .object({
    triggerData: z.looseObject({
      id,
      key: id,
      eventType: z.enum(['CREATED', 'UPDATED', 'DELETED']),
      targetUrl: z.string().optional(),
      filters: z.array(triggerFilter).nullable().optional().transform((f) => f ?? []),
    }),
    meta: z.looseObject({ key: z.string().optional(), version }).optional(),
    extras: z.looseObject({ locationId: id, workflowId: id, companyId: z.string().optional() }),
  })
  .superRefine((s, ctx) => {
    if (s.triggerData.eventType !== 'DELETED' && !s.triggerData.targetUrl) {
      ctx.addIssue({ code: 'custom', path: ['triggerData', 'targetUrl'], message: 'targetUrl should not be empty when a trigger is created or updated' })
    }
  })
export type TriggerSubscriptionCall = z.infer<typeof triggerSubscription>
