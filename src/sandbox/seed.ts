/**
 * The sandbox seed: apps, agencies, locations, users and contacts. Missing ids are generated
 * (random on each start unless a seed file or a state file fixes them).
 */
import { readFileSync } from 'node:fs'
import { z } from 'zod'
import { appIdValue, clientIdFor, hlId, secretValue } from './ids.js'
import type { AppRecord, CompanyRecord, ContactRecord, ResolvedSeed, SandboxSeed, UserRecord } from './types.js'

/** Scopes of the default app. */
export const DEFAULT_SCOPES = ['contacts.readonly', 'contacts.write', 'locations.readonly', 'oauth.readonly', 'oauth.write']

/** Redirect URIs of the default app. */
export const DEFAULT_REDIRECT_URIS = ['http://127.0.0.1:3000/oauth/callback', 'http://localhost:3000/oauth/callback']

const locationSchema = z.object({
  locationId: z.string().min(1).optional(),
  name: z.string().min(1),
  address: z.string().optional(),
  city: z.string().optional(),
  state: z.string().optional(),
  country: z.string().optional(),
  postalCode: z.string().optional(),
  timezone: z.string().optional(),
  email: z.string().optional(),
  phone: z.string().optional(),
})

const seedSchema = z.object({
  apps: z
    .array(
      z.object({
        appId: z.string().regex(/^[^-]+$/, 'appId must not contain "-"').optional(),
        clientId: z.string().min(1).optional(),
        clientSecret: z.string().min(1).optional(),
        sharedSecret: z.string().min(1).optional(),
        redirectUris: z.array(z.url()).optional(),
        scopes: z.array(z.string().min(1)).optional(),
        distribution: z.enum(['agency', 'location', 'both']).optional(),
        webhookUrl: z.url().nullable().optional(),
        planId: z.string().optional(),
        versionId: z.string().min(1).optional(),
        trialDays: z.number().int().min(0).optional(),
      }),
    )
    .optional(),
  companies: z
    .array(
      z.object({
        companyId: z.string().min(1).optional(),
        name: z.string().min(1),
        locations: z.array(locationSchema),
        whitelabel: z.object({ domain: z.string().min(1), logoUrl: z.url() }).optional(),
      }),
    )
    .optional(),
  users: z
    .array(
      z.object({
        userId: z.string().min(1).optional(),
        name: z.string().min(1),
        email: z.string().min(1),
        role: z.string().optional(),
        type: z.enum(['agency', 'account']).optional(),
        companyId: z.string().optional(),
      }),
    )
    .optional(),
  contactsPerLocation: z.number().int().min(0).max(100).optional(),
})

/** The default seed: one app, "Sandbox Agency" with three locations, one admin user. */
export function defaultSeed(): SandboxSeed {
  return {
    apps: [{}],
    companies: [
      {
        name: 'Sandbox Agency',
        locations: [
          { name: 'Downtown Dental', address: '12 Main St', city: 'Springfield', state: 'IL', postalCode: '62701' },
          { name: 'Uptown Fitness', address: '480 North Ave', city: 'Springfield', state: 'IL', postalCode: '62702' },
          { name: 'Harbor Realty', address: '7 Pier Rd', city: 'Portland', state: 'ME', postalCode: '04101' },
        ],
      },
    ],
    users: [{ name: 'Sam Admin', email: 'sam.admin@sandbox.example', role: 'admin', type: 'agency' }],
    contactsPerLocation: 3,
  }
}

/** Reads a seed file (JSON). Throws an Error naming the file and the problem. */
export function loadSeedFile(path: string): SandboxSeed {
  let raw: unknown
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new Error(`sandbox seed file ${path} could not be read as JSON: ${(err as Error).message}`, { cause: err })
  }
  return raw as SandboxSeed
}

