/**
 * Type-level tests of the typed calls: `npm run typecheck` compiles this file (it is never run). Each
 * `@ts-expect-error` line must be an error, or the type-check fails; the other lines must compile.
 */
import type { ResourceClient } from '../../src/client/index.js'
import type { ErrorData, SuccessData, TypedResult } from '../../src/client/typed.js'
import type { Paths } from '../../src/api/generated/api.js'

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false
function assertType<T extends true>(): T | undefined {
  return undefined
}

export async function typedCalls(loc: ResourceClient): Promise<void> {
  // Path parameters are required and typed; data comes from the 200 schema.
  const got = await loc.GET('/contacts/{contactId}', { params: { path: { contactId: 'c1' } } })
  if (got.data) {
    const id: string | undefined = got.data.contact?.id
    void id
    // @ts-expect-error the contact has no such field
    void got.data.contact?.notAField
  } else {
    // error is HighLevel's documented error bodies (400/401/422 DTOs)
    const status: number | undefined = got.error.statusCode
    void status
  }
  // @ts-expect-error params are required: the path has a parameter
  await loc.GET('/contacts/{contactId}')
  // @ts-expect-error a path parameter is missing
  await loc.GET('/contacts/{contactId}', { params: { path: {} } })
  // @ts-expect-error a path parameter of the wrong type
  await loc.GET('/contacts/{contactId}', { params: { path: { contactId: 42 } } })
  // @ts-expect-error not a template of HighLevel's API
  await loc.GET('/contacts/{id}/nothing-here', {})
  // @ts-expect-error no GET at this template (POST only)
  await loc.GET('/contacts/upsert', {})
  // @ts-expect-error Version is the client's, not a parameter
  await loc.GET('/contacts/{contactId}', { params: { path: { contactId: 'c1' }, header: { Version: '2021-07-28' } } })

  // A required JSON body, typed.
  await loc.POST('/contacts/', { body: { locationId: 'L1', firstName: 'Ada' } })
  // @ts-expect-error the body is required
  await loc.POST('/contacts/', {})
  // @ts-expect-error locationId is required in the body
  await loc.POST('/contacts/', { body: { firstName: 'Ada' } })
  // @ts-expect-error a body where the operation takes none
  await loc.DELETE('/contacts/{contactId}', { params: { path: { contactId: 'c1' } }, body: { x: 1 } })

  // Query parameters, typed; the required one (locationId) must be there.
  await loc.GET('/contacts/', { params: { query: { locationId: 'L1', limit: 20 } } })
  // @ts-expect-error locationId is a required query parameter
  await loc.GET('/contacts/', { params: { query: { limit: 20 } } })

  // Multipart: an object of parts (a binary field is a Blob) or a FormData.
  await loc.POST('/medias/upload-file', { body: { file: new Blob(['bytes']), name: 'a.txt' } })
  await loc.POST('/medias/upload-file', { body: new FormData() })
  // @ts-expect-error a file part is a Blob
  await loc.POST('/medias/upload-file', { body: { file: 42 } })

  // Named operations: the same types through the service namespaces.
  const named = await loc.contacts.getContact({ params: { path: { contactId: 'c1' } } })
  assertType<Equal<typeof named, typeof got>>()
  await loc.locations.getLocation({ params: { path: { locationId: 'L1' } } })
  // @ts-expect-error no such operation in the namespace
  await loc.contacts.getLocation({ params: { path: { locationId: 'L1' } } })
  // @ts-expect-error no such namespace
  void loc.notAService

  // An operation whose 2xx answer has no schema: data is unknown, not any.
  const dup = await loc.GET('/contacts/search/duplicate', { params: { query: { locationId: 'L1' } } })
  assertType<Equal<typeof dup.data, unknown>>()

  // A 204 answer without a body: data is undefined.
  assertType<Equal<SuccessData<Paths['/voice-ai/agents/{agentId}']['delete']>, undefined>>()
  // An operation without a documented error body still types error as unknown.
  assertType<Equal<ErrorData<Paths['/funnels/page/count']['get']>, unknown>>()
  // The untyped calls stay.
  const untyped = await loc.get<{ contacts: unknown[] }>('/contacts/', { query: { locationId: 'L1' } })
  void untyped.data.contacts
}

export type Result = TypedResult<Paths['/contacts/{contactId}']['get']>
