/**
 * What the request and upgrade handlers of one `attachLongLink` share: the options, the registry of connections, the
 * WebSocket server and its liveness pings, authentication, and how a new connection is announced to the app.
 */
import type { IncomingMessage } from 'node:http'
import { WebSocketServer } from 'ws'
import type { ConnectionControl, LongLinkConnection, TransportName } from './connection'
import { HttpError } from './errors'
import type { ResolvedOptions } from './options'
import { Registry } from './registry'
import { Session, sidForLog } from './session'
import { WsLiveness } from './ws-liveness'

export const remoteAddressOf = (req: IncomingMessage): string => req.socket?.remoteAddress ?? 'unknown'

export class Core {
  readonly registry: Registry
  readonly wss: WebSocketServer
  readonly liveness: WsLiveness
  /** The plain WebSocket connections, for `close()`. */
  readonly plain = new Set<ConnectionControl>()
  closing = false

  constructor(readonly options: ResolvedOptions) {
    this.registry = new Registry(options)
    this.wss = new WebSocketServer({ noServer: true, maxPayload: options.maxPayload, perMessageDeflate: false, clientTracking: false })
    this.wss.on('error', (err) => options.logger.error('longlink.ws_error', { error: err }))
    this.liveness = new WsLiveness(options.wsPingMs)
  }

  /** The client key of an authorized request (the authenticate hook's string, else the address); throws 401. */
  async authorize(req: IncomingMessage, address: string): Promise<string> {
    let result: boolean | string | void
    try {
      result = await this.options.authenticate?.(req)
    } catch (err) {
      // A refusal for now (the server is full, the address over its budget) is not one for good: the client retries.
      const status = (err as { status?: unknown } | null)?.status
      if (status === 429 || status === 503) throw new HttpError(status, 'TOO_MANY_SESSIONS', 'too many connections now', { 'retry-after': '5' })
      throw new HttpError(401, 'NOT_AUTHORIZED', 'not authorized')
    }
    if (result === false) throw new HttpError(401, 'NOT_AUTHORIZED', 'not authorized')
    return typeof result === 'string' && result !== '' ? result : address
  }

  /** Throws the refusal when `key` may not hold one more connection now, or the handle is closing. */
  admit(key: string): void {
    if (this.closing) throw new HttpError(503, 'CLOSING', 'the server is closing')
    const refusal = this.registry.refusal(key)
    if (refusal) throw refusal
  }

  /** A new session, counted under `key`, announced to the app. */
  openSession(transport: TransportName, address: string, key: string): Session {
    const uncount = this.registry.count(key)
    const session = new Session(this.options, transport, address, (s) => {
      uncount()
      this.registry.sessions.delete(s.sid)
      this.options.logger.info('longlink.session_end', { sid: sidForLog(s.sid), conn: s.conn.id })
    })
    this.registry.sessions.set(session.sid, session)
    this.options.logger.info('longlink.session_open', { sid: sidForLog(session.sid), conn: session.conn.id, transport, address })
    this.announce(session.conn)
    return session
  }

  /** Hands a connection to the app; a throwing `onConnection` is logged, the connection stays. */
  announce(conn: LongLinkConnection): void {
    try {
      this.options.onConnection(conn)
    } catch (err) {
      this.options.logger.error('longlink.handler_error', { event: 'connection', conn: conn.id, error: err, stack: (err as Error)?.stack })
    }
  }

  /** The session `sid` names, when it is alive. */
  session(sid: string): Session | undefined {
    const session = this.registry.sessions.get(sid)
    return session && !session.ended ? session : undefined
  }
}
