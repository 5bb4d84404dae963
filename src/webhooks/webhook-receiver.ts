/**
 * The webhook receiver: verifies, de-duplicates, persists, acknowledges, then processes.
 *
 * Order of checks in {@link WebhookReceiver.receive} — each rejection stores nothing:
 * 1. size (`GHL_WEBHOOK_MAX_BYTES`) → 413 `GHL_WEBHOOK_TOO_LARGE`;
 * 2. signature over the raw bytes (see `verify.ts`) → 401 `GHL_WEBHOOK_SIGNATURE_INVALID`. Only when
 *    `GHL_WEBHOOK_ALLOW_UNSIGNED` is on, not in production, **and** no signature header is present is an
 *    unsigned webhook accepted (with a warning); a present-but-bad signature is always rejected;
 * 3. JSON (and nesting at most {@link MAX_JSON_DEPTH}) → 400 `GHL_WEBHOOK_INVALID`;
 * 4. common fields: `type`; `webhookId` — when absent, a stable id is derived as `sha256:<hex of the raw
 *    body>`, so a byte-identical redelivery is still caught; `timestamp` — required (HighLevel puts it in
 *    every payload, WebhookAuthentication.md; without it no replay window can be enforced) and within
 *    ±`GHL_WEBHOOK_TOLERANCE_MS` of our clock → else 400 `GHL_WEBHOOK_STALE`;
 * 5. the type must be one of {@link WEBHOOK_TYPES} → else 400 `GHL_WEBHOOK_INVALID` "unknown event type";
 * 6. INSTALL/UNINSTALL must match AppInstall.md/AppUninstall.md and carry our `appId` → else 400;
 * 7. `vault.recordWebhook` — the replay guard. A webhookId seen before is answered **200
 *    `{ok: true, duplicate: true}`** and not processed again. 200 rather than 409: HighLevel redelivers
 *    when it did not see our answer (timeouts), and a non-2xx answer would make it retry a webhook we
 *    already hold — the duplicate is harmless, so it is acknowledged. A forged replay cannot do harm
 *    either way: it was already verified and is not processed twice. The record's `expiresAt` (after
 *    which `purgeExpiredWebhooks` deletes it, whatever its status) is receipt + the longest of: 2×tolerance
 *    + 1 minute (by then any replay is rejected as stale anyway), the whole retry schedule
 *    (`intervalMs × (maxAttempts + 1)`, so no retry is cut short), and one hour (an INSTALL waiting for its
 *    code exchange — the OAuth state lives 10 minutes, so an exchange cannot come later than that).
 * 8. 200 `{ok: true, webhookId}`. Processing starts after the answer; as the event was persisted first, a
 *    crash loses nothing (the background loop picks up `pending` events).
 *
 * Processing: INSTALL/UNINSTALL go to {@link LifecycleHandler}; every event (lifecycle ones once handled)
 * is dispatched to the subscribers of its type and of `'*'`, and non-lifecycle events are forwarded to
 * `GHL_WEBHOOK_FORWARD_URL` when set. A failure marks the event `failed` (attempts + 1, lastError) and the
 * background loop ({@link WebhookReceiver.start}) retries it every `retry.intervalMs` up to
 * `retry.maxAttempts` attempts; after that it stays `failed` in the vault for an operator. Delivery to
 * subscribers is at-least-once: a retry runs every subscriber again, so handlers should be idempotent
 * (key on `event.webhookId`). An INSTALL that waits for its code exchange is `waiting`, not failed.
 *
 * Several instances on one database: before processing a `pending` or `failed` event (the first run after
 * `receive`, a retry, a resumption) an instance claims it in the vault (`Vault.claimWebhook`, an atomic
 * conditional UPDATE for the attempt count it saw, valid {@link WEBHOOK_CLAIM_MS}); only the winner
 * processes, and recording the outcome clears the claim. `waiting` events are not claimed.
 */
