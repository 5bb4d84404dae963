/**
 * What the SQL role stores share: the Kysely instance and the services each needs, and the checks of
 * their inputs (every problem at once, never quoting a secret).
 */
import { createHash } from 'node:crypto'
import type { Kysely } from 'kysely'
import type { Clock } from '../clock.js'
import { GhlError } from '../errors.js'
import type { Logger } from '../logger.js'
import type { VaultDatabase } from './schema.js'
import type { TokenSet } from './types.js'

/** The database and services every SQL store is built with. */
export interface SqlContext {
  readonly dialect: 'sqlite' | 'postgres'
  readonly db: Kysely<VaultDatabase>
  readonly clock: Clock
  readonly logger: Logger
}

/** A GhlError `GHL_BAD_REQUEST` listing every problem with a vault input. */
export function badInput(problems: string[]): GhlError {
  return new GhlError('GHL_BAD_REQUEST', `Invalid vault input: ${problems.join('; ')}`)
}

export function isValidDate(d: unknown): d is Date {
  return d instanceof Date && Number.isFinite(d.getTime())
}

export function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string')
}

export function nonEmpty(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0
}

/** SHA-256 hex of a one-time secret (OAuth state, authorization code): stored instead of the secret. */
export function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex')
}

/** Problems with a token set; never quotes a token. */
export function tokenSetProblems(tokens: TokenSet | undefined, at: string): string[] {
  if (!tokens || typeof tokens !== 'object') return [`expected ${at} to be an object`]
  const problems: string[] = []
  if (!nonEmpty(tokens.accessToken)) problems.push(`expected ${at}.accessToken to be a non-empty string`)
  if (tokens.refreshToken !== null && !nonEmpty(tokens.refreshToken)) problems.push(`expected ${at}.refreshToken to be a non-empty string or null`)
  if (!isValidDate(tokens.expiresAt)) problems.push(`expected ${at}.expiresAt to be a valid Date`)
  return problems
}

/** A limit within [1, max], or the default. */
export function clampLimit(limit: number | undefined, fallback: number, max: number): number {
  return limit !== undefined && Number.isInteger(limit) && limit > 0 ? Math.min(limit, max) : fallback
}
