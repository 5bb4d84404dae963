/**
 * Custom menu links of an agency (`api-docs/apps/custom-menus.json`, verified): a link in HighLevel's
 * left menu that opens the app (in an iframe, a new tab or the current tab), for the agency, its
 * sub-accounts (all, or some), and a user role. Agency token (`Agency-Access`), scopes
 * `custom-menu-link.write` / `custom-menu-link.readonly`.
 *
 * {@link CustomMenus.ensure} makes a link exist once (found by its URL, updated when it differs) —
 * what an install hook needs, since an install can be repeated; {@link createMenusOnInstall} runs it for
 * every agency install.
 *
 * @example
 * const menus = ghl.customMenus
 * await menus.ensure('COMPANY', { title: 'My App', url: 'https://app.example.com/embed', openMode: 'iframe', userRole: 'admin' })
 */
import { z } from 'zod'
import type { ResourceClient } from '../client/types.js'
import { GhlError } from '../errors.js'
import type { Logger } from '../logger.js'
import type { InstallationSummary } from '../vault/types.js'
import { describeIssues } from './billing/billing-shapes.js'

const icon = z.object({ name: z.string().min(1), fontFamily: z.enum(['fab', 'fas', 'far']) })
const openMode = z.enum(['iframe', 'new_tab', 'current_tab'])
const userRole = z.enum(['all', 'admin', 'user'])

/**
 * A link to create (CreateCustomMenuDTO). HighLevel requires every field but the camera/microphone
 * flags; the defaults below fill what is left out: shown to the agency and every sub-account, for all
 * users, in an iframe, with a link icon. Giving `locations` alone means "those sub-accounts only".
 */
export const customMenuInput = z
  .strictObject({
    title: z.string().min(1),
    url: z.url({ protocol: /^https?$/, error: 'url must be an http(s) URL' }),
    icon: icon.default({ name: 'link', fontFamily: 'fas' }),
    showOnCompany: z.boolean().optional(),
    showOnLocation: z.boolean().optional(),
    showToAllLocations: z.boolean().optional(),
    openMode: openMode.default('iframe'),
    locations: z.array(z.string().min(1)).default([]),
    userRole: userRole.default('all'),
    allowCamera: z.boolean().optional(),
    allowMicrophone: z.boolean().optional(),
  })
  .transform((m) => ({
    ...m,
    showOnCompany: m.showOnCompany ?? true,
    showOnLocation: m.showOnLocation ?? true,
    showToAllLocations: m.showToAllLocations ?? m.locations.length === 0,
  }))
  .superRefine((m, ctx) => {
    if (m.locations.length > 0 && (m.showToAllLocations || !m.showOnLocation)) {
      ctx.addIssue({ code: 'custom', path: ['locations'], message: 'locations apply only when showOnLocation is true and showToAllLocations is false' })
    }
    if ((m.allowCamera || m.allowMicrophone) && m.openMode !== 'iframe') {
      ctx.addIssue({ code: 'custom', path: ['openMode'], message: 'allowCamera and allowMicrophone apply to iframe mode only' })
    }
  })
export type CustomMenuInput = z.input<typeof customMenuInput>
export type CustomMenuBody = z.output<typeof customMenuInput>

/** A change of a link (UpdateCustomMenuDTO: every field optional). */
export const customMenuUpdate = z.strictObject({
  title: z.string().min(1).optional(),
  url: z.url({ protocol: /^https?$/, error: 'url must be an http(s) URL' }).optional(),
  icon: z.object({ name: z.string().min(1).optional(), fontFamily: z.enum(['fab', 'fas', 'far']).optional() }).optional(),
  showOnCompany: z.boolean().optional(),
  showOnLocation: z.boolean().optional(),
  showToAllLocations: z.boolean().optional(),
  openMode: openMode.optional(),
  locations: z.array(z.string().min(1)).optional(),
  userRole: userRole.optional(),
  allowCamera: z.boolean().optional(),
  allowMicrophone: z.boolean().optional(),
})
export type CustomMenuUpdate = z.input<typeof customMenuUpdate>

/** A link as HighLevel answers it (CustomMenuSchema). */
export const customMenu = z.looseObject({
  id: z.string().min(1),
  title: z.string().optional(),
  url: z.string().optional(),
  icon: z.looseObject({ name: z.string().optional(), fontFamily: z.string().optional() }).optional(),
  order: z.number().optional(),
  showOnCompany: z.boolean().optional(),
  showOnLocation: z.boolean().optional(),
  showToAllLocations: z.boolean().optional(),
  locations: z.array(z.string()).optional(),
  openMode: z.string().optional(),
  userRole: z.string().optional(),
  allowCamera: z.boolean().optional(),
  allowMicrophone: z.boolean().optional(),
})
export type CustomMenu = z.infer<typeof customMenu>

const single = z.looseObject({ customMenu })
const list = z.looseObject({ customMenus: z.array(customMenu).default([]), totalLinks: z.number().optional() })

const PAGE = 100

