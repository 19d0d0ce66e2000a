/**
 * LongLink core entry: one long connection over uni / wx / WebSocket with heartbeat, reconnect, lifecycle
 * awareness and a bounded send queue. MQTT lives in the separate `./mqtt` entry, so this one stays small.
 */
import { resolveAdapter } from './adapters/resolve'
import { Connection } from './core/connection'
import { ErrorCode, LongLinkError } from './errors'
import type { ConnectionOptions } from './types'

/**
 * Creates a connection (it does not connect until `open()`). Throws INVALID_URL or INVALID_OPTION at once
 * for bad input, and UNSUPPORTED_PLATFORM when the platform asked for is not there.
 */
export function createConnection(options: ConnectionOptions): Connection {
  if (!options || typeof options !== 'object') {
    throw new LongLinkError(ErrorCode.INVALID_OPTION, 'createConnection needs an options object with a url')
  }
  const adapter = resolveAdapter(options.platform)
  return new Connection(adapter, options.auth, options)
}

export { Connection } from './core/connection'
export { ErrorCode, LongLinkError, isLongLinkError } from './errors'
export { backoffBound, backoffDelay, type BackoffPolicy } from './core/backoff'
export { DEFAULTS } from './core/options'
export { resolveAdapter } from './adapters/resolve'
export { createSocketTaskAdapter } from './adapters/socket-task'
export { createUniAdapter } from './adapters/uni'
export { createWxAdapter } from './adapters/wx'
export { createWebAdapter, type WebSocketConstructor, type WebSocketLike } from './adapters/web'
export type * from './types'
export type * from './transport'