import { createHash, randomUUID } from 'node:crypto'
import type { Dispatcher } from 'undici'
import { systemClock, type Clock } from '../clock.js'
import type { Config } from '../config.js'
import { GhlError, WebhookRejectedError } from '../errors.js'
import { silentLogger, type Logger } from '../logger.js'
import type { TokenManager } from '../tokens/types.js'
import type { InstallationSummary, Vault, WebhookEventRecord } from '../vault/types.js'
import {
  commonWebhookSchema,
  installSchema,
  isWebhookEventType,
  uninstallSchema,
  type InstallEvent,
  type UninstallEvent,
  type WebhookEvent,
  type WebhookEventMap,
  type WebhookType,
} from './events.js'
import { forwardWebhook } from './forward.js'
import { LifecycleHandler } from './lifecycle.js'
import { WebhookVerifier, type WebhookHeaders } from './verify.js'

/** Deeper JSON is refused (400): no HighLevel event comes close, and it bounds the work of hostile input. */
export const MAX_JSON_DEPTH = 64

/**
 * How long a processing claim on a `pending`/`failed` event holds (see `Vault.claimWebhook`). It is
 * cleared when the processing records its outcome; a claim outlives its holder only if that process died
 * (or a run took longer than this), after which another instance may take the event over.
 */
export const WEBHOOK_CLAIM_MS = 120_000

/** What {@link WebhookReceiver.receive} answers; the route sends `body` as JSON with `status`. */
export interface WebhookReceiveResult {
  status: number
  body: { ok: boolean; code?: string; message?: string; webhookId?: string; duplicate?: boolean }
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
}

type Handler = (event: WebhookEvent) => void | Promise<void>
/** `skipped`: another instance (or an earlier attempt) holds or already made this attempt. */
type Outcome = 'processed' | 'waiting' | 'failed' | 'skipped'
/** An event ready to process: the stored payload plus its (possibly derived) id. */
interface QueuedEvent {
  webhookId: string
  type: string
  payload: Record<string, unknown>
  /** The status in the vault when it was queued (to skip rewriting `waiting`). */
  status: WebhookEventRecord['status']
  /** Failed attempts so far. */
  attempts: number
}

/**
 * Receives HighLevel webhooks. One per process; the HTTP route calls {@link receive} with the raw body.
 *
 * @example
 * const receiver = new WebhookReceiver({ config, vault, tokens, logger })
 * receiver.on('ContactCreate', async (event) => { await crm.upsert(event.id, event.email) })
 * receiver.start()
 * app.post(config.webhookPath, async (req, reply) => {
 *   const { status, body } = await receiver.receive({ rawBody: req.rawBody, headers: req.headers })
 *   return reply.code(status).send(body)
 * })
 */
export class WebhookReceiver {
  readonly #config: Config
  readonly #vault: Vault
  readonly #dispatcher: Dispatcher | undefined
  readonly #clock: Clock
  readonly #logger: Logger
  readonly #verifier: WebhookVerifier
  readonly #lifecycle: LifecycleHandler
  readonly #intervalMs: number
  readonly #maxAttempts: number
  readonly #handlers = new Map<WebhookType, Set<Handler>>()
  /** webhookId → the processing under way for it (one at a time per event in this process). */
  readonly #inFlight = new Map<string, Promise<Outcome>>()
  /** This receiver's name in processing claims (unique per instance). */
  readonly #owner = `receiver:${process.pid}:${randomUUID()}`
  #timer: NodeJS.Timeout | undefined
  #maintenance: Promise<void> | undefined

