/**
 * `GET /oauth/installedLocations`: the locations of a company where the app is (or could be) installed.
 *
 * @see https://highlevel.stoplight.io/docs/integrations/ (oauth.json `get-installed-location`)
 */
import { z } from 'zod'
import { describeIssues, errorFromResponse, invalidResponse, parseJson, send, type OAuthHttp, type RawResponse } from './http.js'

/** Parameters of {@link installedLocationsRequest}. */
export interface InstalledLocationsParams {
  /** The agency (Company) installation's access token. */
  agencyAccessToken: string
  companyId: string
  appId: string
  skip: number
  limit: number
  /** Only locations where the app is installed (`true`) or not (`false`). */
  isInstalled?: boolean
  /** The `Version` header; `2021-07-28`. */
  version: string
}

/** Fetches one page. Returns the raw answer; pass it to {@link processInstalledLocationsResponse}. */
export function installedLocationsRequest(http: OAuthHttp, params: InstalledLocationsParams): Promise<RawResponse> {
  const query = new URLSearchParams({
    companyId: params.companyId,
    appId: params.appId,
    skip: String(params.skip),
    limit: String(params.limit),
  })
  if (params.isInstalled !== undefined) query.set('isInstalled', String(params.isInstalled))
  return send(http, 'installed locations', {
    method: 'GET',
    path: `/oauth/installedLocations?${query.toString()}`,
    headers: { authorization: `Bearer ${params.agencyAccessToken}`, version: params.version, accept: 'application/json' },
  })
}

/** Our schema of `InstalledLocationSchema` (oauth.json). */
export const InstalledLocationSchema = z.object({
  _id: z.string().min(1),
  name: z.string().nullish().transform((v) => v ?? ''),
  address: z.string().nullish().transform((v) => v ?? ''),
  isInstalled: z.boolean().nullish().transform((v) => v ?? undefined),
  versionId: z.string().nullish().transform((v) => v ?? undefined),
  installedAt: z.string().nullish().transform((v) => v ?? undefined),
})

/** One location as HighLevel lists it (`_id` is the location id). */
export type InstalledLocation = z.infer<typeof InstalledLocationSchema>

/** Our schema of `GetInstalledLocationsSuccessfulResponseDto` (oauth.json). */
export const InstalledLocationsResponseSchema = z.object({
  locations: z.array(InstalledLocationSchema),
  count: z.number().int().nonnegative().nullish().transform((v) => v ?? undefined),
  installToFutureLocations: z.boolean().nullish().transform((v) => v ?? undefined),
})

/** One validated page. */
export type InstalledLocationsResponse = z.infer<typeof InstalledLocationsResponseSchema>

/** Validates one page of `/oauth/installedLocations`. Errors as in {@link processLocationTokenResponse}. */
export function processInstalledLocationsResponse(raw: RawResponse): InstalledLocationsResponse {
  const what = 'installed locations'
  if (raw.status < 200 || raw.status >= 300) throw errorFromResponse(raw, what, { bearer: true })
  const json = parseJson(raw.body)
  if (json === undefined) throw invalidResponse(raw, what, 'is not JSON')
  const result = InstalledLocationsResponseSchema.safeParse(json)
  if (!result.success) throw invalidResponse(raw, what, `does not match its documented shape (${describeIssues(result.error.issues)})`)
  return result.data
}

/** Parameters of {@link iterateInstalledLocations}: the page size defaults to 100. */
export type ListInstalledLocationsParams = Omit<InstalledLocationsParams, 'skip' | 'limit'> & { pageSize?: number }

/**
 * Walks every page (skip/limit) until `count` locations were seen or a page comes back short.
 *
 * @example
 * for await (const loc of iterateInstalledLocations(http, { agencyAccessToken, companyId, appId, version })) …
 */
export async function* iterateInstalledLocations(http: OAuthHttp, params: ListInstalledLocationsParams): AsyncGenerator<InstalledLocation> {
  const limit = params.pageSize ?? 100
  let skip = 0
  for (;;) {
    const page = processInstalledLocationsResponse(await installedLocationsRequest(http, { ...params, skip, limit }))
    yield* page.locations
    skip += page.locations.length
    if (page.locations.length < limit || page.locations.length === 0) return
    if (page.count !== undefined && skip >= page.count) return
  }
}

/** Every installed location of the company, all pages. */
export async function listInstalledLocations(http: OAuthHttp, params: ListInstalledLocationsParams): Promise<InstalledLocation[]> {
  const all: InstalledLocation[] = []
  for await (const loc of iterateInstalledLocations(http, params)) all.push(loc)
  return all
}
