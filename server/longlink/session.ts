/**
 * One session (docs/session-protocol.md §2): the numbered out buffer (kept until the client acknowledges), the cursor
 * of the client's messages (repeats skipped, so each is taken once and in order), and the one carrier that delivers
 * down now (a held poll, a stream or a WebSocket), ordered by the client's carrier number `c`. Carriers come and go;
 * the session outlives them until the client closes, the server's close is acknowledged, or it has been idle too long.
 */
import { randomBytes } from 'node:crypto'
import { createConnection, type ConnectionControl, type LongLinkConnection, type TransportName } from './connection'
import { LongLinkError } from './errors'
import { SendGate } from './gate'
import type { ResolvedOptions } from './options'
import { encodeCloseItem, encodeItem, messageSize, type Item, type Message, type Packet } from './packet'

/** A down channel of a session. */
export interface Carrier {
  readonly kind: TransportName
  /** Messages were added to the out buffer. */
  wake(): void
  /**
   * Ends the carrier. `replaced`: a newer carrier took over (a poll is answered empty, a stream ends, a WebSocket is
   * closed with 4001). `final`: the session ends; what is pending is delivered first, a WebSocket is closed with `code`.
   */
  end(how: 'replaced' | 'final', code?: number, reason?: string): void
}

/** A WebSocket that joined the session and has not taken over yet. */
export interface Joiner {
  /** Closed with 4001 `replaced` when another WebSocket joins, or with `code` when the session ends. */
  close(code: number, reason: string): void
}

interface OutEntry {
  item: string
  size: number
}

/** The messages after a cursor, ready for a packet. */
export interface Pending {
  /** The number of `items[0]` (the cursor + 1 when there are none). */
  seq: number
  items: string[]
}

/** sid = `<node>.<22 url-safe characters>` (128 random bits). */
export const SID_PATTERN = /^[A-Za-z0-9_-]{1,32}\.[A-Za-z0-9_-]{22,64}$/

/** A sid shortened for logs: the node and the first 4 random characters, never enough to use it. */
export const sidForLog = (sid: string): string => sid.slice(0, sid.indexOf('.') + 5) + '…'

export class Session {
  readonly sid: string
  private readonly control: ConnectionControl
  private readonly gate: SendGate
  /** Sent and not acknowledged, in order; `out[i]` is message number `acked + 1 + i`. */
  private readonly out: OutEntry[] = []
  private acked = 0
  /** The client's messages taken so far (the cursor the server acknowledges). */
  private inCursor = 0
  private carrier: Carrier | undefined
  /** The highest carrier number seen: a down request below it is stale. */
  private topC = 0
  /** The number of the server's close item once it is in the buffer. */
  private closeSeq = 0
  private closeRequested = false
  private readonly joiners = new Set<Joiner>()
  /** Requests being served (POST bodies being read and applied). */
  private requests = 0
  private idleTimer: NodeJS.Timeout | undefined
  private lingerTimer: NodeJS.Timeout | undefined
  private isEnded = false

  constructor(
    private readonly options: ResolvedOptions,
    transport: TransportName,
    remoteAddress: string,
    /** Called once when the session ends, whatever ends it. */
    private readonly onEnd: (session: Session) => void,
  ) {
    this.sid = `${options.node}.${randomBytes(16).toString('base64url')}`
    this.gate = new SendGate(options.maxBufferBytes)
    this.control = createConnection(
      transport,
      remoteAddress,
      { send: (m) => this.enqueue(m), close: (code, reason) => this.serverClose(code, reason) },
      options.logger,
    )
    this.armIdle()
  }

  get conn(): LongLinkConnection {
    return this.control.conn
  }

  get ended(): boolean {
    return this.isEnded
  }

  /** The number of the last message put in the buffer (an `ack` above it is a protocol error). */
  get lastSent(): number {
    return this.acked + this.out.length
  }

  /** The client's messages taken so far. */
  get clientCursor(): number {
    return this.inCursor
  }

  /** Every buffered message after `cursor` (or after the last acknowledged one, when that is further). */
  after(cursor: number): Pending {
    const from = Math.max(cursor, this.acked)
    return { seq: from + 1, items: this.out.slice(from - this.acked).map((e) => e.item) }
  }

  /** Frees the messages up to `n` (already checked against {@link lastSent}). */
  ack(n: number): void {
    if (n <= this.acked || this.isEnded) return
    const freed = this.out.splice(0, n - this.acked)
    this.acked = n
    this.gate.release(freed.reduce((sum, e) => sum + e.size, 0))
    if (this.closeSeq > 0 && this.acked >= this.closeSeq) this.finish(1000, '')
  }

