/**
 * The webhook receiver: verifies, de-duplicates, persists, acknowledges, then processes. A thin facade:
 * - `parse-webhook.ts` — the checks, pure (size, signature, depth, JSON, timestamp, schema);
 * - `event-queue.ts` — processing after the answer, claims, retries, maintenance;
 * - `lifecycle.ts` — INSTALL / UNINSTALL / PLAN_CHANGE;
 * - `subscribers.ts` — typed subscriptions.
 *
 * Receiving: after {@link parseWebhook}, `vault.webhooks.record` is the replay guard. A webhookId seen
 * before is answered **200 `{ok: true, duplicate: true}`** and not processed again: HighLevel redelivers
 * when it did not see our answer, and since 2026-04-30 retries any non-2xx — the duplicate is harmless,
 * so it is acknowledged. The record's `expiresAt` is receipt + the longest of: 2×tolerance + 1 minute (by
 * then any replay is stale anyway), the whole retry schedule, and one hour (an INSTALL waiting for its code
 * exchange). When the database does not answer, the webhook is refused with **503 and Retry-After** —
 * nothing is acknowledged that is not stored, and HighLevel delivers it again later.
 */
import type { Dispatcher } from 'undici'
import { systemClock, type Clock } from '../clock.js'
import type { Config } from '../config.js'
import { GhlError, WebhookRejectedError } from '../errors.js'
import { silentLogger, type Logger } from '../logger.js'
import type { TokenManager } from '../tokens/types.js'
import type { InstallationSummary, Vault, WebhookEventRecord, WebhookStatus } from '../vault/types.js'
import type { WebhookEventMap, WebhookType } from './events.js'
import { EventQueue, FORWARD_RETENTION_MS, toQueued, WEBHOOK_CLAIM_MS, type Outcome } from './event-queue.js'
import { LifecycleHandler } from './lifecycle.js'
import { MAX_JSON_DEPTH, parseWebhook } from './parse-webhook.js'
import { Subscribers } from './subscribers.js'
import { WebhookVerifier, type WebhookHeaders } from './verify.js'

export { MAX_JSON_DEPTH, WEBHOOK_CLAIM_MS }

/** What {@link WebhookReceiver.receive} answers; the route sends `body` as JSON with `status`. */
export interface WebhookReceiveResult {
  status: number
  /** Headers to send (e.g. Retry-After with a 503). */
  headers?: Record<string, string>
  body: { ok: boolean; code?: string; message?: string; status?: number; webhookId?: string; duplicate?: boolean }
}

/** Options of {@link WebhookReceiver}. */
export interface WebhookReceiverOptions {
  config: Config
  vault: Vault
  tokens: TokenManager
  /** undici dispatcher for `/oauth/installedLocations` and forwarding (tests, proxies). */
  dispatcher?: Dispatcher
  clock?: Clock
  logger?: Logger
  /** Background retry of failed events: every `intervalMs` (default 30 s), at most `maxAttempts` (default 5) attempts in all. */
  retry?: { intervalMs?: number; maxAttempts?: number }
  /** Location tokens minted at once during an agency bulk install (default 4). */
  mintConcurrency?: number
  /** Lifecycle events for the connector (`planChanged`). */
  onPlanChanged?: (change: { installationId: string; previousPlanId: string | null; planId: string }) => void
}

/**
 * Receives HighLevel webhooks. One per process; the HTTP route calls {@link receive} with the raw body.
 *
 * @example
 * const receiver = new WebhookReceiver({ config, vault, tokens, logger })
 * receiver.on('ContactCreate', async (event) => { await crm.upsert(event.id, event.email) })
 * receiver.start()
 * app.post(config.webhookPath, async (req, reply) => {
 *   const { status, headers, body } = await receiver.receive({ rawBody: req.rawBody, headers: req.headers })
 *   return reply.code(status).headers(headers ?? {}).send(body)
 * })
 */
export class WebhookReceiver {
  readonly #config: Config
  readonly #vault: Vault
  readonly #clock: Clock
  readonly #logger: Logger
  readonly #verifier: WebhookVerifier
  readonly #subscribers = new Subscribers()
  readonly #queue: EventQueue
  readonly #intervalMs: number
  readonly #maxAttempts: number
  #warnedNoEd25519 = false

