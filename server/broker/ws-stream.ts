/**
 * A Node stream over one `ws` WebSocket, for aedes. Two things `ws`'s own `createWebSocketStream` does not do:
 *
 * - **One frame per write batch.** mqtt-packet writes one PUBLISH as several small chunks; `_writev` sends the chunks
 *   of a batch as one WebSocket message instead of one frame each (fewer frames, fewer syscalls, fewer wakeups on the
 *   client).
 * - **A packet size bound before buffering.** The MQTT fixed header announces each packet's length; a packet over
 *   `maxPacketBytes` ends the connection as soon as its header arrives, so a client claiming a 200 MB CONNECT cannot
 *   make the broker buffer it.
 */
import { Duplex } from 'node:stream'
import type { WebSocket } from 'ws'

/** Reads MQTT fixed headers across chunk boundaries and reports the first packet longer than the limit. */
export function createPacketGuard(maxPacketBytes: number): (chunk: Buffer) => number | undefined {
  // State: bytes of the current packet still to skip, or reading a header (type byte, then up to 4 length bytes).
  let skip = 0
  let headerBytes = 0
  let length = 0
  let multiplier = 1
  return (chunk) => {
    let i = 0
    while (i < chunk.length) {
      if (skip > 0) {
        const n = Math.min(skip, chunk.length - i)
        skip -= n
        i += n
        continue
      }
      const byte = chunk[i++]
      if (headerBytes === 0) {
        headerBytes = 1
        length = 0
        multiplier = 1
        continue
      }
      length += (byte & 0x7f) * multiplier
      multiplier *= 128
      headerBytes++
      if (byte & 0x80) {
        if (headerBytes - 1 >= 4) return Infinity // a malformed length: a fifth length byte would follow
        continue
      }
      const total = headerBytes + length
      if (total > maxPacketBytes) return total
      skip = length
      headerBytes = 0
    }
    return undefined
  }
}

export class WebSocketDuplex extends Duplex {
  private readonly guard: (chunk: Buffer) => number | undefined

  constructor(
    private readonly ws: WebSocket,
    maxPacketBytes: number,
    /** Called once when a packet is over the limit (before the connection is ended). */
    onOversize: (announced: number) => void,
  ) {
    super({ allowHalfOpen: false })
    this.guard = createPacketGuard(maxPacketBytes)
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      // Frames parsed before the connection was cut still arrive: they belong to a dead connection.
      if (this.destroyed) return
      const chunk = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)
      if (!isBinary) return this.destroy(new Error('MQTT over WebSocket needs binary messages'))
      const over = this.guard(chunk)
      if (over !== undefined) {
        onOversize(over)
        ws.terminate()
        return this.destroy(new Error(`packet of ${over} bytes is over the limit`))
      }
      if (!this.push(chunk)) ws.pause()
    })
    ws.once('close', () => {
      if (!this.destroyed) this.push(null)
      this.destroy()
    })
    ws.on('error', (err) => this.destroy(err))
  }

  override _read(): void {
    if (this.ws.isPaused) this.ws.resume()
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (this.ws.readyState !== this.ws.OPEN) return callback()
    this.ws.send(chunk, { binary: true }, (err) => callback(err ?? null))
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (err?: Error | null) => void): void {
    if (this.ws.readyState !== this.ws.OPEN) return callback()
    const data = chunks.length === 1 ? chunks[0].chunk : Buffer.concat(chunks.map((c) => c.chunk))
    this.ws.send(data, { binary: true }, (err) => callback(err ?? null))
  }

  override _final(callback: (err?: Error | null) => void): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(1000)
    callback()
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    if (this.ws.readyState !== this.ws.CLOSED) this.ws.terminate()
    callback(err)
  }
}