  /**
   * Takes a packet from the client: its ack, then its messages after the cursor, in order. Returns what is wrong
   * with it (nothing applied then), or undefined.
   */
  receive(packet: Packet): string | undefined {
    if (packet.ack !== undefined && packet.ack > this.lastSent) return '"ack" is beyond the messages sent'
    if (packet.m.length > 0 && packet.seq! > this.inCursor + 1) return '"seq" starts beyond the cursor'
    if (packet.ack !== undefined) this.ack(packet.ack)
    for (let i = 0; i < packet.m.length && !this.isEnded; i++) {
      const n = packet.seq! + i
      if (n <= this.inCursor) continue
      this.inCursor = n
      this.take(packet.m[i])
    }
    return undefined
  }

  /** Makes `carrier` the session's carrier unless `c` is stale; ends the one before. False when stale. */
  claim(c: number, carrier: Carrier): boolean {
    if (c < this.topC || this.isEnded) return false
    this.topC = c
    const before = this.carrier
    this.carrier = carrier
    clearTimeout(this.idleTimer)
    before?.end('replaced')
    this.control.setTransport(carrier.kind)
    return true
  }

  /** The highest carrier number seen so far (0 before the first). */
  get topCarrier(): number {
    return this.topC
  }

  /** True when `c` would be stale now. */
  isStale(c: number): boolean {
    return c < this.topC
  }

  /** A carrier ended by itself (answered, rotated, the client went away). */
  released(carrier: Carrier): void {
    if (this.carrier !== carrier) return
    this.carrier = undefined
    this.armIdle()
  }

  /** A WebSocket joined; an earlier one still waiting to take over is closed with 4001. */
  join(joiner: Joiner): void {
    for (const other of this.joiners) other.close(4001, 'replaced')
    this.joiners.clear()
    this.joiners.add(joiner)
    clearTimeout(this.idleTimer)
  }

  /** A joined WebSocket took over or went away. */
  unjoin(joiner: Joiner): void {
    if (this.joiners.delete(joiner)) this.armIdle()
  }

  /** A request for this session is being served: it does not expire meanwhile. */
  begin(): void {
    this.requests++
    clearTimeout(this.idleTimer)
  }

  done(): void {
    this.requests--
    this.armIdle()
  }

  /** `handle.close()`: the connection closes with 1001, the client is told on the carrier it has, and the session ends. */
  shutdown(): void {
    if (this.isEnded) return
    this.control.end(1001, 'server closing')
    this.gate.fail(new LongLinkError('CLOSED', 'the server is closing'))
    if (this.closeSeq === 0) this.push(encodeCloseItem(1001, 'server closing'), 0)
    this.finish(1001, 'server closing')
  }

  private take(item: Item): void {
    if (item.kind === 'close') {
      this.control.end(item.code, item.reason)
      return this.finish(1000, '')
    }
    // After the server closed, the client's messages are still acknowledged (so it stops sending them), not delivered.
    if (this.control.closed) return
    if (item.kind === 'bytes') return this.control.message(item.bytes)
    // The heartbeat is answered here; when the buffer is full the answer is dropped rather than queued without bound.
    if (item.text === 'ping') return void this.enqueue('pong').catch(() => {})
    this.control.message(item.text)
  }

  private enqueue(message: Message): Promise<void> {
    if (this.isEnded || this.closeRequested) return Promise.reject(new LongLinkError('CLOSED', 'the connection is closed'))
    const size = messageSize(message)
    return this.gate.enter(size, () => this.push(encodeItem(message), size))
  }

  private push(item: string, size: number): void {
    this.out.push({ item, size })
    this.carrier?.wake()
  }

  private serverClose(code: number, reason: string): void {
    if (this.closeRequested || this.isEnded) return
    this.closeRequested = true
    this.gate.enterLast(() => {
      this.push(encodeCloseItem(code, reason), 0)
      this.closeSeq = this.lastSent
    })
    // Gone once the client acknowledges the close, and in any case after idleMs (a client that never does).
    this.lingerTimer = setTimeout(() => this.finish(1000, ''), this.options.idleMs)
    this.lingerTimer.unref()
  }

  private armIdle(): void {
    clearTimeout(this.idleTimer)
    if (this.isEnded || this.carrier || this.requests > 0 || this.joiners.size > 0) return
    this.idleTimer = setTimeout(() => {
      this.control.end(1006, 'expired')
      this.finish(1000, '')
    }, this.options.idleMs)
    this.idleTimer.unref()
  }

  /** Ends the session: timers, the carrier (what is pending delivered first), joined WebSockets, waiting sends. */
  private finish(code: number, reason: string): void {
    if (this.isEnded) return
    this.isEnded = true
    clearTimeout(this.idleTimer)
    clearTimeout(this.lingerTimer)
    this.gate.fail(new LongLinkError('CLOSED', 'the connection is closed'))
    this.control.end(1006, 'ended')
    const carrier = this.carrier
    this.carrier = undefined
    carrier?.end('final', code, reason)
    for (const joiner of this.joiners) joiner.close(code, reason)
    this.joiners.clear()
    this.onEnd(this)
  }
}
