/**
 * The install flow: send the user to HighLevel with a one-time `state`, then, at the callback, check
 * that state, exchange the code and store the installation — nothing is stored unless every step passed.
 *
 * Installs that start on HighLevel's side (the Marketplace listing, an install link HighLevel made)
 * bring `?code=…` with no `state` at all (Authorization.md). They are accepted unless
 * `GHL_INSTALL_REQUIRE_STATE` is on; a callback that carries a state must carry a valid, unused one.
 * Either way an authorization code is exchanged at most once: a replayed code is refused before it
 * reaches HighLevel (which may revoke the tokens of a code used twice, RFC 6749 §4.1.2).
 *
 * One app serves agency and sub-account installs: `user_type` is sent as a hint (`GHL_USER_TYPE`) and
 * the installation stored is what HighLevel's answer says (`userType`, `companyId`, `locationId`, …). When
 * HighLevel insists that `user_type` match the grant, the exchange is retried once with the other kind.
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
import { sanitize, type OAuthHttp } from './http.js'
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

  /**
   * Creates and stores a one-time state (32 random bytes, base64url, valid 10 minutes) and the install URL.
   * `installationId`: a re-authorization (recorded with the state; completing it restores that installation).
   */
  async start(options: { returnTo?: string; loginWindowOpenMode?: 'self'; installationId?: string } = {}): Promise<{ url: string; state: string }> {
    const state = randomBytes(32).toString('base64url')
    const data = { ...(options.returnTo ? { returnTo: options.returnTo } : {}), ...(options.installationId ? { installationId: options.installationId } : {}) }
    await this.#vault.states.save(state, data, new Date(this.#clock.now() + STATE_TTL_MS))
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
   *   (the user declined), `GHL_OAUTH_STATE_INVALID` (forged, expired or used state; a missing one when
   *   `requireState`), `GHL_OAUTH_CODE_MISSING`, `GHL_OAUTH_CODE_REUSED`, and every error of
   *   {@link processTokenResponse}.
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
      if (state) await this.#vault.states.consume(state)
      const why = description ? ` HighLevel said: ${sanitize(description)}` : ` (${sanitize(error, 60)})`
      throw new OAuthError('GHL_OAUTH_DENIED', `You declined the installation on HighLevel, so the app was not installed.${why}`, {
        oauthError: sanitize(error, 60),
      })
    }
    let data: { returnTo?: string; installationId?: string } = {}
    if (state !== undefined && state !== '') {
      const stored = await this.#vault.states.consume(state)
      if (!stored) {
        throw new OAuthError('GHL_OAUTH_STATE_INVALID', 'The install request is unknown, expired or was already used; start the installation again.')
      }
      data = stored
    } else if (this.#config.requireState) {
      throw new OAuthError(
        'GHL_OAUTH_STATE_INVALID',
        'The install request has no state parameter, and this app only accepts installs started from its own page (GHL_INSTALL_REQUIRE_STATE); start the installation again from the app.',
      )
    }
    if (!code) throw new OAuthError('GHL_OAUTH_CODE_MISSING', 'HighLevel redirected back without an authorization code; start the installation again.')
    if (!(await this.#vault.states.rememberCode(code, new Date(this.#clock.now() + CODE_MEMORY_MS)))) {
      throw new OAuthError(
        'GHL_OAUTH_CODE_REUSED',
        'This installation link was already used (its authorization code was exchanged before); nothing was sent to HighLevel. Start the installation again if it did not complete.',
      )
    }

    const http: OAuthHttp = {
      apiUrl: this.#config.apiUrl,
      dispatcher: this.#dispatcher,
      timeoutMs: this.#config.tokenRequestTimeoutMs,
      version: this.#config.oauthVersion,
    }
    const startedAt = this.#clock.now()
    let tokens: TokenResponse
    try {
      tokens = await this.#exchange(http, code)
    } catch (err) {
      // HighLevel did not process the code (a server error, or it was never reached): it may be tried again.
      if (err instanceof GhlError && (err.code === 'GHL_UPSTREAM_UNAVAILABLE' || err.code === 'GHL_NETWORK')) {
        await this.#vault.states.forgetCode(code).catch(() => {})
      }
      throw err
    }
    const installation = await this.#vault.installations.upsert(installationInput(this.#config.clientId, tokens, startedAt, 'oauth'))
    // The installation is stored; a failed audit write must not turn a successful install into an error.
    await this.#vault.audit
      .append({
        installationId: installation.id,
        action: data.installationId ? 'reauthorized' : 'installed',
        detail: {
          locationId: installation.locationId,
          companyId: installation.companyId,
          userType: installation.userType,
          startedBy: state ? 'app' : 'highlevel',
        },
      })
      .catch((err: unknown) => this.#logger.warn({ installationId: installation.id, err }, 'audit write failed'))
    this.#logger.info(
      { installationId: installation.id, locationId: installation.locationId, companyId: installation.companyId },
      'installation stored',
    )
    return { installation, returnTo: data.returnTo }
  }

  /**
   * The code exchange with `user_type` as a hint. HighLevel answers with the kind the installer chose;
   * a HighLevel that insists on a matching `user_type` refuses the other with `invalid_request` — then
   * the exchange is tried once more with the other kind (the refused request did not use the code), and
   * the operator is told what to set to skip the extra round trip.
   */
  async #exchange(http: OAuthHttp, code: string): Promise<TokenResponse> {
    const request = (userType: 'Location' | 'Company') =>
      authorizationCodeGrantRequest(http, {
        clientId: this.#config.clientId,
        clientSecret: this.#config.clientSecret,
        code,
        redirectUri: this.#config.redirectUri,
        userType,
      }).then(processTokenResponse)
    const hint = this.#config.userType
    try {
      return await request(hint)
    } catch (err) {
      if (!isUserTypeMismatch(err)) throw err
      const other = hint === 'Location' ? 'Company' : 'Location'
      this.#logger.warn(
        { hint, other },
        `HighLevel refused user_type ${hint} for this install (it is a${other === 'Company' ? 'n agency (Company)' : ' sub-account (Location)'} install) and insists it match; retrying with ${other}. Installs of both kinds work either way; set GHL_USER_TYPE=${other} if most of your installs are of that kind`,
      )
      try {
        return await request(other)
      } catch (again) {
        if (again instanceof OAuthError) {
          throw new OAuthError(
            again.code,
            `HighLevel refused the installation: it requires user_type to match the kind of install, refused ${hint}, and then answered ${other} with: ${again.message}. Set GHL_USER_TYPE=${other} for installs of this kind and install again.`,
            { upstreamStatus: again.upstreamStatus, oauthError: again.oauthError, traceId: again.traceId, cause: again },
          )
        }
        throw again
      }
    }
  }
}

/** How long an exchanged code is remembered: longer than any code lives (HighLevel's: minutes). */
const CODE_MEMORY_MS = 24 * 3600_000

/** HighLevel refused the exchange because `user_type` does not match the grant. */
function isUserTypeMismatch(err: unknown): boolean {
  return err instanceof OAuthError && err.oauthError === 'invalid_request' && /user[_ ]?type/i.test(err.message)
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
