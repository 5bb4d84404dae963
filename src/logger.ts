/**
 * The structured logger (pino) with redaction: any property that could hold a secret is replaced by
 * "[redacted]" wherever it appears in a logged object. Code must still never log a token on purpose;
 * redaction is the second line of defence.
 */
import { pino, stdSerializers, destination as pinoDestination, type Logger, type DestinationStream } from 'pino'

export type { Logger }

/**
 * Property names whose values are never written to a log. (`code` is not among them: it is our error
 * code; OAuth authorization codes are never logged, and request URLs are logged without query strings.)
 */
export const REDACTED_KEYS = [
  'access_token',
  'refresh_token',
  'accessToken',
  'refreshToken',
  'client_secret',
  'clientSecret',
  'authorization',
  'Authorization',
  'token',
  'tokens',
  'password',
  'secret',
  'sharedSecret',
  'encryptionKeys',
  'x-connector-key',
  'authorizationCode',
] as const

/** Builds pino `redact.paths` for keys at the top level and up to three levels deep. */
function redactPaths(): string[] {
  const paths: string[] = []
  for (const key of REDACTED_KEYS) {
    const k = /^[A-Za-z_$][\w$]*$/.test(key) ? key : `["${key}"]`
    const dot = k.startsWith('[') ? '' : '.'
    paths.push(k, `*${dot}${k}`, `*.*${dot}${k}`, `*.*.*${dot}${k}`)
  }
  return paths
}

export interface LoggerOptions {
  level?: string
  /** Where lines go (stdout by default); tests pass a stream to inspect what was logged. */
  destination?: DestinationStream
  name?: string
}

/**
 * Errors as logged: pino's standard serializer, minus what must never reach a log — the raw bytes of a
 * malformed request that Node's HTTP parser attaches (`rawPacket`: they can hold an Authorization
 * header) — and with every value a plain one (a Buffer or typed array inside an error is replaced by
 * its length, so redaction never walks binary data).
 */
export function serializeError(err: unknown): unknown {
  if (!(err instanceof Error)) return err
  const out = stdSerializers.err(err) as unknown as Record<string, unknown>
  delete out.rawPacket
  for (const [k, v] of Object.entries(out)) {
    if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) out[k] = `[${(v as ArrayBuffer).byteLength} bytes]`
  }
  return out
}

/**
 * Creates the project's logger: JSON lines, secrets redacted. Logging never throws: a line that cannot be
 * written (a value redaction or serialisation cannot handle) is replaced by a line saying so, and the
 * process goes on — one odd request must never stop the server.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      name: options.name ?? 'ghl-connect',
      level: options.level ?? 'info',
      redact: { paths: redactPaths(), censor: '[redacted]' },
      serializers: { err: serializeError, error: serializeError },
      hooks: {
        logMethod(args, method) {
          try {
            method.apply(this, args)
          } catch (failure) {
            try {
              method.call(this, { logFailure: failure instanceof Error ? failure.message.slice(0, 200) : 'unknown' }, 'a log line could not be written')
            } catch {
              // Nothing more can be done without risking the process; the line is dropped.
            }
          }
        },
      },
    },
    options.destination ?? pinoDestination({ dest: 1, sync: false }),
  )
}

/** A logger that writes nothing (library default when the caller gives none). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}
