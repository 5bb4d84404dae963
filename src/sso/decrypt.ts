/**
 * SSO user context: the encrypted blob HighLevel hands to a custom page (`REQUEST_USER_DATA`) or to
 * custom JS (`window.exposeSessionDetails(appId)`), decrypted with the app's Shared Secret.
 *
 * The format is CryptoJS's passphrase AES, which is OpenSSL's `enc` format: base64 of
 * `"Salted__"` + 8-byte salt + AES-256-CBC ciphertext, with key and IV derived from the passphrase and
 * salt by EVP_BytesToKey (MD5, one iteration) — exactly `openssl enc -aes-256-cbc -md md5 -salt`.
 * Only `node:crypto` is used (no crypto-js).
 *
 * CBC has no integrity check: a wrong secret or a tampered payload is detected by the PKCS#7 padding,
 * by the plaintext not being UTF-8 JSON, or by the JSON not having the user-context shape. Checks that
 * do not depend on the key (string, base64, length, `Salted__` header, whole blocks) say which one
 * failed. Every failure AFTER decryption — padding, UTF-8, JSON, shape — ends in one and the same
 * {@link GhlError} `GHL_SSO_INVALID` (400) with the one message {@link SSO_UNDECRYPTABLE_MESSAGE}, thrown
 * from one place after all the checks have run: the endpoint is unauthenticated, and telling a padding
 * failure apart from a JSON/shape failure would be a CBC padding oracle, enough to decrypt payloads and
 * forge user contexts (CBC-R). The message never contains the plaintext, a field name or the secret.
 *
 * @see https://highlevel.stoplight.io/docs/integrations/ — "User Context in Marketplace Apps"
 *   (shared_secret_customJS_customPages.md)
 */
import { isUtf8 } from 'node:buffer'
import { createDecipheriv, createHash } from 'node:crypto'
import { z } from 'zod'
import { GhlError } from '../errors.js'

/** The decrypted user context (shared_secret_customJS_customPages.md, "Decrypted Data Structure"). */
export interface UserContext {
  userId: string
  companyId: string
  /** e.g. `admin`, `user`. */
  role: string
  /** `agency` or `location` (kept as a string: HighLevel documents these two but may add more). */
  type: string
  /** Present in a location (sub-account) context only. */
  activeLocation?: string
  userName: string
  email: string
}

/** The zod schema of {@link UserContext}; unknown extra fields are dropped. */
export const userContextSchema = z.object({
  userId: z.string().min(1),
  companyId: z.string().min(1),
  role: z.string(),
  type: z.string(),
  activeLocation: z.string().min(1).optional(),
  userName: z.string(),
  email: z.string(),
})

const MAGIC = Buffer.from('Salted__', 'latin1')
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/
/** Larger payloads are not user contexts; refusing them early bounds the work an anonymous caller can cause. */
const MAX_PAYLOAD_CHARS = 64 * 1024

/**
 * The one message of every failure after decryption (bad padding, not UTF-8, not JSON, not a user
 * context). Deliberately the same for all of them: see the module comment (padding oracle).
 */
export const SSO_UNDECRYPTABLE_MESSAGE =
  "The SSO payload could not be decrypted with the app's Shared Secret, or it is not a HighLevel user context (wrong secret, or a tampered or truncated payload)"

function invalid(message: string, cause?: unknown): GhlError {
  return new GhlError('GHL_SSO_INVALID', `Invalid SSO payload: ${message}`, { cause, status: 400 })
}

/**
 * OpenSSL's EVP_BytesToKey with MD5 and one iteration: D_i = MD5(D_{i-1} || passphrase || salt),
 * concatenated until 48 bytes = 32-byte AES-256 key + 16-byte IV.
 */
function bytesToKey(passphrase: Buffer, salt: Buffer): { key: Buffer; iv: Buffer } {
  const parts: Buffer[] = []
  let previous = Buffer.alloc(0)
  let total = 0
  while (total < 48) {
    previous = createHash('md5').update(previous).update(passphrase).update(salt).digest()
    parts.push(previous)
    total += previous.length
  }
  const material = Buffer.concat(parts)
  return { key: material.subarray(0, 32), iv: material.subarray(32, 48) }
}

/**
 * Decrypts and validates an SSO user context.
 *
 * @param payload - the base64 string HighLevel gave the frontend (`encryptedData`).
 * @param sharedSecret - the app's Shared Secret (Advanced Settings → Auth); `GHL_SHARED_SECRET`.
 * @returns the validated {@link UserContext}.
 * @throws GhlError `GHL_SSO_INVALID` (status 400) for any bad input: a specific message for the checks that
 *   do not need the key (not base64, too short, no `Salted__` header, not whole blocks), and the one
 *   {@link SSO_UNDECRYPTABLE_MESSAGE} for every failure after decryption (padding, UTF-8, JSON, shape).
 *
 * @example
 * const user = decryptUserContext(req.body.encryptedData, config.sharedSecret)
 * if (user.activeLocation) … // location context
 */
