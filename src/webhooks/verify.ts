/**
 * Webhook signature verification over the raw request body bytes — framework-independent, and done
 * before any JSON is trusted. A re-serialised body (other key order, whitespace or escapes) would not
 * verify, so callers must pass the bytes exactly as received.
 *
 * Two headers exist (WebhookAuthentication.md; FACTS.md "Webhooks"):
 * - `x-ghl-signature`: Ed25519 over the body, base64 (the newer scheme).
 * - `x-wh-signature`: RSA-SHA256 (PKCS#1 v1.5) over the body, base64 (legacy; HighLevel's published key).
 *
 * Rule: `x-ghl-signature` is used when present **and** an Ed25519 key is configured. When it is present
 * but no Ed25519 key is configured, `x-wh-signature` is used if present, else the webhook is rejected —
 * a signature we cannot check is no better than none. When an Ed25519 signature is checked and fails,
 * there is no fallback to the RSA header: the stronger scheme's verdict stands.
 *
 * @see https://highlevel.stoplight.io/docs/integrations/ — "Webhook Authentication Guide"
 */
import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto'
import { GhlError, WebhookRejectedError } from '../errors.js'

/** The public keys webhooks are verified with: PEM strings, base64 raw Ed25519 keys, or KeyObjects. */
export interface WebhookKeys {
  /**
   * For `x-ghl-signature`: PEM (SPKI) or base64 of the raw 32-byte Ed25519 public key — or several
   * (a key rollover): a signature that verifies with any of them is accepted.
   */
  ed25519?: KeyObject | string | ReadonlyArray<KeyObject | string>
  /** For `x-wh-signature`: PEM (SPKI or PKCS#1) RSA public key. */
  rsa?: KeyObject | string
}

/** Header records as node's `IncomingMessage.headers` or fastify give them. */
export type WebhookHeaders = Record<string, string | string[] | undefined>

/** Which scheme verified the webhook. */
export interface VerifiedSignature {
  algorithm: 'ed25519' | 'rsa-sha256'
}

/** The Ed25519 signature header (newer). */
export const ED25519_SIGNATURE_HEADER = 'x-ghl-signature'
/** The RSA-SHA256 signature header (legacy). */
export const RSA_SIGNATURE_HEADER = 'x-wh-signature'

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/

/**
 * Parses an Ed25519 public key: a KeyObject, a PEM, or base64 of the raw 32 bytes.
 * @throws GhlError `GHL_CONFIG_INVALID` naming what was wrong (configuration time, not request time).
 */
export function parseEd25519PublicKey(key: KeyObject | string): KeyObject {
  try {
    return parseEd25519(key)
  } catch (err) {
    throw keyError('Ed25519', err)
  }
}

function keyError(kind: string, err: unknown): GhlError {
  if (err instanceof GhlError) return err
  return new GhlError('GHL_CONFIG_INVALID', `Invalid ${kind} webhook public key: ${(err as Error).message}`, { cause: err })
}

function parseEd25519(key: KeyObject | string): KeyObject {
  let parsed: KeyObject
  if (typeof key !== 'string') parsed = key
  else if (key.includes('-----BEGIN')) parsed = createPublicKey(key)
  else {
    const text = key.trim()
    const raw = Buffer.from(text, 'base64')
    if (!BASE64.test(text) || raw.length !== 32) {
      throw new Error(`expected the Ed25519 public key as PEM or base64 of 32 raw bytes, got ${raw.length} bytes`)
    }
    parsed = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' })
  }
  if (parsed.type !== 'public' || parsed.asymmetricKeyType !== 'ed25519') {
    throw new Error(`expected an Ed25519 public key, got a ${parsed.type} ${parsed.asymmetricKeyType ?? 'unknown'} key`)
  }
  return parsed
}

