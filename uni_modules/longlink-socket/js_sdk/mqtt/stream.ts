import type { Adapter, Transport, TransportRequest } from '../transport'
import type { DuplexLike } from '../vendor/mqtt.esm'
import { utf8Encode } from './utf8'

type Listener = (...args: unknown[]) => void

/** How long `end()` waits for the platform to confirm the close before the stream reports itself closed. */
const END_GRACE_MS = 1000

/**
 * Why a stream closed:
 * - `closed`: the platform reported the link closed (the peer, the network or the platform ended it);
 * - `failed`: the link failed (a socket error);
 * - `ended`: MQTT.js ended the stream (after DISCONNECT, on `end()`);
 * - `destroyed`: MQTT.js destroyed the stream: its keepalive found no PINGRESP, or a forced end.
 */
export type StreamCloseCause = 'closed' | 'failed' | 'ended' | 'destroyed'

/** How one stream closed: the cause, and the code and reason the platform gave (or ours). */
export interface StreamClose {
  cause: StreamCloseCause
  code: number
  reason: string
}

/** What the MQTT client hears from one link besides the byte stream. */
export interface StreamHooks {
  /** The socket opened (MQTT.js's CONNECT, written earlier, goes out now). */
  opened(): void
  /** The stream closed, once, for the given cause. */
  closed(close: StreamClose): void
}

/**
 * The duplex stream MQTT.js's MqttClient reads and writes, made from one LongLink transport (a SocketTask on
 * uni/wx, a WebSocket on H5). It replaces MQTT.js's own `wx://` transport, which sent whole buffers for views,
 * shared one socket between clients, passed no headers and could not use uni. State is per stream.
 *
 * Writes made in one turn (mqtt-packet writes a packet in several small pieces, under cork/uncork) leave as one
 * WebSocket message, and writes made before the socket opens wait for it.
 */
export function createMqttStream(adapter: Adapter, request: TransportRequest, hooks: StreamHooks): DuplexLike {
  const listeners: Record<string, Listener[]> = {}
  let destination: { write(chunk: Uint8Array): unknown } | undefined
  let open = false
  let closed = false
  /** MQTT.js called `end()`: the close the platform reports next is the one it asked for. */
  let ending = false
  /** Ends the stream if the platform never confirms the close `end()` asked for. */
  let graceTimer: ReturnType<typeof setTimeout> | undefined
  let corked = 0
  let flushQueued = false
  let pending: Uint8Array[] = []

  const emit = (event: string, ...args: unknown[]) => {
    for (const listener of (listeners[event] || []).slice()) listener(...args)
  }

  const finish = (cause: StreamCloseCause, code: number, reason: string) => {
    if (closed) return
    closed = true
    open = false
    pending = []
    clearTimeout(graceTimer)
    hooks.closed({ cause, code, reason })
    // Node streams report 'close' asynchronously; MQTT.js relies on its own handlers having run first.
    setTimeout(() => emit('close'), 0)
  }

  const flush = () => {
    flushQueued = false
    if (!open || corked || pending.length === 0) return
    const chunks = pending
    pending = []
    let size = 0
    for (const chunk of chunks) size += chunk.byteLength
    const frame = chunks.length === 1 ? chunks[0]! : new Uint8Array(size)
    if (chunks.length > 1) {
      let offset = 0
      for (const chunk of chunks) {
        frame.set(chunk, offset)
        offset += chunk.byteLength
      }
    }
    // A failed send is followed by the link's close, which MQTT.js handles; nothing to report twice.
    // Open implies the transport exists (it is assigned before any open event can come).
    transport!.send(frame).catch(() => {})
  }

  // Assigned once `open` returns: an adapter may report a failure from inside `open`, before there is a transport.
  let transport: Transport | undefined = undefined
  transport = adapter.open(request, {
    onOpen() {
      open = true
      hooks.opened()
      flush()
    },
    onMessage(data) {
      // MQTT over WebSocket is binary; a text frame is passed on as its bytes rather than dropped.
      const bytes = typeof data === 'string' ? utf8Encode(data) : new Uint8Array(data)
      if (destination && !closed) destination.write(bytes)
    },
    onClose: (code, reason) => finish(ending ? 'ended' : 'closed', code, reason),
    onError(error) {
      if (closed) return
      emit('error', error)
      if (transport) transport.close()
      finish('failed', 1006, error.message)
    },
  })

  const stream: DuplexLike = {
    pipe(target) {
      destination = target as unknown as typeof destination
      return target
    },
    write(chunk) {
      // Bytes for a closed stream go nowhere; `false` would leave MQTT.js waiting for a 'drain' that never comes.
      if (closed) return true
      pending.push(typeof chunk === 'string' ? utf8Encode(chunk) : (chunk as Uint8Array))
      if (!corked && !flushQueued) {
        flushQueued = true
        Promise.resolve().then(flush)
      }
      return true
    },
    cork() {
      corked++
    },
    uncork() {
      if (corked > 0 && --corked === 0) flush()
    },
    end(callback) {
      ending = true
      flush()
      if (callback) stream.once('close', callback)
      transport.close(1000, '')
      graceTimer = setTimeout(() => finish('ended', 1000, ''), END_GRACE_MS)
      return stream
    },
    destroy(error) {
      if (closed) return stream
      if (error) emit('error', error)
      transport.close()
      finish('destroyed', 1006, error ? error.message : '')
      return stream
    },
    on(event, listener) {
      ;(listeners[event] ||= []).push(listener)
      return stream
    },
    once(event, listener) {
      const once: Listener & { listener?: Listener } = (...args) => {
        stream.removeListener(event, once)
        listener(...args)
      }
      once.listener = listener
      return stream.on(event, once)
    },
    removeListener(event, listener) {
      const list = listeners[event]
      const index = list ? list.findIndex((l) => l === listener || (l as { listener?: Listener }).listener === listener) : -1
      if (index >= 0) list!.splice(index, 1)
      return stream
    },
    setMaxListeners: () => stream,
  }
  return stream
}
