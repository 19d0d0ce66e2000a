/**
 * A loopback TCP proxy that injects link faults between a client and a real server: latency,
 * a silent "blackhole" (the half-open link only a heartbeat can detect), RST, FIN and refusal.
 *
 * It works on raw TCP bytes, so it is protocol agnostic: WebSocket handshakes, frames and pings
 * all go through the same fault logic.
 */
import net from 'node:net'

/**
 * Proxy behaviour.
 * - `pass`: forward bytes untouched (default).
 * - `latency`: forward every chunk (and the FIN) after `latencyMs`, order preserved.
 * - `blackhole`: keep both TCP sockets open but drop every byte in both directions and never
 *   propagate FIN/RST. Applies to open connections and to new ones (which then connect at TCP
 *   level but never complete a handshake).
 * - `reset`: one-shot action; every current client and upstream socket is destroyed with RST,
 *   then the mode returns to `pass` so reconnects work (use `refuse` for a persistent outage).
 * - `fin`: one-shot action; every current connection is ended gracefully (FIN both ways), then
 *   the mode returns to `pass`.
 * - `refuse`: new connections are accepted and immediately reset (the closest a userland proxy
 *   gets to a refused SYN); open connections are left alone.
 * - `sever`: one-shot action; every current connection goes dark for good, exactly as in `blackhole`
 *   (bytes dropped both ways, no FIN, no RST), while new connections pass: a phone whose NAT
 *   mapping was lost, or that moved from wifi to 4g, and can connect again at once.
 */
export type FaultMode = 'pass' | 'latency' | 'blackhole' | 'reset' | 'fin' | 'refuse' | 'sever'

/** Options of {@link startFaultProxy}. */
export interface FaultProxyOptions {
  /** Where to forward to (normally the test server on 127.0.0.1). */
  target: { host: string; port: number }
  /** Initial mode (default `'pass'`). */
  mode?: FaultMode
  /** Delay for `latency` mode in ms (default 100). */
  latencyMs?: number
}

/** A running fault proxy. */
export interface FaultProxy {
  /** The local port the proxy listens on (127.0.0.1). */
  readonly port: number
  /** The current mode (`reset`/`fin`/`sever` are one-shot and read back as `pass`). */
  readonly currentMode: FaultMode
  /** `ws://127.0.0.1:PORT/path` for this proxy. */
  url(path?: string): string
  /** Switches mode; applies to already-open connections too. `latencyMs` updates the delay. */
  mode(mode: FaultMode, options?: { latencyMs?: number }): void
  /**
   * While on, a WebSocket upgrade request (a request head with `Upgrade: websocket`) is answered `403` and the
   * connection closed, while plain HTTP passes: a proxy or network that refuses WebSockets. Open sockets stay.
   */
  blockUpgrades(on: boolean): void
  /** Upgrade requests refused by {@link blockUpgrades} so far. */
  upgradesRefused(): number
  /** Number of client connections currently open through the proxy. */
  connections(): number
  /** Destroys every socket, cancels pending timers and stops listening. */
  close(): Promise<void>
}

/** One proxied connection: the accepted client socket and its upstream socket. */
interface Pair {
  client: net.Socket
  upstream: net.Socket
  clientEnded: boolean
  upstreamEnded: boolean
  /** Severed: dark for the rest of its life, whatever the mode. */
  dark: boolean
}

/** How long a `fin`-ed pair may linger before it is destroyed, so nothing outlives the test. */
const FIN_LINGER_MS = 2000

