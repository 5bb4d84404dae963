/**
 * HighLevel's side of the Marketplace workflow features and external authentication: the app's
 * configuration (action URLs, trigger subscription URLs, their static headers, the external
 * authentication request, the billing URL), workflows that subscribe to the app's triggers and call
 * its actions, what each call sent and got back, and a test's way to run a workflow.
 *
 * Shapes (not in HighLevel's OpenAPI files; see the sandbox README, "Workflows"): the subscription
 * call `{triggerData: {id, key, filters, eventType, targetUrl}, meta: {key, version}, extras:
 * {locationId, workflowId, companyId}}` and the action call `{data, extras, meta}` follow HighLevel's
 * Marketplace-modules pages as community repositories captured them; the trigger target
 * (`/workflows-marketplace/triggers/execute/:locationId/:triggerId`), the resume endpoint
 * (`/workflows-marketplace/actions/resume-internal-action`) and the extras of a paused action
 * (`stepId`, `statusId`, `stepIndex`, `key`) come from community code. The external-authentication
 * request follows ExternalAuthentication.md.
 */
import type { FastifyInstance, FastifyReply } from 'fastify'
import { z } from 'zod'
import { authenticate, badRequest, bodyOf, notFound, unauthorized, zodMessages, validBody, type SandboxContext } from '../http.js'
import { hlId, traceIdValue } from '../ids.js'
import { Collections, type Rec } from '../resources/context.js'

const headersSchema = z.record(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/), z.string()).default({})

const configSchema = z.object({
  billingUrl: z.url().nullable().optional(),
  actions: z.array(z.object({ key: z.string().min(1), url: z.url(), headers: headersSchema, pauseExecution: z.boolean().default(false) })).optional(),
  triggers: z.array(z.object({ key: z.string().min(1), subscriptionUrl: z.url(), headers: headersSchema })).optional(),
  externalAuth: z
    .object({
      url: z.url(),
      method: z.enum(['GET', 'POST', 'PUT', 'PATCH']).default('POST'),
      headers: headersSchema,
      /** The fields the installer fills in (HighLevel allows three). */
      fields: z.array(z.string().min(1)).max(3).default([]),
    })
    .nullable()
    .optional(),
})

const workflowSchema = z.object({
  appId: z.string().optional(),
  locationId: z.string().min(1),
  name: z.string().default('Sandbox workflow'),
  trigger: z.object({ key: z.string().min(1), filters: z.array(z.record(z.string(), z.unknown())).default([]) }).optional(),
  actions: z.array(z.object({ key: z.string().min(1), data: z.record(z.string(), z.unknown()).default({}) })).default([]),
})

const resumeSchema = z.object({
  success: z.boolean(),
  successMessage: z.string().optional(),
  errorMessage: z.string().optional(),
  executionResponse: z.record(z.string(), z.unknown()).optional(),
  branchId: z.string().optional(),
  extras: z.object({ statusId: z.string().min(1), stepId: z.string().min(1) }).loose(),
})

const externalAuthSchema = z.object({
  appId: z.string().optional(),
  companyId: z.string().min(1).nullable().optional(),
  locationIds: z.array(z.string().min(1)).nullable().optional(),
  approveAllLocations: z.boolean().default(false),
  excludedLocations: z.array(z.string().min(1)).nullable().optional(),
  fields: z.record(z.string(), z.string()).default({}),
})

/** The version HighLevel's samples send in `meta`. */
const VERSION = '1.0'
/** HighLevel's accepted answers to an external-authentication request (ExternalAuthentication.md). */
const AUTH_OK = [200, 201, 202, 204]

interface CallRecord {
  url: string
  /** Names of the headers sent (values are the app's secrets: not recorded). */
  headerNames: string[]
  body: unknown
  responseStatus: number | null
  responseBody: unknown
  error: string | null
}

