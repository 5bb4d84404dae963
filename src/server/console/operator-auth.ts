/**
 * Who may use the operator's console, and CSRF protection of its actions.
 *
 * - Development: the page is open (as before); production (`NODE_ENV=production`): the connector API
 *   key or `GHL_OPERATOR_PASSWORD`, given as the Basic auth password, as a Bearer token, or through the
 *   `/login` form, which sets a session cookie (HttpOnly, SameSite=Strict, 12 h). Every comparison is in
 *   constant time (`safeEqual`).
 * - The session cookie is `<expiry>.<HMAC>`: any instance sharing the configuration verifies it; a
 *   changed password or API key ends every session (the HMAC key is derived from them).
 * - Every POST form carries a CSRF token: the HMAC of a random `ghl_csrf` cookie (SameSite=Strict). A
 *   request from another site has neither the cookie nor the token (double submit, signed).
 */
import { createHash, createHmac, randomBytes } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../../config.js'
import { presentedKey, safeEqual } from '../api-key.js'

const SESSION_COOKIE = 'ghl_console'
const CSRF_COOKIE = 'ghl_csrf'
const SESSION_MS = 12 * 3600_000

/** Cookies of a request (a plain parse of the `Cookie` header). */
export function cookiesOf(req: Pick<FastifyRequest, 'headers'>): Record<string, string> {
  const out: Record<string, string> = {}
  const header = req.headers.cookie
  if (typeof header !== 'string') return out
  for (const part of header.split(';')) {
    const i = part.indexOf('=')
    if (i <= 0) continue
    const name = part.slice(0, i).trim()
    const value = part.slice(i + 1).trim()
    try {
      out[name] = decodeURIComponent(value)
    } catch {
      out[name] = value
    }
  }
  return out
}

/** See the file comment. */
export class OperatorAuth {
  readonly #config: Config
  readonly #key: Buffer
  readonly #secure: boolean

  constructor(config: Config) {
    this.#config = config
    this.#key = createHash('sha256')
      .update(`ghl-console\0${config.clientSecret}\0${config.connectorApiKey ?? ''}\0${config.operatorPassword ?? ''}`)
      .digest()
    this.#secure = config.publicUrl.startsWith('https:')
  }

  /** Whether the page asks for credentials (production). */
  get required(): boolean {
    return this.#config.production
  }

  /** Whether a login form makes sense (a secret is configured). */
  get canLogIn(): boolean {
    return this.#config.connectorApiKey !== undefined || this.#config.operatorPassword !== undefined
  }

  /** Whether the request may see the console. */
  allows(req: FastifyRequest): boolean {
    if (!this.required) return true
    const presented = presentedKey(req, { basic: true })
    if (presented !== undefined && this.#matches(presented)) return true
    return this.#validSession(cookiesOf(req)[SESSION_COOKIE])
  }

  /** Checks a password from the login form; sets the session cookie when it is right. */
  logIn(password: unknown, reply: FastifyReply): boolean {
    if (typeof password !== 'string' || password.length === 0 || !this.#matches(password)) return false
    const exp = Date.now() + SESSION_MS
    reply.header('set-cookie', this.#cookie(SESSION_COOKIE, `${exp}.${this.#mac(`session:${exp}`)}`, SESSION_MS / 1000))
    return true
  }

  logOut(reply: FastifyReply): void {
    reply.header('set-cookie', this.#cookie(SESSION_COOKIE, '', 0))
  }

  /** The CSRF token for this request's forms (sets the CSRF cookie when the request has none). */
  csrfToken(req: FastifyRequest, reply: FastifyReply): string {
    let nonce = cookiesOf(req)[CSRF_COOKIE]
    if (!nonce || !/^[A-Za-z0-9_-]{22,64}$/.test(nonce)) {
      nonce = randomBytes(18).toString('base64url')
      reply.header('set-cookie', this.#cookie(CSRF_COOKIE, nonce, undefined))
    }
    return this.#mac(`csrf:${nonce}`)
  }

  /** Whether a POST carries the CSRF token of its cookie. */
  verifyCsrf(req: FastifyRequest, token: unknown): boolean {
    const nonce = cookiesOf(req)[CSRF_COOKIE]
    if (!nonce || typeof token !== 'string' || token.length === 0) return false
    return safeEqual(token, this.#mac(`csrf:${nonce}`))
  }

  #matches(presented: string): boolean {
    // Both compared every time (no early exit that would tell which one is configured).
    const key = this.#config.connectorApiKey !== undefined && safeEqual(presented, this.#config.connectorApiKey)
    const password = this.#config.operatorPassword !== undefined && safeEqual(presented, this.#config.operatorPassword)
    return key || password
  }

  #validSession(value: string | undefined): boolean {
    if (!value) return false
    const dot = value.indexOf('.')
    const exp = Number(value.slice(0, dot))
    if (dot <= 0 || !Number.isSafeInteger(exp) || exp < Date.now()) return false
    return safeEqual(value.slice(dot + 1), this.#mac(`session:${exp}`))
  }

  #mac(text: string): string {
    return createHmac('sha256', this.#key).update(text).digest('base64url')
  }

  #cookie(name: string, value: string, maxAgeS: number | undefined): string {
    return `${name}=${value}; Path=/; HttpOnly; SameSite=Strict${this.#secure ? '; Secure' : ''}${maxAgeS === undefined ? '' : `; Max-Age=${Math.floor(maxAgeS)}`}`
  }
}
