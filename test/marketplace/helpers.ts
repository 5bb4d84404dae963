/**
 * Helpers of the Marketplace tests: a stack whose sandbox app has the billing and custom-menu scopes,
 * installs through the real consent → callback path, sandbox controls, and a bounded wait for a
 * condition to become true (never a sleep followed by an assertion).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { installViaHttp, sandboxJson, startStack, type Stack, type StackOptions } from '../helpers/stack.js'
import type { DialectName } from '../helpers/services.js'

/** The sandbox's default scopes plus what wallet billing and custom menus take. */
export const MARKETPLACE_SCOPES = [
  'contacts.readonly',
  'contacts.write',
  'locations.readonly',
  'oauth.readonly',
  'oauth.write',
  'charges.readonly',
  'charges.write',
  'custom-menu-link.readonly',
  'custom-menu-link.write',
]

export const PLAN_ID = 'plan-basic-0001'

/** A stack (sandbox + connector server) for Marketplace tests. */
export function marketplaceStack(dialect: DialectName, options: Omit<StackOptions, 'dialect'> = {}): Promise<Stack> {
  return startStack({
    ...options,
    dialect,
    sandbox: {
      seed: { apps: [{ scopes: MARKETPLACE_SCOPES, planId: PLAN_ID }] },
      rateLimit: { burstMax: 1_000_000, burstWindowMs: 10_000, dailyMax: 10_000_000 },
      ...options.sandbox,
    },
  })
}

/** Installs the app on a location (or an agency) through /oauth/install, the consent and the callback. */
export async function install(stack: Stack, target: { locationId?: string; companyId?: string; locationIds?: string[] }): Promise<void> {
  const res = await installViaHttp(stack, { ...target, webhookTiming: 'none' })
  if (res.status !== 200) throw new Error(`install answered ${res.status}: ${res.html.slice(0, 300)}`)
}

/** A sandbox control. */
export function sb<T = any>(stack: Stack, method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<T> {
  return sandboxJson<T>(stack.sandbox, method, path, body)
}

/** DELETE on a sandbox control. */
export async function sbDelete<T = any>(stack: Stack, path: string): Promise<T> {
  const res = await fetch(`${stack.sandbox.url}${path}`, { method: 'DELETE' })
  const text = await res.text()
  if (res.status >= 400) throw new Error(`sandbox DELETE ${path} → ${res.status}: ${text}`)
  return JSON.parse(text) as T
}

/** Polls `check` until it returns something truthy; fails naming `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | null | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (let delay = 10; ; delay = Math.min(200, delay * 2)) {
    const value = await check()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(delay)
  }
}

/** The rejection of a promise (fails when it resolves). */
export async function rejection(p: Promise<unknown>): Promise<any> {
  try {
    await p
  } catch (err) {
    return err
  }
  throw new Error('expected a rejection, got a result')
}
