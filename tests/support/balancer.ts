/**
 * A loopback TCP load balancer for tests: each new connection goes to the next backend port in turn (round robin);
 * a backend whose connect fails or times out is skipped for that connection, so once a backend dies new connections
 * land on the others. Bytes are piped as they are (HTTP, WebSocket, MQTT alike). Bounded: a connect deadline per
 * backend, at most `maxConnections` at once; close() ends the listener and every socket.
 */
import net from 'node:net'

export interface Balancer {
  /** The port it listens on, on 127.0.0.1. */
  readonly port: number
  /** How many connections went to each backend port so far. */
  routed(): Map<number, number>
  close(): Promise<void>
}

export interface BalancerOptions {
  /** Deadline for connecting to one backend (ms), then the next one is tried. */
  connectTimeoutMs?: number
  maxConnections?: number
}

/** Starts the balancer in front of `backends` (ports on 127.0.0.1). */
export async function startBalancer(backends: number[], opts: BalancerOptions = {}): Promise<Balancer> {
  const connectTimeoutMs = opts.connectTimeoutMs ?? 1000
  const sockets = new Set<net.Socket>()
  const routed = new Map<number, number>()
  let next = 0

  const track = (socket: net.Socket): void => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    // A peer that resets is a normal end here; the other side is destroyed with it.
    socket.on('error', () => {})
  }

  /** Connects to the first backend that accepts, starting at the round robin's next one; undefined when none does. */
  const connectAny = async (): Promise<{ socket: net.Socket; port: number } | undefined> => {
    const start = next++ % backends.length
    for (let i = 0; i < backends.length; i++) {
      const port = backends[(start + i) % backends.length]
      const socket = await new Promise<net.Socket | undefined>((resolve) => {
        const s = net.connect(port, '127.0.0.1')
        const fail = (): void => {
          s.destroy()
          resolve(undefined)
        }
        s.setTimeout(connectTimeoutMs, fail)
        s.once('error', fail)
        s.once('connect', () => {
          s.setTimeout(0)
          s.off('error', fail)
          resolve(s)
        })
      })
      if (socket) return { socket, port }
    }
    return undefined
  }

  const server = net.createServer({ pauseOnConnect: true }, (client) => {
    track(client)
    void connectAny().then((target) => {
      if (!target || client.destroyed) {
        target?.socket.destroy()
        client.destroy()
        return
      }
      const { socket, port } = target
      track(socket)
      routed.set(port, (routed.get(port) ?? 0) + 1)
      client.pipe(socket)
      socket.pipe(client)
      client.once('close', () => socket.destroy())
      socket.once('close', () => client.destroy())
      client.resume()
    })
  })
  server.maxConnections = opts.maxConnections ?? 10_000

  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port))
  })
  return {
    port,
    routed: () => new Map(routed),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        for (const s of sockets) s.destroy()
      }),
  }
}
