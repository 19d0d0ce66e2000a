/**
 * The `transports` option on a simulated WeChat host: `connectSocket` from the SocketTask simulator and `request` from
 * the request simulator (both backed by real sockets on loopback, with the platform's awkward semantics: `success` is
 * not open, chunked bodies cut at random bytes, 10 requests at a time), against `attachLongLink` behind the fault proxy.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { createConnection, type Connection, type ConnectionOptions } from '../../uni_modules/longlink-socket/js_sdk/index'
import type { TransportChange } from '../../uni_modules/longlink-socket/js_sdk/types'
import { attachLongLink, type LongLinkConnection } from '../../server/longlink/index'
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy'
import { createRequestSimulator, type RequestSimulator } from '../support/request-sim'
import { createWxSimulator, type WxSimHost } from '../support/socket-task-sim'
import { sleep, until } from '../support/wait'

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

interface Setup {
  proxy: FaultProxy
  conns: LongLinkConnection[]
  sockets: WxSimHost
  requests: RequestSimulator
  /** A `wx`-shaped host: sockets, requests and the lifecycle APIs. */
  host: Record<string, unknown>
  url: string
}

async function setup(opts: { chunked?: boolean; maxStreamMs?: number; maxSockets?: number } = {}): Promise<Setup> {
  const server = http.createServer((_req, res) => res.writeHead(404).end())
  const conns: LongLinkConnection[] = []
  const handle = attachLongLink(server, {
    path: '/ll',
    maxStreamMs: opts.maxStreamMs,
    onConnection(conn) {
      conns.push(conn)
      conn.on('message', (data) => typeof data === 'string' && data.startsWith('echo:') && void conn.send(data.slice(5)).catch(() => {}))
    },
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: (server.address() as AddressInfo).port } })
  const sockets = createWxSimulator({ killOnOffline: true, maxSockets: opts.maxSockets ?? 5 })
  const requests = createRequestSimulator()
  const request = (options: Record<string, unknown>) => {
    const task = requests.wx.request(options as never) as unknown as Record<string, unknown>
    // A platform whose request cannot stream (App without enableChunked, Alipay, Douyin): its task has no chunk events.
    return opts.chunked === false ? { abort: () => (task['abort'] as () => void)() } : task
  }
  const host = {
    connectSocket: (o: never) => sockets.connectSocket(o),
    request,
    onNetworkStatusChange: (cb: never) => sockets.onNetworkStatusChange(cb),
    offNetworkStatusChange: (cb: never) => sockets.offNetworkStatusChange(cb),
    getNetworkType: (o: never) => sockets.getNetworkType(o),
    onAppShow: (cb: never) => sockets.onAppShow(cb),
    offAppShow: (cb: never) => sockets.offAppShow(cb),
    onAppHide: (cb: never) => sockets.onAppHide(cb),
    offAppHide: (cb: never) => sockets.offAppHide(cb),
  }
  cleanups.push(async () => {
    sockets.dispose()
    requests.close()
    await proxy.close()
    await handle.close()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return { proxy, conns, sockets, requests, host, url: proxy.url('/ll') }
}

function connect(s: Setup, options: Partial<ConnectionOptions>): Connection {
  const conn = createConnection({ url: s.url, platform: s.host as never, reconnect: { min: 50, max: 400 }, ...options })
  cleanups.push(() => conn.close())
  return conn
}

function changes(conn: Connection): TransportChange[] {
  const list: TransportChange[] = []
  conn.on('transport', (change) => list.push(change))
  return list
}

describe('on a WeChat-shaped host', () => {
  it('WebSocket refused: falls back to SSE over chunked requests, and back to WebSocket on a network change', async () => {
    const s = await setup()
    s.proxy.blockUpgrades(true)
    const conn = connect(s, { url: `${s.url}?t=sse`, transports: ['websocket', 'sse', 'long-polling'], probeInterval: false })
    const seen = changes(conn)
    const messages: unknown[] = []
    conn.on('message', (data) => messages.push(data))
    await conn.open()
    expect(conn.transport).toBe('sse')
    expect(seen).toEqual([{ from: 'websocket', to: 'sse', reason: 'fallback' }])
    await conn.send('echo:over sse')
    await until(() => messages.includes('over sse'))
    // The user walks out of the network that blocked WebSockets.
    s.proxy.blockUpgrades(false)
    s.sockets.setNetwork('4g')
    await until(() => conn.transport === 'websocket', 10_000, 'the upgrade')
    expect(seen.at(-1)).toEqual({ from: 'sse', to: 'websocket', reason: 'upgrade' })
    await conn.send('echo:over websocket')
    await until(() => messages.includes('over websocket'))
    expect(s.conns.length).toBe(1)
    expect(s.conns[0]!.transport).toBe('websocket')
  })

  it('without chunked requests, SSE cannot run: straight on to long polling', async () => {
    const s = await setup({ chunked: false })
    s.proxy.blockUpgrades(true)
    const conn = connect(s, { url: `${s.url}?t=nochunk`, transports: ['websocket', 'sse', 'long-polling'], probeInterval: false })
    const seen = changes(conn)
    const errors: string[] = []
    conn.on('error', (error) => errors.push(error.code))
    await conn.open()
    expect(conn.transport).toBe('long-polling')
    expect(seen.map((c) => c.to)).toEqual(['sse', 'long-polling'])
    expect(errors).toContain('NOT_SUPPORTED')
    const messages: unknown[] = []
    conn.on('message', (data) => messages.push(data))
    await s.conns[0]!.send('hello')
    await until(() => messages.includes('hello'))
  })

  it('streams rotated every 300 ms (under the 60 s request cap) lose and repeat nothing', async () => {
    const s = await setup({ maxStreamMs: 300 })
    const conn = connect(s, { url: `${s.url}?t=rotate`, transports: ['sse'] })
    const messages: unknown[] = []
    conn.on('message', (data) => messages.push(data))
    await conn.open()
    await until(() => s.conns.length === 1)
    const total = 2000
    for (let i = 1; i <= total; i++) {
      await s.conns[0]!.send(String(i))
      if (i % 20 === 0) await sleep(15)
    }
    await until(() => messages.length >= total, 20_000, `${total} messages`)
    expect(messages).toEqual(Array.from({ length: total }, (_, i) => String(i + 1)))
    // Each stream is one request: many of them, never more than the platform allows at once.
    expect(s.requests.tasks.length).toBeGreaterThan(5)
  }, 30_000)

  it('the socket budget spent (SOCKET_LIMIT): on over long polling instead of stopping', async () => {
    const s = await setup({ maxSockets: 0 })
    const conn = connect(s, { url: `${s.url}?t=limit`, transports: ['websocket', 'long-polling'], probeInterval: false })
    const seen = changes(conn)
    const errors: string[] = []
    conn.on('error', (error) => errors.push(error.code))
    await conn.open()
    expect(conn.transport).toBe('long-polling')
    expect(seen).toEqual([{ from: 'websocket', to: 'long-polling', reason: 'fallback' }])
    expect(errors).toEqual(['SOCKET_LIMIT'])
    // Alone, the same refusal stops a WebSocket-only connection, as before.
    const only = connect(s, { url: `${s.url}?t=limit-only` })
    await expect(only.open()).rejects.toMatchObject({ code: 'SOCKET_LIMIT' })
  })

  it('an attempt dropped because the app went to the background is not held against the transport', async () => {
    const s = await setup()
    // New connections hang (a dead network): each attempt ends by the connect deadline.
    s.proxy.mode('blackhole')
    const conn = connect(s, { url: `${s.url}?t=hidden`, transports: ['websocket', 'sse'], connectTimeout: 400, probeInterval: false })
    const seen = changes(conn)
    const states: string[] = []
    conn.on('state', (change) => states.push(`${change.to}:${change.reason}`))
    void conn.open().catch(() => {})
    // One attempt timed out; the next is under way when the app is hidden.
    await until(() => states.filter((st) => st.startsWith('connecting')).length === 2, 5000, 'the second attempt')
    s.sockets.hide()
    await until(() => conn.state === 'offline', 2000, 'offline')
    s.proxy.mode('pass')
    s.sockets.show()
    await until(() => conn.state === 'open', 5000, 'open again')
    expect(conn.transport).toBe('websocket')
    expect(seen).toEqual([])
  })

  it('failures while offline are not held against the transport', async () => {
    const s = await setup()
    const conn = connect(s, { url: `${s.url}?t=offline`, transports: ['websocket', 'long-polling'] })
    const seen = changes(conn)
    await conn.open()
    expect(conn.transport).toBe('websocket')
    s.sockets.setNetwork('none')
    await until(() => conn.state === 'offline')
    await sleep(300)
    s.sockets.setNetwork('wifi')
    await until(() => conn.state === 'open', 5000, 'open again')
    expect(conn.transport).toBe('websocket')
    expect(seen).toEqual([])
    expect(s.requests.tasks.length).toBe(0)
  })
})
