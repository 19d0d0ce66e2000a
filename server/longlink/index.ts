/**
 * LongLink's server side: one path of any Node HTTP(S) server speaks a plain WebSocket and the session protocol of
 * docs/session-protocol.md (SSE, long-polling, polling, and a WebSocket joining a session). See ./README.md.
 */
export { attachLongLink, type LongLinkHandle } from './attach'
export { LongLinkConnection, type ConnectionEvents, type TransportName } from './connection'
export { toDuplex } from './duplex'
export { LongLinkError, type SendErrorCode } from './errors'
export { DEFAULT_LIMITS, type Authenticate, type LongLinkLimits, type LongLinkLogger, type LongLinkOptions } from './options'
export type { SendData } from './packet'
