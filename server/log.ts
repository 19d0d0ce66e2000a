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
const QUERY_SECRET = /([?&](?:token|access_token|refresh_token|password|pass|secret|auth)=)[^&\s"']*/gi
/** `scheme://user:password@host`: the password part of a URL's userinfo. */
const URL_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^:/\s@]*:)[^@\s/]*@/gi
const MASK = '***'

function redactString(s: string): string {
  return s.replace(URL_PASSWORD, `$1${MASK}@`).replace(BEARER, `$1 ${MASK}`).replace(QUERY_SECRET, `$1${MASK}`).replace(TOKEN_PATTERN, MASK)
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

/** The last `size` log lines, parsed, for the admin page; listeners hear each new line. */
export interface LogRing {
  /** A logger that writes to `logger` and keeps the same lines here. */
  wrap(logger: Logger): Logger
  recent(): Record<string, unknown>[]
  subscribe(listener: (entry: Record<string, unknown>) => void): () => void
}

export function createLogRing(size = 200, minLevel: LogLevel = 'info'): LogRing {
  /** Entries, or the function that makes one: a line nobody watches is formatted (and redacted) only when read. */
  const entries: (Record<string, unknown> | (() => Record<string, unknown>))[] = []
  const listeners = new Set<(entry: Record<string, unknown>) => void>()
  const entryOf = (level: LogLevel, event: string, fields: Record<string, unknown> | undefined, time: number) => {
    const entry = JSON.parse(formatLine(level, event, fields)) as Record<string, unknown>
    entry.time = new Date(time).toISOString()
    return entry
  }
  const keep = (level: LogLevel, event: string, fields?: Record<string, unknown>): void => {
    if (LEVELS[level] < LEVELS[minLevel]) return
    const time = Date.now()
    // The fields are copied now: the caller may change its object after the call.
    const later = fields && { ...fields }
    if (listeners.size === 0) entries.push(() => entryOf(level, event, later, time))
    else {
      const entry = entryOf(level, event, later, time)
      entries.push(entry)
      for (const l of listeners) l(entry)
    }
    if (entries.length > size) entries.splice(0, entries.length - size)
  }
  return {
    wrap(logger) {
      const log = (level: LogLevel, event: string, fields?: Record<string, unknown>): void => {
        logger.log(level, event, fields)
        keep(level, event, fields)
      }
      return { log, info: (e, f) => log('info', e, f), warn: (e, f) => log('warn', e, f), error: (e, f) => log('error', e, f) }
    },
    recent: () => entries.map((e, i) => (typeof e === 'function' ? (entries[i] = e()) : e)),
    subscribe(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
  }
}

/**
 * Bounds the log lines of noisy events (refusals an attacker can cause at will): at most `perWindow` lines per event
 * name per `windowMs`; past that, lines are counted and one `log.suppressed {event, count}` line reports them when
 * the window ends (or at the next line of that event after it).
 */
export function createLogLimiter(logger: Logger, perWindow: number, windowMs: number, now: () => number = Date.now) {
  const windows = new Map<string, { start: number; lines: number; suppressed: number }>()
  const flush = (event: string, w: { suppressed: number }): void => {
    if (w.suppressed > 0) logger.warn('log.suppressed', { suppressedEvent: event, count: w.suppressed, windowMs })
    w.suppressed = 0
  }
  const timer = setInterval(
    () => {
      const t = now()
      for (const [event, w] of windows) {
        if (t - w.start < windowMs) continue
        flush(event, w)
        windows.delete(event)
      }
    },
    Math.max(1000, Math.min(windowMs, 10_000)),
  )
  timer.unref()
  return {
    warn(event: string, fields?: Record<string, unknown>): void {
      const t = now()
      let w = windows.get(event)
      if (!w || t - w.start >= windowMs) {
        if (w) flush(event, w)
        w = { start: t, lines: 0, suppressed: 0 }
        windows.set(event, w)
      }
      if (w.lines < perWindow) {
        w.lines++
        logger.warn(event, fields)
      } else w.suppressed++
    },
    /** Reports what is still suppressed and stops the timer. */
    close(): void {
      clearInterval(timer)
      for (const [event, w] of windows) flush(event, w)
      windows.clear()
    },
  }
}

export type LogLimiter = ReturnType<typeof createLogLimiter>

let stdoutGuarded = false
/** Writes lines to stdout; a closed stdout (EPIPE) loses log lines but never ends the process. */
export const stdoutSink: LogSink = (line) => {
  if (!stdoutGuarded) {
    stdoutGuarded = true
    process.stdout.on('error', () => {})
  }
  process.stdout.write(line + '\n')
}

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 }

/** One redacted JSON line `{time, level, event, ...fields}`. */
export function formatLine(level: LogLevel, event: string, fields: Record<string, unknown> = {}): string {
  try {
    return JSON.stringify({ time: new Date().toISOString(), level, event: redactString(event), ...(redact(fields) as object) })
  } catch {
    return JSON.stringify({ time: new Date().toISOString(), level, event: redactString(event), note: 'unserialisable fields' })
  }
}

export function createLogger(sink: LogSink = stdoutSink, minLevel: LogLevel = 'info'): Logger {
  const log = (level: LogLevel, event: string, fields: Record<string, unknown> = {}): void => {
    if (LEVELS[level] < LEVELS[minLevel]) return
    const line = formatLine(level, event, fields)
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
