/**
 * SSO user context, encrypted the way HighLevel does it: CryptoJS passphrase AES, i.e. base64 of
 * `Salted__` + 8-byte salt + AES-256-CBC ciphertext with key and IV from OpenSSL's EVP_BytesToKey
 * (MD5, one iteration) — the same as `openssl enc -aes-256-cbc -md md5 -a -A -k <secret>`.
 * See shared_secret_customJS_customPages.md. Written here independently of `src/sso`.
 */
import { createCipheriv, createHash, randomBytes } from 'node:crypto'

/**
 * OpenSSL's EVP_BytesToKey with MD5 and one iteration:
 * D_i = MD5(D_{i-1} || password || salt), concatenated until key + IV bytes are produced.
 */
export function evpBytesToKey(password: Buffer, salt: Buffer, keyLength = 32, ivLength = 16): { key: Buffer; iv: Buffer } {
  const parts: Buffer[] = []
  let total = 0
  let previous = Buffer.alloc(0)
  while (total < keyLength + ivLength) {
    previous = createHash('md5').update(Buffer.concat([previous, password, salt])).digest()
    parts.push(previous)
    total += previous.length
  }
  const bytes = Buffer.concat(parts)
  return { key: bytes.subarray(0, keyLength), iv: bytes.subarray(keyLength, keyLength + ivLength) }
}

/** Encrypts text with a passphrase in CryptoJS/OpenSSL "Salted__" format; returns base64. */
export function encryptWithPassphrase(plaintext: string, passphrase: string, salt: Buffer = randomBytes(8)): string {
  const { key, iv } = evpBytesToKey(Buffer.from(passphrase, 'utf8'), salt)
  const cipher = createCipheriv('aes-256-cbc', key, iv)
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
  return Buffer.concat([Buffer.from('Salted__', 'ascii'), salt, body]).toString('base64')
}

/** The decrypted SSO user context (shared_secret_customJS_customPages.md). */
export interface SsoUserContext {
  userId: string
  companyId: string
  role: string
  type: string
  activeLocation?: string
  userName: string
  email: string
}
