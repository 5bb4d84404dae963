/**
 * Reviewed corrections to HighLevel's OpenAPI files, applied by `scripts/generate-api.ts`. Each entry
 * names the operations (`METHOD /path` exactly as the file spells it), what is corrected, and why.
 * The generator fails when an entry names an operation that does not exist, or corrects something the
 * file already states (a fix HighLevel made upstream must be removed here).
 *
 * Only scope gaps are corrected so far, and only where two sources agree: HighLevel's scope table
 * (`api-docs/docs/oauth/Scopes.md`) lists the endpoint under the scope, and the same file's sibling
 * operations on the same resource declare that scope. Operations with no scope anywhere are left
 * without one: their scope is unknown, so no scope check is made for them (a wrong guess would refuse
 * calls HighLevel accepts).
 */

/** One reviewed correction. */
export interface ApiOverride {
  /** `METHOD /path` of each operation it applies to. */
  operations: readonly string[]
  /** The scope the operations need (the file declares none). */
  scopes: readonly string[]
  /** Why: the evidence, in one sentence. */
  reason: string
}

export const OVERRIDES: readonly ApiOverride[] = [
  {
    operations: ['GET /locations/{locationId}/tags/{tagId}'],
    scopes: ['locations/tags.readonly'],
    reason: 'Scopes.md lists it under locations/tags.readonly; GET /locations/{locationId}/tags declares that scope.',
  },
  {
    operations: ['PUT /locations/{locationId}/tags/{tagId}', 'DELETE /locations/{locationId}/tags/{tagId}'],
    scopes: ['locations/tags.write'],
    reason: 'Scopes.md lists them under locations/tags.write; POST /locations/{locationId}/tags declares that scope.',
  },
  {
    operations: ['GET /locations/{locationId}/customFields/{id}'],
    scopes: ['locations/customFields.readonly'],
    reason: 'Scopes.md lists it under locations/customFields.readonly; GET /locations/{locationId}/customFields declares that scope.',
  },
  {
    operations: ['PUT /locations/{locationId}/customFields/{id}', 'DELETE /locations/{locationId}/customFields/{id}'],
    scopes: ['locations/customFields.write'],
    reason: 'Scopes.md lists them under locations/customFields.write; POST /locations/{locationId}/customFields declares that scope.',
  },
  {
    operations: ['GET /locations/{locationId}/customValues/{id}'],
    scopes: ['locations/customValues.readonly'],
    reason: 'Scopes.md lists it under locations/customValues.readonly; GET /locations/{locationId}/customValues declares that scope.',
  },
  {
    operations: ['PUT /locations/{locationId}/customValues/{id}', 'DELETE /locations/{locationId}/customValues/{id}'],
    scopes: ['locations/customValues.write'],
    reason: 'Scopes.md lists them under locations/customValues.write; POST /locations/{locationId}/customValues declares that scope.',
  },
  {
    operations: ['PUT /objects/{schemaKey}/records/{id}', 'DELETE /objects/{schemaKey}/records/{id}'],
    scopes: ['objects/record.write'],
    reason: 'Scopes.md lists them under objects/record.write; POST /objects/{schemaKey}/records declares that scope.',
  },
  {
    operations: ['PUT /social-media-posting/{locationId}/posts/{id}', 'DELETE /social-media-posting/{locationId}/posts/{id}'],
    scopes: ['socialplanner/post.write'],
    reason: 'Scopes.md lists them under socialplanner/post.write; POST /social-media-posting/{locationId}/posts declares that scope.',
  },
  {
    operations: ['PATCH /social-media-posting/{locationId}/csv/{id}', 'DELETE /social-media-posting/{locationId}/csv/{id}'],
    scopes: ['socialplanner/csv.write'],
    reason: 'Scopes.md lists them under socialplanner/csv.write; POST /social-media-posting/{locationId}/csv declares that scope.',
  },
  {
    operations: ['GET /social-media-posting/{locationId}/categories/{id}'],
    scopes: ['socialplanner/category.readonly'],
    reason: 'Scopes.md lists it under socialplanner/category.readonly; GET /social-media-posting/{locationId}/categories declares that scope.',
  },
]
