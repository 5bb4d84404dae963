/**
 * Calendars, calendar groups, appointments (events) and appointment notes (calendars.json). Each
 * location has a "Sandbox Calendar" (created on first use, 30-minute slots). An appointment belongs to
 * a calendar and a contact of the same location; its changes send AppointmentCreate /
 * AppointmentUpdate / AppointmentDelete with the appointment under `appointment` (AppointmentCreate.md).
 * Free slots are the calendar's 09:00–17:00 (UTC) slots of each day not taken by an appointment.
 */
import { contactOf } from './contacts.js'
import { ApiFailure, assertLocation, defined, isoNow, locationOf, owned, type Handler, type HandlerInput, type Rec } from './context.js'

const DAY = 86_400_000

/** The location's calendars, creating the default one on first use. */
export function calendarsOf(input: HandlerInput, locationId: string): Rec[] {
  if (!input.data.once(`calendars:${locationId}`)) {
    const location = input.store.location(locationId)
    const user = location ? input.store.userOf(location.companyId) : undefined
    input.data.insert('calendars', {
      name: 'Sandbox Calendar',
      locationId,
      calendarType: 'event',
      isActive: true,
      slotDuration: 30,
      slotDurationUnit: 'mins',
      slotInterval: 30,
      slotIntervalUnit: 'mins',
      widgetSlug: `sandbox-calendar-${locationId.toLowerCase()}`,
      teamMembers: user ? [{ userId: user.userId, priority: 1, isPrimary: true }] : [],
    })
  }
  return input.data.list('calendars').filter((c) => c.locationId === locationId)
}

function calendarOf(input: HandlerInput, id: unknown): Rec {
  const c = typeof id === 'string' ? input.data.find('calendars', id) : undefined
  if (!c) throw new ApiFailure(400, 'Calendar not found')
  assertLocation(input, c.locationId)
  return c
}

function groupOf(input: HandlerInput): Rec {
  return owned(input, 'calendarGroups', input.path.groupId, 'Group')
}

function appointmentOf(input: HandlerInput, id: string | undefined): Rec {
  return owned(input, 'appointments', id, 'Appointment')
}

/** A time as the API takes it: epoch milliseconds (number or digits) or ISO 8601. */
function toMs(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v
  if (typeof v === 'string' && /^\d+$/.test(v)) return Number(v)
  if (typeof v === 'string' && !Number.isNaN(Date.parse(v))) return Date.parse(v)
  return undefined
}

function slotMs(c: Rec): number {
  const n = typeof c.slotDuration === 'number' ? c.slotDuration : 30
  return (c.slotDurationUnit === 'hours' ? n * 60 : n) * 60_000
}

function emit(input: HandlerInput, type: string, a: Rec): void {
  input.emit({ type, locationId: String(a.locationId), payload: { locationId: a.locationId, appointment: a } })
}

function applyTimes(a: Rec, cal: Rec, start: unknown, end: unknown): void {
  const s = toMs(start ?? a.startTime)
  if (s === undefined) throw new ApiFailure(422, 'startTime must be a valid ISO 8601 date string')
  const e = toMs(end) ?? (end === undefined && start === undefined ? toMs(a.endTime) : undefined) ?? s + slotMs(cal)
  if (e <= s) throw new ApiFailure(400, 'endTime must be after startTime')
  a.startTime = new Date(s).toISOString()
  a.endTime = new Date(e).toISOString()
}

/** Appointments of a location within [start, end), with the optional filters of the events list. */
function eventsIn(input: HandlerInput): Rec[] {
  const q = input.query
  const start = toMs(q.startTime) ?? 0
  const end = toMs(q.endTime) ?? Number.MAX_SAFE_INTEGER
  return input.data.list('appointments').filter((a) => {
    const s = Date.parse(String(a.startTime))
    return (
      a.locationId === locationOf(input) &&
      s >= start &&
      s < end &&
      (q.calendarId === undefined || a.calendarId === q.calendarId) &&
      (q.groupId === undefined || a.groupId === q.groupId) &&
      (q.userId === undefined || a.assignedUserId === q.userId || (Array.isArray(a.users) && a.users.includes(q.userId)))
    )
  })
}