/**
 * Starts a fault proxy on 127.0.0.1 with an OS-assigned port.
 */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const { target } = options
  let currentMode: FaultMode = options.mode ?? 'pass'
  let latencyMs = options.latencyMs ?? 100
  const pairs = new Set<Pair>()
  const timers = new Set<ReturnType<typeof setTimeout>>()
  let closed = false
  let blocking = false
  let refusedUpgrades = 0

  const later = (fn: () => void, ms: number): void => {
    const timer = setTimeout(() => {
      timers.delete(timer)
      fn()
    }, ms)
    timers.add(timer)
  }

  const destroyPair = (pair: Pair, rst: boolean): void => {
    pairs.delete(pair)
    for (const socket of [pair.client, pair.upstream]) {
      if (socket.destroyed) continue
      if (rst && typeof socket.resetAndDestroy === 'function' && socket.readyState !== 'opening') {
        socket.resetAndDestroy()
      } else {
        socket.destroy()
      }
    }
  }

  const isDark = (pair: Pair): boolean => pair.dark || currentMode === 'blackhole'

  /** Forwards one chunk according to the mode at send time and (for latency) delivery time. */
  const forward = (pair: Pair, chunk: Buffer, to: net.Socket): void => {
    if (isDark(pair)) return
    const write = (): void => {
      // Re-check at delivery: bytes still in flight when the link goes dark are lost too.
      if (isDark(pair) || to.destroyed || to.writableEnded) return
      to.write(chunk)
    }
    if (currentMode === 'latency') later(write, latencyMs)
    else write()
  }

  /** Propagates a FIN from one side to the other unless the link is dark. */
  const forwardEnd = (pair: Pair, to: net.Socket): void => {
    if (isDark(pair)) return
    const end = (): void => {
      if (isDark(pair) || to.destroyed) return
      to.end()
      if (pair.clientEnded && pair.upstreamEnded) destroyPair(pair, false)
    }
    if (currentMode === 'latency') later(end, latencyMs)
    else end()
  }

  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    if (closed) {
      client.destroy()
      return
    }
    if (currentMode === 'refuse') {
      client.on('error', () => {})
      client.resetAndDestroy()
      return
    }
    // allowHalfOpen on both legs: Node must not auto-answer a FIN, otherwise blackhole mode
    // would leak a FIN to the other side and the link would not be silently dead.
    const upstream = net.connect({ host: target.host, port: target.port, allowHalfOpen: true })
    const pair: Pair = { client, upstream, clientEnded: false, upstreamEnded: false, dark: false }
    pairs.add(pair)

    client.on('data', (chunk: Buffer) => {
      // A request head that asks for a WebSocket (loopback delivers a head in one chunk).
      if (blocking && /\r\nupgrade:[ \t]*websocket/i.test(chunk.toString('latin1', 0, Math.min(chunk.length, 4096)))) {
        refusedUpgrades++
        client.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
        upstream.destroy()
        return
      }
      forward(pair, chunk, upstream)
    })
    upstream.on('data', (chunk: Buffer) => forward(pair, chunk, client))
    client.on('end', () => {
      pair.clientEnded = true
      forwardEnd(pair, upstream)
    })
    upstream.on('end', () => {
      pair.upstreamEnded = true
      forwardEnd(pair, client)
    })
    // Errors and closes tear the other leg down too, except in blackhole mode where the other
    // side must keep seeing an open but silent connection.
    const onGone = (): void => {
      if (isDark(pair) && !closed) return
      destroyPair(pair, false)
    }
    client.on('error', onGone)
    upstream.on('error', onGone)
    // The pair stays registered until both legs are gone so close() can always reach a leg that
    // blackhole mode deliberately kept open.
    client.on('close', onGone)
    upstream.on('close', onGone)
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const port = (server.address() as net.AddressInfo).port

  const proxy: FaultProxy = {
    port,
    get currentMode() {
      return currentMode
    },
    url(path = '/') {
      return `ws://127.0.0.1:${port}${path.startsWith('/') ? path : `/${path}`}`
    },
    blockUpgrades(on) {
      blocking = on
    },
    upgradesRefused: () => refusedUpgrades,
    mode(mode, opts) {
      if (opts?.latencyMs !== undefined) latencyMs = opts.latencyMs
      if (mode === 'reset') {
        currentMode = 'pass'
        for (const pair of [...pairs]) destroyPair(pair, true)
        return
      }
      if (mode === 'sever') {
        currentMode = 'pass'
        for (const pair of pairs) pair.dark = true
        return
      }
      if (mode === 'fin') {
        currentMode = 'pass'
        for (const pair of [...pairs]) {
          if (!pair.client.destroyed) pair.client.end()
          if (!pair.upstream.destroyed) pair.upstream.end()
          later(() => destroyPair(pair, false), FIN_LINGER_MS)
        }
        return
      }
      currentMode = mode
    },
    connections() {
      let count = 0
      for (const pair of pairs) if (!pair.client.destroyed) count++
      return count
    },
    async close() {
      if (closed) return
      closed = true
      for (const timer of timers) clearTimeout(timer)
      timers.clear()
      for (const pair of [...pairs]) destroyPair(pair, false)
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
  return proxy
}
