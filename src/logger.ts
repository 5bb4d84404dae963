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

const REDACTED = new Set<string>(REDACTED_KEYS)
const CENSOR = '[redacted]'
/** How deep redaction looks into a logged object (pino's own paths went three levels down). */
const REDACT_DEPTH = 6

/**
 * The logged object with every property named in {@link REDACTED_KEYS} replaced by "[redacted]", at any
 * depth up to {@link REDACT_DEPTH}; errors are serialised first ({@link serializeError}) so that what they
 * carry is looked at too. One pass over the object, and nothing is copied unless a secret is found:
 * the copy is made along the path to it only. A request line (four plain fields) costs four Set
 * lookups, where pino's path-based redaction (`fast-redact`, 64 paths, 48 of them wildcards) cost
 * ~35 µs a line (`npm run bench:scale`, the proxy hop).
 */
export function redactSecrets(value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== 'object') return value
  if (value instanceof Error) value = serializeError(value)
  if (depth >= REDACT_DEPTH || ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return value
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i]
      const r = redactSecrets(v, depth + 1)
      if (r !== v) (copy ??= value.slice())[i] = r
    }
    return copy ?? value
  }
  const obj = value as Record<string, unknown>
  // A value that says how it is written (Date, URL, Buffer) is written that way, as JSON.stringify would.
  if (typeof obj.toJSON === 'function') return value
  let copy: Record<string, unknown> | undefined
  for (const key in obj) {
    if (!Object.prototype.hasOwnProperty.call(obj, key)) continue
    const v = obj[key]
    const r = REDACTED.has(key) ? (v === undefined ? v : CENSOR) : redactSecrets(v, depth + 1)
    if (r !== v) (copy ??= { ...obj })[key] = r
  }
  return copy ?? value
}

export interface LoggerOptions {
  level?: string
  /** Where lines go ({@link batchedDestination} on stdout by default); tests pass a stream to inspect what was logged. */
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

/** Bytes of lines gathered before a write, and the longest a line waits for one (ms). */
const BATCH_BYTES = 4096
const BATCH_MS = 250

/**
 * Where the server's lines go by default (stdout; or a file descriptor or path): written asynchronously
 * in batches — a write once 4 KB of lines are waiting or every 250 ms, whichever comes first, and what is
 * left at exit (pino flushes its destinations then). With one write per line, pino's default, each line
 * is handed to libuv's thread pool on its own: at one request line per call that was most of what
 * `LOG_LEVEL=info` cost over silent (`npm run bench:proxy`). A process killed outright (SIGKILL) loses
 * at most the last 250 ms of lines.
 */
export function batchedDestination(dest: number | string = 1): DestinationStream {
  return pinoDestination({ dest, sync: false, minLength: BATCH_BYTES, periodicFlush: BATCH_MS })
}

/**
 * Creates the project's logger: JSON lines, secrets redacted. Logging never throws: a line that cannot be
 * written (a value redaction or serialisation cannot handle) is replaced by a line saying so, and the
 * process goes on — one odd request must never stop the server.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const logger = pino(
    {
      name: options.name ?? 'ghl-connect',
      level: options.level ?? 'info',
      // One pass per line over the logged object and the child bindings (see redactSecrets).
      formatters: {
        log: (object) => redactSecrets(object) as Record<string, unknown>,
        bindings: (bindings) => redactSecrets(bindings) as Record<string, unknown>,
      },
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
    options.destination ?? batchedDestination(),
  )
  // pino formats a child's bindings once, at creation, without `formatters.bindings` (it resets that for
  // children): redact them here. Children inherit this method, so grandchildren are covered too.
  const child = logger.child
  logger.child = function (this: Logger, bindings: Record<string, unknown>, childOptions?: unknown) {
    return child.call(this, redactSecrets(bindings) as Record<string, unknown>, childOptions as never)
  } as typeof logger.child
  return logger
}

/** A logger that writes nothing (library default when the caller gives none). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}
