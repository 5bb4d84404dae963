/**
 * The sandbox's in-memory state: apps, agencies, users, contacts, installs and every credential issued,
 * plus settings and counters. Optionally persisted as JSON (see {@link SandboxStore.toJSON}).
 */
import type { Clock } from '../clock.js'
import { hlId, tokenValue } from './ids.js'
import type {
  AppRecord,
  CompanyRecord,
  ContactRecord,
  InstallRecord,
  LocationRecord,
  ResolvedSeed,
  SandboxSettings,
  TokenRecord,
  UserRecord,
  UserType,
} from './types.js'

/** Outcome counter. */
export interface Counter {
  ok: number
  error: number
}

/** Counters exposed by `GET /_sandbox/stats` (shape documented in README.md). */
export interface SandboxStats {
  token: { authorization_code: Counter; refresh_token: Counter; other: Counter }
  locationToken: Counter & { rateLimited: number }
  installedLocations: Counter & { rateLimited: number }
  reconnect: Counter
  api: Counter & { rateLimited: number }
  faults: { token: number; locationToken: number; reconnect: number; api: number; billing: number }
}

function freshStats(): SandboxStats {
  return {
    token: { authorization_code: { ok: 0, error: 0 }, refresh_token: { ok: 0, error: 0 }, other: { ok: 0, error: 0 } },
    locationToken: { ok: 0, error: 0, rateLimited: 0 },
    installedLocations: { ok: 0, error: 0, rateLimited: 0 },
    reconnect: { ok: 0, error: 0 },
    api: { ok: 0, error: 0, rateLimited: 0 },
    faults: { token: 0, locationToken: 0, reconnect: 0, api: 0, billing: 0 },
  }
}

/** State of a credential at a moment. */
export type TokenState = 'active' | 'used' | 'expired' | 'revoked'

/** Serialised form of the store (state file). */
export interface StoreSnapshot {
  version: 1
  seed: ResolvedSeed
  apps: AppRecord[]
  companies: CompanyRecord[]
  users: UserRecord[]
  contacts: ContactRecord[]
  installs: InstallRecord[]
  tokens: TokenRecord[]
  /** Records of the spec-driven APIs (absent in state files written before they existed). */
  resources?: ResourceCollections
}

/** Records of the spec-driven APIs (`resources/`), by collection name; plain JSON. */
export type ResourceCollections = Record<string, Array<Record<string, unknown>>>

const clone = <T>(v: T): T => structuredClone(v)

/** @internal The state of one sandbox. */
export class SandboxStore {
  readonly seed: ResolvedSeed
  readonly #clock: Clock
  readonly #initialSettings: SandboxSettings
  apps: AppRecord[] = []
  companies: CompanyRecord[] = []
  users: UserRecord[] = []
  contacts: ContactRecord[] = []
  installs: InstallRecord[] = []
  tokens = new Map<string, TokenRecord>()
  /** Records of the spec-driven APIs (opportunities, calendars, conversations, …); empty after a reset. */
  resources: ResourceCollections = {}
  settings: SandboxSettings
  stats: SandboxStats = freshStats()

  constructor(seed: ResolvedSeed, settings: SandboxSettings, clock: Clock, snapshot?: StoreSnapshot) {
    this.seed = clone(seed)
    this.#clock = clock
    this.#initialSettings = clone(settings)
    this.settings = clone(settings)
    this.reset()
    if (snapshot) {
      this.apps = clone(snapshot.apps)
      this.companies = clone(snapshot.companies)
      this.users = clone(snapshot.users)
      this.contacts = clone(snapshot.contacts)
      this.installs = clone(snapshot.installs)
      this.tokens = new Map(snapshot.tokens.map((t) => [t.value, clone(t)]))
      this.resources = clone(snapshot.resources ?? {})
    }
  }