  /** @throws GhlError `GHL_CONFIG_INVALID` when a configured webhook public key cannot be parsed. */
  constructor(options: WebhookReceiverOptions) {
    this.#config = options.config
    this.#vault = options.vault
    this.#clock = options.clock ?? systemClock
    this.#logger = options.logger ?? silentLogger()
    this.#intervalMs = Math.max(1, options.retry?.intervalMs ?? 30_000)
    this.#maxAttempts = Math.max(1, options.retry?.maxAttempts ?? 5)
    this.#verifier = new WebhookVerifier({ ed25519: options.config.webhookEd25519PublicKeys, rsa: options.config.webhookRsaPublicKey })
    const lifecycle = new LifecycleHandler({
      config: options.config,
      vault: options.vault,
      tokens: options.tokens,
      http: { apiUrl: options.config.apiUrl, dispatcher: options.dispatcher, timeoutMs: options.config.tokenRequestTimeoutMs, version: options.config.oauthVersion },
      logger: this.#logger,
      mintConcurrency: options.mintConcurrency,
      onPlanChanged: options.onPlanChanged,
    })
    this.#queue = new EventQueue({
      config: options.config,
      vault: options.vault,
      clock: this.#clock,
      logger: this.#logger,
      dispatcher: options.dispatcher,
      lifecycle,
      subscribers: this.#subscribers,
      intervalMs: this.#intervalMs,
      maxAttempts: this.#maxAttempts,
    })
  }

  /** Whether an Ed25519 key is configured: HighLevel signs with `x-ghl-signature` (Ed25519) only since 2026-07-01. */
  get ed25519Configured(): boolean {
    return this.#verifier.hasEd25519
  }

  /**
   * Subscribes to verified events of one type (or `'*'` for all). Returns the unsubscribe function.
   * A handler that throws marks the event failed; it is retried (with every handler) later.
   */
  on<T extends WebhookType>(type: T, handler: (event: WebhookEventMap[T]) => void | Promise<void>): () => void {
    return this.#subscribers.on(type, handler)
  }

  /** Handles one webhook request end to end (see the file comment). Never throws. */
  async receive(input: { rawBody: Buffer; headers: WebhookHeaders }): Promise<WebhookReceiveResult> {
    try {
      return await this.#receive(input.rawBody, input.headers)
    } catch (err) {
      if (err instanceof WebhookRejectedError) {
        this.#warnMissingKey(err, input.headers)
        this.#logger.warn({ errorCode: err.code, reason: err.message }, 'webhook rejected')
        return { status: err.status, body: { ok: false, code: err.code, message: err.message, status: err.status } }
      }
      if (err instanceof GhlError && err.status === 503) {
        const retryAfter = Math.max(1, Math.ceil((err.retryAfterMs ?? 5000) / 1000))
        this.#logger.warn({ errorCode: err.code, reason: err.message }, 'webhook not recorded (a dependency is unavailable); HighLevel will deliver it again')
        return {
          status: 503,
          headers: { 'retry-after': String(retryAfter) },
          body: { ok: false, code: err.code, message: `The webhook could not be stored now (${err.message}); deliver it again later`, status: 503 },
        }
      }
      this.#logger.error({ err }, 'webhook could not be recorded')
      return { status: 500, body: { ok: false, code: 'GHL_INTERNAL', message: 'The webhook could not be recorded; please retry', status: 500 } }
    }
  }

  async #receive(rawBody: Buffer, headers: WebhookHeaders): Promise<WebhookReceiveResult> {
    const config = this.#config
    const now = this.#clock.now()
    const parsed = parseWebhook(rawBody, headers, { config, verifier: this.#verifier, now })
    if (parsed.verification === 'unsigned') this.#logger.warn('accepting an UNSIGNED webhook because GHL_WEBHOOK_ALLOW_UNSIGNED is on (development only)')
    const { webhookId, type, payload } = parsed
    const outcome = await this.#vault.webhooks.record({
      webhookId,
      type,
      payload,
      locationId: typeof payload.locationId === 'string' ? payload.locationId : null,
      companyId: typeof payload.companyId === 'string' ? payload.companyId : null,
      receivedAt: new Date(now),
      expiresAt: new Date(
        now +
          Math.max(
            2 * config.webhookToleranceMs + 60_000,
            this.#intervalMs * (this.#maxAttempts + 1),
            3_600_000,
            // Forwarded events are retried until the app acknowledges them, for as long as they are kept.
            config.webhookForwardUrl ? FORWARD_RETENTION_MS : 0,
          ),
      ),
    })
    if (outcome === 'duplicate') {
      this.#logger.info({ webhookId, type }, 'duplicate webhook acknowledged, not processed again')
      return { status: 200, body: { ok: true, duplicate: true, webhookId } }
    }
    this.#logger.info({ webhookId, type }, 'webhook recorded')
    // Begins after this answer is returned (setImmediate): the HTTP layer answers first.
    void this.#queue.schedule({ webhookId, type, payload, status: 'pending', attempts: 0 }, true)
    return { status: 200, body: { ok: true, webhookId } }
  }

  /**
   * A webhook refused because no Ed25519 key is configured while HighLevel signs with Ed25519 only:
   * correct, but the operator must hear why — once, with what to configure.
   */
  #warnMissingKey(err: WebhookRejectedError, headers: WebhookHeaders): void {
    if (this.#warnedNoEd25519 || this.#verifier.hasEd25519 || err.code !== 'GHL_WEBHOOK_SIGNATURE_INVALID') return
    if (!headers || headers['x-ghl-signature'] === undefined) return
    this.#warnedNoEd25519 = true
    this.#logger.error(
      'webhooks signed with x-ghl-signature (Ed25519) are refused because GHL_WEBHOOK_ED25519_PUBLIC_KEY is not set: HighLevel signs with Ed25519 only since 2026-07-01 — set it to the public key from HighLevel\'s webhook authentication guide',
    )
  }

  /**
   * Called by the install callback after it stored an installation: completes INSTALL events that
   * arrived before the code exchange (and are `waiting` for this location or company).
   */
  async onInstallationStored(installation: InstallationSummary): Promise<void> {
    const waiting = await this.#vault.webhooks.list({ status: 'waiting', limit: 1000 })
    const matches = waiting.filter(
      (w) =>
        (installation.locationId !== null && w.locationId === installation.locationId) ||
        w.companyId === installation.companyId ||
        // A location INSTALL without companyId (AppInstall.md: "via future locations") may be waiting for any agency.
        (installation.locationId === null && w.companyId === null),
    )
    await Promise.all(matches.map((w) => this.#queue.schedule(toQueued(w), false)))
  }

  /** Stored events for people: newest first, by status and type. */
  list(filter: { status?: WebhookStatus; type?: string; locationId?: string; companyId?: string; limit?: number } = {}): Promise<WebhookEventRecord[]> {
    return this.#vault.webhooks.list({ ...filter, newestFirst: true })
  }

  /**
   * Processes a stored event again, whatever its status (an operator's redelivery to the app's
   * handlers): back to `pending` with its attempts reset, then processed as a fresh delivery.
   *
   * @throws GhlError `GHL_NOT_FOUND` when no such event is stored (or it expired).
   */
  async replay(webhookId: string): Promise<Outcome> {
    const record = await this.#vault.webhooks.get(webhookId)
    if (!record) throw new GhlError('GHL_NOT_FOUND', `No stored webhook event ${webhookId} (never received, or expired)`)
    if (!(await this.#vault.webhooks.requeue(webhookId))) throw new GhlError('GHL_NOT_FOUND', `No stored webhook event ${webhookId}`)
    return this.#queue.schedule({ ...toQueued(record), status: 'pending', attempts: 0 }, false)
  }

  /** Resolves when nothing is being processed (tests, shutdown). */
  idle(): Promise<void> {
    return this.#queue.idle()
  }

  /** Starts the background loop (retries, resumptions, waiting INSTALLs, purge). */
  start(): void {
    this.#queue.start()
  }

  /** Stops the background loop and waits for work under way. */
  stop(): Promise<void> {
    return this.#queue.stop()
  }

  /** One pass of the background loop (public so tests and operators can run it on demand). */
  runMaintenance(): Promise<void> {
    return this.#queue.runMaintenance()
  }

}

