/**
 * App lifecycle webhooks exactly as HighLevel sends them: `INSTALL` (AppInstall.md, plus `versionId`
 * and `installType` which HighLevel's help centre example shows), `UNINSTALL` (AppUninstall.md) and
 * `PLAN_CHANGE` (PlanChange.md). `timestamp` and `webhookId` are added by the sender.
 */
import type { SandboxContext } from './http.js'
import type { AppRecord, InstallRecord } from './types.js'

/** The plan of an install: its own once a plan change set it, else the app's (`null`: a free app). */
export function planOf(app: AppRecord | undefined, install: InstallRecord | undefined): string | null {
  if (install && install.planId !== undefined) return install.planId
  return app?.planId ?? null
}

/**
 * `planId` and `trial` of a paid app. `trial` only when the app's plan has a free trial
 * (`trialDays` in the seed); it starts at the install.
 */
function paidFields(app: AppRecord, install: InstallRecord): Record<string, unknown> {
  const plan = planOf(app, install)
  if (!plan) return {}
  const days = app.trialDays ?? 0
  return {
    planId: plan,
    ...(days > 0 ? { trial: { onTrial: true, trialDuration: days, trialStartDate: new Date(install.installedAt).toISOString() } } : {}),
  }
}

/**
 * INSTALL events of an install. A location install: one location-level event. An agency install:
 * one agency-level event plus one location-level event per location in `locationIds` (default: the
 * approved locations).
 */
export function installEvents(ctx: SandboxContext, app: AppRecord, install: InstallRecord, locationIds?: string[]): Array<Record<string, unknown>> {
  const company = ctx.store.company(install.companyId)
  const version = app.versionId ? { versionId: app.versionId } : {}
  const paid = paidFields(app, install)
  const locationEvent = (locationId: string): Record<string, unknown> => ({
    type: 'INSTALL',
    appId: app.appId,
    ...version,
    installType: 'Location',
    locationId,
    companyId: install.companyId,
    userId: install.userId,
    ...paid,
    companyName: company?.name ?? '',
    isWhitelabelCompany: Boolean(company?.whitelabel),
    whitelabelDetails: company?.whitelabel ? { domain: company.whitelabel.domain, logoUrl: company.whitelabel.logoUrl } : {},
  })
  if (install.userType === 'Location') return [locationEvent(install.locationId!)]
  const agencyEvent = { type: 'INSTALL', appId: app.appId, ...version, installType: 'Company', companyId: install.companyId, ...paid }
  return [agencyEvent, ...(locationIds ?? install.approvedLocations).map(locationEvent)]
}

/** UNINSTALL (AppUninstall.md): `locationId` for a location, `companyId` for an agency. */
export function uninstallEvent(appId: string, target: { locationId: string } | { companyId: string }): Record<string, unknown> {
  return { type: 'UNINSTALL', appId, ...target }
}

/** PLAN_CHANGE (PlanChange.md); an agency-level change has no `locationId`. */
export function planChangeEvent(
  appId: string,
  install: InstallRecord,
  locationId: string | null,
  currentPlanId: string,
  newPlanId: string,
): Record<string, unknown> {
  return {
    type: 'PLAN_CHANGE',
    appId,
    ...(locationId ? { locationId } : {}),
    companyId: install.companyId,
    userId: install.userId,
    currentPlanId,
    newPlanId,
  }
}

/** Sends events one after another to the app's webhook URL. */
export async function sendEvents(ctx: SandboxContext, appId: string, events: Array<Record<string, unknown>>): Promise<void> {
  for (const event of events) {
    const app = ctx.store.appById(appId)
    await ctx.webhooks.send(app?.webhookUrl ?? null, event)
  }
}