/** Parses an RSA public key (PEM or KeyObject). @throws GhlError `GHL_CONFIG_INVALID` naming what was wrong. */
export function parseRsaPublicKey(key: KeyObject | string): KeyObject {
  let parsed: KeyObject
  try {
    parsed = typeof key === 'string' ? createPublicKey(key) : key
  } catch (err) {
    throw keyError('RSA', err)
  }
  if (parsed.type !== 'public' || parsed.asymmetricKeyType !== 'rsa') {
    throw keyError('RSA', new Error(`expected an RSA public key, got a ${parsed.type} ${parsed.asymmetricKeyType ?? 'unknown'} key`))
  }
  return parsed
}

function header(headers: WebhookHeaders, name: string): string | string[] | undefined {
  const direct = headers[name]
  if (direct !== undefined) return direct
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v
  return undefined
}

/** One signature value: several different values of the same header are refused (ambiguous). */
function single(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined
  if (typeof value === 'string') return value
  // Headers from a caller's own framework: anything but text (or a list of texts) is no signature.
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw reject(`${name} header is not text`)
  const distinct = [...new Set(value as string[])]
  if (distinct.length === 0) return undefined
  if (distinct.length > 1) throw reject(`${name} header was sent ${distinct.length} times with different values`)
  return distinct[0]
}

function reject(message: string): WebhookRejectedError {
  return new WebhookRejectedError('GHL_WEBHOOK_SIGNATURE_INVALID', `Webhook rejected: ${message}`)
}

function decodeSignature(value: string, name: string): Buffer {
  const text = value.trim()
  if (text.length === 0) throw reject(`${name} header is empty`)
  if (!BASE64.test(text) || text.length % 4 === 1) throw reject(`${name} header is not valid base64`)
  return Buffer.from(text, 'base64')
}

/**
 * Verifies with keys parsed once at construction. Use one per process (the receiver does).
 *
 * @example
 * const verifier = new WebhookVerifier({ ed25519: config.webhookEd25519PublicKeys, rsa: config.webhookRsaPublicKey })
 * verifier.verify(rawBody, req.headers) // throws WebhookRejectedError GHL_WEBHOOK_SIGNATURE_INVALID
 */
export class WebhookVerifier {
  readonly #ed25519: readonly KeyObject[]
  readonly #rsa: KeyObject | undefined
  readonly #rsaBytes: number | undefined

  /** @throws GhlError `GHL_CONFIG_INVALID` when a configured key cannot be parsed (a configuration mistake, reported at start). */
  constructor(keys: WebhookKeys) {
    if (keys === null || typeof keys !== 'object') {
      throw new GhlError('GHL_CONFIG_INVALID', `Invalid webhook public keys: expected an object with ed25519 and/or rsa keys, got ${keys === null ? 'null' : typeof keys}`)
    }
    const ed = keys.ed25519 === undefined ? [] : Array.isArray(keys.ed25519) ? keys.ed25519 : [keys.ed25519 as KeyObject | string]
    this.#ed25519 = ed.map((k) => parseEd25519PublicKey(k))
    this.#rsa = keys.rsa === undefined ? undefined : parseRsaPublicKey(keys.rsa)
    const bits = this.#rsa?.asymmetricKeyDetails?.modulusLength
    this.#rsaBytes = bits === undefined ? undefined : Math.ceil(bits / 8)
  }

  /** Whether an Ed25519 key is configured (HighLevel signs with Ed25519 only since 2026-07-01). */
  get hasEd25519(): boolean {
    return this.#ed25519.length > 0
  }

  /** True when a signature header (either scheme) is present — used for the unsigned-in-dev rule. */
  static hasSignatureHeader(headers: WebhookHeaders): boolean {
    return header(headers, ED25519_SIGNATURE_HEADER) !== undefined || header(headers, RSA_SIGNATURE_HEADER) !== undefined
  }

