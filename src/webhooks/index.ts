/** Webhooks: signature verification, replay guard, lifecycle handling, typed subscriptions, forwarding. */
export {
  verifyWebhookSignature,
  WebhookVerifier,
  parseEd25519PublicKey,
  parseRsaPublicKey,
  ED25519_SIGNATURE_HEADER,
  RSA_SIGNATURE_HEADER,
  type WebhookKeys,
  type WebhookHeaders,
  type VerifiedSignature,
} from './verify.js'
export { WebhookReceiver, MAX_JSON_DEPTH, type WebhookReceiverOptions, type WebhookReceiveResult } from './webhook-receiver.js'
export { LifecycleHandler, type LifecycleOptions, type LifecycleOutcome } from './lifecycle.js'
export { forwardWebhook, forwardBody, signStandardWebhook, type ForwardOptions } from './forward.js'
export { FORWARD_RETRY_DELAYS_MS, FORWARD_RETENTION_MS, nextForwardAttemptAt } from './event-queue.js'
export {
  WEBHOOK_TYPES,
  isWebhookEventType,
  type WebhookEventType,
  type WebhookType,
  type WebhookEventMap,
  type WebhookEvent,
  type WebhookEventBase,
  type InstallEvent,
  type UninstallEvent,
  type ContactEventFields,
  type ContactCreateEvent,
  type ContactUpdateEvent,
  type ContactDeleteEvent,
  type GenericWebhookEvent,
} from './events.js'
