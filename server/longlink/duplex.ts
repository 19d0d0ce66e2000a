/**
 * `toDuplex(conn)`: a connection as a Node byte stream, for protocol servers that take one (`aedes.handle(stream)`):
 * what the connection receives is pushed (text as its UTF-8 bytes), and writes go out as binary messages.
 *
 * Writes made in one turn of the event loop leave as ONE message: mqtt-packet writes a PUBLISH in several pieces, and
 * one message per piece would multiply frames, packets and wakeups on the client. A write's callback runs at once
 * while no message is in flight, else when the one in flight is queued (`conn.send` settled): that is the
 * backpressure the stream sees.
 */
import { Duplex } from 'node:stream'
import type { LongLinkConnection } from './connection'

class ConnectionDuplex extends Duplex {
  /** The chunks of this turn, sent together on the next tick. */
  private batch: Buffer[] = []
  /** Write callbacks held until the sends in flight settle. */
  private held: ((err?: Error | null) => void)[] = []
  private inFlight = 0
  private flushScheduled = false
  private settled: (() => void) | undefined

  constructor(private readonly conn: LongLinkConnection) {
    super({ allowHalfOpen: false })
    conn.on('message', this.onMessage)
    conn.on('close', this.onClose)
  }

  private readonly onMessage = (data: string | Uint8Array): void => {
    if (this.destroyed) return
    this.push(typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data.buffer, data.byteOffset, data.byteLength))
  }

  private readonly onClose = (): void => {
    if (!this.destroyed) this.push(null)
    this.destroy()
  }

  override _read(): void {}

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.add([chunk], callback)
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (err?: Error | null) => void): void {
    this.add(
      chunks.map((c) => c.chunk),
      callback,
    )
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.flush()
    const done = (): void => {
      this.conn.close()
      callback()
    }
    if (this.inFlight === 0) return done()
    this.settled = done
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.conn.off('message', this.onMessage)
    this.conn.off('close', this.onClose)
    this.batch = []
    for (const cb of this.held.splice(0)) cb(err)
    this.conn.close()
    callback(err)
  }

  private add(chunks: Buffer[], callback: (err?: Error | null) => void): void {
    this.batch.push(...chunks)
    if (!this.flushScheduled) {
      this.flushScheduled = true
      process.nextTick(() => this.flush())
    }
    if (this.inFlight === 0) callback()
    else this.held.push(callback)
  }

  private flush(): void {
    this.flushScheduled = false
    if (this.batch.length === 0 || this.destroyed) return
    const data = this.batch.length === 1 ? this.batch[0] : Buffer.concat(this.batch)
    this.batch = []
    this.inFlight++
    this.conn.send(data).then(
      () => {
        this.inFlight--
        if (this.inFlight > 0) return
        for (const cb of this.held.splice(0)) cb()
        const settled = this.settled
        this.settled = undefined
        settled?.()
      },
      (err: Error & { code?: string }) => {
        this.inFlight--
        // The connection closed under the write: the stream ends with it (its 'close' handler does that).
        this.destroy(err.code === 'CLOSED' ? undefined : err)
      },
    )
  }
}

/** A Node duplex of bytes over `conn`; see the module comment. `end()` / `destroy()` close the connection. */
export function toDuplex(conn: LongLinkConnection): Duplex {
  return new ConnectionDuplex(conn)
}