/** The custom-menu calls of the app's agencies. */
export class CustomMenus {
  readonly #company: (companyId: string) => ResourceClient

  /** @param company - the API client of an agency (`connector.company`). */
  constructor(company: (companyId: string) => ResourceClient) {
    this.#company = company
  }

  /** Every link of the agency (all pages; `showOnCompany` / `locationId` filter as HighLevel does). */
  async list(companyId: string, query: { locationId?: string; showOnCompany?: boolean; query?: string } = {}): Promise<CustomMenu[]> {
    const out: CustomMenu[] = []
    for (let skip = 0; ; skip += PAGE) {
      const res = await this.#company(companyId).get('/custom-menus/', { query: { ...query, skip, limit: PAGE } })
      const page = parse(list, res.data, 'custom menus').customMenus
      out.push(...page)
      if (page.length < PAGE) return out
    }
  }

  async get(companyId: string, customMenuId: string): Promise<CustomMenu> {
    const res = await this.#company(companyId).get(`/custom-menus/${encodeURIComponent(requireId(customMenuId))}`)
    return parse(single, res.data, 'custom menu').customMenu
  }

  /** Creates a link. @throws GhlError `GHL_BAD_REQUEST` for input HighLevel would refuse (nothing sent). */
  async create(companyId: string, input: CustomMenuInput): Promise<CustomMenu> {
    const body = checked(customMenuInput, input, 'custom menu')
    const res = await this.#company(companyId).post('/custom-menus/', { body })
    return parse(single, res.data, 'custom menu').customMenu
  }

  async update(companyId: string, customMenuId: string, change: CustomMenuUpdate): Promise<CustomMenu> {
    const body = checked(customMenuUpdate, change, 'custom menu change')
    const res = await this.#company(companyId).put(`/custom-menus/${encodeURIComponent(requireId(customMenuId))}`, { body })
    return parse(single, res.data, 'custom menu').customMenu
  }

  async delete(companyId: string, customMenuId: string): Promise<void> {
    await this.#company(companyId).delete(`/custom-menus/${encodeURIComponent(requireId(customMenuId))}`)
  }

  /**
   * Makes the link exist once: the agency's link with the same URL is updated when any field
   * differs (kept as it is otherwise); without one, a link is created.
   */
  async ensure(companyId: string, input: CustomMenuInput): Promise<{ menu: CustomMenu; action: 'created' | 'updated' | 'unchanged' }> {
    const body = checked(customMenuInput, input, 'custom menu')
    const existing = (await this.list(companyId)).find((m) => m.url === body.url)
    if (!existing) return { menu: await this.create(companyId, input), action: 'created' }
    const change: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(body)) {
      if (JSON.stringify((existing as Record<string, unknown>)[k]) !== JSON.stringify(v)) change[k] = v
    }
    if (Object.keys(change).length === 0) return { menu: existing, action: 'unchanged' }
    return { menu: await this.update(companyId, existing.id, change as CustomMenuUpdate), action: 'updated' }
  }
}

/**
 * Creates (or brings up to date) the app's links for every agency install: `menus(installation)` says
 * which. Returns the unsubscribe function. Failures are logged and reported to `onError`; the install
 * itself is never failed by them.
 *
 * @example
 * createMenusOnInstall(ghl, () => [{ title: 'My App', url: 'https://app.example.com/embed' }])
 */
export function createMenusOnInstall(
  connector: {
    on(event: 'installed', listener: (payload: { installation: InstallationSummary }) => void): () => void
    readonly customMenus: CustomMenus
    readonly logger: Logger
  },
  menus: (installation: InstallationSummary) => CustomMenuInput[] | Promise<CustomMenuInput[]>,
  onError?: (err: unknown, installation: InstallationSummary) => void,
): () => void {
  return connector.on('installed', ({ installation }) => {
    if (installation.userType !== 'Company') return
    void (async () => {
      for (const menu of await menus(installation)) await connector.customMenus.ensure(installation.companyId, menu)
    })().catch((err: unknown) => {
      connector.logger.warn({ err, companyId: installation.companyId }, 'custom menus: creating the links of an agency install failed')
      onError?.(err, installation)
    })
  })
}

function checked<T extends z.ZodType>(schema: T, input: unknown, what: string): z.output<T> {
  const parsed = schema.safeParse(input)
  if (!parsed.success) throw new GhlError('GHL_BAD_REQUEST', `Invalid ${what}, not sent: ${describeIssues(parsed.error)}`)
  return parsed.data
}

function parse<T extends z.ZodType>(schema: T, data: unknown, what: string): z.output<T> {
  const parsed = schema.safeParse(data)
  if (!parsed.success) throw new GhlError('GHL_API_ERROR', `HighLevel's ${what} answer does not have the documented shape: ${describeIssues(parsed.error)}`)
  return parsed.data
}

function requireId(id: string): string {
  if (typeof id !== 'string' || id === '') throw new GhlError('GHL_BAD_REQUEST', 'expected a custom menu id, got nothing')
  return id
}