export function decryptUserContext(payload: string, sharedSecret: string): UserContext {
  if (typeof sharedSecret !== 'string' || sharedSecret.length === 0) {
    // A programming/config error rather than bad input, but still never echo anything secret.
    throw new GhlError('GHL_CONFIG_INVALID', 'SSO is not configured: the shared secret is empty (set GHL_SHARED_SECRET)')
  }
  if (typeof payload !== 'string') throw invalid(`expected a base64 string, got ${payload === null ? 'null' : typeof payload}`)
  const text = payload.replace(/\s+/g, '')
  if (text.length === 0) throw invalid('the payload is empty')
  if (text.length > MAX_PAYLOAD_CHARS) throw invalid(`the payload is ${text.length} characters; at most ${MAX_PAYLOAD_CHARS} are accepted`)
  if (!BASE64.test(text) || text.length % 4 === 1) throw invalid('the payload is not base64')
  const raw = Buffer.from(text, 'base64')

  // "Salted__" (8) + salt (8) + at least one AES block (16).
  if (raw.length < MAGIC.length) throw invalid(`the payload is too short (${raw.length} bytes) to hold the "Salted__" header`)
  if (!raw.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw invalid('the payload does not start with the "Salted__" header of OpenSSL/CryptoJS passphrase encryption')
  }
  if (raw.length < 32) throw invalid(`the payload is too short (${raw.length} bytes): expected the 8-byte salt and at least one 16-byte block`)
  const ciphertext = raw.subarray(16)
  if (ciphertext.length % 16 !== 0) {
    throw invalid(`the ciphertext is truncated (${ciphertext.length} bytes is not a multiple of the 16-byte AES block)`)
  }

  const { key, iv } = bytesToKey(Buffer.from(sharedSecret, 'utf8'), raw.subarray(8, 16))
  let plaintext: Buffer
  try {
    // Padding is checked below, by us, so that a bad padding does not end the work early (no oracle):
    // with auto-padding off and whole blocks, update/final cannot throw.
    const decipher = createDecipheriv('aes-256-cbc', key, iv).setAutoPadding(false)
    plaintext = Buffer.concat([decipher.update(ciphertext), decipher.final()])
  } finally {
    key.fill(0)
    iv.fill(0)
  }

  let parsed: ReturnType<typeof userContextSchema.safeParse>
  let paddingOk: boolean
  let utf8Ok: boolean
  let jsonOk = true
  try {
    // PKCS#7, in constant time over the last block: 1 ≤ n ≤ 16 and the last n bytes all equal n.
    const n = plaintext[plaintext.length - 1]!
    let bad = ((n - 1) >>> 8) | ((16 - n) >>> 8) // non-zero when n = 0 or n > 16
    for (let i = 1; i <= 16; i++) {
      const b = plaintext[plaintext.length - i]!
      // inPad is 0xff when i ≤ n, else 0 (no branch on the secret-dependent n).
      const inPad = ((i - n - 1) >> 8) & 0xff
      bad |= (b ^ n) & inPad
    }
    paddingOk = bad === 0
    // With a bad padding the following checks still run (on the whole plaintext), so a padding failure
    // takes the same steps as a JSON or shape failure.
    const body = plaintext.subarray(0, plaintext.length - (paddingOk ? n : 0))
    utf8Ok = isUtf8(body)
    const json = body.toString('utf8')
    let value: unknown
    try {
      value = JSON.parse(json)
    } catch {
      jsonOk = false
    }
    parsed = userContextSchema.safeParse(value)
  } finally {
    plaintext.fill(0)
  }
  if (!(paddingOk && utf8Ok && jsonOk && parsed.success)) {
    // One throw site, one message, no cause: which check failed must not be observable.
    throw new GhlError('GHL_SSO_INVALID', SSO_UNDECRYPTABLE_MESSAGE, { status: 400 })
  }
  const { activeLocation, ...rest } = parsed.data
  return activeLocation === undefined ? rest : { ...rest, activeLocation }
}

/** The answer of {@link handleSsoRequest}: status and JSON body for the HTTP layer to send. */
export type SsoResponse =
  | { status: 200; body: UserContext }
  | { status: number; body: { ok: false; code: string; message: string; status: number } }

/**
 * Route-independent handling of "decrypt the SSO payload my frontend posted": accepts a JSON body
 * `{ encryptedData }` (the name in HighLevel's docs) or `{ payload }` (the name of the custom-page
 * message), and answers the user context itself on success — the same body as HighLevel's template
 * `/decrypt-sso`, so frontends written for it work unchanged.
 *
 * - 200: the {@link UserContext}.
 * - 400 `GHL_SSO_INVALID`: body or field missing/malformed, or the payload does not decrypt/validate.
 * - 501 `GHL_CONFIG_INVALID`: no shared secret configured (`GHL_SHARED_SECRET`).
 *
 * @example
 * app.post('/sso/decrypt', async (req, reply) => {
 *   const { status, body } = handleSsoRequest(req.body, config.sharedSecret)
 *   return reply.code(status).send(body)
 * })
 */
export function handleSsoRequest(body: unknown, sharedSecret?: string): SsoResponse {
  if (!sharedSecret) {
    return {
      status: 501,
      body: { ok: false, code: 'GHL_CONFIG_INVALID', message: 'SSO is not configured: set GHL_SHARED_SECRET to the app\'s Shared Secret', status: 501 },
    }
  }
  // The one error body of the server's routes, {code, message, status} (`ok: false` beside it).
  const fail = (err: GhlError): SsoResponse => ({ status: err.status, body: { ok: false, code: err.code, message: err.message, status: err.status } })
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return fail(invalid('expected a JSON object body with an "encryptedData" (or "payload") string'))
  }
  const record = body as Record<string, unknown>
  const field = record.encryptedData !== undefined ? 'encryptedData' : record.payload !== undefined ? 'payload' : undefined
  if (!field) return fail(invalid('the body has no "encryptedData" (or "payload") field'))
  const value = record[field]
  if (typeof value !== 'string') return fail(invalid(`"${field}" must be a string, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`))
  try {
    return { status: 200, body: decryptUserContext(value, sharedSecret) }
  } catch (err) {
    if (err instanceof GhlError) return fail(err)
    return fail(new GhlError('GHL_INTERNAL', 'SSO decryption failed unexpectedly'))
  }
}
