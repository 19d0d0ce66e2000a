import { fail } from '../errors'
import type { TransportRequest } from '../transport'
import type { AuthContext, AuthResult, ConnectionOptions, MessageData, SendData } from '../types'
import type { BackoffPolicy } from './backoff'
import { toLogFn, type LogFn } from './log'

// Replaced by the host's bundler (see checkKeys below); module-scoped, so a host with Node's types keeps its own.
declare const process: { env: { NODE_ENV?: string } }

/** The options a connection takes, at each level (an unknown key is a typo: INVALID_OPTION in development builds). */
export const CONNECTION_KEYS = [
  'url',
  'platform',
  'header',
  'protocols',
  'timeout',
  'connectTimeout',
  'verifyTimeout',
  'heartbeat',
  'reconnect',
  'queue',
  'auth',
  'logger',
  'transports',
  'poll',
  'probeInterval',
]

/** Options after validation, with every default filled in. */
export interface ResolvedOptions {
  url: string
  /** The auth hook, called before every attempt. */
  auth: ((context: AuthContext) => unknown) | undefined
  /** The logger as one function (a no-op without one). */
  log: LogFn
  header: Record<string, string> | undefined
  protocols: string[] | undefined
  timeout: number | undefined
  connectTimeout: number
  verifyTimeout: number
  heartbeat: { interval: number; timeout: number; ping: () => SendData; isPong: (data: MessageData) => boolean } | undefined
  reconnect: (BackoffPolicy & { maxRetries: number; minUptime: number; refusedWeight: number }) | undefined
  queueMax: number
}

/** Default numbers, documented in readme.md. */
export const DEFAULTS = {
  connectTimeout: 10_000,
  verifyTimeout: 3_000,
  heartbeat: { interval: 25_000, timeout: 10_000 },
  reconnect: { min: 1_000, max: 30_000, factor: 2, jitter: 0.5, maxRetries: Infinity, minUptime: 5_000, refusedWeight: 0.25 },
  queueMax: 100,
}

/** A check for one numeric option and the words that explain it when it fails. */
type Rule = [check: (n: number) => boolean, expected: string]

const MS: Rule = [(n) => n > 0 && n < Infinity, 'a positive number of ms']
const MS0: Rule = [(n) => n >= 0 && n < Infinity, 'a number of ms >= 0']
const COUNT: Rule = [(n) => n === Infinity || (Number.isInteger(n) && n >= 0), 'an integer >= 0 or Infinity']

