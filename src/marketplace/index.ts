/**
 * Marketplace features of HighLevel apps: wallet billing and external billing, workflow actions and
 * triggers, custom menu links, external authentication. The HTTP side (routes HighLevel calls) is
 * framework-neutral here (`MarketplaceRequest` → `MarketplaceAnswer`); `src/server/marketplace-routes.ts`
 * mounts it on Fastify.
 */
export { Billing, billingSettings, type BillingOptions, type BillingDeps, type ChargeResult, type LocationBilling } from './billing/billing-service.js'
export { ChargeError, type ChargeErrorCode } from './billing/charge-error.js'
export { parseChargeInput, type ChargeInput, type ChargeRequest } from './billing/charge-input.js'
export {
  chargeList,
  rebillingConfig,
  walletCharge,
  billingRedirectQuery,
  billingWebhookBody,
  type BillingRedirect,
  type BillingWebhookBody,
  type ChargeList,
  type ChargeQuery,
  type RebillingConfig,
  type UsagePlan,
  type WalletCharge,
} from './billing/billing-shapes.js'
export { ExternalBilling, BILLING_WEBHOOK_PATH, type BillingReport, type BillingReportOutcome } from './billing/external-billing.js'
export { WorkflowActions, buildActionAnswer, resumeWorkflowAction, type ActionContext, type ActionDefinition, type ActionOutcome, type PausedAction, type ResumeResult, type WorkflowActionsOptions } from './workflows/workflow-actions.js'
export { WorkflowTriggers, handleTriggerSubscription, type FireResult, type SubscriptionOutcome, type TriggerDelivery, type WorkflowTriggersOptions } from './workflows/workflow-triggers.js'
export { matchFilters, type FilterVerdict } from './workflows/trigger-filters.js'
export { actionCall, triggerSubscription, resumeBody, RESUME_PATH, type ActionCall, type ActionExtras, type ActionBranch, type TriggerFilter, type TriggerSubscriptionCall } from './workflows/workflow-shapes.js'
export { CustomMenus, createMenusOnInstall, customMenuInput, type CustomMenu, type CustomMenuInput, type CustomMenuUpdate } from './custom-menus.js'
export {
  ExternalAuthEndpoint,
  parseExternalAuth,
  storeCredential,
  credentialForLocation,
  type ExternalAuthOptions,
  type ExternalAuthContext,
  type ExternalCredentialInput,
  type ValidationVerdict,
} from './external-auth.js'
export { StaticHeaders, type IncomingHeaders } from './static-headers.js'
export { errorAnswer, answerFromError, type MarketplaceRequest, type MarketplaceAnswer } from './exchange.js'
export type { LocationClient, MarketplaceHost } from './location-client.js'
