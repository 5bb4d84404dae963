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
export function installedLocationsRequest(http: OAuthHttp, params: InstalledLocationsParams & { pageToken?: string }): Promise<RawResponse> {
  if (http.version === 'v3') {
    // oauth-v3.json: `pageSize` and the opaque `pageToken` replace `limit` and `skip`.
    const query = new URLSearchParams({ companyId: params.companyId, appId: params.appId, pageSize: String(Math.min(100, params.limit)) })
    if (params.pageToken) query.set('pageToken', params.pageToken)
    if (params.isInstalled !== undefined) query.set('isInstalled', String(params.isInstalled))
    return send(http, 'installed locations', {
      method: 'GET',
      path: `/oauth/installed-locations?${query.toString()}`,
      headers: { authorization: `Bearer ${params.agencyAccessToken}`, version: 'v3', accept: 'application/json' },
    })
  }
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
/** v3: `{items, pagination: {nextPageToken, hasNextPage, …}, installToFutureLocations}` (GetInstalledLocationsV3SuccessfulResponseDto). */
const InstalledLocationsV3ResponseSchema = z.object({
  items: z.array(InstalledLocationSchema),
  pagination: z
    .object({
      hasNextPage: z.boolean().nullish(),
      nextPageToken: z.string().nullish(),
      totalRecords: z.number().nullish(),
    })
    .nullish(),
  installToFutureLocations: z.boolean().nullish().transform((v) => v ?? undefined),
})

export type InstalledLocationsResponse = z.infer<typeof InstalledLocationsResponseSchema> & {
  /** v3: the token of the next page, when there is one. */
  nextPageToken?: string
}

/** Validates one page of `/oauth/installedLocations`. Errors as in {@link processLocationTokenResponse}. */
export function processInstalledLocationsResponse(raw: RawResponse): InstalledLocationsResponse {
  const what = 'installed locations'
  if (raw.status < 200 || raw.status >= 300) throw errorFromResponse(raw, what, { bearer: true })
  const json = parseJson(raw.body)
  if (json === undefined) throw invalidResponse(raw, what, 'is not JSON')
  if (json && typeof json === 'object' && 'items' in json) {
    const v3 = InstalledLocationsV3ResponseSchema.safeParse(json)
    if (!v3.success) throw invalidResponse(raw, what, `does not match its documented shape (${describeIssues(v3.error.issues)})`)
    const next = v3.data.pagination?.hasNextPage !== false ? (v3.data.pagination?.nextPageToken ?? undefined) : undefined
    return {
      locations: v3.data.items,
      count: v3.data.pagination?.totalRecords ?? undefined,
      installToFutureLocations: v3.data.installToFutureLocations,
      ...(next ? { nextPageToken: next } : {}),
    }
  }
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
  let pageToken: string | undefined
  for (;;) {
    const page = processInstalledLocationsResponse(await installedLocationsRequest(http, { ...params, skip, limit, pageToken }))
    yield* page.locations
    if (http.version === 'v3') {
      // Cursor paging: the last page has no next token.
      if (!page.nextPageToken || page.locations.length === 0) return
      pageToken = page.nextPageToken
      continue
    }
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
