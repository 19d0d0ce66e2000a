/**
 * A plain WebSocket (docs/session-protocol.md §1): each frame is one message (text → string, binary → bytes), a text
 * frame exactly `ping` is answered `pong` here, and close codes pass through both ways. Sends wait while
 * `maxBufferBytes` are queued in `ws` and not yet written to the socket.
 */
import type { WebSocket } from 'ws'
import { createConnection, type ConnectionControl } from './connection'
import { LongLinkError } from './errors'
import { SendGate } from './gate'
import type { ResolvedOptions } from './options'
import { messageSize, type Message } from './packet'

function toBytes(data: Buffer | ArrayBuffer | Buffer[]): Buffer {
  return Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)
}

/** Wraps an accepted WebSocket in a connection; `onEnd` runs once when it closes. */
export function acceptPlainWebSocket(ws: WebSocket, remoteAddress: string, options: ResolvedOptions, onEnd: () => void): ConnectionControl {
  const gate = new SendGate(options.maxBufferBytes)
  const write = (message: Message, size: number): void => {
    if (ws.readyState !== ws.OPEN) return gate.release(size)
    ws.send(message, { binary: typeof message !== 'string' }, () => gate.release(size))
  }
  const control = createConnection(
    'websocket',
    remoteAddress,
    {
      send(message) {
        const size = messageSize(message)
        return gate.enter(size, () => write(message, size))
      },
      close(code, reason) {
        gate.fail(new LongLinkError('CLOSED', 'the connection is closed'))
        if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(code, reason)
      },
    },
    options.logger,
  )
  ws.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
    if (control.closed) return
    const bytes = toBytes(data)
    if (isBinary) return control.message(bytes)
    const text = bytes.toString('utf8')
    if (text === 'ping') return void control.conn.send('pong').catch(() => {})
    control.message(text)
  })
  // `ws` closes the socket after an 'error' (a bad frame, a frame over maxPayload) and then reports 1006, not the
  // code it sent the client: the app is told that code instead.
  let failedWith: [number, string] | undefined
  ws.on('error', (err: Error & { code?: string }) => {
    failedWith =
      err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'
        ? [1009, 'message too big']
        : err.code === 'WS_ERR_INVALID_UTF8'
          ? [1007, 'invalid UTF-8']
          : [1002, 'protocol error']
  })
  ws.once('close', (code: number, reason: Buffer) => {
    gate.fail(new LongLinkError('CLOSED', 'the connection is closed'))
    if (code === 1006 && failedWith !== undefined) control.end(...failedWith)
    else control.end(code, reason.toString('utf8'))
    onEnd()
  })
  return control
}
