/**
 * Conversations and messages (conversations.json). A conversation belongs to a contact of the
 * location (one per contact); sending a message to a contact without one opens it. Sent and added
 * outbound messages send OutboundMessage, added inbound messages InboundMessage (InboundMessage.md,
 * OutboundMessage.md); an inbound message also counts as unread.
 */
import { contactOf } from './contacts.js'
import { ApiFailure, defined, isoNow, locationOf, matches, owned, page, type Handler, type HandlerInput, type Rec } from './context.js'

/** Channel of the request body → [numeric type, `messageType` of the answers, `messageType` of the webhook]. */
const CHANNELS: Record<string, [number, string, string]> = {
  Call: [1, 'TYPE_CALL', 'CALL'],
  IVR_Call: [1, 'TYPE_IVR_CALL', 'CALL'],
  Campaign_Call: [1, 'TYPE_CAMPAIGN_CALL', 'CALL'],
  Campaign_VoiceMail: [1, 'TYPE_CAMPAIGN_VOICEMAIL', 'VoiceMail'],
  SMS: [2, 'TYPE_SMS', 'SMS'],
  RCS: [2, 'TYPE_RCS', 'RCS'],
  Email: [3, 'TYPE_EMAIL', 'Email'],
  GMB: [6, 'TYPE_GMB', 'GMB'],
  FB: [11, 'TYPE_FACEBOOK', 'FB'],
  IG: [18, 'TYPE_INSTAGRAM', 'IG'],
  WhatsApp: [19, 'TYPE_WHATSAPP', 'WhatsApp'],
  Custom: [20, 'TYPE_CUSTOM_SMS', 'Custom'],
  WebChat: [5, 'TYPE_WEBCHAT', 'WebChat'],
  Live_Chat: [29, 'TYPE_LIVE_CHAT', 'Live_Chat'],
  TIKTOK: [37, 'TYPE_TIKTOK', 'TIKTOK'],
}

function channel(type: unknown): [number, string, string] {
  return CHANNELS[String(type)] ?? [2, 'TYPE_SMS', String(type)]
}

function conversationOf(input: HandlerInput, id: unknown): Rec {
  return owned(input, 'conversations', typeof id === 'string' ? id : undefined, 'Conversation')
}

function messageOf(input: HandlerInput, id: string | undefined): Rec {
  return owned(input, 'messages', id, 'Message')
}

function openConversation(input: HandlerInput, contact: Rec): Rec {
  const existing = input.data.list('conversations').find((c) => c.contactId === contact.id && c.deleted !== true)
  if (existing) return existing
  const at = isoNow(input)
  return input.data.insert('conversations', {
    locationId: contact.locationId,
    contactId: contact.id,
    type: 'TYPE_PHONE',
    unreadCount: 0,
    inbox: true,
    starred: false,
    deleted: false,
    fullName: contact.name ?? '',
    contactName: contact.name ?? '',
    email: contact.email ?? '',
    phone: contact.phone ?? '',
    dateAdded: at,
    dateUpdated: at,
    lastMessageDate: at,
  })
}

/** Stores a message in a conversation, updates the conversation, emits its webhook. */
function addMessage(input: HandlerInput, conv: Rec, direction: 'inbound' | 'outbound', fields: Record<string, unknown>): Rec {
  const [type, messageType, hookType] = channel(fields.type)
  const at = typeof fields.date === 'string' && !Number.isNaN(Date.parse(fields.date)) ? new Date(Date.parse(fields.date)).toISOString() : isoNow(input)
  const body = typeof fields.message === 'string' ? fields.message : typeof fields.html === 'string' ? fields.html : ''
  const attachments = Array.isArray(fields.attachments) ? fields.attachments : []
  const scheduled = typeof fields.scheduledTimestamp === 'number'
  const call = fields.call as { status?: string } | undefined
  const msg = input.data.insert('messages', {
    type,
    messageType,
    locationId: conv.locationId,
    contactId: conv.contactId,
    conversationId: conv.id,
    dateAdded: at,
    body,
    direction,
    status: scheduled ? 'scheduled' : call?.status === undefined ? 'delivered' : call.status,
    contentType: typeof fields.html === 'string' ? 'text/html' : 'text/plain',
    attachments,
    source: direction === 'outbound' ? 'api' : undefined,
    userId: direction === 'outbound' ? (input.token.userId ?? undefined) : undefined,
    conversationProviderId: fields.conversationProviderId,
    ...(typeof fields.subject === 'string' ? { meta: { email: { subject: fields.subject } } } : {}),
  })
  Object.assign(conv, {
    lastMessageBody: body,
    lastMessageDate: at,
    lastMessageType: messageType,
    lastMessageDirection: direction,
    dateUpdated: at,
    unreadCount: direction === 'inbound' ? Number(conv.unreadCount ?? 0) + 1 : conv.unreadCount,
  })
  input.emit({
    type: direction === 'inbound' ? 'InboundMessage' : 'OutboundMessage',
    locationId: String(conv.locationId),
    payload: {
      locationId: conv.locationId,
      attachments,
      body,
      contactId: conv.contactId,
      contentType: msg.contentType,
      conversationId: conv.id,
      dateAdded: at,
      direction,
      messageType: hookType,
      messageId: msg.id,
      status: msg.status,
      ...(direction === 'outbound' ? { source: 'api', userId: msg.userId } : {}),
      ...(typeof fields.conversationProviderId === 'string' ? { conversationProviderId: fields.conversationProviderId } : {}),
      ...(typeof fields.subject === 'string' ? { subject: fields.subject } : {}),
      ...(call?.status ? { callStatus: call.status } : {}),
    },
  })
  return msg
}

