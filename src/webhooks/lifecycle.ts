/**
 * App lifecycle webhooks: `INSTALL`, `UNINSTALL` and `PLAN_CHANGE` (AppInstall.md, AppUninstall.md,
 * PlanChange.md).
 *
 * What INSTALL carries beyond ids — `planId`, `trial`, `isWhitelabelCompany`, `whitelabelDetails`,
 * `companyName`, `versionId`, `installType` — is stored on the installation it concerns (once it exists).
 * PLAN_CHANGE moves the installation's plan from `currentPlanId` to `newPlanId` (the previous plan is kept
 * in its install details) and is reported as the connector's `planChanged` event.
 *
 * INSTALL, location-level (`locationId`):
 * - the location already has an active installation (its own OAuth one, or an agency-minted one) → nothing to do;
 * - else the company's agency installation is active → mint a location token from it (`POST /oauth/locationToken`,
 *   through the token manager, which stores it);
 * - else the code exchange has not landed yet — HighLevel documents that INSTALL may arrive before it
 *   (FACTS.md) → the event `waits`, and {@link LifecycleHandler.handle} is called again when an
 *   installation is stored (`WebhookReceiver.onInstallationStored`) or by the background loop.
 *
 * INSTALL, agency-level (`companyId` only): needs the agency installation (else waits, as above), then lists
 * every installed location (`GET /oauth/installedLocations`, all pages) and mints a token for each location
 * that has none, at most {@link LifecycleOptions.mintConcurrency} at once. One location failing never blocks
 * the others; the event then fails and the background loop retries it, which mints only what is still missing
 * — so each location is minted once. Future locations (`installToFutureLocations`, stored on the agency row by
 * the code exchange) arrive as location-level INSTALL webhooks and are minted by the rule above.
 *
 * UNINSTALL: the location's installation — or, for `companyId` only, the agency installation and every
 * installation minted from it (`parentId`) — is set `uninstalled` with its tokens wiped, dropped from the
 * token manager's cache and audited; what the app stored for it goes too — its workflow trigger
 * subscriptions (HighLevel no longer runs those workflows for the app) and the third-party credential
 * collected by external authentication. Later calls fail with NotInstalledError. A re-install upserts the same
 * row back to `active` with fresh tokens.
 *
 * A late UNINSTALL never wipes a newer install: when the row is `active` and was last written after the
 * event's `timestamp` (see {@link reinstalledAfter}), the UNINSTALL is skipped (audited
 * `webhook.uninstall.skipped`) and the event is still processed. For an agency, the agency row decides for
 * its minted children too. The wipe itself is a compare-and-swap on the row's `version`, so a re-install
 * landing between the check and the write is seen and re-checked, not wiped.
 */
import type { Config } from '../config.js'
import { GhlError } from '../errors.js'
import type { Logger } from '../logger.js'
import { listInstalledLocations } from '../oauth/installed-locations.js'
import type { OAuthHttp } from '../oauth/http.js'
import type { TokenManager } from '../tokens/types.js'
import type { Installation, InstallationSummary, Vault } from '../vault/types.js'
import type { InstallEvent, PlanChangeEvent, UninstallEvent } from './events.js'

/** What the lifecycle handler needs. */
export interface LifecycleOptions {
  config: Config
  vault: Vault
  tokens: TokenManager
  /** How to reach HighLevel for `/oauth/installedLocations` (the API URL, dispatcher and timeout). */
  http: OAuthHttp
  logger: Logger
  /** Location tokens minted at once during an agency bulk install (default 4). */
  mintConcurrency?: number
  /** Told of every PLAN_CHANGE applied to an installation. */
  onPlanChanged?: (change: { installationId: string; previousPlanId: string | null; planId: string }) => void
}

/** The outcome of handling one lifecycle event. */
export type LifecycleOutcome = 'processed' | 'waiting'

/** Handles INSTALL / UNINSTALL. Stateless between calls: everything it knows is in the vault. */
export class LifecycleHandler {
  readonly #config: Config
  readonly #vault: Vault
  readonly #tokens: TokenManager
  readonly #http: OAuthHttp
  readonly #logger: Logger
  readonly #concurrency: number
  readonly #onPlanChanged: LifecycleOptions['onPlanChanged']
  readonly #locationFlights = new Map<string, Promise<{ installationId: string; minted: boolean }>>()

  constructor(options: LifecycleOptions) {
    this.#config = options.config
    this.#vault = options.vault
    this.#tokens = options.tokens
    this.#http = options.http
    this.#logger = options.logger
    this.#concurrency = Math.max(1, options.mintConcurrency ?? 4)
    this.#onPlanChanged = options.onPlanChanged
  }

