/**
 * MQTT over LongLink to an external broker (`BROKER_URL`): each connection (a plain WebSocket, or a session of the HTTP
 * transports) gets one connection of its own to the broker, and the bytes go through untouched. The broker sees an
 * ordinary client: the rider's CONNECT (its token) is the broker's to check, as when the app connects to it directly;
 * the backend's own credentials in `BROKER_URL` are never used here.
 */
import net from 'node:net'
import type { Duplex } from 'node:stream'
import tls from 'node:tls'
import { createWebSocketStream, WebSocket } from 'ws'
import { toDuplex, type LongLinkConnection } from '../longlink/index'

/** How long the broker has to accept a bridged connection. */
const CONNECT_TIMEOUT_MS = 10_000

/** A new connection to the broker at `url` (`mqtt:`, `mqtts:`, `ws:`, `wss:`), without its credentials, and its "connected" event. */
function connectUpstream(url: URL): [stream: Duplex, connected: string, source: NodeJS.EventEmitter] {
  const port = Number(url.port)
  if (url.protocol === 'mqtt:' || url.protocol === 'tcp:') {
    const socket = net.connect({ host: url.hostname, port: port || 1883 })
    return [socket, 'connect', socket]
  }
  if (url.protocol === 'mqtts:' || url.protocol === 'ssl:') {
    const socket = tls.connect({ host: url.hostname, port: port || 8883, servername: net.isIP(url.hostname) ? undefined : url.hostname })
    return [socket, 'secureConnect', socket]
  }
  const target = new URL(url.href)
  target.username = ''
  target.password = ''
  const ws = new WebSocket(target.href, ['mqtt'], { handshakeTimeout: CONNECT_TIMEOUT_MS })
  return [createWebSocketStream(ws), 'open', ws]
}

/**
 * Bridges `conn` to the broker at `brokerUrl`; either side ending ends the other. `onError` hears why a bridge failed
 * (never with credentials: only the broker's host is named).
 */
export function bridgeToBroker(conn: LongLinkConnection, brokerUrl: string, onError: (message: string) => void): void {
  const url = new URL(brokerUrl)
  const local = toDuplex(conn)
  const [upstream, connected, source] = connectUpstream(url)
  const timer = setTimeout(() => upstream.destroy(new Error(`no connection to ${url.host} within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS)
  timer.unref()
  source.once(connected, () => clearTimeout(timer))
  let failed = false
  const fail = (error?: Error) => {
    clearTimeout(timer)
    if (error && !failed) onError(`${url.host}: ${error.message}`)
    failed = true
    local.destroy()
    upstream.destroy()
  }
  local.on('error', () => fail())
  upstream.on('error', fail)
  local.on('close', () => fail())
  upstream.on('close', () => fail())
  local.pipe(upstream)
  upstream.pipe(local)
}