export const conversationHandlers: Record<string, Handler> = {
  'conversations/create-conversation': (input) => {
    const contact = contactOf(input, String(input.body.contactId))
    const existing = input.data.list('conversations').find((c) => c.contactId === contact.id && c.deleted !== true)
    if (existing) throw new ApiFailure(400, 'Conversation already exists', { conversationId: existing.id })
    return { body: { success: true, conversation: openConversation(input, contact) } }
  },
  'conversations/get-conversation': (input) => ({ body: conversationOf(input, input.path.conversationId) }),
  'conversations/update-conversation': (input) => {
    const c = conversationOf(input, input.path.conversationId)
    Object.assign(c, defined(input.body, ['locationId', 'id']), { dateUpdated: isoNow(input) })
    return { body: { success: true, conversation: c } }
  },
  'conversations/delete-conversation': (input) => {
    const c = conversationOf(input, input.path.conversationId)
    input.data.remove('conversations', c.id)
    input.data.removeWhere('messages', (m) => m.conversationId === c.id)
    return { body: { success: true } }
  },
  'conversations/search-conversation': (input) => {
    const q = input.query
    let rows = input.data
      .list('conversations')
      .filter(
        (c) =>
          c.locationId === locationOf(input) &&
          (q.contactId === undefined || c.contactId === q.contactId) &&
          (q.assignedTo === undefined || c.assignedTo === q.assignedTo) &&
          (q.id === undefined || c.id === q.id) &&
          (q.status !== 'unread' || Number(c.unreadCount) > 0) &&
          (q.status !== 'read' || Number(c.unreadCount) === 0) &&
          (q.status !== 'starred' || c.starred === true) &&
          matches(c, q.query, ['fullName', 'contactName', 'email', 'phone', 'lastMessageBody']),
      )
    rows = [...rows].sort((a, b) => Date.parse(String(b.lastMessageDate)) - Date.parse(String(a.lastMessageDate)))
    if (q.sort === 'asc') rows.reverse()
    const p = page(rows, { limit: q.limit })
    return { body: { conversations: p.items, total: p.total } }
  },

  'conversations/send-a-new-message': (input) => {
    const contact = contactOf(input, String(input.body.contactId))
    const conv = openConversation(input, contact)
    const msg = addMessage(input, conv, 'outbound', input.body)
    return {
      body: {
        conversationId: conv.id,
        messageId: msg.id,
        ...(msg.messageType === 'TYPE_EMAIL' ? { emailMessageId: msg.id } : {}),
        msg: msg.status === 'scheduled' ? 'Message scheduled' : 'Message queued successfully.',
        status: msg.status === 'scheduled' ? 'pending' : 'delivered',
      },
    }
  },
  'conversations/add-an-inbound-message': (input) => {
    const conv = conversationOf(input, input.body.conversationId)
    if (conv.contactId !== input.body.contactId) throw new ApiFailure(400, 'Contact does not belong to this conversation')
    const msg = addMessage(input, conv, 'inbound', input.body)
    return { body: { success: true, conversationId: conv.id, messageId: msg.id, message: 'Message added successfully', contactId: conv.contactId, dateAdded: msg.dateAdded } }
  },
  'conversations/add-an-outbound-message': (input) => {
    const conv = conversationOf(input, input.body.conversationId)
    const msg = addMessage(input, conv, 'outbound', input.body)
    return { body: { success: true, conversationId: conv.id, messageId: msg.id, message: 'Message added successfully', contactId: conv.contactId, dateAdded: msg.dateAdded } }
  },
  'conversations/get-message': (input) => ({ body: messageOf(input, input.path.id) }),
  'conversations/get-messages': (input) => {
    const conv = conversationOf(input, input.path.conversationId)
    const q = input.query
    let rows = input.data.list('messages').filter((m) => m.conversationId === conv.id && (q.type === undefined || String(q.type).split(',').includes(String(m.messageType))))
    rows = [...rows].reverse() // newest first
    if (typeof q.lastMessageId === 'string') {
      const i = rows.findIndex((m) => m.id === q.lastMessageId)
      rows = i >= 0 ? rows.slice(i + 1) : rows
    }
    const limit = typeof q.limit === 'number' ? q.limit : 20
    const items = rows.slice(0, limit)
    return { body: { lastMessageId: items[items.length - 1]?.id ?? '', nextPage: rows.length > limit, messages: items } }
  },
  'conversations/update-message-status': (input) => {
    const msg = messageOf(input, input.path.messageId)
    msg.status = input.body.status
    if (input.body.error !== undefined) msg.error = input.body.error
    return { body: { conversationId: msg.conversationId, messageId: msg.id, status: input.body.status } }
  },
}