/** Registers the workflow routes and controls. */
export function registerWorkflowRoutes(app: FastifyInstance, ctx: SandboxContext, sandboxUrl: () => string): void {
  const store = ctx.store
  const data = new Collections(store)
  const appOf = (appId: unknown) => (typeof appId === 'string' ? store.appById(appId) : store.apps[0])
  const configOf = (appId: string): Rec => data.find('marketplaceApps', appId) ?? data.insert('marketplaceApps', { id: appId, billingUrl: null, actions: [], triggers: [], externalAuth: null })

  /** POSTs (or GETs) JSON to the app, recording what was sent and answered. */
  const call = async (url: string, method: string, headers: Record<string, string>, body: unknown): Promise<CallRecord> => {
    const record: CallRecord = { url, headerNames: Object.keys(headers), body, responseStatus: null, responseBody: null, error: null }
    try {
      let target = url
      let payload: string | undefined
      if (method === 'GET') {
        const u = new URL(url)
        for (const [k, v] of Object.entries((body ?? {}) as Record<string, unknown>)) {
          if (Array.isArray(v)) for (const item of v) u.searchParams.append(k, String(item))
          else if (v !== null && v !== undefined) u.searchParams.set(k, String(v))
        }
        target = u.toString()
      } else payload = JSON.stringify(body)
      const res = await fetch(target, {
        method,
        headers: { ...headers, accept: 'application/json', ...(payload !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(payload !== undefined ? { body: payload } : {}),
        redirect: 'manual',
        signal: AbortSignal.timeout(10_000),
      })
      record.responseStatus = res.status
      const text = await res.text()
      try {
        record.responseBody = text === '' ? null : JSON.parse(text)
      } catch {
        record.responseBody = text.slice(0, 1000)
      }
    } catch (err) {
      record.error = (err as Error).message
    }
    return record
  }

  /** HighLevel's call of the trigger's subscription URL for a workflow. */
  const subscriptionCall = async (workflow: Rec, eventType: 'CREATED' | 'UPDATED' | 'DELETED'): Promise<CallRecord> => {
    const trigger = workflow.trigger as { triggerId: string; key: string; filters: unknown[] }
    const config = configOf(String(workflow.appId))
    const t = (config.triggers as Array<{ key: string; subscriptionUrl: string; headers: Record<string, string> }>).find((x) => x.key === trigger.key)!
    const body = {
      triggerData: {
        id: trigger.triggerId,
        key: trigger.key,
        filters: trigger.filters,
        eventType,
        targetUrl: `${sandboxUrl()}/workflows-marketplace/triggers/execute/${workflow.locationId}/${trigger.triggerId}`,
      },
      meta: { key: trigger.key, version: VERSION },
      extras: { locationId: workflow.locationId, workflowId: workflow.id, companyId: workflow.companyId },
    }
    const record = await call(t.subscriptionUrl, 'POST', t.headers, body)
    ;(workflow.subscriptionCalls as Array<Record<string, unknown>>).push({ eventType, ...record })
    return record
  }

  /** Runs a workflow's actions in order for one execution (a trigger's or a test's). */
  const execute = async (workflow: Rec, source: 'trigger' | 'manual', payload: Record<string, unknown>, contactId?: string): Promise<Rec> => {
    const run = data.insert('workflowRuns', {
      id: hlId(),
      workflowId: workflow.id,
      locationId: workflow.locationId,
      source,
      payload,
      steps: [],
      status: 'running',
      createdAt: new Date(store.now()).toISOString(),
    })
    await runSteps(workflow, run, 0, contactId)
    return run
  }

  const runSteps = async (workflow: Rec, run: Rec, from: number, contactId?: string): Promise<void> => {
    const config = configOf(String(workflow.appId))
    const steps = workflow.actions as Array<{ stepId: string; key: string; data: Record<string, unknown> }>
    for (let i = from; i < steps.length; i++) {
      const step = steps[i]!
      const action = (config.actions as Array<{ key: string; url: string; headers: Record<string, string>; pauseExecution: boolean }>).find((a) => a.key === step.key)
      const record: Record<string, unknown> = { stepId: step.stepId, key: step.key, stepIndex: i }
      ;(run.steps as Array<Record<string, unknown>>).push(record)
      if (!action) {
        Object.assign(record, { status: 'failed', error: 'The app has no action with this key' })
        run.status = 'failed'
        ctx.persist()
        return
      }
      const extras: Record<string, unknown> = {
        locationId: workflow.locationId,
        companyId: workflow.companyId,
        workflowId: workflow.id,
        ...(contactId ? { contactId } : {}),
        key: step.key,
        stepId: step.stepId,
        statusId: run.id,
        stepIndex: i,
      }
      const body = { data: templated(step.data, run.payload as Record<string, unknown>), extras, meta: { key: step.key, version: VERSION } }
      const result = await call(action.url, 'POST', action.headers, body)
      const ok = result.responseStatus !== null && result.responseStatus >= 200 && result.responseStatus < 300
      const answer = result.responseBody && typeof result.responseBody === 'object' ? (result.responseBody as Record<string, unknown>) : {}
      Object.assign(record, { request: { headerNames: result.headerNames, body }, response: { status: result.responseStatus, body: result.responseBody }, error: result.error })
      if (!ok) {
        record.status = 'failed'
        run.status = 'failed'
        ctx.persist()
        return
      }
      if (action.pauseExecution) {
        record.status = 'paused'
        run.status = 'paused'
        ctx.persist()
        return
      }
      record.status = 'completed'
      record.outputs = answer
      if (typeof answer.branchId === 'string') record.branchId = answer.branchId
    }
    run.status = 'completed'
    ctx.persist()
  }

  // --- configuration -------------------------------------------------------------------------

  app.get('/_sandbox/marketplace/:appId', async (req, reply) => {
    const theApp = store.appById((req.params as { appId: string }).appId)
    if (!theApp) return notFound(reply, 'Unknown app')
    return configOf(theApp.appId)
  })

  app.put('/_sandbox/marketplace/:appId', async (req, reply) => {
    const theApp = store.appById((req.params as { appId: string }).appId)
    if (!theApp) return notFound(reply, 'Unknown app')
    const b = validBody(req, reply, configSchema)
    if (b === undefined) return reply
    const config = configOf(theApp.appId)
    for (const [k, v] of Object.entries(b)) if (v !== undefined) config[k] = v
    ctx.persist()
    return config
  })

  // --- workflows -----------------------------------------------------------------------------

  app.post('/_sandbox/workflows', async (req, reply) => {
    const b = validBody(req, reply, workflowSchema)
    if (b === undefined) return reply
    const theApp = appOf(b.appId)
    if (!theApp) return notFound(reply, 'Unknown app')
    const location = store.location(b.locationId)
    if (!location) return notFound(reply, 'Unknown location')
    if (!store.installForLocation(theApp.appId, b.locationId)) return badRequest(reply, 'The app is not installed on this location: its triggers and actions are not offered there')
    const config = configOf(theApp.appId)
    if (b.trigger && !(config.triggers as Array<{ key: string }>).some((t) => t.key === b.trigger!.key)) return badRequest(reply, `The app has no trigger ${b.trigger.key}`)
    for (const a of b.actions) if (!(config.actions as Array<{ key: string }>).some((x) => x.key === a.key)) return badRequest(reply, `The app has no action ${a.key}`)
    const workflow = data.insert('workflows', {
      id: hlId(),
      appId: theApp.appId,
      locationId: b.locationId,
      companyId: location.companyId,
      name: b.name,
      status: 'published',
      trigger: b.trigger ? { triggerId: hlId(), key: b.trigger.key, filters: b.trigger.filters } : null,
      actions: b.actions.map((a) => ({ stepId: hlId(), key: a.key, data: a.data })),
      subscriptionCalls: [],
    })
    const subscription = workflow.trigger ? await subscriptionCall(workflow, 'CREATED') : undefined
    ctx.persist()
    return workflowView(workflow, subscription)
  })

  app.get('/_sandbox/workflows', async (req) => {
    const q = req.query as Record<string, unknown>
    return data.list('workflows').filter((w) => q.locationId === undefined || w.locationId === q.locationId)
  })

  const workflowOf = (reply: FastifyReply, id: string): Rec | undefined => {
    const w = data.find('workflows', id)
    if (!w) notFound(reply, 'Unknown workflow')
    return w
  }

  app.get('/_sandbox/workflows/:workflowId', async (req, reply) => workflowOf(reply, (req.params as { workflowId: string }).workflowId) ?? reply)

  app.put('/_sandbox/workflows/:workflowId', async (req, reply) => {
    const w = workflowOf(reply, (req.params as { workflowId: string }).workflowId)
    if (!w) return reply
    if (w.status !== 'published' || !w.trigger) return badRequest(reply, 'The workflow has no live trigger')
    const filters = z.array(z.record(z.string(), z.unknown())).safeParse(bodyOf(req).filters)
    if (!filters.success) return badRequest(reply, 'filters must be an array of objects')
    ;(w.trigger as Record<string, unknown>).filters = filters.data
    const subscription = await subscriptionCall(w, 'UPDATED')
    ctx.persist()
    return workflowView(w, subscription)
  })

  app.delete('/_sandbox/workflows/:workflowId', async (req, reply) => {
    const w = workflowOf(reply, (req.params as { workflowId: string }).workflowId)
    if (!w) return reply
    if (w.status !== 'published') return badRequest(reply, 'The workflow is already deleted')
    w.status = 'deleted'
    const subscription = w.trigger ? await subscriptionCall(w, 'DELETED') : undefined
    ctx.persist()
    return workflowView(w, subscription)
  })

  app.get('/_sandbox/workflows/:workflowId/runs', async (req, reply) => {
    const w = workflowOf(reply, (req.params as { workflowId: string }).workflowId)
    if (!w) return reply
    return data.list('workflowRuns').filter((r) => r.workflowId === w.id)
  })

  // A test runs the workflow now (as if its trigger fired with this payload): the run, once its actions ran.
  app.post('/_sandbox/workflows/:workflowId/run', async (req, reply) => {
    const w = workflowOf(reply, (req.params as { workflowId: string }).workflowId)
    if (!w) return reply
    if (w.status !== 'published') return badRequest(reply, 'The workflow is deleted')
    const b = bodyOf(req)
    const payload = b.payload && typeof b.payload === 'object' && !Array.isArray(b.payload) ? (b.payload as Record<string, unknown>) : {}
    return execute(w, 'manual', payload, typeof b.contactId === 'string' ? b.contactId : undefined)
  })

  // --- HighLevel's endpoints the app calls ----------------------------------------------------

  // A trigger fired by the app: the location's token; the workflow runs (its actions after the answer).
  app.post('/workflows-marketplace/triggers/execute/:locationId/:triggerId', async (req, reply) => {
    const token = await authenticate(ctx, req, reply, { counter: store.stats.api, fault: 'api' })
    if (!token) return reply
    const { locationId, triggerId } = req.params as { locationId: string; triggerId: string }
    if (token.type !== 'access' || token.userType !== 'Location' || token.locationId !== locationId) {
      return unauthorized(reply, 'The token is not a sub-account token of this location')
    }
    const workflow = data.list('workflows').find((w) => w.status === 'published' && (w.trigger as { triggerId?: string } | null)?.triggerId === triggerId && w.locationId === locationId)
    if (!workflow) return notFound(reply, 'Trigger not found')
    if (workflow.appId !== token.appId) return unauthorized(reply, 'The token does not belong to the app of this trigger')
    const payload = bodyOf(req)
    const run = data.insert('workflowRuns', {
      id: hlId(),
      workflowId: workflow.id,
      locationId,
      source: 'trigger',
      payload,
      steps: [],
      status: 'running',
      createdAt: new Date(store.now()).toISOString(),
    })
    ctx.persist()
    const contactId = typeof payload.contactId === 'string' ? payload.contactId : undefined
    ctx.webhooks.background(() => runSteps(workflow, run, 0, contactId))
    return { success: true, executionId: run.id }
  })

  // The app resumes a paused action with the extras of its call. ASSUMPTION: a Bearer token, when sent,
  // must be valid for the location; community code sends none.
  app.post('/workflows-marketplace/actions/resume-internal-action', async (req, reply) => {
    const b = validBody(req, reply, resumeSchema)
    if (b === undefined) return reply
    const run = data.find('workflowRuns', b.extras.statusId)
    const step = (run?.steps as Array<Record<string, unknown>> | undefined)?.find((s) => s.stepId === b.extras.stepId)
    if (!run || !step || step.status !== 'paused') return notFound(reply, 'No paused action with these extras')
    const header = req.headers.authorization
    if (header !== undefined) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(String(header))
      const t = m ? store.tokens.get(m[1]!) : undefined
      if (!t || store.tokenState(t) !== 'active' || t.locationId !== run.locationId) return unauthorized(reply, 'Invalid JWT')
    }
    Object.assign(step, {
      status: b.success ? 'completed' : 'failed',
      resumed: { success: b.success, message: b.successMessage ?? b.errorMessage ?? null, at: new Date(store.now()).toISOString() },
      outputs: b.executionResponse ?? {},
      ...(b.branchId !== undefined ? { branchId: b.branchId } : {}),
    })
    const workflow = data.find('workflows', String(run.workflowId))
    if (!b.success || !workflow) {
      run.status = b.success ? 'completed' : 'failed'
      ctx.persist()
    } else {
      run.status = 'running'
      ctx.webhooks.background(() => runSteps(workflow, run, Number(step.stepIndex) + 1, typeof b.extras.contactId === 'string' ? b.extras.contactId : undefined))
    }
    return { success: true }
  })

  // --- external authentication ---------------------------------------------------------------

  // An install asks for the app's credential: HighLevel sends it to the app's authentication endpoint.
  app.post('/_sandbox/external-auth', async (req, reply) => {
    const b = validBody(req, reply, externalAuthSchema)
    if (b === undefined) return reply
    const theApp = appOf(b.appId)
    if (!theApp) return notFound(reply, 'Unknown app')
    const auth = configOf(theApp.appId).externalAuth as { url: string; method: string; headers: Record<string, string>; fields: string[] } | null
    if (!auth) return badRequest(reply, 'The app has no external authentication (PUT /_sandbox/marketplace/:appId {externalAuth})')
    const missing = auth.fields.filter((f) => !(f in b.fields))
    if (missing.length > 0) return badRequest(reply, `Missing fields: ${missing.join(', ')}`)
    // ExternalAuthentication.md: companyId (null for a location install), locationId (null when all
    // were approved), approveAllLocations, excludedLocations (null unless all were approved), the fields.
    const body = {
      companyId: b.companyId ?? null,
      locationId: b.approveAllLocations ? null : (b.locationIds ?? null),
      ...Object.fromEntries(auth.fields.map((f) => [f, b.fields[f]!])),
      approveAllLocations: b.approveAllLocations,
      excludedLocations: b.approveAllLocations ? (b.excludedLocations ?? null) : null,
    }
    const result = await call(auth.url, auth.method, auth.headers, body)
    const accepted = result.responseStatus !== null && AUTH_OK.includes(result.responseStatus)
    data.insert('externalAuthCalls', { id: traceIdValue(), appId: theApp.appId, accepted, responseStatus: result.responseStatus, error: result.error, at: new Date(store.now()).toISOString() })
    ctx.persist()
    return { accepted, status: result.responseStatus, body: result.responseBody, error: result.error }
  })
}

/** Replaces `{{trigger.<path>}}` in string values with the trigger payload's value. */
function templated(data: Record<string, unknown>, payload: Record<string, unknown>): Record<string, unknown> {
  const lookup = (path: string): unknown => path.split('.').reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), payload)
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') {
      const whole = /^\{\{\s*trigger\.([\w.]+)\s*\}\}$/.exec(v)
      if (whole) return lookup(whole[1]!) ?? ''
      return v.replace(/\{\{\s*trigger\.([\w.]+)\s*\}\}/g, (_m, p: string) => String(lookup(p) ?? ''))
    }
    if (Array.isArray(v)) return v.map(walk)
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]))
    return v
  }
  return walk(data) as Record<string, unknown>
}

function workflowView(w: Rec, subscription: CallRecord | undefined): Record<string, unknown> {
  const trigger = w.trigger as { triggerId: string } | null
  return {
    workflowId: w.id,
    status: w.status,
    triggerId: trigger?.triggerId ?? null,
    steps: (w.actions as Array<{ stepId: string; key: string }>).map((a) => ({ stepId: a.stepId, key: a.key })),
    ...(subscription ? { subscription: { status: subscription.responseStatus, body: subscription.responseBody, error: subscription.error } } : {}),
  }
}