function invalid(message: string): never {
  throw fail('INVALID_OPTION', message)
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/** `defaults` overridden by the numbers in `input`, each checked by its rule. */
function numbers<T extends object>(prefix: string, input: Record<string, unknown>, defaults: T, rules: Partial<Record<keyof T, Rule>>): T {
  const out = { ...defaults } as Record<string, unknown>
  for (const key in rules) {
    const value = input[key]
    if (value === undefined) continue
    const [check, expected] = rules[key]!
    if (typeof value !== 'number' || !check(value)) invalid(`${prefix}${key} must be ${expected}, got ${String(value)}`)
    out[key] = value
  }
  return out as T
}

/** An object option that may also be `false` (turned off); undefined means all defaults. */
function section(name: string, value: unknown): Record<string, unknown> | undefined {
  if (value === false) return undefined
  if (value !== undefined && !isPlainObject(value)) invalid(`${name} must be an object or false`)
  return (value as Record<string, unknown>) ?? {}
}

/** Throws INVALID_URL unless `url` is an absolute ws:// or wss:// URL with a host. */
export function checkUrl(url: unknown): string {
  if (typeof url !== 'string' || !/^wss?:\/\/[^/?#\s]+[^\s]*$/i.test(url)) {
    throw fail('INVALID_URL', `url must be ws:// or wss://, got ${String(url).slice(0, 100)}`)
  }
  return url
}

/** Checks a header object: plain, string values only. */
export function checkHeader(header: unknown, name = 'header'): Record<string, string> | undefined {
  if (header !== undefined && (!isPlainObject(header) || Object.keys(header).some((key) => typeof header[key] !== 'string'))) {
    invalid(`${name} must be an object of strings`)
  }
  return header as Record<string, string> | undefined
}

/**
 * Validates every option (throwing INVALID_URL / INVALID_OPTION at once) and fills in the defaults. `logPrefix` starts
 * every log line.
 */
export function resolveOptions(options: ConnectionOptions, logPrefix = '[longlink]'): ResolvedOptions {
  if (process.env.NODE_ENV !== 'production') {
    // The entries check their own top level; the nested objects are the same for all of them.
    checkKeys('heartbeat.', options.heartbeat, ['interval', 'timeout', 'ping', 'pong'])
    checkKeys('reconnect.', options.reconnect, ['min', 'max', 'factor', 'jitter', 'maxRetries', 'minUptime', 'refusedWeight'])
    checkKeys('queue.', options.queue, ['max'])
  }
  const url = checkUrl(options.url)
  let protocols = options.protocols
  if (typeof protocols === 'string') protocols = [protocols]
  if (protocols !== undefined && (!Array.isArray(protocols) || protocols.some((p) => !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(p)))) {
    invalid('protocols must be subprotocol tokens')
  }
  if (options.auth !== undefined && typeof options.auth !== 'function') invalid('auth must be a function')
  if (options.logger != null && typeof options.logger !== 'function' && typeof options.logger !== 'object')
    invalid('logger must be a function or object')

  let heartbeat: ResolvedOptions['heartbeat']
  const hb = section('heartbeat', options.heartbeat)
  if (hb) {
    const ping = hb['ping'] ?? 'ping'
    const pong = hb['pong'] ?? 'pong'
    if (ping === null) invalid('heartbeat.ping must not be null')
    if (typeof pong !== 'string' && typeof pong !== 'function') invalid('heartbeat.pong must be a string or a function')
    heartbeat = {
      ...numbers('heartbeat.', hb, DEFAULTS.heartbeat, { interval: MS, timeout: MS }),
      ping: typeof ping === 'function' ? (ping as () => SendData) : () => ping as SendData,
      isPong: typeof pong === 'function' ? (pong as (data: MessageData) => boolean) : (data) => data === pong,
    }
  }

  const rc = section('reconnect', options.reconnect)
  const reconnect =
    rc &&
    numbers('reconnect.', rc, DEFAULTS.reconnect, {
      min: MS0,
      max: MS0,
      factor: [(n) => n >= 1 && n < Infinity, 'a number >= 1'],
      jitter: [(n) => n >= 0 && n <= 1, 'between 0 and 1'],
      maxRetries: COUNT,
      minUptime: MS0,
      refusedWeight: [(n) => n >= 0 && n <= 1, 'between 0 and 1'],
    })
  if (reconnect && rc['max'] === undefined) reconnect.max = Math.max(reconnect.max, reconnect.min)
  if (reconnect && reconnect.max < reconnect.min) invalid(`reconnect.max must be >= reconnect.min, got ${reconnect.max}`)

  const queue = section('queue', options.queue)!
  // The top-level numbers, checked against the defaults (the nested defaults ride along and are replaced below).
  const top = numbers('', { ...options, queueMax: queue['max'] } as Record<string, unknown>, { ...DEFAULTS, timeout: 0 }, {
    connectTimeout: MS,
    verifyTimeout: MS,
    queueMax: [(n) => Number.isInteger(n) && n >= 0, 'an integer >= 0 (queue.max)'],
    timeout: MS,
  } as Record<keyof typeof DEFAULTS | 'timeout', Rule>)
  return {
    ...top,
    url,
    auth: options.auth,
    log: toLogFn(options.logger, logPrefix),
    header: checkHeader(options.header),
    protocols,
    timeout: top.timeout || undefined,
    heartbeat,
    reconnect,
  }
}

/**
 * One attempt's request: the options' url, headers and protocols, with the auth hook's query appended and its headers
 * on top. Throws INVALID_OPTION when the hook returned headers that are not strings.
 */
export function attemptRequest(options: ResolvedOptions, extra: AuthResult): TransportRequest {
  const header = checkHeader(extra.header, 'auth().header')
  const query = extra.query || {}
  const pairs = Object.keys(query).map((k) => `${encodeURIComponent(k)}=${encodeURIComponent(String(query[k]))}`)
  const { url } = options
  return {
    url: pairs.length ? url + (url.includes('?') ? '&' : '?') + pairs.join('&') : url,
    header: header ? { ...options.header, ...header } : options.header,
    protocols: options.protocols,
    timeout: options.timeout,
  }
}

// ---- unknown keys (development builds) ------------------------------------------------------------------

/** Common names from other libraries, and what they are called here. */
const ALIASES: Record<string, string> = {
  retry: 'reconnect',
  reconnectPeriod: 'reconnect',
  keepAlive: 'keepalive',
  headers: 'header',
  header: 'headers',
}

/** Edit distance of two short strings (insertions, deletions, substitutions). */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const next = [i]
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    row = next
  }
  return row[b.length]!
}

/** The known name a mistyped `key` most likely meant, or undefined when none is close. */
export function nearestKey(key: string, known: readonly string[]): string | undefined {
  const alias = ALIASES[key]
  if (alias && known.includes(alias)) return alias
  const lower = key.toLowerCase()
  let best: string | undefined
  let score = Infinity
  for (const name of known) {
    const n = name.toLowerCase()
    // Same name in another case; one name starting with the other (`minDelay` → `min`); else the edit distance.
    const d = n === lower ? 0 : lower.startsWith(n) || n.startsWith(lower) ? 1 : distance(lower, n)
    if (d < score) [score, best] = [d, name]
  }
  return score <= Math.max(2, Math.floor(lower.length / 3)) ? best : undefined
}

/**
 * Callers run it only under `process.env.NODE_ENV !== 'production'`, written at the call site: the host's bundler
 * (uni-app's Vite, webpack, esbuild with `define`) turns that into `false` in production builds and drops the call, the
 * key lists and this module, so the mini-program package does not grow. A typo in an options object is a bug in code
 * that runs the same way in development, where it throws.
 *
 * Throws INVALID_OPTION for the first key of `options` that `known` does not list, naming the key (with `prefix`, as
 * in `reconnect.minDelay`) and the nearest valid one. Plain JavaScript callers get the check TypeScript gives.
 */
export function checkKeys(prefix: string, options: unknown, known: readonly string[]): void {
  if (!options || typeof options !== 'object') return
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue
    const near = nearestKey(key, known)
    throw fail('INVALID_OPTION', `unknown option "${prefix}${key}"${near ? `: did you mean "${prefix}${near}"?` : ''}`)
  }
}
