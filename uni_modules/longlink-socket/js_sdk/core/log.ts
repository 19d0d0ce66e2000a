import type { Logger } from '../types'

/** Names whose values are secrets: tokens, passwords, signatures, keys, cookies, authorization. */
const SECRET_NAME = /token|passw|pwd|secret|auth|sign|key|cookie|session|ticket|credential/i

/** The URL with every secret-looking query value (and any user:password part) replaced by `***`. */
export function redactUrl(url: string): string {
  return url
    .replace(/\/\/([^/@?#]+)@/, '//***@')
    .replace(/([?&])([^=&#]+)=([^&#]*)/g, (all, sep: string, name: string) =>
      SECRET_NAME.test(decodeSafe(name)) ? `${sep}${name}=***` : all,
    )
}

/** Header names only, with secret-looking values replaced by `***`. */
export function redactHeaders(header: Record<string, string> | undefined): string {
  if (!header) return '{}'
  const parts = Object.keys(header).map((name) => `${name}: ${SECRET_NAME.test(name) ? '***' : header[name]}`)
  return `{${parts.join(', ')}}`
}

function decodeSafe(text: string): string {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}

/** One log function, whatever shape the user's logger has. */
export type LogFn = (level: 'debug' | 'info' | 'warn' | 'error', message: string) => void

/** Turns the `logger` option into one function; no logger means no logging. A throwing logger is ignored. */
export function toLogFn(logger: Logger | undefined, prefix: string): LogFn {
  if (!logger) return () => {}
  return (level, message) => {
    try {
      if (typeof logger === 'function') logger(level, `${prefix} ${message}`)
      else {
        const method = logger[level] ?? logger.debug
        // Called on the logger object so `console` keeps its `this`.
        if (typeof method === 'function') method.call(logger, `${prefix} ${message}`)
      }
    } catch {
      // Logging must never break the connection.
    }
  }
}