  /** @throws GhlError `GHL_CONFIG_INVALID` when a configured webhook public key cannot be parsed. */
  constructor(options: WebhookReceiverOptions) {
    this.#config = options.config
    this.#vault = options.vault
    this.#dispatcher = options.dispatcher
    this.#clock = options.clock ?? systemClock
    this.#logger = options.logger ?? silentLogger()
    this.#intervalMs = Math.max(1, options.retry?.intervalMs ?? 30_000)
    this.#maxAttempts = Math.max(1, options.retry?.maxAttempts ?? 5)
    try {
      this.#verifier = new WebhookVerifier({ ed25519: options.config.webhookEd25519PublicKey, rsa: options.config.webhookRsaPublicKey })
    } catch (err) {
      throw new GhlError('GHL_CONFIG_INVALID', `Invalid webhook public key: ${(err as Error).message}`, { cause: err })
    }
    this.#lifecycle = new LifecycleHandler({
      config: options.config,
      vault: options.vault,
      tokens: options.tokens,
      http: { apiUrl: options.config.apiUrl, dispatcher: options.dispatcher, timeoutMs: options.config.tokenRequestTimeoutMs },
      logger: this.#logger,
      mintConcurrency: options.mintConcurrency,
    })
  }

  /**
   * Subscribes to verified events of one type (or `'*'` for all). Returns the unsubscribe function.
   * A handler that throws marks the event failed; it is retried (with every handler) later.
   */
  on<T extends WebhookType>(type: T, handler: (event: WebhookEventMap[T]) => void | Promise<void>): () => void {
    if (type !== '*' && !isWebhookEventType(type)) throw new TypeError(`Unknown webhook event type ${JSON.stringify(type)}`)
    let set = this.#handlers.get(type)
    if (!set) this.#handlers.set(type, (set = new Set()))
    const h = handler as Handler
    set.add(h)
    return () => {
      set.delete(h)
    }
  }

  /** Handles one webhook request end to end (see the module comment for the order of checks). Never throws. */
  async receive(input: { rawBody: Buffer; headers: WebhookHeaders }): Promise<WebhookReceiveResult> {
    try {
      return await this.#receive(input.rawBody, input.headers)
    } catch (err) {
      if (err instanceof WebhookRejectedError) {
        this.#logger.warn({ errorCode: err.code, reason: err.message }, 'webhook rejected')
        return { status: err.status, body: { ok: false, code: err.code, message: err.message } }
      }
      this.#logger.error({ err }, 'webhook could not be recorded')
      return { status: 500, body: { ok: false, code: 'GHL_INTERNAL', message: 'The webhook could not be recorded; please retry' } }
    }
  }

  async #receive(rawBody: Buffer, headers: WebhookHeaders): Promise<WebhookReceiveResult> {
    const config = this.#config
    if (!Buffer.isBuffer(rawBody)) throw new WebhookRejectedError('GHL_WEBHOOK_INVALID', 'Webhook rejected: the body must be the raw request bytes')
    if (rawBody.length > config.webhookMaxBytes) {
      throw new WebhookRejectedError('GHL_WEBHOOK_TOO_LARGE', `Webhook rejected: the body is ${rawBody.length} bytes; at most ${config.webhookMaxBytes} are accepted`)
    }

    if (config.allowUnsignedWebhooks && !config.production && !WebhookVerifier.hasSignatureHeader(headers)) {
      this.#logger.warn('accepting an UNSIGNED webhook because GHL_WEBHOOK_ALLOW_UNSIGNED is on (development only)')
    } else {
      this.#verifier.verify(rawBody, headers)
    }

    const invalid = (message: string): WebhookRejectedError => new WebhookRejectedError('GHL_WEBHOOK_INVALID', `Webhook rejected: ${message}`)
    const depth = jsonDepth(rawBody)
    if (depth > MAX_JSON_DEPTH) throw invalid(`the JSON is nested deeper than ${MAX_JSON_DEPTH} levels`)
    let json: unknown
    try {
      json = JSON.parse(rawBody.toString('utf8'))
    } catch {
      throw invalid('the body is not valid JSON')
    }
    if (json === null || typeof json !== 'object' || Array.isArray(json)) throw invalid('the body is not a JSON object')
    const common = commonWebhookSchema.safeParse(json)
    if (!common.success) throw invalid(`malformed common fields (${describe(common.error.issues)})`)
    const payload = json as Record<string, unknown>
    const { type } = common.data
    const webhookId = common.data.webhookId ?? `sha256:${createHash('sha256').update(rawBody).digest('hex')}`

    const now = this.#clock.now()
    const ts = common.data.timestamp
    if (ts === undefined) {
      throw new WebhookRejectedError('GHL_WEBHOOK_STALE', 'Webhook rejected: it has no timestamp, so its age cannot be checked (HighLevel sends one in every webhook)')
    }
    const at = typeof ts === 'number' ? ts : /^\d{4}-\d{2}-\d{2}T/.test(ts) ? Date.parse(ts) : Number.NaN
    if (!Number.isFinite(at)) throw invalid('timestamp is not an ISO 8601 date')
    if (Math.abs(now - at) > config.webhookToleranceMs) {
      const seconds = Math.round((now - at) / 1000)
      throw new WebhookRejectedError(
        'GHL_WEBHOOK_STALE',
        `Webhook rejected: its timestamp is ${Math.abs(seconds)} s ${seconds >= 0 ? 'old' : 'in the future'}; at most ${Math.round(config.webhookToleranceMs / 1000)} s either way is accepted`,
      )
    }

    if (!isWebhookEventType(type)) throw invalid(`unknown event type ${JSON.stringify(type.slice(0, 100))}`)
    if (type === 'INSTALL' || type === 'UNINSTALL') {
      const result = (type === 'INSTALL' ? installSchema : uninstallSchema).safeParse(payload)
      if (!result.success) throw invalid(`malformed ${type} event (${describe(result.error.issues)})`)
      if (result.data.appId !== config.appId) {
        throw invalid(`the ${type} event is for app ${JSON.stringify(result.data.appId.slice(0, 100))}, not this app (${config.appId})`)
      }
    }

    const receivedAt = new Date(now)
    const outcome = await this.#vault.recordWebhook({
      webhookId,
      type,
      payload,
      locationId: typeof payload.locationId === 'string' ? payload.locationId : null,
      companyId: typeof payload.companyId === 'string' ? payload.companyId : null,
      receivedAt,
      expiresAt: new Date(now + Math.max(2 * config.webhookToleranceMs + 60_000, this.#intervalMs * (this.#maxAttempts + 1), 3_600_000)),
    })
    if (outcome === 'duplicate') {
      this.#logger.info({ webhookId, type }, 'duplicate webhook acknowledged, not processed again')
      return { status: 200, body: { ok: true, duplicate: true, webhookId } }
    }
    this.#logger.info({ webhookId, type }, 'webhook recorded')
    // Begins after this answer is returned (setImmediate): the HTTP layer answers first.
    this.#schedule({ webhookId, type, payload, status: 'pending', attempts: 0 }, true)
    return { status: 200, body: { ok: true, webhookId } }
  }

  /**
   * Called by the install callback after it stored an installation: completes INSTALL events that
   * arrived before the code exchange (and are `waiting` for this location or company).
   */
  async onInstallationStored(installation: InstallationSummary): Promise<void> {
    const waiting = await this.#vault.listWebhooks({ status: 'waiting', limit: 1000 })
    const matches = waiting.filter(
      (w) =>
        (installation.locationId !== null && w.locationId === installation.locationId) ||
        w.companyId === installation.companyId ||
        // A location INSTALL without companyId (AppInstall.md: "via future locations") may be waiting for any agency.
        (installation.locationId === null && w.companyId === null),
    )
    await Promise.all(matches.map((w) => this.#schedule(toQueued(w), false)))
  }

  /** Resolves when nothing is being processed (tests). */
  async idle(): Promise<void> {
    while (this.#inFlight.size > 0 || this.#maintenance) {
      await Promise.allSettled([...this.#inFlight.values(), this.#maintenance])
    }
  }

  /** Starts the background loop: retries failed events, resumes pending ones, re-checks waiting ones. */
  start(): void {
    if (this.#timer) return
    this.#timer = setInterval(() => void this.runMaintenance(), this.#intervalMs)
    this.#timer.unref()
  }

  /** Stops the background loop and waits for work under way. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
    await this.idle()
  }

  /**
   * One pass of the background loop (public so tests and operators can run it on demand):
   * `failed` events with attempts left are retried; `pending` ones older than one interval (their process
   * died before processing) are resumed; `waiting` ones are re-checked; expired records are purged.
   */
  runMaintenance(): Promise<void> {
    this.#maintenance ??= this.#maintain()
      .catch((err: unknown) => this.#logger.error({ err }, 'webhook maintenance failed'))
      .finally(() => {
        this.#maintenance = undefined
      })
    return this.#maintenance
  }

  async #maintain(): Promise<void> {
    const now = this.#clock.now()
    const jobs: Promise<unknown>[] = []
    for (const record of await this.#vault.listWebhooks({ status: 'failed', limit: 500 })) {
      if (record.attempts < this.#maxAttempts) jobs.push(this.#schedule(toQueued(record), false))
    }
    for (const record of await this.#vault.listWebhooks({ status: 'pending', limit: 500 })) {
      if (!this.#inFlight.has(record.webhookId) && record.receivedAt.getTime() <= now - this.#intervalMs) {
        jobs.push(this.#schedule(toQueued(record), false))
      }
    }
    for (const record of await this.#vault.listWebhooks({ status: 'waiting', limit: 500 })) {
      jobs.push(this.#schedule(toQueued(record), false))
    }
    await Promise.allSettled(jobs)
    await this.#vault.purgeExpiredWebhooks(new Date(now))
  }

  /**
   * Processes an event, one run at a time per webhookId in this process. A run requested while another is
   * under way follows it, unless that one processed the event (so it is never processed twice here).
   * Across processes, a `pending` or `failed` event is first claimed in the vault (atomically, for the
   * attempt count it was listed with): only the instance whose claim succeeds processes it.
   */
  #schedule(event: QueuedEvent, deferred: boolean): Promise<Outcome> {
    const previous = this.#inFlight.get(event.webhookId)
    const start = previous
      ? previous.then((o) => (o === 'processed' ? 'skip' : 'run'))
      : deferred
        ? new Promise<'run'>((resolve) => setImmediate(() => resolve('run')))
        : Promise.resolve('run' as const)
    const run: Promise<Outcome> = start
      .then(async (go): Promise<Outcome> => {
        if (go === 'skip') return 'processed'
        if (!(await this.#claim(event))) return 'skipped'
        return this.#process(event)
      })
      .finally(() => {
        if (this.#inFlight.get(event.webhookId) === run) this.#inFlight.delete(event.webhookId)
      })
    this.#inFlight.set(event.webhookId, run)
    return run
  }

  /** Claims a `pending`/`failed` event for this instance; `waiting` ones need no claim. Never throws. */
  async #claim(event: QueuedEvent): Promise<boolean> {
    if (event.status !== 'pending' && event.status !== 'failed') return true
    const now = this.#clock.now()
    try {
      const claimed = await this.#vault.claimWebhook(event.webhookId, this.#owner, new Date(now + WEBHOOK_CLAIM_MS), {
        now: new Date(now),
        attempts: event.attempts,
      })
      if (!claimed) this.#logger.debug({ webhookId: event.webhookId }, 'webhook claimed elsewhere (or already handled); not processed here')
      return claimed
    } catch (err) {
      // The maintenance loop tries again later; the event stays as it is in the vault.
      this.#logger.error({ err, webhookId: event.webhookId }, 'could not claim the webhook for processing')
      return false
    }
  }

  async #process(queued: QueuedEvent): Promise<Outcome> {
    const event = { ...queued.payload, type: queued.type, webhookId: queued.webhookId } as WebhookEvent
    const { webhookId, type } = queued
    try {
      if (type === 'INSTALL' || type === 'UNINSTALL') {
        let outcome = await this.#lifecycle.handle(event as InstallEvent | UninstallEvent)
        if (outcome === 'waiting') {
          if (queued.status !== 'waiting') {
            await this.#vault.updateWebhook(webhookId, { status: 'waiting' })
            queued.status = 'waiting'
            // The installation may have been stored (and onInstallationStored run) between the check and
            // the write above; look once more now that the event is visibly waiting, so it cannot be missed.
            outcome = await this.#lifecycle.handle(event as InstallEvent | UninstallEvent)
          }
          if (outcome === 'waiting') {
            this.#logger.info({ webhookId, type }, 'INSTALL webhook waits for the code exchange')
            return 'waiting'
          }
        }
      }
      await this.#dispatch(event)
      if (this.#config.webhookForwardUrl && type !== 'INSTALL' && type !== 'UNINSTALL') {
        await forwardWebhook(this.#config.webhookForwardUrl, event, { dispatcher: this.#dispatcher, timeoutMs: this.#config.requestTimeoutMs })
      }
      await this.#vault.updateWebhook(webhookId, { status: 'processed', lastError: null })
      this.#logger.info({ webhookId, type }, 'webhook processed')
      return 'processed'
    } catch (err) {
      const message = (err instanceof Error ? err.message : String(err)).slice(0, 1000)
      const attempts = queued.attempts + 1
      queued.attempts = attempts
      queued.status = 'failed'
      try {
        await this.#vault.updateWebhook(webhookId, { status: 'failed', lastError: message, incrementAttempts: true })
        if (attempts >= this.#maxAttempts) {
          // Given up: kept `failed` in the vault until it expires, and in the audit log for good.
          this.#logger.error({ err, webhookId, type, attempts }, 'webhook processing failed; giving up after the last attempt')
          await this.#vault.audit({ installationId: null, action: 'webhook.failed', detail: { webhookId, type, attempts, lastError: message } })
        } else {
          this.#logger.warn({ err, webhookId, type, attempts }, 'webhook processing failed; will retry')
        }
      } catch (updateErr) {
        this.#logger.error({ err: updateErr, webhookId }, 'could not mark the webhook failed')
      }
      return 'failed'
    }
  }

  async #dispatch(event: WebhookEvent): Promise<void> {
    const handlers = [...(this.#handlers.get(event.type) ?? []), ...(this.#handlers.get('*') ?? [])]
    const errors: unknown[] = []
    for (const handler of handlers) {
      try {
        await handler(event)
      } catch (err) {
        errors.push(err)
      }
    }
    if (errors.length === 1) throw errors[0]
    if (errors.length > 1) throw new AggregateError(errors, `${errors.length} webhook handlers failed`)
  }

  /** Stored events for an operator (`ghl-connect webhooks list`): of any status or of one, newest first. */
  list(filter: { status?: WebhookEventRecord['status']; limit?: number } = {}): Promise<WebhookEventRecord[]> {
    return this.#vault.listRecentWebhooks(filter)
  }

  /**
   * Processes a stored event again, as a fresh attempt, whatever its status (an operator's replay:
   * `ghl-connect webhooks replay ID`): lifecycle handling, this receiver's subscribers, forwarding, and the
   * outcome recorded like any attempt. A `pending`/`failed` event is claimed first, so it is `skipped` while
   * another instance holds it. `undefined` when no event with this id is stored.
   */
  async replay(webhookId: string): Promise<{ webhookId: string; type: string; outcome: 'processed' | 'waiting' | 'failed' | 'skipped' } | undefined> {
    const [record] = await this.#vault.listRecentWebhooks({ webhookId, limit: 1 })
    if (!record) return undefined
    return { webhookId, type: record.type, outcome: await this.#schedule(toQueued(record), false) }
  }
}

function toQueued(record: WebhookEventRecord): QueuedEvent {
  const payload = record.payload && typeof record.payload === 'object' ? (record.payload as Record<string, unknown>) : {}
  return { webhookId: record.webhookId, type: record.type, payload, status: record.status, attempts: record.attempts }
}

function describe(issues: readonly { path: readonly PropertyKey[]; message: string }[]): string {
  return issues
    .slice(0, 5)
    .map((i) => `${i.path.map(String).join('.') || 'body'}: ${i.message}`)
    .join('; ')
}

/** The maximum nesting of `{`/`[` outside strings, scanning bytes (no parse, no recursion). */
function jsonDepth(bytes: Buffer): number {
  let depth = 0
  let max = 0
  let inString = false
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]
    if (inString) {
      if (c === 0x5c) i++ // backslash: skip the escaped byte
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) max = depth
      if (max > MAX_JSON_DEPTH) return max
    } else if (c === 0x7d || c === 0x5d) depth--
  }
  return max
}
