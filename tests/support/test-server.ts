/**
 * A real WebSocket test server on 127.0.0.1: echoes, answers text pings, records every handshake
 * and message, and can drop, terminate, stop and restart on the same port so reconnect logic is
 * exercised against genuine TCP behaviour.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { WebSocket, WebSocketServer } from 'ws'

/** One upgrade request as seen by the server (recorded even if it is then rejected). */
export interface HandshakeRecord {
  /** Request path and query, e.g. `/mqtt?token=abc`. */
  url: string
  /** Lower-cased request headers as Node parsed them. */
  headers: http.IncomingHttpHeaders
  /** Subprotocols the client offered, in order. */
  offeredProtocols: string[]
  /** Subprotocol the server selected (`''` for none or when the upgrade was rejected). */
  protocol: string
  /** HTTP status when the upgrade was rejected by `rejectUpgrade`. */
  rejectedWith?: number
}

/** One message received by the server. */
export interface ReceivedMessage {
  /** Text frames as string, binary frames as a Buffer copy. */
  data: string | Buffer
  isBinary: boolean
  /** The connection it arrived on. */
  ws: WebSocket
  /** Index of the connection in accept order (1-based, across restarts). */
  connectionIndex: number
}

/** Text ping/pong strings (default `ping` / `pong`). */
export interface PongConfig {
  ping: string
  pong: string
}

/** Options of {@link startTestServer}. */
export interface TestServerOptions {
  /** Echo every message back with the same text/binary type (default true). */
  echo?: boolean
  /** Answer a text ping with a text pong (default true); the ping itself is not echoed. */
  pong?: boolean | Partial<PongConfig>
  /**
   * Subprotocol selection: a preference list (first one the client offered wins) or a function
   * like ws' `handleProtocols`. Default: the first protocol the client offered.
   */
  protocols?: string[] | ((offered: string[], req: http.IncomingMessage) => string | false)
  /** Called for every accepted connection after it is recorded. */
  onConnection?: (ws: WebSocket, req: http.IncomingMessage) => void
  /** Return an HTTP status (e.g. 401) to reject an upgrade, or undefined to accept it. */
  rejectUpgrade?: (req: http.IncomingMessage) => number | undefined
  /** Port to listen on (default 0 = OS-assigned; restarts reuse the assigned port). */
  port?: number
}

/** A running test server. */
export interface TestServer {
  /** The listening port; stays the same across stop/start/restart. */
  readonly port: number
  /** True while the HTTP server is listening. */
  readonly listening: boolean
  /** Live server-side sockets. */
  readonly connections: Set<WebSocket>
  /** Every upgrade request, in arrival order. */
  readonly handshakes: HandshakeRecord[]
  /** Every received message, in arrival order. */
  readonly messages: ReceivedMessage[]
  /** Total connections accepted since start (across restarts). */
  readonly acceptedCount: number
  /** `ws://127.0.0.1:PORT/path`. */
  url(path?: string): string
  /**
   * Resolves with the n-th accepted connection (1-based, counted across restarts; default 1),
   * immediately if it was already accepted. Rejects after `timeoutMs` (default 2000).
   */
  waitForConnection(n?: number, timeoutMs?: number): Promise<WebSocket>
  /**
   * Resolves with the first recorded message at index >= `since` (default 0) matching `pred`,
   * including messages received before the call. Rejects after `timeoutMs` (default 2000).
   */
  waitForMessage(pred?: (msg: ReceivedMessage) => boolean, timeoutMs?: number, since?: number): Promise<ReceivedMessage>
  /** Sends to every open connection; Buffers/ArrayBuffers go as binary frames. */
  broadcast(data: string | Buffer | ArrayBuffer | Uint8Array): void
  /** Server-initiated close handshake on every connection (default 1001 "going away"). */
  dropAll(code?: number, reason?: string): void
  /** Abrupt TCP destroy of every connection (clients see 1006). */
  terminateAll(): void
  /** Changes echo/pong behaviour at runtime (e.g. stop answering pings). */
  configure(options: Pick<TestServerOptions, 'echo' | 'pong'>): void
  /** Terminates every socket and stops listening; the port is kept for {@link TestServer.start}. */
  stop(): Promise<void>
  /** Listens again on the same port (no-op when already listening). */
  start(): Promise<void>
  /** stop() then start(): resolves once listening again on the same port. */
  restart(): Promise<void>
  /** Stops for good and rejects pending waiters. */
  close(): Promise<void>
}