function noteOf(input: HandlerInput): { appointment: Rec; note: Rec } {
  const appointment = appointmentOf(input, input.path.appointmentId)
  const note = input.data.find('appointmentNotes', input.path.noteId!)
  if (!note || note.appointmentId !== appointment.id) throw new ApiFailure(400, 'Note not found')
  return { appointment, note }
}

export const calendarHandlers: Record<string, Handler> = {
  'calendars/get-calendars': (input) => {
    const groupId = input.query.groupId
    return { body: { calendars: calendarsOf(input, locationOf(input)).filter((c) => groupId === undefined || c.groupId === groupId) } }
  },
  'calendars/create-calendar': (input) => {
    calendarsOf(input, String(input.body.locationId))
    return { body: { calendar: input.data.insert('calendars', { isActive: true, slotDuration: 30, slotDurationUnit: 'mins', ...defined(input.body, ['id']) }) } }
  },
  'calendars/get-calendar': (input) => ({ body: { calendar: calendarOf(input, input.path.calendarId) } }),
  'calendars/update-calendar': (input) => {
    const c = calendarOf(input, input.path.calendarId)
    Object.assign(c, defined(input.body, ['id', 'locationId']))
    return { body: { calendar: c } }
  },
  'calendars/delete-calendar': (input) => {
    const c = calendarOf(input, input.path.calendarId)
    input.data.remove('calendars', c.id)
    return { body: { success: true } }
  },
  'calendars/get-slots': (input) => {
    const cal = calendarOf(input, input.path.calendarId)
    const from = toMs(input.query.startDate) ?? input.store.now()
    const to = Math.min(toMs(input.query.endDate) ?? from + 7 * DAY, from + 31 * DAY)
    const taken = input.data.list('appointments').filter((a) => a.calendarId === cal.id).map((a) => [Date.parse(String(a.startTime)), Date.parse(String(a.endTime))] as const)
    const step = slotMs(cal)
    const out: Record<string, { slots: string[] }> = {}
    for (let day = Math.floor(from / DAY) * DAY; day <= to; day += DAY) {
      const slots: string[] = []
      for (let t = day + 9 * 3_600_000; t + step <= day + 17 * 3_600_000; t += step) {
        if (t >= from && t <= to && !taken.some(([s, e]) => t < e && t + step > s)) slots.push(new Date(t).toISOString())
      }
      if (slots.length > 0) out[new Date(day).toISOString().slice(0, 10)] = { slots }
    }
    return { body: out }
  },

  // --- groups ---
  'calendars/get-groups': (input) => ({ body: { groups: input.data.list('calendarGroups').filter((g) => g.locationId === locationOf(input)) } }),
  'calendars/create-calendar-group': (input) => {
    const b = input.body
    if (input.data.list('calendarGroups').some((g) => g.locationId === b.locationId && g.slug === b.slug)) throw new ApiFailure(400, 'Slug is already in use')
    return { body: { group: input.data.insert('calendarGroups', { isActive: true, ...defined(b, ['id']) }) } }
  },
  'calendars/validate-groups-slug': (input) => ({
    body: { available: !input.data.list('calendarGroups').some((g) => g.locationId === input.body.locationId && g.slug === input.body.slug) },
  }),
  'calendars/edit-group': (input) => {
    const g = groupOf(input)
    Object.assign(g, defined(input.body, ['id', 'locationId']))
    return { body: { group: g } }
  },
  'calendars/disable-group': (input) => {
    groupOf(input).isActive = input.body.isActive === true
    return { body: { success: true } }
  },
  'calendars/delete-group': (input) => {
    input.data.remove('calendarGroups', groupOf(input).id)
    return { body: { success: true } }
  },

  // --- appointments ---
  'calendars/create-appointment': (input) => {
    const b = input.body
    const cal = calendarOf(input, b.calendarId)
    if (cal.locationId !== b.locationId) throw new ApiFailure(400, 'Calendar not found')
    const contact = contactOf(input, String(b.contactId))
    const at = isoNow(input)
    const assigned = typeof b.assignedUserId === 'string' ? b.assignedUserId : ((cal.teamMembers as Array<{ userId?: string }> | undefined)?.[0]?.userId ?? '')
    const a: Record<string, unknown> = {
      title: 'Appointment',
      appointmentStatus: 'confirmed',
      ...defined(b, ['id', 'startTime', 'endTime', 'toNotify', 'ignoreDateRange', 'ignoreFreeSlotValidation']),
      calendarId: cal.id,
      locationId: cal.locationId,
      contactId: contact.id,
      groupId: typeof cal.groupId === 'string' ? cal.groupId : '',
      assignedUserId: assigned,
      users: assigned ? [assigned] : [],
      isRecurring: typeof b.rrule === 'string' && b.rrule !== '',
      dateAdded: at,
      dateUpdated: at,
      createdBy: { source: 'third_party', userId: input.token.userId ?? undefined },
    }
    applyTimes(a as Rec, cal, b.startTime, b.endTime)
    const rec = input.data.insert('appointments', a)
    emit(input, 'AppointmentCreate', rec)
    return { body: rec }
  },
  'calendars/get-appointment': (input) => ({ body: { event: appointmentOf(input, input.path.eventId) } }),
  'calendars/edit-appointment': (input) => {
    const a = appointmentOf(input, input.path.eventId)
    const b = input.body
    const cal = calendarOf(input, b.calendarId ?? a.calendarId)
    Object.assign(a, defined(b, ['id', 'startTime', 'endTime', 'locationId', 'contactId', 'toNotify', 'ignoreDateRange', 'ignoreFreeSlotValidation']))
    if (b.assignedUserId !== undefined) a.users = [b.assignedUserId]
    if (b.startTime !== undefined || b.endTime !== undefined) applyTimes(a, cal, b.startTime, b.endTime)
    a.dateUpdated = isoNow(input)
    emit(input, 'AppointmentUpdate', a)
    return { body: a }
  },
  'calendars/delete-event': (input) => {
    const a = appointmentOf(input, input.path.eventId)
    input.data.remove('appointments', a.id)
    input.data.removeWhere('appointmentNotes', (n) => n.appointmentId === a.id)
    emit(input, 'AppointmentDelete', a)
    return { body: { succeeded: true } }
  },
  'calendars/get-calendar-events': (input) => ({ body: { events: eventsIn(input) } }),

  // --- appointment notes ---
  'calendars/get-appointment-notes': (input) => {
    const a = appointmentOf(input, input.path.appointmentId)
    const all = input.data.list('appointmentNotes').filter((n) => n.appointmentId === a.id)
    const limit = typeof input.query.limit === 'number' ? input.query.limit : 10
    const offset = typeof input.query.offset === 'number' ? input.query.offset : 0
    return { body: { notes: all.slice(offset, offset + limit), hasMore: offset + limit < all.length } }
  },
  'calendars/create-appointment-note': (input) => {
    const a = appointmentOf(input, input.path.appointmentId)
    const note = input.data.insert('appointmentNotes', {
      body: input.body.body,
      userId: input.body.userId ?? input.token.userId ?? undefined,
      appointmentId: a.id,
      contactId: a.contactId,
      locationId: a.locationId,
      dateAdded: isoNow(input),
    })
    return { body: { note } }
  },
  'calendars/update-appointment-note': (input) => {
    const { note } = noteOf(input)
    Object.assign(note, defined(input.body))
    return { body: { note } }
  },
  'calendars/delete-appointment-note': (input) => {
    input.data.remove('appointmentNotes', noteOf(input).note.id)
    return { body: { success: true } }
  },
}
