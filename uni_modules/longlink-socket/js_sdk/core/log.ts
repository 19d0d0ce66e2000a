import type { Logger } from '../types'

/**
 * The URL with its user:password part and every query value replaced by `***`. The names a value was sent under are
 * worth logging; the value itself may be a secret whatever its name (`t=`, `jwt=`, `code=`), so none is kept.
 */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^/?#]*@|=[^&#]*/g, (part) => (part[0] === '=' ? '=***' : '//***@'))
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