interface Waiter {
  check: () => boolean
  reject: (err: Error) => void
}

function normalisePong(pong: TestServerOptions['pong']): PongConfig | false {
  if (pong === false) return false
  const base: PongConfig = { ping: 'ping', pong: 'pong' }
  return pong === true || pong === undefined ? base : { ...base, ...pong }
}

/**
 * Starts a WebSocket test server on 127.0.0.1.
 */
export async function startTestServer(opts: TestServerOptions = {}): Promise<TestServer> {
  let echo = opts.echo ?? true
  let pong = normalisePong(opts.pong)
  const connections = new Set<WebSocket>()
  const handshakes: HandshakeRecord[] = []
  const messages: ReceivedMessage[] = []
  const accepted: WebSocket[] = []
  const waiters = new Set<Waiter>()
  const recordByReq = new WeakMap<http.IncomingMessage, HandshakeRecord>()
  let closed = false
  let port = opts.port ?? 0

  const notify = (): void => {
    for (const waiter of [...waiters]) waiter.check()
  }

  const selectProtocol = (offered: string[], req: http.IncomingMessage): string | false => {
    const choice = opts.protocols
    if (typeof choice === 'function') return choice(offered, req)
    if (Array.isArray(choice)) return choice.find((p) => offered.includes(p)) ?? false
    return offered[0] ?? false
  }

  const httpServer = http.createServer((_req, res) => {
    // Plain HTTP is not part of the protocol; answer so a stray request never hangs.
    res.writeHead(426, { 'content-type': 'text/plain' })
    res.end('upgrade required')
  })

  // Registered before the WebSocketServer attaches its own 'upgrade' listener, so every upgrade
  // is recorded, including the ones verifyClient then rejects.
  httpServer.on('upgrade', (req: http.IncomingMessage) => {
    const offered = String(req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean)
    const record: HandshakeRecord = { url: req.url ?? '', headers: req.headers, offeredProtocols: offered, protocol: '' }
    handshakes.push(record)
    recordByReq.set(req, record)
  })

  // Attached to the HTTP server (not noServer) so the same server object, and therefore the same
  // port, can stop and listen again while the WebSocketServer keeps handling upgrades.
  const wss = new WebSocketServer({
    server: httpServer,
    handleProtocols: (protocols: Set<string>, req: http.IncomingMessage) => selectProtocol([...protocols], req),
    verifyClient: (info: { req: http.IncomingMessage }, done: (ok: boolean, code?: number) => void) => {
      const status = opts.rejectUpgrade?.(info.req)
      if (status === undefined) {
        done(true)
        return
      }
      const record = recordByReq.get(info.req)
      if (record) record.rejectedWith = status
      done(false, status)
    },
  })
  // wss re-emits HTTP server errors (e.g. EADDRINUSE on restart); listen() reports them itself.
  wss.on('error', () => {})

  wss.on('connection', (ws: WebSocket, req: http.IncomingMessage) => {
    const record = recordByReq.get(req)
    if (record) record.protocol = ws.protocol
    connections.add(ws)
    accepted.push(ws)
    const connectionIndex = accepted.length
    ws.on('error', () => {
      // Client-side aborts (RST through the fault proxy) surface here; they are expected.
    })
    ws.on('close', () => {
      connections.delete(ws)
    })
    ws.on('message', (raw: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      // Copy: recorded messages must not alias ws' internal buffers.
      const buf = Array.isArray(raw) ? Buffer.concat(raw) : Buffer.isBuffer(raw) ? Buffer.from(raw) : Buffer.from(new Uint8Array(raw))
      const data = isBinary ? buf : buf.toString('utf8')
      messages.push({ data, isBinary, ws, connectionIndex })
      if (ws.readyState === WebSocket.OPEN) {
        if (!isBinary && pong && data === pong.ping) ws.send(pong.pong)
        else if (echo) ws.send(data, { binary: isBinary })
      }
      notify()
    })
    opts.onConnection?.(ws, req)
    notify()
  })

  const listen = async (): Promise<void> => {
    if (httpServer.listening) return
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err)
      httpServer.once('error', onError)
      httpServer.listen(port, '127.0.0.1', () => {
        httpServer.off('error', onError)
        resolve()
      })
    })
    port = (httpServer.address() as AddressInfo).port
  }

  const stop = async (): Promise<void> => {
    for (const ws of [...wss.clients, ...connections]) ws.terminate()
    connections.clear()
    if (!httpServer.listening) return
    const done = new Promise<void>((resolve) => httpServer.close(() => resolve()))
    // Plain keep-alive or half-upgraded sockets would otherwise keep close() pending.
    httpServer.closeAllConnections?.()
    await done
  }

  const waitFor = <T>(produce: () => T | undefined, timeoutMs: number, what: string): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (closed) {
        reject(new Error(`test server closed while waiting for ${what}`))
        return
      }
      let timer: ReturnType<typeof setTimeout> | undefined
      const waiter: Waiter = {
        check: () => {
          const value = produce()
          if (value === undefined) return false
          waiters.delete(waiter)
          if (timer) clearTimeout(timer)
          resolve(value)
          return true
        },
        reject: (err) => {
          waiters.delete(waiter)
          if (timer) clearTimeout(timer)
          reject(err)
        },
      }
      if (waiter.check()) return
      waiters.add(waiter)
      timer = setTimeout(() => waiter.reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs)
    })

  await listen()

  const server: TestServer = {
    get port() {
      return port
    },
    get listening() {
      return httpServer.listening
    },
    connections,
    handshakes,
    messages,
    get acceptedCount() {
      return accepted.length
    },
    url(path = '/') {
      return `ws://127.0.0.1:${port}${path.startsWith('/') ? path : `/${path}`}`
    },
    waitForConnection(n = 1, timeoutMs = 2000) {
      return waitFor(() => accepted[n - 1], timeoutMs, `connection #${n}`)
    },
    waitForMessage(pred = () => true, timeoutMs = 2000, since = 0) {
      return waitFor(
        () => {
          for (let i = since; i < messages.length; i++) if (pred(messages[i])) return messages[i]
          return undefined
        },
        timeoutMs,
        'a matching message',
      )
    },
    broadcast(data) {
      const payload = typeof data === 'string' ? data : Buffer.from(data instanceof ArrayBuffer ? new Uint8Array(data) : data)
      for (const ws of connections) if (ws.readyState === WebSocket.OPEN) ws.send(payload, { binary: typeof payload !== 'string' })
    },
    dropAll(code = 1001, reason = '') {
      for (const ws of connections) ws.close(code, reason)
    },
    terminateAll() {
      for (const ws of connections) ws.terminate()
    },
    configure(options) {
      if (options.echo !== undefined) echo = options.echo
      if (options.pong !== undefined) pong = normalisePong(options.pong)
    },
    stop,
    start: listen,
    async restart() {
      await stop()
      await listen()
    },
    async close() {
      if (closed) return
      closed = true
      for (const waiter of [...waiters]) waiter.reject(new Error('test server closed'))
      await stop()
      await new Promise<void>((resolve) => wss.close(() => resolve()))
    },
  }
  return server
}
