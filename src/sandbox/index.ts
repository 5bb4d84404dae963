/**
 * The HighLevel sandbox: a local, independent implementation of HighLevel's side (OAuth server,
 * every v2 API operation, rate limits, signed webhooks, SSO payloads, fault injection) for development and tests.
 * Behaviours and controls: ./README.md.
 */
export { startSandbox } from './server.js'
export type {
  LocationPickToken,
  ReconnectMode,
  Sandbox,
  SandboxApp,
  SandboxEnvOptions,
  SandboxInstall,
  SandboxInstallTarget,
  SandboxWebhookEvent,
  SandboxOptions,
  SandboxRateLimit,
  SandboxSeed,
  SandboxSeedApp,
  SandboxSeedCompany,
  SandboxSeedLocation,
  SandboxSeedUser,
  SuspendedApiStatus,
  UserTypeCheck,
  WebhookSignatures,
  VersionCheck,
  WebhookTiming,
} from './types.js'
export type { SandboxStats } from './store.js'
export type { FaultEndpoint, FaultKind } from './faults.js'
export type { SsoUserContext } from './sso.js'
