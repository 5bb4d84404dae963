/**
 * The install flow: send the user to HighLevel with a one-time `state`, then, at the callback, check
 * that state, exchange the code and store the installation — nothing is stored unless every step passed.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1 (authorization code grant)
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-10.12 (state against CSRF)
 */
import { randomBytes } from 'node:crypto'
import type { Dispatcher } from 'undici'
import { z } from 'zod'
import type { Clock } from '../clock.js'
import { systemClock } from '../clock.js'
import type { Config } from '../config.js'
import { GhlError, OAuthError } from '../errors.js'
import { silentLogger, type Logger } from '../logger.js'
import type { Installation, InstallationInput, Vault } from '../vault/types.js'
import { buildAuthorizeUrl } from './authorize-url.js'
import { sanitize } from './http.js'
import { authorizationCodeGrantRequest, processTokenResponse, type TokenResponse } from './token-endpoint.js'

/** How long a `state` stays valid: the user has this long to pick a location on HighLevel. */
export const STATE_TTL_MS = 10 * 60_000

/** Dependencies of {@link InstallFlow}. */
export interface InstallFlowOptions {
  config: Config
  vault: Vault
  dispatcher?: Dispatcher
  clock?: Clock
  logger?: Logger
}

const CallbackQuerySchema = z.object({
  code: z.string().optional(),
  state: z.string().optional(),
  error: z.string().optional(),
  error_description: z.string().optional(),
})

/**
 * `start()` makes the install link; `complete()` handles HighLevel's redirect back.
 *
 * @example
 * const flow = new InstallFlow({ config, vault })
 * const { url } = await flow.start({ returnTo: '/done' })   // redirect the user there
 * // at GET /oauth/callback:
 * const installation = await flow.complete(request.query)
 */
export class InstallFlow {
  readonly #config: Config
  readonly #vault: Vault
  readonly #dispatcher: Dispatcher | undefined
  readonly #clock: Clock
  readonly #logger: Logger

  constructor(options: InstallFlowOptions) {
    this.#config = options.config
    this.#vault = options.vault
    this.#dispatcher = options.dispatcher
    this.#clock = options.clock ?? systemClock
    this.#logger = options.logger ?? silentLogger()
  }

  /** Creates and stores a one-time state (32 random bytes, base64url, valid 10 minutes) and the install URL. */
  async start(options: { returnTo?: string; loginWindowOpenMode?: 'self' } = {}): Promise<{ url: string; state: string }> {
    const state = randomBytes(32).toString('base64url')
    await this.#vault.saveState(state, options.returnTo ? { returnTo: options.returnTo } : {}, new Date(this.#clock.now() + STATE_TTL_MS))
    const url = buildAuthorizeUrl({
      marketplaceUrl: this.#config.marketplaceUrl,
      clientId: this.#config.clientId,
      redirectUri: this.#config.redirectUri,
      scopes: this.#config.scopes,
      state,
      loginWindowOpenMode: options.loginWindowOpenMode,
    })
    return { url, state }
  }

  /**
   * Handles the callback query. Returns the stored installation (with `returnTo` of the state, if any,
   * available from {@link InstallFlow.completeWithState}).
   *
   * @throws GhlError `GHL_BAD_REQUEST` (a parameter is not a single string), OAuthError `GHL_OAUTH_DENIED`
   *   (the user declined), `GHL_OAUTH_STATE_INVALID` (missing, forged, expired or used state),
   *   `GHL_OAUTH_CODE_MISSING`, and every error of {@link processTokenResponse}.
   */
  async complete(query: Record<string, unknown>): Promise<Installation> {
    return (await this.completeWithState(query)).installation
  }

  /** {@link InstallFlow.complete}, also returning the data saved with the state (`returnTo`). */
  async completeWithState(query: Record<string, unknown>): Promise<{ installation: Installation; returnTo: string | undefined }> {
    const parsed = CallbackQuerySchema.safeParse(query)
    if (!parsed.success) {
      const fields = [...new Set(parsed.error.issues.map((i) => String(i.path[0])))].join(', ')
      throw new GhlError('GHL_BAD_REQUEST', `The OAuth callback is malformed: ${fields} must each be a single text value`)
    }
    const { code, state, error, error_description: description } = parsed.data

    if (error !== undefined) {
      // The state is spent either way, so the same link cannot be replayed after a refusal.
      if (state) await this.#vault.consumeState(state)
      const why = description ? ` HighLevel said: ${sanitize(description)}` : ` (${sanitize(error, 60)})`
      throw new OAuthError('GHL_OAUTH_DENIED', `You declined the installation on HighLevel, so the app was not installed.${why}`, {
        oauthError: sanitize(error, 60),
      })
    }
    if (!state) throw new OAuthError('GHL_OAUTH_STATE_INVALID', 'The install request has no state parameter; start the installation again.')
    const data = await this.#vault.consumeState(state)
    if (!data) {
      throw new OAuthError(
        'GHL_OAUTH_STATE_INVALID',
        'The install request is unknown, expired or was already used; start the installation again.',
      )
    }
    if (!code) throw new OAuthError('GHL_OAUTH_CODE_MISSING', 'HighLevel redirected back without an authorization code; start the installation again.')

    const http = { apiUrl: this.#config.apiUrl, dispatcher: this.#dispatcher, timeoutMs: this.#config.tokenRequestTimeoutMs }
    const startedAt = this.#clock.now()
    const tokens = processTokenResponse(
      await authorizationCodeGrantRequest(http, {
        clientId: this.#config.clientId,
        clientSecret: this.#config.clientSecret,
        code,
        redirectUri: this.#config.redirectUri,
        userType: this.#config.userType,
      }),
    )
    const installation = await this.#vault.upsertInstallation(installationInput(this.#config.clientId, tokens, startedAt, 'oauth'))
    // The installation is stored; a failed audit write must not turn a successful install into an error.
    await this.#vault
      .audit({
        installationId: installation.id,
        action: 'installed',
        detail: { locationId: installation.locationId, companyId: installation.companyId, userType: installation.userType },
      })
      .catch((err: unknown) => this.#logger.warn({ installationId: installation.id, err }, 'audit write failed'))
    this.#logger.info(
      { installationId: installation.id, locationId: installation.locationId, companyId: installation.companyId },
      'installation stored',
    )
    return { installation, returnTo: data.returnTo }
  }
}

/**
 * @internal What the vault stores for a token-endpoint answer. `expiresAt` counts from when the request
 * was sent (not when it was answered), so a slow answer never makes us believe a token lives longer.
 */
export function installationInput(clientId: string, tokens: TokenResponse, sentAt: number, source: 'oauth'): InstallationInput {
  return {
    clientId,
    companyId: tokens.companyId,
    locationId: tokens.userType === 'Location' ? (tokens.locationId ?? null) : null,
    userType: tokens.userType,
    userId: tokens.userId,
    scopes: tokens.scope.split(/\s+/).filter(Boolean),
    planId: tokens.planId ?? null,
    isBulkInstallation: tokens.isBulkInstallation ?? false,
    installToFutureLocations: tokens.installToFutureLocations ?? null,
    approveAllLocations: tokens.approveAllLocations ?? null,
    approvedLocations: tokens.approvedLocations ?? [],
    source,
    parentId: null,
    tokens: { accessToken: tokens.access_token, refreshToken: tokens.refresh_token, expiresAt: new Date(sentAt + tokens.expires_in * 1000) },
  }
}
