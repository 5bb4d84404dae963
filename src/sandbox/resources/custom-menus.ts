/**
 * Custom menu links (custom-menus.json) of an agency: create, get, list (`locationId`, `showOnCompany`,
 * `query` on the title, `skip`/`limit`), update, delete. Each link belongs to the token's agency.
 * ASSUMPTIONS (undocumented): an unknown id answers 400 `Custom menu not found` on get (HighLevel's
 * answer for unknown ids elsewhere) and 404 on update and delete (the codes those operations list);
 * `order` is the link's position among the agency's links.
 */
import { ApiFailure, defined, isoNow, matches, page, type Handler, type HandlerInput, type Rec } from './context.js'

function linksOf(input: HandlerInput): Rec[] {
  return input.data.list('customMenus').filter((m) => m.companyId === input.token.companyId)
}

function linkOf(input: HandlerInput, status: 400 | 404): Rec {
  const link = linksOf(input).find((m) => m.id === input.path.customMenuId)
  if (!link) throw new ApiFailure(status, 'Custom menu not found')
  return link
}

function view(m: Rec): Record<string, unknown> {
  const { companyId: _c, ...rest } = m
  return rest
}

export const customMenuHandlers: Record<string, Handler> = {
  'custom-menus/create-custom-menu': (input) => {
    const link = input.data.insert('customMenus', {
      ...defined(input.body, ['id', 'companyId']),
      companyId: input.token.companyId,
      order: linksOf(input).length + 1,
      createdAt: isoNow(input),
    })
    return { status: 201, body: { customMenu: view(link) } }
  },
  'custom-menus/get-custom-menu-by-id': (input) => ({ body: { customMenu: view(linkOf(input, 400)) } }),
  'custom-menus/get-custom-menus': (input) => {
    const q = input.query
    const rows = linksOf(input).filter(
      (m) =>
        (q.locationId === undefined
          ? q.showOnCompany !== true || m.showOnCompany === true
          : m.showOnLocation === true && (m.showToAllLocations === true || (Array.isArray(m.locations) && m.locations.includes(q.locationId)))) &&
        matches(m, q.query, ['title']),
    )
    const p = page(rows, q)
    return { body: { customMenus: p.items.map(view), totalLinks: p.total } }
  },
  'custom-menus/update-custom-menu': (input) => {
    const link = linkOf(input, 404)
    const change = defined(input.body, ['id', 'companyId', 'order'])
    if (change.icon && typeof change.icon === 'object') change.icon = { ...(link.icon as Record<string, unknown> | undefined), ...(change.icon as Record<string, unknown>) }
    Object.assign(link, change)
    return { body: { success: true, customMenu: view(link) } }
  },
  'custom-menus/delete-custom-menu': (input) => {
    const link = linkOf(input, 404)
    input.data.remove('customMenus', link.id)
    return { body: { success: true, message: 'Custom menu successfully deleted', deletedMenuId: link.id, deletedAt: isoNow(input) } }
  },
}