  /** Handles one lifecycle event. Throws when something failed (the caller marks the event failed and retries). */
  async handle(event: InstallEvent | UninstallEvent | PlanChangeEvent): Promise<LifecycleOutcome> {
    if (event.type === 'INSTALL') {
      return event.locationId ? this.#installLocation(event, event.locationId) : this.#installAgency(event, event.companyId!)
    }
    if (event.type === 'PLAN_CHANGE') return this.#planChange(event)
    if (event.locationId) await this.#uninstallLocation(event, event.locationId)
    else await this.#uninstallAgency(event, event.companyId!)
    return 'processed'
  }

  async #installLocation(event: InstallEvent, locationId: string): Promise<LifecycleOutcome> {
    const clientId = this.#config.clientId
    const existing = await this.#vault.installations.findByLocation(clientId, locationId)
    if (existing) await this.#storeDetails(existing.id, event)
    if (existing && existing.status === 'active' && existing.tokens) {
      await this.#vault.audit.append({
        installationId: existing.id,
        action: 'webhook.install.already_installed',
        detail: { webhookId: event.webhookId, locationId, source: existing.source },
      })
      return 'processed'
    }
    const agency = await this.#agencyFor(event.companyId)
    if (!agency) return 'waiting'
    const result = await this.#ensureLocation(agency.companyId, locationId)
    if (!existing) await this.#storeDetails(result.installationId, event)
    await this.#vault.audit.append({
      installationId: result.installationId,
      action: result.minted ? 'webhook.install.location_minted' : 'webhook.install.already_installed',
      detail: { webhookId: event.webhookId, locationId, companyId: agency.companyId, parentId: agency.id },
    })
    return 'processed'
  }

  /**
   * Makes sure the location has an active installation, minting one from the agency if not. One at a time
   * per location in this process: an agency consent sends the agency INSTALL *and* one INSTALL per
   * location at once, and the bulk install and those events must not mint the same location twice. The
   * check sits inside the flight, so a caller arriving after a mint finished sees the stored row.
   */
  #ensureLocation(companyId: string, locationId: string): Promise<{ installationId: string; minted: boolean }> {
    const running = this.#locationFlights.get(locationId)
    if (running) return running.then((r) => ({ ...r, minted: false }), () => this.#ensureLocation(companyId, locationId))
    const flight = (async () => {
      const existing = await this.#vault.installations.findByLocation(this.#config.clientId, locationId)
      if (existing && existing.status === 'active' && existing.tokens) return { installationId: existing.id, minted: false }
      const minted = await this.#tokens.mintLocationToken(companyId, locationId)
      return { installationId: minted.id, minted: true }
    })().finally(() => {
      if (this.#locationFlights.get(locationId) === flight) this.#locationFlights.delete(locationId)
    })
    this.#locationFlights.set(locationId, flight)
    return flight
  }

  /**
   * The active agency installation to mint from. With a `companyId`, that company's. Without one
   * (AppInstall.md: installs "via future locations" may omit it), the only active agency installation of
   * this app — or, among several, the only one with `installToFutureLocations`; ambiguity waits.
   */
  async #agencyFor(companyId: string | undefined): Promise<InstallationSummary | undefined> {
    if (companyId) {
      const agency = await this.#vault.installations.findByCompany(this.#config.clientId, companyId)
      return agency && agency.status === 'active' && agency.tokens ? agency : undefined
    }
    const agencies = await this.#vault.installations.agencies(this.#config.clientId, 100)
    if (agencies.length === 1) return agencies[0]
    const future = agencies.filter((a) => a.installToFutureLocations === true)
    return future.length === 1 ? future[0] : undefined
  }

  async #installAgency(event: InstallEvent, companyId: string): Promise<LifecycleOutcome> {
    const agency = await this.#agencyFor(companyId)
    if (!agency) return 'waiting'
    await this.#storeDetails(agency.id, event)
    const grant = await this.#tokens.getAccessToken({ kind: 'company', id: companyId })
    const locations = await listInstalledLocations(this.#http, {
      agencyAccessToken: grant.accessToken,
      companyId,
      appId: this.#config.appId,
      version: this.#config.apiVersion,
      isInstalled: true,
    })
    const ids = [...new Set(locations.filter((l) => l.isInstalled !== false).map((l) => l._id))]
    // Recorded first: a location whose mint fails below is still known to be covered (its first call mints).
    await this.#tokens.coverLocations(agency, ids)

    const failures: { locationId: string; error: unknown }[] = []
    let minted = 0
    let present = 0
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < ids.length) {
        const locationId = ids[next++]!
        try {
          if ((await this.#ensureLocation(companyId, locationId)).minted) minted++
          else present++
        } catch (error) {
          failures.push({ locationId, error })
          this.#logger.warn({ err: error, locationId, companyId, webhookId: event.webhookId }, 'minting a location token failed; will retry')
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(this.#concurrency, ids.length) }, worker))
    await this.#vault.audit.append({
      installationId: agency.id,
      action: 'webhook.install.agency_bulk',
      detail: { webhookId: event.webhookId, companyId, locations: ids.length, minted, alreadyInstalled: present, failed: failures.map((f) => f.locationId) },
    })
    if (failures.length > 0) {
      throw new GhlError(
        'GHL_INTERNAL',
        `Minting location tokens failed for ${failures.length} of ${ids.length} locations (${failures
          .slice(0, 5)
          .map((f) => `${f.locationId}: ${f.error instanceof Error ? f.error.message : String(f.error)}`)
          .join('; ')}); the others are installed`,
        { cause: failures[0]!.error },
      )
    }
    return 'processed'
  }

  /** PLAN_CHANGE: the installation of the location (or agency) moves to `newPlanId`. Unknown → audited only. */
  async #planChange(event: PlanChangeEvent): Promise<LifecycleOutcome> {
    const clientId = this.#config.clientId
    const row = event.locationId
      ? await this.#vault.installations.findByLocation(clientId, event.locationId)
      : await this.#vault.installations.findByCompany(clientId, event.companyId!)
    const planId = event.newPlanId!
    if (!row) {
      await this.#vault.audit.append({
        installationId: null,
        action: 'webhook.plan_change.unknown',
        detail: { webhookId: event.webhookId, locationId: event.locationId ?? null, companyId: event.companyId ?? null, planId },
      })
      return 'processed'
    }
    const previousPlanId = event.currentPlanId ?? row.planId
    await this.#vault.installations.setDetails(row.id, {
      planId,
      installInfo: { previousPlanId: previousPlanId ?? null, planChangedAt: typeof event.timestamp === 'string' ? event.timestamp : new Date().toISOString() },
    })
    await this.#vault.audit.append({ installationId: row.id, action: 'plan_changed', detail: { webhookId: event.webhookId, previousPlanId: previousPlanId ?? null, planId } })
    this.#logger.info({ installationId: row.id, previousPlanId, planId }, 'plan changed')
    try {
      this.#onPlanChanged?.({ installationId: row.id, previousPlanId: previousPlanId ?? null, planId })
    } catch (err) {
      this.#logger.warn({ err }, 'planChanged listener threw')
    }
    return 'processed'
  }

  /** What INSTALL says about the install (AppInstall.md), kept on the installation. */
  async #storeDetails(installationId: string, event: InstallEvent): Promise<void> {
    const info: Record<string, unknown> = {}
    if (event.trial !== undefined) info.trial = event.trial
    if (event.isWhitelabelCompany !== undefined) info.isWhitelabelCompany = event.isWhitelabelCompany
    if (event.whitelabelDetails !== undefined) info.whitelabelDetails = event.whitelabelDetails
    if (event.versionId !== undefined) info.versionId = event.versionId
    if (event.installType !== undefined) info.installType = event.installType
    await this.#vault.installations.setDetails(installationId, {
      ...(event.planId !== undefined ? { planId: event.planId } : {}),
      ...(event.companyName !== undefined ? { companyName: event.companyName } : {}),
      ...(Object.keys(info).length > 0 ? { installInfo: info } : {}),
    })
  }

  async #uninstallLocation(event: UninstallEvent, locationId: string): Promise<void> {
    const row = await this.#vault.installations.findByLocation(this.#config.clientId, locationId)
    if (!row) {
      await this.#vault.audit.append({ installationId: null, action: 'webhook.uninstall.unknown', detail: { webhookId: event.webhookId, locationId } })
      return
    }
    const at = eventTime(event)
    await this.#uninstall(row, event, (current) => reinstalledAfter(current, at))
  }

  async #uninstallAgency(event: UninstallEvent, companyId: string): Promise<void> {
    const agency = await this.#vault.installations.findByCompany(this.#config.clientId, companyId)
    if (!agency) {
      await this.#vault.audit.append({ installationId: null, action: 'webhook.uninstall.unknown', detail: { webhookId: event.webhookId, companyId } })
      return
    }
    const at = eventTime(event)
    // The agency first: once its tokens are wiped nothing new can be minted from it while the children go.
    // A skipped agency (re-installed after the event) keeps its children too: they belong to the new install.
    if ((await this.#uninstall(agency, event, (current) => reinstalledAfter(current, at))) === 'skipped') return
    // The children follow the agency's fate, whatever their own updatedAt (a child re-minted from the old
    // agency grant after the event is still from the uninstalled grant) — unless the agency has been
    // re-installed in the meantime (checked again whenever a child changes under us).
    const agencyReinstalled = async (): Promise<string | undefined> => {
      const now = await this.#vault.installations.get(agency.id)
      const reason = now ? reinstalledAfter(now, at) : undefined
      return reason && `the agency installation: ${reason}`
    }
    const children = await this.#vault.installations.list({ parentId: agency.id })
    for (const child of children) {
      await this.#uninstall(child, event, (_current, attempt) => (attempt === 1 ? undefined : agencyReinstalled()))
    }
  }

  /**
   * Wipes one row unless `skip` gives a reason not to (then audits `webhook.uninstall.skipped`). The write
   * is a compare-and-swap on the version read: when the row changed meanwhile (a refresh or a re-install),
   * it is read again and `skip` asked again, a few times; then the event fails and is retried.
   */
  async #uninstall(
    row: InstallationSummary | Installation,
    event: UninstallEvent,
    skip: (current: InstallationSummary, attempt: number) => string | undefined | Promise<string | undefined>,
  ): Promise<'wiped' | 'skipped'> {
    let current: InstallationSummary | Installation = row
    for (let attempt = 1; ; attempt++) {
      const reason = await skip(current, attempt)
      if (reason !== undefined) {
        await this.#vault.audit.append({
          installationId: current.id,
          action: 'webhook.uninstall.skipped',
          detail: {
            webhookId: event.webhookId,
            locationId: current.locationId,
            companyId: current.companyId,
            source: current.source,
            reason,
            eventTimestamp: event.timestamp,
            updatedAt: current.updatedAt.toISOString(),
          },
        })
        return 'skipped'
      }
      const hasTokens = 'tokens' in current ? current.tokens !== null : current.expiresAt !== null
      if (current.status === 'uninstalled' && !hasTokens) break
      const updated = await this.#vault.installations.setStatus(current.id, 'uninstalled', {
        wipeTokens: true,
        reason: 'UNINSTALL webhook',
        expectedVersion: current.version,
      })
      if (updated) break
      const fresh = await this.#vault.installations.get(current.id)
      if (!fresh) break // deleted meanwhile: nothing left to wipe
      if (attempt >= MAX_UNINSTALL_ATTEMPTS) {
        throw new GhlError(
          'GHL_VAULT_CONFLICT',
          `Installation ${current.id} kept changing while the UNINSTALL webhook was applied (${attempt} attempts); the event will be retried`,
        )
      }
      current = fresh
    }
    this.#tokens.invalidate(current.id)
    const clientId = this.#config.clientId
    const triggers = current.locationId ? await this.#vault.triggers.removeLocation(clientId, current.locationId) : 0
    const credential = await this.#vault.credentials.delete(clientId, current.locationId ? { locationId: current.locationId } : { companyId: current.companyId })
    await this.#vault.audit.append({
      installationId: current.id,
      action: 'webhook.uninstall',
      detail: {
        webhookId: event.webhookId,
        locationId: current.locationId,
        companyId: current.companyId,
        source: current.source,
        triggerSubscriptionsRemoved: triggers,
        credentialRemoved: credential,
      },
    })
    return 'wiped'
  }
}

