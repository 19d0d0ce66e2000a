/**
 * Structured logging: one JSON object per line (`{time, level, event, ...fields}`), to stdout by default or to an
 * injected sink. Every line goes through {@link redact} first, so no token, password, secret or Authorization
 * header can reach the output, whether it sits in a field named like one or inside free text.
 */
import { TOKEN_PATTERN } from './tokens'

export type LogLevel = 'debug' | 'info' | 'warn' | 'error'
export type LogSink = (line: string) => void

export interface Logger {
  log(level: LogLevel, event: string, fields?: Record<string, unknown>): void
  info(event: string, fields?: Record<string, unknown>): void
  warn(event: string, fields?: Record<string, unknown>): void
  error(event: string, fields?: Record<string, unknown>): void
}

const SECRET_KEY = /pass(word)?|secret|token|authorization|cookie|credential/i
const BEARER = /\b(Bearer|Basic)\s+[^\s"',;]+/gi
const QUERY_SECRET = /([?&](?:token|access_token|password|pass|secret|auth)=)[^&\s"']*/gi
const MASK = '***'

function redactString(s: string): string {
  return s.replace(BEARER, `$1 ${MASK}`).replace(QUERY_SECRET, `$1${MASK}`).replace(TOKEN_PATTERN, MASK)
}

/** A copy of `value` with secrets masked: keys that name a secret, bearer headers, `?token=` and token-shaped strings. */
export function redact(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactString(value)
  if (value === null || typeof value !== 'object') return value
  if (depth > 6) return '[deep]'
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return `[${value.byteLength} bytes]`
  if (value instanceof Error) {
    return { name: value.name, message: redactString(value.message), ...('code' in value && { code: (value as { code: unknown }).code }) }
  }
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1))
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_KEY.test(k) && v !== undefined && v !== null && typeof v !== 'boolean' ? MASK : redact(v, depth + 1)
  }
  return out
}

export const stdoutSink: LogSink = (line) => {
  process.stdout.write(line + '\n')
}

export function createLogger(sink: LogSink = stdoutSink, minLevel: LogLevel = 'info'): Logger {
  const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 }
  const log = (level: LogLevel, event: string, fields: Record<string, unknown> = {}): void => {
    if (order[level] < order[minLevel]) return
    let line: string
    try {
      line = JSON.stringify({ time: new Date().toISOString(), level, event: redactString(event), ...(redact(fields) as object) })
    } catch {
      line = JSON.stringify({ time: new Date().toISOString(), level, event: redactString(event), note: 'unserialisable fields' })
    }
    try {
      sink(line)
    } catch {
      /* a broken sink must not break the server */
    }
  }
  return {
    log,
    info: (e, f) => log('info', e, f),
    warn: (e, f) => log('warn', e, f),
    error: (e, f) => log('error', e, f),
  }
}

/** A logger that keeps lines in memory (tests). */
export function memoryLogger(): Logger & { lines: string[]; entries(): Record<string, unknown>[] } {
  const lines: string[] = []
  const logger = createLogger((l) => lines.push(l), 'debug')
  return Object.assign(logger, { lines, entries: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) })
}
