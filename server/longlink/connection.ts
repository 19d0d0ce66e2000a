/**
 * `LongLinkConnection`: what the app holds, the same for a plain WebSocket and for a session whatever its carrier.
 * The transport behind it (./plain-ws, ./session) drives it through a {@link ConnectionControl}, kept out of the
 * app's reach. A handler that throws is logged and changes nothing else.
 */
import { randomBytes } from 'node:crypto'
import { LongLinkError } from './errors'
import type { LongLinkLogger } from './options'
import { isAppCloseCode, toMessage, type Message, type SendData } from './packet'

/** The carrier a connection uses now. */
export type TransportName = 'websocket' | 'sse' | 'long-polling' | 'polling'

export interface ConnectionEvents {
  /** Text arrives as a string, bytes as a Uint8Array. */
  message: (data: string | Uint8Array) => void
  close: (code: number, reason: string) => void
  transport: (change: { from: TransportName; to: TransportName }) => void
}

/** What a connection asks of the transport behind it. */
export interface ConnectionBackend {
  /** Queues or writes one message; the connection has checked it is open. */
  send(message: Message): Promise<void>
  /** Ends the link with `code` and `reason` (delivered to the client in order after every message sent before). */
  close(code: number, reason: string): void
}

/** How the transport drives its connection. */
export interface ConnectionControl {
  readonly conn: LongLinkConnection
  /** True once `close` was emitted. */
  readonly closed: boolean
  message(data: string | Uint8Array): void
  /** Emits `close` once; later calls do nothing. */
  end(code: number, reason: string): void
  setTransport(to: TransportName): void
}

type Handlers = { [K in keyof ConnectionEvents]: ConnectionEvents[K][] }

export class LongLinkConnection {
  /** A random id for logs and maps; for a session, not the sid (the sid is a credential). */
  readonly id = randomBytes(9).toString('base64url')
  private current: TransportName
  private isClosed = false
  private readonly handlers: Handlers = { message: [], close: [], transport: [] }

  /** Made by the transports (see {@link createConnection}), never by the app. */
  constructor(
    transport: TransportName,
    /** The address of the client that opened the connection. */
    readonly remoteAddress: string,
    private readonly backend: ConnectionBackend,
    private readonly logger: LongLinkLogger,
    bind: (control: ConnectionControl) => void,
  ) {
    this.current = transport
    // The control is handed out here, so what drives the connection is not part of what the app can call.
    const isClosed = (): boolean => this.isClosed
    bind({
      conn: this,
      get closed() {
        return isClosed()
      },
      message: (data) => this.emit('message', data),
      end: (code, reason) => this.emitClose(code, reason),
      setTransport: (to) => this.setTransport(to),
    })
  }

  /** The carrier in use now; changes (with a `transport` event) when a session moves to another one. */
  get transport(): TransportName {
    return this.current
  }

  /**
   * Sends a message: a string as text, bytes as binary. Resolves once it is queued in the session's buffer (or written
   * to the WebSocket); waits while `maxBufferBytes` are in flight. Rejects with an Error whose `code` is `CLOSED`
   * (the connection is closed), `BUFFER_FULL` (too much already waiting) or `INVALID_DATA`.
   */
  send(data: SendData): Promise<void> {
    if (this.isClosed) return Promise.reject(new LongLinkError('CLOSED', 'the connection is closed'))
    let message: Message
    try {
      message = toMessage(data)
    } catch (err) {
      return Promise.reject(err)
    }
    return this.backend.send(message)
  }

  /**
   * Closes the connection: the client sees `code` and `reason` after every message sent before. `code` is 1000 or
   * 3000–4999; `reason` at most 123 UTF-8 bytes. Emits `close` with them at once; idempotent.
   */
  close(code = 1000, reason = ''): void {
    if (!isAppCloseCode(code)) throw new TypeError('close: code must be 1000 or an integer from 3000 to 4999')
    if (typeof reason !== 'string' || Buffer.byteLength(reason) > 123) throw new TypeError('close: reason must be a string of at most 123 bytes')
    if (this.isClosed) return
    this.backend.close(code, reason)
    this.emitClose(code, reason)
  }

  on<K extends keyof ConnectionEvents>(event: K, handler: ConnectionEvents[K]): this {
    this.list(event).push(handler)
    return this
  }

  off<K extends keyof ConnectionEvents>(event: K, handler: ConnectionEvents[K]): this {
    const list = this.list(event)
    const i = list.indexOf(handler)
    if (i >= 0) list.splice(i, 1)
    return this
  }

  private list<K extends keyof ConnectionEvents>(event: K): ConnectionEvents[K][] {
    const list = this.handlers[event]
    if (!list) throw new TypeError(`unknown event "${String(event)}"`)
    return list
  }

  private emit<K extends keyof ConnectionEvents>(event: K, ...args: Parameters<ConnectionEvents[K]>): void {
    // A copy: a handler may remove itself (or others) while the event is being delivered.
    for (const handler of [...this.handlers[event]]) {
      try {
        ;(handler as (...a: unknown[]) => void)(...args)
      } catch (err) {
        this.logger.error('longlink.handler_error', { event, conn: this.id, error: err, stack: (err as Error)?.stack })
      }
    }
  }

  private emitClose(code: number, reason: string): void {
    if (this.isClosed) return
    this.isClosed = true
    this.emit('close', code, reason)
  }

  private setTransport(to: TransportName): void {
    if (to === this.current) return
    const from = this.current
    this.current = to
    this.emit('transport', { from, to })
  }
}

/** A connection and its control, for a transport. */
export function createConnection(
  transport: TransportName,
  remoteAddress: string,
  backend: ConnectionBackend,
  logger: LongLinkLogger,
): ConnectionControl {
  let control!: ConnectionControl
  new LongLinkConnection(transport, remoteAddress, backend, logger, (c) => (control = c))
  return control
}