  /**
   * Verifies `rawBody` against the signature headers.
   * @throws WebhookRejectedError `GHL_WEBHOOK_SIGNATURE_INVALID` naming the header and the problem.
   */
  verify(rawBody: Buffer, headers: WebhookHeaders): VerifiedSignature {
    if (!Buffer.isBuffer(rawBody)) throw new WebhookRejectedError('GHL_WEBHOOK_INVALID', 'Webhook rejected: the body must be the raw request bytes (a Buffer)')
    if (!headers || typeof headers !== 'object') throw reject('no request headers were given')
    const ghl = single(header(headers, ED25519_SIGNATURE_HEADER), ED25519_SIGNATURE_HEADER)
    const wh = single(header(headers, RSA_SIGNATURE_HEADER), RSA_SIGNATURE_HEADER)

    if (ghl !== undefined && this.#ed25519.length > 0) {
      const signature = decodeSignature(ghl, ED25519_SIGNATURE_HEADER)
      if (signature.length !== 64) throw reject(`${ED25519_SIGNATURE_HEADER} must be a 64-byte Ed25519 signature, got ${signature.length} bytes`)
      if (!this.#ed25519.some((key) => safeVerify(null, rawBody, key, signature))) {
        throw reject(
          `${ED25519_SIGNATURE_HEADER} (Ed25519) does not verify over the request body with the configured public key${this.#ed25519.length > 1 ? `s (${this.#ed25519.length})` : ''}`,
        )
      }
      return { algorithm: 'ed25519' }
    }
    if (wh !== undefined) {
      if (!this.#rsa) throw reject(`${RSA_SIGNATURE_HEADER} received but no RSA public key is configured (GHL_WEBHOOK_RSA_PUBLIC_KEY)`)
      const signature = decodeSignature(wh, RSA_SIGNATURE_HEADER)
      if (this.#rsaBytes !== undefined && signature.length !== this.#rsaBytes) {
        throw reject(`${RSA_SIGNATURE_HEADER} must be a ${this.#rsaBytes}-byte RSA signature, got ${signature.length} bytes`)
      }
      if (!safeVerify('sha256', rawBody, this.#rsa, signature)) {
        throw reject(`${RSA_SIGNATURE_HEADER} (RSA-SHA256) does not verify over the request body with the configured public key`)
      }
      return { algorithm: 'rsa-sha256' }
    }
    if (ghl !== undefined) {
      throw reject(
        `${ED25519_SIGNATURE_HEADER} (Ed25519) received but no Ed25519 public key is configured (GHL_WEBHOOK_ED25519_PUBLIC_KEY), and there is no ${RSA_SIGNATURE_HEADER} header to fall back to`,
      )
    }
    throw reject(`no signature: expected an ${ED25519_SIGNATURE_HEADER} (Ed25519) or ${RSA_SIGNATURE_HEADER} (RSA-SHA256) header`)
  }
}

function safeVerify(algorithm: 'sha256' | null, data: Buffer, key: KeyObject, signature: Buffer): boolean {
  try {
    return cryptoVerify(algorithm, data, key, signature)
  } catch {
    return false
  }
}

/**
 * Verifies a webhook's signature over its raw body (see the module comment for the header rule).
 * String keys are parsed on every call; for a hot path build one {@link WebhookVerifier}.
 *
 * @param rawBody - the request body exactly as received.
 * @param headers - the request headers (names matched case-insensitively).
 * @param keys - the Ed25519 and/or RSA public keys.
 * @returns which algorithm verified it.
 * @throws WebhookRejectedError `GHL_WEBHOOK_SIGNATURE_INVALID`: missing, undecodable or non-verifying signature;
 *   `GHL_WEBHOOK_INVALID`: the body is not a Buffer. GhlError `GHL_CONFIG_INVALID`: a key cannot be parsed.
 *
 * @example
 * verifyWebhookSignature(rawBody, req.headers, { rsa: HIGHLEVEL_WEBHOOK_RSA_PUBLIC_KEY })
 */
export function verifyWebhookSignature(rawBody: Buffer, headers: WebhookHeaders, keys: WebhookKeys): VerifiedSignature {
  return new WebhookVerifier(keys).verify(rawBody, headers)
}
