/**
 * Locations (sub-accounts) over the store's agencies, and what belongs to a location: tags, custom
 * fields (both the `/locations/{id}/customFields` API and the `/custom-fields` API, one set of
 * fields), custom field folders and custom values. Location changes send LocationCreate /
 * LocationUpdate to the apps installed on the location.
 */
import { hlId } from '../ids.js'
import type { LocationRecord } from '../types.js'
import { ApiFailure, assertLocation, defined, isoNow, page, type Handler, type HandlerInput, type Rec } from './context.js'

const LOCATION_FIELDS = ['name', 'address', 'city', 'state', 'country', 'postalCode', 'timezone', 'email', 'phone'] as const

function locationRecord(input: HandlerInput, id: string): LocationRecord {
  const l = input.store.location(id)
  if (!l) throw new ApiFailure(400, 'Location not found')
  return l
}

/** Fields of a location the store does not model (website, settings, social, …). */
function extras(input: HandlerInput, id: string): Rec {
  return input.data.find('locationExtras', id) ?? input.data.insert('locationExtras', { id })
}

/** A location as HighLevel answers it. */
function locationView(input: HandlerInput, l: LocationRecord): Record<string, unknown> {
  const x = extras(input, l.locationId)
  const { id: _id, ...more } = x
  return {
    id: l.locationId,
    companyId: l.companyId,
    name: l.name,
    address: l.address,
    city: l.city,
    state: l.state,
    country: l.country,
    postalCode: l.postalCode,
    timezone: l.timezone,
    email: l.email,
    phone: l.phone,
    website: '',
    domain: '',
    business: { name: l.name, address: l.address, city: l.city, state: l.state, country: l.country, postalCode: l.postalCode, timezone: l.timezone },
    social: {},
    settings: {},
    ...more,
  }
}

function applyLocation(input: HandlerInput, l: LocationRecord): void {
  const b = input.body
  for (const k of LOCATION_FIELDS) if (typeof b[k] === 'string') l[k] = b[k] as string
  const x = extras(input, l.locationId)
  Object.assign(x, defined(b, [...LOCATION_FIELDS, 'companyId', 'prospectInfo', 'twilio', 'mailgun', 'snapshotId']))
}

function locationEvent(type: string, input: HandlerInput, l: LocationRecord): void {
  input.emit({ type, locationId: l.locationId, payload: { id: l.locationId, companyId: l.companyId, name: l.name, email: l.email } })
}

function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '') || 'field'
}

/** The custom field of an id in the token's location. */
function fieldOf(input: HandlerInput, id: string | undefined): Rec {
  const f = id ? input.data.find('customFields', id) : undefined
  if (!f) throw new ApiFailure(400, 'Custom field not found')
  assertLocation(input, f.locationId)
  if (input.path.locationId && f.locationId !== input.path.locationId) throw new ApiFailure(400, 'Custom field not found')
  return f
}

/** A custom field as the `/locations/{id}/customFields` API answers it. */
function locationFieldView(f: Rec): Record<string, unknown> {
  return {
    id: f.id,
    name: f.name,
    fieldKey: f.fieldKey,
    placeholder: f.placeholder,
    dataType: f.dataType,
    position: f.position,
    picklistOptions: f.picklistOptions,
    isAllowedCustomOption: f.allowCustomOption,
    maxFileLimit: f.maxFileLimit,
    locationId: f.locationId,
    model: f.objectKey,
  }
}

/** A custom field as the `/custom-fields` API answers it. */
function objectFieldView(f: Rec): Record<string, unknown> {
  return { ...f, showInForms: f.showInForms ?? true, parentId: f.parentId ?? '', dateAdded: f.dateAdded, dateUpdated: f.dateUpdated }
}

function createField(input: HandlerInput, locationId: string, fields: Record<string, unknown>): Rec {
  const objectKey = String(fields.objectKey ?? fields.model ?? 'contact')
  const name = String(fields.name ?? 'Field')
  const at = isoNow(input)
  const position = input.data.list('customFields').filter((f) => f.locationId === locationId).length
  return input.data.insert('customFields', {
    position,
    ...fields,
    locationId,
    objectKey,
    name,
    fieldKey: typeof fields.fieldKey === 'string' ? fields.fieldKey : `${objectKey}.${slug(name)}`,
    dateAdded: at,
    dateUpdated: at,
  })
}

