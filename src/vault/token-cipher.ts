/**
 * Authenticated encryption of the secrets the vault stores (access and refresh tokens).
 *
 * AES-256-GCM ({@link https://nvlpubs.nist.gov/nistpubs/Legacy/SP/nistspecialpublication800-38d.pdf NIST SP 800-38D})
 * with a fresh random 96-bit IV per value and a 128-bit tag. The associated data binds each ciphertext to
 * the row and column it belongs to, so a ciphertext copied into another row (or from the access-token
 * column into the refresh-token column) fails authentication instead of silently decrypting.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import type { EncryptionKey } from '../config.js'
import { GhlError } from '../errors.js'

const FORMAT_VERSION = 'v1'
const IV_BYTES = 12
const TAG_BYTES = 16
const KEY_BYTES = 32
const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/

/**
 * Encrypts with the first configured key; decrypts with whichever key a value names.
 *
 * A value is the text `v1.<keyId>.<iv>.<ciphertext>.<tag>` (the last three base64url). The key id in
 * the clear is what makes rotation possible: configure `[new, old]`, every value still decrypts, and
 * {@link Vault.rotateKeys} rewrites the old ones under the new key.
 *
 * Errors never contain the ciphertext or the plaintext: {@link GhlError} `GHL_VAULT_KEY_MISSING` names
 * only the key id, `GHL_VAULT_DECRYPT_FAILED` only what failed.
 *
 * @example
 * const cipher = new TokenCipher(config.encryptionKeys)
 * const stored = cipher.encrypt(accessToken, 'installation:abc:access')
 * cipher.decrypt(stored, 'installation:abc:access') === accessToken
 */
export class TokenCipher {
  readonly #keys: ReadonlyMap<string, Buffer>
  readonly #currentId: string

  /**
   * @param keys - The first encrypts, all decrypt. Each is 32 bytes with an id of `[A-Za-z0-9_-]{1,32}`.
   * @throws GhlError `GHL_CONFIG_INVALID` when no key is given, a key has the wrong length, or ids repeat.
   */
  constructor(keys: readonly EncryptionKey[]) {
    const problems: string[] = []
    if (keys.length === 0) problems.push('expected at least one encryption key, got none')
    const map = new Map<string, Buffer>()
    keys.forEach((k, i) => {
      if (!KEY_ID.test(k.id)) problems.push(`expected keys[${i}].id to match ${KEY_ID}, got ${JSON.stringify(k.id)}`)
      if (!Buffer.isBuffer(k.key) || k.key.length !== KEY_BYTES) {
        problems.push(`expected keys[${i}].key to be ${KEY_BYTES} bytes, got ${Buffer.isBuffer(k.key) ? k.key.length : typeof k.key}`)
      }
      if (map.has(k.id)) problems.push(`expected key ids to be unique, got ${JSON.stringify(k.id)} twice`)
      map.set(k.id, Buffer.from(k.key))
    })
    if (problems.length > 0) throw new GhlError('GHL_CONFIG_INVALID', `Invalid vault encryption keys: ${problems.join('; ')}`)
    this.#keys = map
    this.#currentId = keys[0]!.id
  }

  /** The id of the key new values are encrypted with (the first configured). */
  get currentKeyId(): string {
    return this.#currentId
  }

  /** Whether a key with this id is configured. */
  hasKey(keyId: string): boolean {
    return this.#keys.has(keyId)
  }

  /**
   * Encrypts `plaintext` with the current key.
   * @param aad - What the value is bound to, e.g. `installation:<client>:<resource>:access`; decryption must pass the same.
   */
  encrypt(plaintext: string, aad: string): string {
    const key = this.#keys.get(this.#currentId)!
    const iv = randomBytes(IV_BYTES)
    const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES })
    cipher.setAAD(associatedData(this.#currentId, aad))
    const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
    const tag = cipher.getAuthTag()
    return [FORMAT_VERSION, this.#currentId, iv.toString('base64url'), ct.toString('base64url'), tag.toString('base64url')].join('.')
  }

  /**
   * Decrypts a value made by {@link TokenCipher.encrypt} with the same `aad`.
   * @throws GhlError `GHL_VAULT_KEY_MISSING` when its key is not configured;
   *   `GHL_VAULT_DECRYPT_FAILED` when it is malformed, tampered with, or bound to another row or column.
   */
  decrypt(value: string, aad: string): string {
    const parts = value.split('.')
    if (parts.length !== 5 || parts[0] !== FORMAT_VERSION) {
      throw new GhlError('GHL_VAULT_DECRYPT_FAILED', `A stored secret (${aad}) is not in the ${FORMAT_VERSION} format`)
    }
    const [, keyId, ivText, ctText, tagText] = parts as [string, string, string, string, string]
    const key = this.#keys.get(keyId)
    if (!key) {
      throw new GhlError(
        'GHL_VAULT_KEY_MISSING',
        `A stored secret (${aad}) was encrypted with key "${KEY_ID.test(keyId) ? keyId : '?'}", which is not configured in GHL_ENCRYPTION_KEY`,
      )
    }
    const iv = Buffer.from(ivText, 'base64url')
    const tag = Buffer.from(tagText, 'base64url')
    if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) {
      throw new GhlError('GHL_VAULT_DECRYPT_FAILED', `A stored secret (${aad}) has a malformed IV or tag`)
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES })
      decipher.setAAD(associatedData(keyId, aad))
      decipher.setAuthTag(tag)
      return Buffer.concat([decipher.update(Buffer.from(ctText, 'base64url')), decipher.final()]).toString('utf8')
    } catch {
      // The cause (OpenSSL's "Unsupported state or unable to authenticate data") says nothing more and is dropped.
      throw new GhlError('GHL_VAULT_DECRYPT_FAILED', `A stored secret (${aad}) failed authentication: it was altered or belongs to another row`)
    }
  }

  /** The key id a stored value names, without decrypting it (`undefined` when malformed). */
  static keyIdOf(value: string): string | undefined {
    const parts = value.split('.')
    return parts.length === 5 && parts[0] === FORMAT_VERSION ? parts[1] : undefined
  }
}

/** The key id is authenticated too, so a value cannot be relabelled to another key. */
function associatedData(keyId: string, aad: string): Buffer {
  return Buffer.from(`ghl-connect:${FORMAT_VERSION}:${keyId}:${aad}`, 'utf8')
}
