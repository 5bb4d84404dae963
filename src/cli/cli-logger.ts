/**
 * Loggers of the commands. `serve` writes JSON lines (for a log collector); `dev`, `sandbox` and the
 * operator commands write for people through pino-pretty. pino-pretty is an optional dependency:
 * without it those commands fall back to JSON lines. Redaction happens in pino, before either format.
 */
import { destination as pinoDestination } from 'pino'
import { createLogger, type Logger } from '../logger.js'

/** JSON lines on stdout (`serve`). */
export function jsonLogger(level: string): Logger {
  return createLogger({ level })
}

/**
 * Human-readable lines, one per entry (`[12:00:01] INFO: ghl-connect listening {"url":…}`), on stdout
 * (fd 1) or stderr (fd 2). Falls back to JSON lines when pino-pretty is not installed.
 */
export async function humanLogger(level: string, fd: 1 | 2): Promise<Logger> {
  const pretty = await loadPinoPretty()
  if (!pretty) return createLogger({ level, destination: pinoDestination({ dest: fd, sync: true }) })
  // sync: a short-lived command must not exit with log lines still buffered.
  return createLogger({ level, destination: pretty({ destination: fd, sync: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname,name', singleLine: true }) })
}

async function loadPinoPretty() {
  try {
    return (await import('pino-pretty')).default
  } catch {
    return undefined
  }
}
