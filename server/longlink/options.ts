/**
 * The options of `attachLongLink`, their defaults, and their validation: a bad value throws a TypeError naming the
 * option at attach time, never a surprise later under load.
 */
import { randomBytes } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { LongLinkConnection } from './connection'

/** What the module logs with: the backend's `Logger` fits, so does `console`. Never given a full sid, token or body. */
export interface LongLinkLogger {
  info(event: string, fields?: Record<string, unknown>): void
  warn(event: string, fields?: Record<string, unknown>): void
  error(event: string, fields?: Record<string, unknown>): void
}

/**
 * Refuses by returning (or resolving) `false`, or by throwing. A string is the client key the per-client session limit
 * counts under (default: the remote address).
 */
export type Authenticate = (req: IncomingMessage) => boolean | string | void | Promise<boolean | string | void>

export interface LongLinkLimits {
  /** How long a long-poll is held when there is nothing to send (ms, default 25 000, at most 50 000). */
  hold?: number
  /** An SSE stream ends after this long, and the client opens the next one (ms, default 45 000, at most 50 000). */
  maxStreamMs?: number
  /** A session with no carrier and no request for this long expires (ms, default 60 000). */
  idleMs?: number
  /**
   * Per connection: bytes sent but not acknowledged (sessions) or not yet written out (plain WebSocket). `send` waits
   * while this is reached, and rejects (`BUFFER_FULL`) when the waiting bytes would exceed it again (default 1 MiB).
   */
  maxBufferBytes?: number
  /** A POST body over this is refused with 413 (bytes, default 1 MiB). */
  maxRequestBytes?: number
  /** Connections (sessions and plain WebSockets) one client key may hold; more get 429 (default 16). */
  maxSessionsPerClient?: number
  /** Connections in all; more get 503 `TOO_MANY_SESSIONS` (default 10 000). */
  maxSessions?: number
  /** Largest WebSocket frame accepted (bytes, default 1 MiB); a larger one closes the socket with 1009. */
  maxPayload?: number
  /** Protocol-level ping to every WebSocket this often; one that did not answer the last ping is cut (ms, default 30 000). */
  wsPingMs?: number
  /** A `: hb` comment on an SSE stream this often (ms, default 15 000). */
  sseHeartbeatMs?: number
}

export interface LongLinkOptions extends LongLinkLimits {
  /** The one path every transport is served at (for example `/longlink`); matched exactly, query aside. */
  path: string
  /** Asked when a session opens and for a plain WebSocket; requests bearing a sid are authorized by the sid. */
  authenticate?: Authenticate
  /** Called once per new connection, before any of its messages can arrive. */
  onConnection(conn: LongLinkConnection): void
  /** False: hook nothing; the host calls `handle.handleRequest` / `handle.handleUpgrade` itself (default true). */
  listen?: boolean
  /** False: a WebSocket upgrade at the path without `sid` is left to the host (default true). */
  plainWebSocket?: boolean
  /** This process's name inside every sid, `[A-Za-z0-9_-]{1,32}` (default: 8 random characters). */
  node?: string
  logger?: LongLinkLogger
  /** Extra headers (CORS) for every HTTP answer at the path; an OPTIONS preflight there is answered 204 with them. */
  cors?: (origin: string | undefined) => Record<string, string>
}

export interface ResolvedOptions extends Required<LongLinkLimits> {
  path: string
  authenticate: Authenticate | undefined
  onConnection: (conn: LongLinkConnection) => void
  listen: boolean
  plainWebSocket: boolean
  node: string
  logger: LongLinkLogger
  cors: ((origin: string | undefined) => Record<string, string>) | undefined
}

const MIB = 1024 * 1024

export const DEFAULT_LIMITS: Required<LongLinkLimits> = {
  hold: 25_000,
  maxStreamMs: 45_000,
  idleMs: 60_000,
  maxBufferBytes: MIB,
  maxRequestBytes: MIB,
  maxSessionsPerClient: 16,
  maxSessions: 10_000,
  maxPayload: MIB,
  wsPingMs: 30_000,
  sseHeartbeatMs: 15_000,
}

/** Inclusive bounds of each limit. The HTTP holds stay under the 60 s many platforms and proxies cut requests at. */
const BOUNDS: Record<keyof LongLinkLimits, [number, number]> = {
  hold: [0, 50_000],
  maxStreamMs: [1, 50_000],
  idleMs: [1, 2 ** 31 - 1],
  maxBufferBytes: [1, 2 ** 31 - 1],
  maxRequestBytes: [1, 2 ** 31 - 1],
  maxSessionsPerClient: [1, 2 ** 31 - 1],
  maxSessions: [1, 2 ** 31 - 1],
  maxPayload: [1, 2 ** 31 - 1],
  wsPingMs: [1, 2 ** 31 - 1],
  sseHeartbeatMs: [0, 2 ** 31 - 1],
}

export const NODE_PATTERN = /^[A-Za-z0-9_-]{1,32}$/

const silent = (): void => {}
/** Without a logger, problems (a handler that threw) still show: on stderr. Routine lines are dropped. */
const consoleLogger: LongLinkLogger = {
  info: silent,
  warn: (event, fields) => console.warn(event, fields ?? ''),
  error: (event, fields) => console.error(event, fields ?? ''),
}

function randomNode(): string {
  return randomBytes(6).toString('base64url').replace(/[-_]/g, 'x')
}

function fail(name: string, expected: string): never {
  throw new TypeError(`attachLongLink: option "${name}" must be ${expected}`)
}

/** Checks `options` and fills in the defaults; throws a TypeError naming the first bad option. */
export function resolveOptions(options: LongLinkOptions): ResolvedOptions {
  if (!options || typeof options !== 'object') fail('options', 'an object')
  const { path } = options
  if (typeof path !== 'string' || path[0] !== '/' || /[?#\s]/.test(path)) fail('path', 'a string starting with "/" without "?", "#" or spaces')
  if (typeof options.onConnection !== 'function') fail('onConnection', 'a function')
  if (options.authenticate !== undefined && typeof options.authenticate !== 'function') fail('authenticate', 'a function')
  if (options.cors !== undefined && typeof options.cors !== 'function') fail('cors', 'a function')
  for (const name of ['listen', 'plainWebSocket'] as const) {
    if (options[name] !== undefined && typeof options[name] !== 'boolean') fail(name, 'a boolean')
  }
  const node = options.node ?? randomNode()
  if (typeof node !== 'string' || !NODE_PATTERN.test(node)) fail('node', 'a string of 1 to 32 characters from [A-Za-z0-9_-]')
  const logger = options.logger ?? consoleLogger
  if (!logger || typeof logger !== 'object' || (['info', 'warn', 'error'] as const).some((k) => typeof logger[k] !== 'function')) {
    fail('logger', 'an object with info, warn and error functions')
  }
  const limits = { ...DEFAULT_LIMITS }
  for (const name of Object.keys(BOUNDS) as (keyof LongLinkLimits)[]) {
    const value = options[name]
    if (value === undefined) continue
    const [min, max] = BOUNDS[name]
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) fail(name, `an integer from ${min} to ${max}`)
    limits[name] = value
  }
  return {
    ...limits,
    path,
    authenticate: options.authenticate,
    onConnection: options.onConnection,
    listen: options.listen ?? true,
    plainWebSocket: options.plainWebSocket ?? true,
    node,
    logger,
    cors: options.cors,
  }
}