function tagOf(input: HandlerInput): Rec {
  const t = input.data.find('tags', input.path.tagId!)
  if (!t || t.locationId !== input.path.locationId) throw new ApiFailure(400, 'Tag not found')
  return t
}

function valueOf(input: HandlerInput): Rec {
  const v = input.data.find('customValues', input.path.id!)
  if (!v || v.locationId !== input.path.locationId) throw new ApiFailure(400, 'Custom value not found')
  return v
}

function folderOf(input: HandlerInput): Rec {
  const f = input.data.find('customFieldFolders', input.path.id!)
  if (!f) throw new ApiFailure(400, 'Folder not found')
  assertLocation(input, f.locationId)
  return f
}

export const locationHandlers: Record<string, Handler> = {
  'locations/get-location': (input) => ({ body: { location: locationView(input, locationRecord(input, input.path.locationId!)) } }),

  'locations/search-locations': (input) => {
    const q = input.query
    const t = input.token
    const all = input.store.companies.filter((c) => c.companyId === t.companyId).flatMap((c) => c.locations)
    const rows = all.filter(
      (l) => (t.userType === 'Company' || l.locationId === t.locationId) && (typeof q.email !== 'string' || l.email.toLowerCase() === q.email.toLowerCase()),
    )
    if (q.order === 'desc') rows.reverse()
    return { body: { locations: page(rows, { ...q, limit: q.limit ?? 10 }).items.map((l) => locationView(input, l)) } }
  },

  'locations/create-location': (input) => {
    const b = input.body
    const company = input.store.company(String(b.companyId))
    if (!company) throw new ApiFailure(400, 'Company not found')
    const name = String(b.name)
    const l: LocationRecord = {
      locationId: hlId(),
      companyId: company.companyId,
      name,
      address: '',
      city: '',
      state: '',
      country: 'US',
      postalCode: '',
      timezone: 'America/Chicago',
      email: `${slug(name).replace(/_/g, '.')}@sandbox.example`,
      phone: '',
    }
    company.locations.push(l)
    applyLocation(input, l)
    locationEvent('LocationCreate', input, l)
    return { body: locationView(input, l) }
  },

  'locations/put-location': (input) => {
    const l = locationRecord(input, input.path.locationId!)
    applyLocation(input, l)
    locationEvent('LocationUpdate', input, l)
    return { body: locationView(input, l) }
  },

  'locations/delete-location': (input) => {
    const l = locationRecord(input, input.path.locationId!)
    const company = input.store.company(l.companyId)!
    company.locations = company.locations.filter((x) => x.locationId !== l.locationId)
    return { body: { success: true, message: `Sub-account ${l.locationId} deleted` } }
  },

  // --- tags ---
  'locations/get-location-tags': (input) => ({ body: { tags: input.data.list('tags').filter((t) => t.locationId === input.path.locationId) } }),
  'locations/create-tag': (input) => {
    const name = String(input.body.name)
    const exists = input.data.list('tags').some((t) => t.locationId === input.path.locationId && String(t.name).toLowerCase() === name.toLowerCase())
    if (exists) throw new ApiFailure(400, 'Tag already exists')
    return { body: { tag: input.data.insert('tags', { name, locationId: input.path.locationId }) } }
  },
  'locations/get-tag-by-id': (input) => ({ body: { tag: tagOf(input) } }),
  'locations/update-tag': (input) => {
    const t = tagOf(input)
    t.name = String(input.body.name)
    return { body: { tag: t } }
  },
  'locations/delete-tag': (input) => {
    input.data.remove('tags', tagOf(input).id)
    return { body: { succeded: true } }
  },

  // --- custom fields: /locations/{locationId}/customFields ---
  'locations/get-custom-fields': (input) => {
    const model = input.query.model
    const rows = input.data
      .list('customFields')
      .filter((f) => f.locationId === input.path.locationId && (f.objectKey === 'contact' || f.objectKey === 'opportunity'))
      .filter((f) => typeof model !== 'string' || model === 'all' || f.objectKey === model)
    return { body: { customFields: rows.map(locationFieldView) } }
  },
  'locations/create-custom-field': (input) => {
    const b = input.body
    const f = createField(input, input.path.locationId!, {
      ...defined(b, ['model', 'textBoxListOptions', 'acceptedFormat', 'isMultipleFile', 'maxNumberOfFiles']),
      objectKey: b.model ?? 'contact',
      maxFileLimit: b.maxNumberOfFiles,
      picklistOptions: Array.isArray(b.options) ? b.options : undefined,
    })
    return { body: { customField: locationFieldView(f) } }
  },
  'locations/get-custom-field': (input) => ({ body: { customField: locationFieldView(fieldOf(input, input.path.id)) } }),
  'locations/update-custom-field': (input) => {
    const f = fieldOf(input, input.path.id)
    const b = input.body
    Object.assign(f, defined(b, ['model', 'textBoxListOptions', 'acceptedFormat', 'isMultipleFile', 'maxNumberOfFiles']), { dateUpdated: isoNow(input) })
    if (b.model !== undefined) f.objectKey = b.model
    return { body: { customField: locationFieldView(f) } }
  },
  'locations/delete-custom-field': (input) => {
    input.data.remove('customFields', fieldOf(input, input.path.id).id)
    return { body: { succeded: true } }
  },

  // --- custom fields: /custom-fields ---
  'custom-fields/create-custom-field': (input) => ({ body: { field: objectFieldView(createField(input, String(input.body.locationId), defined(input.body))) } }),
  'custom-fields/get-custom-field-by-id': (input) => ({ body: { field: objectFieldView(fieldOf(input, input.path.id)) } }),
  'custom-fields/update-custom-field': (input) => {
    const f = fieldOf(input, input.path.id)
    Object.assign(f, defined(input.body, ['locationId', 'objectKey', 'dataType', 'fieldKey']), { dateUpdated: isoNow(input) })
    return { body: { field: objectFieldView(f) } }
  },
  'custom-fields/delete-custom-field': (input) => {
    const f = fieldOf(input, input.path.id)
    input.data.remove('customFields', f.id)
    return { body: { succeded: true, id: f.id, key: f.fieldKey } }
  },
  'custom-fields/get-custom-fields-by-object-key': (input) => {
    const key = input.path.objectKey
    const locationId = input.query.locationId
    const inScope = (r: Rec): boolean => r.locationId === locationId && r.objectKey === key
    return {
      body: {
        fields: input.data.list('customFields').filter(inScope).map(objectFieldView),
        folders: input.data.list('customFieldFolders').filter(inScope),
      },
    }
  },
  'custom-fields/create-custom-field-folder': (input) => {
    const b = input.body
    return { body: input.data.insert('customFieldFolders', { objectKey: b.objectKey, name: b.name, locationId: b.locationId }) }
  },
  'custom-fields/update-custom-field-folder': (input) => {
    const f = folderOf(input)
    f.name = input.body.name
    return { body: f }
  },
  'custom-fields/delete-custom-field-folder': (input) => {
    const f = folderOf(input)
    input.data.remove('customFieldFolders', f.id)
    return { body: { succeded: true, id: f.id, key: f.name } }
  },

  // --- custom values ---
  'locations/get-custom-values': (input) => ({ body: { customValues: input.data.list('customValues').filter((v) => v.locationId === input.path.locationId) } }),
  'locations/create-custom-value': (input) => {
    const name = String(input.body.name)
    const v = input.data.insert('customValues', {
      name,
      value: input.body.value,
      fieldKey: `{{ custom_values.${slug(name)} }}`,
      locationId: input.path.locationId,
    })
    return { body: { customValue: v } }
  },
  'locations/get-custom-value': (input) => ({ body: { customValue: valueOf(input) } }),
  'locations/update-custom-value': (input) => {
    const v = valueOf(input)
    v.name = String(input.body.name)
    v.value = input.body.value
    return { body: { customValue: v } }
  },
  'locations/delete-custom-value': (input) => {
    input.data.remove('customValues', valueOf(input).id)
    return { body: { succeded: true } }
  },
}
