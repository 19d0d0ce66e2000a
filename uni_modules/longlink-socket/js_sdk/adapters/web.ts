import { fail, messageOf, platformError } from '../errors'
import { toWire } from '../core/bytes'
import type { Adapter, LifecycleHost } from '../transport'

/** The part of the WHATWG WebSocket this adapter uses (browsers, `ws` in Node). */
export interface WebSocketLike {
  readonly readyState: number
  binaryType: string
  send(data: string | ArrayBuffer): void
  close(code?: number, reason?: string): void
  onopen: ((event: unknown) => void) | null
  onmessage: ((event: { data: unknown }) => void) | null
  onclose: ((event: { code: number; reason: string }) => void) | null
  onerror: ((event: unknown) => void) | null
}

/** A WebSocket constructor. The third argument carries headers for `ws` in Node; browsers ignore it. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[], options?: Record<string, unknown>) => WebSocketLike

/** The standard WebSocket of this runtime, if it has one. */
export function findWebSocket(): WebSocketConstructor | undefined {
  const WS = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
  return typeof WS === 'function' ? WS : undefined
}

/** Browser online/offline events, shaped as a lifecycle host. */
export function browserLifecycle(): LifecycleHost | undefined {
  type Listen = (type: string, listener: () => void) => void
  const win = (globalThis as { window?: { addEventListener?: Listen; removeEventListener?: Listen } }).window
  if (!win || typeof win.addEventListener !== 'function' || typeof win.removeEventListener !== 'function') return undefined
  const listeners = new Map<unknown, [() => void, () => void]>()
  return {
    onNetworkStatusChange(cb) {
      const pair: [() => void, () => void] = [
        () => cb({ isConnected: true, networkType: 'unknown' }),
        () => cb({ isConnected: false, networkType: 'none' }),
      ]
      listeners.set(cb, pair)
      win.addEventListener!('online', pair[0])
      win.addEventListener!('offline', pair[1])
    },
    offNetworkStatusChange(cb) {
      const pair = cb && listeners.get(cb)
      if (!pair) return
      listeners.delete(cb!)
      win.removeEventListener!('online', pair[0])
      win.removeEventListener!('offline', pair[1])
    },
  }
}

/**
 * Adapter over the standard WebSocket (H5, or Node with the `ws` package passed in). Headers reach the
 * server only where the constructor accepts them (`ws`); browsers cannot send custom handshake headers.
 */
export function createWebAdapter(WebSocketImpl: WebSocketConstructor | undefined = findWebSocket(), lifecycle = browserLifecycle()): Adapter {
  if (!WebSocketImpl) throw fail('UNSUPPORTED_PLATFORM', 'no WebSocket here')
  const Impl = WebSocketImpl
  return {
    name: 'web',
    lifecycle,
    open(request, events) {
      const options: { headers?: Record<string, string>; handshakeTimeout?: number } = {}
      if (request.header) options.headers = request.header
      if (request.timeout) options.handshakeTimeout = request.timeout
      let socket: WebSocketLike
      try {
        socket = new Impl(request.url, request.protocols, options)
      } catch (error) {
        // A browser refuses ws:// from an HTTPS page here (SecurityError): INSECURE_URL, with the fix.
        events.onError(platformError(error, 'CONNECT_FAILED', 'WebSocket refused', request.url))
        return { send: () => Promise.reject(notOpen()), close: () => {} }
      }
      socket.binaryType = 'arraybuffer'
      socket.onopen = () => events.onOpen()
      socket.onmessage = (event) => events.onMessage(toWire(event.data))
      socket.onclose = (event) => events.onClose(event.code, event.reason)
      // Browsers say nothing of why; `ws` in Node names the cause (a TLS failure among them).
      socket.onerror = (event) =>
        events.onError(
          event && (event as { message?: string }).message
            ? platformError(event, 'SOCKET_ERROR', 'WebSocket error', request.url)
            : fail('SOCKET_ERROR', 'WebSocket error', event),
        )
      return {
        send(data) {
          if (socket.readyState !== 1) return Promise.reject(notOpen())
          try {
            socket.send(toWire(data))
            return Promise.resolve()
          } catch (error) {
            return Promise.reject(fail('SEND_FAILED', messageOf(error), error))
          }
        },
        close(code, reason) {
          try {
            socket.close(code, reason)
          } catch {
            // close() throws on a socket that is still CONNECTING in some runtimes; it is dropped either way.
          }
        },
      }
    },
  }
}

function notOpen() {
  return fail('SEND_FAILED', 'socket not open')
}
