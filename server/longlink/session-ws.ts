/**
 * A WebSocket joining a session (docs/session-protocol.md, "A WebSocket joining a session"): `hello` with the server's
 * cursor, then, on the client's `upgrade`, it becomes the carrier (make-before-break: the old carrier runs until then).
 * Packets travel as text frames both ways; the server acknowledges the client's messages in its next packet, or in an
 * ack-only packet. A frame that breaks the protocol drops this WebSocket (1002), never the session.
 */
import type { WebSocket } from 'ws'
import { isCounter, parsePacket, encodePacket } from './packet'
import type { Carrier, Joiner, Session } from './session'

export class SessionSocket implements Carrier, Joiner {
  readonly kind = 'websocket'
  private isCarrier = false
  /** The number of the last message sent on this socket. */
  private sent = 0
  private ackDue = false
  private flushing: NodeJS.Immediate | undefined

  constructor(
    private readonly ws: WebSocket,
    private readonly session: Session,
    /** The carrier number of the upgrade request. */
    private readonly c: number,
  ) {}

  /** Joins the session (its cursor `ack` already checked) and says hello. */
  start(ack: number): void {
    const { ws, session } = this
    session.join(this)
    session.ack(ack)
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => this.onFrame(data, isBinary))
    ws.once('close', () => {
      this.clearFlush()
      // Whichever it was (each call does nothing otherwise): the carrier, or a WebSocket waiting to take over.
      session.released(this)
      session.unjoin(this)
    })
    this.write(`{"hello":1,"ack":${session.clientCursor}}`)
  }

  wake(): void {
    // Messages queued in the same turn leave in one packet.
    if (!this.flushing) this.flushing = setImmediate(() => this.flush())
  }

  end(how: 'replaced' | 'final', code = 1000, reason = ''): void {
    if (how === 'replaced') return this.close(4001, 'replaced')
    this.flush()
    this.close(code, reason)
  }

  close(code: number, reason: string): void {
    this.clearFlush()
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) this.ws.close(code, reason)
  }

  private onFrame(data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void {
    const { session } = this
    if (session.ended || this.ws.readyState !== this.ws.OPEN) return
    if (isBinary) return this.protocolError()
    let value: unknown
    try {
      value = JSON.parse(Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8'))
    } catch {
      return this.protocolError()
    }
    if (value && typeof value === 'object' && 'upgrade' in value) return this.upgrade((value as { ack?: unknown }).ack)
    const packet = parsePacket(value)
    if (typeof packet === 'string' || session.receive(packet) !== undefined) return this.protocolError()
    if (packet.m.length > 0 && !session.ended) {
      this.ackDue = true
      this.wake()
    }
  }

  /** The client's `{"upgrade":1,"ack":N}`: this socket becomes the carrier and sends every message after N. */
  private upgrade(ack: unknown): void {
    const { session } = this
    if (this.isCarrier) return
    if (ack !== undefined && (!isCounter(ack, 0) || ack > session.lastSent)) return this.protocolError()
    if (!session.claim(this.c, this)) return this.close(4409, 'stale')
    this.isCarrier = true
    session.unjoin(this)
    const cursor = typeof ack === 'number' ? ack : 0
    session.ack(cursor)
    this.sent = cursor
    this.flush()
  }

  private flush(): void {
    this.clearFlush()
    if (this.ws.readyState !== this.ws.OPEN) return
    const { session } = this
    if (this.isCarrier) {
      const { seq, items } = session.after(this.sent)
      if (items.length > 0) {
        this.sent = seq + items.length - 1
        this.ackDue = false
        return this.write(encodePacket(seq, items, session.clientCursor))
      }
    }
    if (this.ackDue) {
      this.ackDue = false
      this.write(`{"ack":${session.clientCursor}}`)
    }
  }

  private write(text: string): void {
    this.ws.send(text, (err) => {
      // A write on a socket being cut: the messages stay buffered for the next carrier.
      if (err) this.ws.terminate()
    })
  }

  private protocolError(): void {
    this.close(1002, 'protocol error')
  }

  private clearFlush(): void {
    if (this.flushing) clearImmediate(this.flushing)
    this.flushing = undefined
  }
}