  /** Back to the seed: apps' settings, contacts, installs, tokens, settings, counters. */
  reset(): void {
    this.apps = clone(this.seed.apps)
    this.companies = clone(this.seed.companies)
    this.users = clone(this.seed.users)
    this.contacts = clone(this.seed.contacts)
    this.installs = []
    this.tokens = new Map()
    this.resources = {}
    this.settings = clone(this.#initialSettings)
    this.stats = freshStats()
  }

  now(): number {
    return this.#clock.now()
  }

  toJSON(): StoreSnapshot {
    return {
      version: 1,
      seed: this.seed,
      apps: this.apps,
      companies: this.companies,
      users: this.users,
      contacts: this.contacts,
      installs: this.installs,
      tokens: [...this.tokens.values()],
      resources: this.resources,
    }
  }

  appByClientId(clientId: string): AppRecord | undefined {
    return this.apps.find((a) => a.clientId === clientId)
  }

  appById(appId: string): AppRecord | undefined {
    return this.apps.find((a) => a.appId === appId)
  }

  company(companyId: string): CompanyRecord | undefined {
    return this.companies.find((c) => c.companyId === companyId)
  }

  location(locationId: string): LocationRecord | undefined {
    for (const c of this.companies) {
      const l = c.locations.find((x) => x.locationId === locationId)
      if (l) return l
    }
    return undefined
  }

  /** The user who performs installs in a company (the first seeded user of that company). */
  userOf(companyId: string): UserRecord {
    return this.users.find((u) => u.companyId === companyId) ?? this.users[0]!
  }

  /** The active install of an app on exactly that target (no agency coverage). */
  activeInstall(appId: string, userType: UserType, id: string): InstallRecord | undefined {
    return this.installs.find(
      (i) =>
        i.appId === appId &&
        i.uninstalledAt === null &&
        i.userType === userType &&
        (userType === 'Location' ? i.locationId === id : i.companyId === id),
    )
  }

  /**
   * Whether an active agency install covers a location: the location was approved in bulk, or the
   * agency chose "install to future locations" (the sandbox creates no locations, so this covers
   * every location of the agency), and the location was not uninstalled on its own since.
   */
  agencyCovers(install: InstallRecord, locationId: string): boolean {
    if (install.userType !== 'Company' || install.uninstalledAt !== null) return false
    const location = this.location(locationId)
    if (!location || location.companyId !== install.companyId) return false
    if (install.excludedLocations.includes(locationId)) return false
    return install.approvedLocations.includes(locationId) || install.installToFutureLocations
  }

  /** The install that makes the app installed on a location: its own, else a covering agency install. */
  installForLocation(appId: string, locationId: string): InstallRecord | undefined {
    const own = this.activeInstall(appId, 'Location', locationId)
    if (own) return own
    const location = this.location(locationId)
    if (!location) return undefined
    const agency = this.activeInstall(appId, 'Company', location.companyId)
    return agency && this.agencyCovers(agency, locationId) ? agency : undefined
  }

  /** Creates or updates the install of an app on a target (a re-install keeps the install id). */
  upsertInstall(fields: Omit<InstallRecord, 'installId' | 'installedAt' | 'uninstalledAt' | 'excludedLocations'>): InstallRecord {
    const existing = this.activeInstall(
      fields.appId,
      fields.userType,
      fields.userType === 'Location' ? fields.locationId! : fields.companyId,
    )
    if (existing) {
      Object.assign(existing, fields, { excludedLocations: [] })
      return existing
    }
    const install: InstallRecord = {
      ...fields,
      installId: hlId(),
      excludedLocations: [],
      installedAt: this.now(),
      uninstalledAt: null,
    }
    this.installs.push(install)
    return install
  }

  /** Issues a credential. */
  issue(fields: Omit<TokenRecord, 'value' | 'issuedAt' | 'usedAt' | 'revokedAt'>): TokenRecord {
    const record: TokenRecord = { ...fields, value: tokenValue(), issuedAt: this.now(), usedAt: null, revokedAt: null }
    this.tokens.set(record.value, record)
    return record
  }

  tokenState(t: TokenRecord): TokenState {
    if (t.revokedAt !== null) return 'revoked'
    if (t.usedAt !== null) return 'used'
    if (t.expiresAt !== null && t.expiresAt <= this.now()) return 'expired'
    return 'active'
  }

  /** Revokes every live credential matching; returns how many. */
  revokeWhere(predicate: (t: TokenRecord) => boolean): number {
    let n = 0
    const now = this.now()
    for (const t of this.tokens.values()) {
      if (t.revokedAt === null && predicate(t)) {
        t.revokedAt = now
        n++
      }
    }
    return n
  }

  /** Every credential descending from `value` (through `parent` links), excluding itself. */
  descendants(value: string): TokenRecord[] {
    const out: TokenRecord[] = []
    const frontier = [value]
    while (frontier.length > 0) {
      const v = frontier.pop()!
      for (const t of this.tokens.values()) {
        if (t.parent === v) {
          out.push(t)
          frontier.push(t.value)
        }
      }
    }
    return out
  }
}