const PEOPLE: Array<[string, string]> = [
  ['Ada', 'Lovelace'],
  ['Grace', 'Hopper'],
  ['Alan', 'Turing'],
  ['Katherine', 'Johnson'],
  ['Edsger', 'Dijkstra'],
]

/** Validates a seed and fills every missing id and field. All problems are reported together. */
export function resolveSeed(input: SandboxSeed, nowMs: number): ResolvedSeed {
  const parsed = seedSchema.safeParse(input)
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
    throw new Error(`invalid sandbox seed: ${problems.join('; ')}`)
  }
  const seed = parsed.data
  const apps: AppRecord[] = (seed.apps && seed.apps.length > 0 ? seed.apps : [{}]).map((a) => {
    const appId = a.appId ?? appIdValue()
    const clientId = a.clientId ?? clientIdFor(appId)
    if (!clientId.startsWith(`${appId}-`)) throw new Error(`invalid sandbox seed: clientId ${clientId} must start with "${appId}-"`)
    return {
      appId,
      clientId,
      clientSecret: a.clientSecret ?? secretValue(),
      sharedSecret: a.sharedSecret ?? secretValue(),
      redirectUris: a.redirectUris ?? [...DEFAULT_REDIRECT_URIS],
      scopes: a.scopes ?? [...DEFAULT_SCOPES],
      distribution: a.distribution ?? 'both',
      webhookUrl: a.webhookUrl ?? null,
      planId: a.planId ?? null,
      versionId: a.versionId ?? appIdValue(),
      trialDays: a.trialDays ?? 0,
    }
  })
  const companies: CompanyRecord[] = (seed.companies ?? defaultSeed().companies ?? []).map((c) => {
    const companyId = c.companyId ?? hlId()
    return {
      companyId,
      name: c.name,
      whitelabel: c.whitelabel ?? null,
      locations: c.locations.map((l) => ({
        locationId: l.locationId ?? hlId(),
        companyId,
        name: l.name,
        address: l.address ?? '1 Sandbox Way',
        city: l.city ?? 'Springfield',
        state: l.state ?? 'IL',
        country: l.country ?? 'US',
        postalCode: l.postalCode ?? '62701',
        timezone: l.timezone ?? 'America/Chicago',
        email: l.email ?? `${l.name.toLowerCase().replace(/[^a-z0-9]+/g, '.')}@sandbox.example`,
        phone: l.phone ?? '+15555550100',
      })),
    }
  })
  if (companies.length === 0) throw new Error('invalid sandbox seed: at least one company is required')
  const firstCompany = companies[0]!
  const users: UserRecord[] = (seed.users ?? defaultSeed().users ?? []).map((u) => ({
    userId: u.userId ?? hlId(),
    name: u.name,
    email: u.email,
    role: u.role ?? 'admin',
    type: u.type ?? 'agency',
    companyId: u.companyId ?? firstCompany.companyId,
  }))
  if (users.length === 0) throw new Error('invalid sandbox seed: at least one user is required')
  const perLocation = seed.contactsPerLocation ?? 3
  const contacts: ContactRecord[] = []
  const at = new Date(nowMs).toISOString()
  for (const company of companies) {
    for (const location of company.locations) {
      for (let i = 0; i < perLocation; i++) {
        const [first, last] = PEOPLE[i % PEOPLE.length]!
        const n = Math.floor(i / PEOPLE.length)
        const email = `${first.toLowerCase()}.${last.toLowerCase()}${n ? n : ''}@${location.name.toLowerCase().replace(/[^a-z0-9]+/g, '-')}.example`
        contacts.push({
          id: hlId(),
          locationId: location.locationId,
          firstName: first,
          lastName: last,
          name: `${first} ${last}`,
          email,
          phone: `+1555010${String(i).padStart(4, '0')}`,
          companyName: location.name,
          source: 'sandbox seed',
          tags: ['seed'],
          dateAdded: at,
          dateUpdated: at,
        })
      }
    }
  }
  return { apps, companies, users, contacts }
}
