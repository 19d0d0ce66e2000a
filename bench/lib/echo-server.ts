/** A bare `ws` echo server for benchmarks: no recording, so it costs as little as possible per message. */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { WebSocketServer, type WebSocket } from 'ws'

export interface EchoServer {
  port: number
  url: string
  /** Closes every socket and the listener, then listens again on the same port. */
  restart(): Promise<void>
  close(): Promise<void>
}

/** Starts an echo server on 127.0.0.1; `greeting` is sent to every new connection when given. */
export async function startEchoServer(greeting?: string): Promise<EchoServer> {
  let http: Server
  let wss: WebSocketServer
  let port = 0
  const listen = () =>
    new Promise<void>((resolve) => {
      http = createServer()
      wss = new WebSocketServer({ server: http })
      wss.on('connection', (ws: WebSocket) => {
        ws.on('message', (data, isBinary) => {
          const text = isBinary ? data : data.toString()
          if (text === 'ping') ws.send('pong')
          else ws.send(text as never, { binary: isBinary })
        })
        if (greeting) ws.send(greeting)
      })
      http.listen(port, '127.0.0.1', () => {
        port = (http.address() as AddressInfo).port
        resolve()
      })
    })
  const stop = () =>
    new Promise<void>((resolve) => {
      for (const client of wss.clients) client.terminate()
      wss.close()
      http.closeAllConnections()
      http.close(() => resolve())
    })
  await listen()
  return {
    get port() {
      return port
    },
    get url() {
      return `ws://127.0.0.1:${port}/bench`
    },
    async restart() {
      await stop()
      await listen()
    },
    close: stop,
  }
}
