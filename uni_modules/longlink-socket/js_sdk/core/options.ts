import { ErrorCode, LongLinkError } from '../errors'
import type { ConnectionOptions, HeartbeatOptions, MessageData, SendData } from '../types'
import type { BackoffPolicy } from './backoff'

/** Options after validation, with every default filled in. */
export interface ResolvedOptions {
  url: string
  header: Record<string, string> | undefined
  protocols: string[] | undefined
  timeout: number | undefined
  connectTimeout: number
  heartbeat: { interval: number; timeout: number; ping: () => SendData; isPong: (data: MessageData) => boolean } | undefined
  reconnect: (BackoffPolicy & { maxRetries: number; minUptime: number }) | undefined
  queueMax: number
}

/** Default numbers, documented in readme.md. */
export const DEFAULTS = {
  connectTimeout: 10_000,
  heartbeat: { interval: 25_000, timeout: 10_000, ping: 'ping', pong: 'pong' },
  reconnect: { min: 1_000, max: 30_000, factor: 2, jitter: 0.5, maxRetries: Infinity, minUptime: 5_000 },
  queueMax: 100,
} as const

function invalid(message: string): never {
  throw new LongLinkError(ErrorCode.INVALID_OPTION, message)
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/** Throws INVALID_URL unless `url` is an absolute ws:// or wss:// URL with a host. */
export function checkUrl(url: unknown): string {
  if (typeof url !== 'string' || !/^wss?:\/\/[^/?#\s]+[^\s]*$/i.test(url)) {
    throw new LongLinkError(
      ErrorCode.INVALID_URL,
      `The url must be an absolute ws:// or wss:// URL, got ${typeof url === 'string' ? JSON.stringify(url.slice(0, 200)) : typeof url}`,
    )
  }
  return url
}

function number(name: string, value: unknown, fallback: number, check: (n: number) => boolean, rule: string): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || Number.isNaN(value) || !check(value)) invalid(`${name} must be ${rule}, got ${String(value)}`)
  return value
}

const positive = (n: number) => Number.isFinite(n) && n > 0
const nonNegative = (n: number) => Number.isFinite(n) && n >= 0
const count = (n: number) => n === Infinity || (Number.isInteger(n) && n >= 0)

/** Checks a header object: plain, string values only. */
export function checkHeader(header: unknown, name = 'header'): Record<string, string> | undefined {
  if (header === undefined) return undefined
  if (!isPlainObject(header)) invalid(`${name} must be a plain object of strings`)
  for (const key of Object.keys(header)) {
    if (typeof header[key] !== 'string') invalid(`${name}.${key} must be a string`)
  }
  return header as Record<string, string>
}

function resolveHeartbeat(value: ConnectionOptions['heartbeat']): ResolvedOptions['heartbeat'] {
  if (value === false) return undefined
  if (value !== undefined && !isPlainObject(value)) invalid('heartbeat must be an object or false')
  const options: HeartbeatOptions = value ?? {}
  const interval = number('heartbeat.interval', options.interval, DEFAULTS.heartbeat.interval, positive, 'a positive number of ms')
  const timeout = number('heartbeat.timeout', options.timeout, DEFAULTS.heartbeat.timeout, positive, 'a positive number of ms')
  const ping = options.ping ?? DEFAULTS.heartbeat.ping
  if (ping === null) invalid('heartbeat.ping must be data or a function')
  const pong = options.pong ?? DEFAULTS.heartbeat.pong
  if (typeof pong !== 'string' && typeof pong !== 'function') invalid('heartbeat.pong must be a string or a function')
  return {
    interval,
    timeout,
    ping: typeof ping === 'function' ? (ping as () => SendData) : () => ping,
    isPong: typeof pong === 'function' ? pong : (data) => data === pong,
  }
}

function resolveReconnect(value: ConnectionOptions['reconnect']): ResolvedOptions['reconnect'] {
  if (value === false) return undefined
  if (value !== undefined && !isPlainObject(value)) invalid('reconnect must be an object or false')
  const o = value ?? {}
  const d = DEFAULTS.reconnect
  const min = number('reconnect.min', o.min, d.min, nonNegative, 'a number of ms ≥ 0')
  const max = number('reconnect.max', o.max, Math.max(d.max, min), nonNegative, 'a number of ms ≥ 0')
  if (max < min) invalid(`reconnect.max (${max}) must not be below reconnect.min (${min})`)
  return {
    min,
    max,
    factor: number('reconnect.factor', o.factor, d.factor, (n) => Number.isFinite(n) && n >= 1, 'a number ≥ 1'),
    jitter: number('reconnect.jitter', o.jitter, d.jitter, (n) => n >= 0 && n <= 1, 'between 0 and 1'),
    maxRetries: number('reconnect.maxRetries', o.maxRetries, d.maxRetries, count, 'a whole number ≥ 0 or Infinity'),
    minUptime: number('reconnect.minUptime', o.minUptime, d.minUptime, nonNegative, 'a number of ms ≥ 0'),
  }
}

/** Validates every option (throwing INVALID_URL / INVALID_OPTION at once) and fills in the defaults. */
export function resolveOptions(options: ConnectionOptions): ResolvedOptions {
  if (!isPlainObject(options)) invalid('createConnection needs an options object with a url')
  const url = checkUrl(options.url)
  let protocols: string[] | undefined
  if (options.protocols !== undefined) {
    protocols = typeof options.protocols === 'string' ? [options.protocols] : options.protocols
    if (!Array.isArray(protocols) || protocols.some((p) => typeof p !== 'string' || !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(p))) {
      invalid('protocols must be a subprotocol token or an array of them')
    }
  }
  const queue = options.queue
  if (queue !== undefined && !isPlainObject(queue)) invalid('queue must be an object like { max: 100 }')
  if (options.auth !== undefined && typeof options.auth !== 'function') invalid('auth must be a function')
  if (options.logger !== undefined && typeof options.logger !== 'function' && !isPlainObject(options.logger) && typeof options.logger !== 'object') {
    invalid('logger must be a function or an object with debug/info/warn/error')
  }
  return {
    url,
    header: checkHeader(options.header),
    protocols,
    timeout: number('timeout', options.timeout, undefined as unknown as number, positive, 'a positive number of ms'),
    connectTimeout: number('connectTimeout', options.connectTimeout, DEFAULTS.connectTimeout, positive, 'a positive number of ms'),
    heartbeat: resolveHeartbeat(options.heartbeat),
    reconnect: resolveReconnect(options.reconnect),
    queueMax: number('queue.max', queue?.max, DEFAULTS.queueMax, (n) => Number.isInteger(n) && n >= 0, 'a whole number ≥ 0'),
  }
}