/** Compare-and-swap rounds of one UNINSTALL wipe before the event fails (and is retried later). */
const MAX_UNINSTALL_ATTEMPTS = 5

/** The event's `timestamp` in ms since the epoch (ISO 8601 string, or epoch ms), or `undefined` if unreadable. */
function eventTime(event: UninstallEvent): number | undefined {
  const ts: unknown = event.timestamp
  const at = typeof ts === 'number' ? ts : typeof ts === 'string' ? Date.parse(ts) : Number.NaN
  return Number.isFinite(at) ? at : undefined
}

/**
 * Why an UNINSTALL sent at `eventAt` must not wipe `row`, or `undefined` when it must.
 *
 * The vault has no "installed at" field, so the rule is: the row is `active` and was last written
 * (`updatedAt`) after the event was sent. That is either a (re-)install — the code exchange or an agency
 * mint upserts the row — which happened after the uninstall, so the UNINSTALL is stale (processed late:
 * retried after a failure, or delivered late) and wiping would destroy the fresh install; or a token
 * refresh after the uninstall, which only succeeds if the grant still works at HighLevel, i.e. the app is
 * installed again — so skipping is right in that case too. A row that is not `active` (e.g.
 * `needs_reauthorization` after a refused refresh) is always wiped, as is any row when the timestamp
 * cannot be read (the receiver rejects such events anyway).
 *
 * Residual: the comparison mixes HighLevel's clock (`timestamp`) and ours (`updatedAt`); a row written
 * within the clock skew before the event could be kept. Its tokens are revoked at HighLevel, so its next
 * refresh fails and marks it `needs_reauthorization`.
 */
function reinstalledAfter(row: InstallationSummary, eventAt: number | undefined): string | undefined {
  if (eventAt === undefined || row.status !== 'active') return undefined
  if (row.updatedAt.getTime() <= eventAt) return undefined
  return 'the installation is active and was (re)installed or refreshed after the UNINSTALL event was sent'
}
