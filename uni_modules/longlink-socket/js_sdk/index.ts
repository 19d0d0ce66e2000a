/**
 * LongLink core entry: one long connection over uni / wx / WebSocket with heartbeat, reconnect, lifecycle
 * awareness and a bounded send queue. MQTT lives in the separate `./mqtt` entry, so this one stays small.
 */
import { resolveAdapter } from './adapters/resolve'
import { createConnectionCore, type Connection } from './core/connection'
import { fail } from './errors'
import type { ConnectionOptions } from './types'

/**
 * Creates a connection (it does not connect until `open()`). Throws INVALID_URL or INVALID_OPTION at once
 * for bad input, and UNSUPPORTED_PLATFORM when the platform asked for is not there.
 */
export function createConnection(options: ConnectionOptions): Connection {
  if (!options || typeof options !== 'object') throw fail('INVALID_OPTION', 'options with a url are required')
  return createConnectionCore(resolveAdapter(options.platform), options)
}

export type { Connection } from './core/connection'
export { ErrorCode, LongLinkError, isLongLinkError } from './errors'
export { backoffBound, backoffDelay, type BackoffPolicy } from './core/backoff'
export { DEFAULTS } from './core/options'
export { resolveAdapter } from './adapters/resolve'
export { createSocketTaskAdapter } from './adapters/socket-task'
export { createUniAdapter } from './adapters/uni'
export { createWxAdapter } from './adapters/wx'
// #ifndef MP
export { createWebAdapter } from './adapters/web'
// #endif
export type { WebSocketConstructor, WebSocketLike } from './adapters/web'
export type * from './types'
export type * from './transport'
