/**
 * The `transports` option end to end: the plugin's connection and MQTT client against `attachLongLink` on a real
 * `node:http` server on loopback, through the fault proxy (which can refuse WebSocket upgrades, reset every connection,
 * or end them). Node's `fetch` is the HTTP platform and `ws` the WebSocket (the `web` adapter). Every wait is bounded;
 * everything is closed after each test.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { Aedes } from 'aedes'
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { createConnection, createWebAdapter, type Connection, type ConnectionOptions } from '../../uni_modules/longlink-socket/js_sdk/index'
import { createMqttClient, type MqttClient } from '../../uni_modules/longlink-socket/js_sdk/mqtt'
import type { TransportChange } from '../../uni_modules/longlink-socket/js_sdk/types'
import { attachLongLink, toDuplex, type LongLinkConnection, type LongLinkHandle } from '../../server/longlink/index'
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy'
import { sleep, until } from '../support/wait'

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

interface Endpoint {
  server: http.Server
  handle: LongLinkHandle
  port: number
  /** Every connection the endpoint accepted, in order. */
  conns: LongLinkConnection[]
  /** What each connection received (by conn id). */
  received: Map<string, (string | Uint8Array)[]>
  /** HTTP requests at the path (not upgrades). */
  requests: () => number
  proxy: FaultProxy
  /** The client's ws:// URL, through the proxy. */
  url: string
}

/** An http server with attachLongLink at /ll that echoes `echo:` messages, behind a fault proxy. */
async function endpoint(options: Partial<Parameters<typeof attachLongLink>[1]> = {}): Promise<Endpoint> {
  let requests = 0
  const server = http.createServer((_req, res) => {
    res.statusCode = 404
    res.end('not here')
  })
  const conns: LongLinkConnection[] = []
  const received = new Map<string, (string | Uint8Array)[]>()
  const handle = attachLongLink(server, {
    path: '/ll',
    onConnection(conn) {
      conns.push(conn)
      const list: (string | Uint8Array)[] = []
      received.set(conn.id, list)
      conn.on('message', (data) => {
        list.push(data)
        if (typeof data === 'string' && data.startsWith('echo:')) void conn.send(data.slice(5)).catch(() => {})
        if (typeof data !== 'string') void conn.send(data).catch(() => {})
      })
    },
    ...options,
  })
  // After attaching: the module takes the listeners already there over, for its own path.
  server.prependListener('request', (req) => {
    if (String(req.url).startsWith('/ll')) requests++
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port } })
  cleanups.push(async () => {
    await proxy.close()
    await handle.close()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return { server, handle, port, conns, received, requests: () => requests, proxy, url: proxy.url('/ll') }
}

const web = () => createWebAdapter(WebSocket as never, undefined)

function connect(options: Partial<ConnectionOptions> & { url: string }): Connection {
  const conn = createConnection({ platform: web(), reconnect: { min: 50, max: 400 }, queue: { max: 5000 }, ...options })
  cleanups.push(() => conn.close())
  return conn
}

/** Records the app's view of a connection: messages, closes, opens, transport changes. */
function record(conn: Connection) {
  const seen = { messages: [] as (string | ArrayBuffer)[], closes: 0, opens: 0, changes: [] as TransportChange[], errors: [] as string[] }
  conn.on('message', (data) => seen.messages.push(data))
  conn.on('close', () => seen.closes++)
  conn.on('open', () => seen.opens++)
  conn.on('transport', (change) => seen.changes.push(change))
  conn.on('error', (error) => seen.errors.push(error.code))
  return seen
}

describe.each(['long-polling', 'polling', 'sse'] as const)('%s alone', (kind) => {
  it('opens, sends and receives text and bytes, answers the heartbeat, and names itself', async () => {
    const ep = await endpoint()
    const conn = connect({ url: ep.url, transports: [kind], poll: { interval: 100 }, heartbeat: { interval: 300, timeout: 3000 } })
    const seen = record(conn)
    expect(conn.transport).toBe(kind)
    await conn.open()
    await until(() => ep.conns.length === 1, 5000, 'the server connection')
    const server = ep.conns[0]!
    expect(server.transport).toBe(kind)
    await conn.send('echo:héllo 你好')
    await conn.send(new Uint8Array([0, 1, 2, 255]))
    await server.send('from server')
    await server.send(new Uint8Array([9, 8, 7]))
    await until(() => seen.messages.length >= 4, 5000, 'four messages')
    expect(seen.messages.filter((m) => typeof m === 'string')).toEqual(['héllo 你好', 'from server'])
    const bytes = seen.messages.filter((m): m is ArrayBuffer => typeof m !== 'string').map((m) => [...new Uint8Array(m)])
    expect(bytes).toEqual([
      [0, 1, 2, 255],
      [9, 8, 7],
    ])
    // The server got the text as a string and the bytes as a Uint8Array; pings never reached it.
    const got = ep.received.get(server.id)!
    expect(got[0]).toBe('echo:héllo 你好')
    expect(got[1]).toBeInstanceOf(Uint8Array)
    await sleep(800)
    expect(ep.received.get(server.id)!.filter((m) => m === 'ping')).toEqual([])
    expect(seen.messages).not.toContain('pong')
    expect(conn.stats.rtt).toBeTypeOf('number')
    expect(ep.requests()).toBeGreaterThan(2)
    expect(seen.closes).toBe(0)
    const closed = new Promise<[number, string]>((resolve) => server.on('close', (code, reason) => resolve([code, reason])))
    // A send made just before the close goes out with it, and resolves: the server acknowledged it.
    const last = conn.send('last words')
    await conn.close(4001, 'bye')
    await expect(last).resolves.toBeUndefined()
    expect(await closed).toEqual([4001, 'bye'])
    expect(ep.received.get(server.id)!.at(-1)).toBe('last words')
  })
})

describe('choice of transport', () => {
  it('with WebSocket working, makes no HTTP request at all', async () => {
    const ep = await endpoint()
    const conn = connect({ url: ep.url, transports: ['websocket', 'sse', 'long-polling'] })
    await conn.open()
    await conn.send('echo:x')
    await until(() => ep.conns.length === 1)
    expect(conn.transport).toBe('websocket')
    expect(ep.conns[0]!.transport).toBe('websocket')
    expect(ep.requests()).toBe(0)
  })

  it('falls back when the upgrade is refused, says so once, and remembers it for the next connection', async () => {
    const ep = await endpoint()
    ep.proxy.blockUpgrades(true)
    const conn = connect({ url: ep.url, transports: ['websocket', 'long-polling'], probeInterval: false })
    const seen = record(conn)
    await conn.open()
    expect(conn.transport).toBe('long-polling')
    expect(seen.changes).toEqual([{ from: 'websocket', to: 'long-polling', reason: 'fallback' }])
    expect(ep.proxy.upgradesRefused()).toBe(2)
    await conn.send('echo:works')
    await until(() => seen.messages.includes('works'))
    // The next connection to this host starts on the winner: no refused upgrade first.
    const next = connect({ url: ep.url, transports: ['websocket', 'long-polling'], probeInterval: false })
    expect(next.transport).toBe('long-polling')
    await next.open()
    expect(ep.proxy.upgradesRefused()).toBe(2)
  })

  it('a WebSocket the network cuts (1006) right after it opened, before any message, counts as one that never opened', async () => {
    let cut = 0
    const ep: Endpoint = await endpoint({
      onConnection(conn) {
        // A middlebox that lets the upgrade through and then kills the connection.
        if (conn.transport === 'websocket' && ++cut <= 2) setTimeout(() => ep.proxy.mode('reset'), 20)
      },
    })
    const conn = connect({ url: ep.url + '?cut', transports: ['websocket', 'long-polling'], probeInterval: false })
    const seen = record(conn)
    void conn.open()
    await until(() => conn.transport === 'long-polling' && conn.state === 'open', 10_000, 'open on long polling')
    expect(seen.changes).toEqual([{ from: 'websocket', to: 'long-polling', reason: 'fallback' }])
    expect(cut).toBe(2)
  })

  it('a platform without sockets goes straight to HTTP', async () => {
    const ep = await endpoint()
    const conn = connect({ url: ep.url, transports: ['websocket', 'long-polling'], platform: { request: httpHost().request } as never })
    await conn.open()
    expect(conn.transport).toBe('long-polling')
  })

  it('the probe brings a fallen-back connection back to WebSocket: same server connection, no close, nothing lost or repeated', async () => {
    const ep = await endpoint()
    ep.proxy.blockUpgrades(true)
    const conn = connect({ url: ep.url + '?fresh=probe', transports: ['websocket', 'long-polling'], probeInterval: 1000 })
    const seen = record(conn)
    await conn.open()
    expect(conn.transport).toBe('long-polling')
    await until(() => ep.conns.length === 1)
    const server = ep.conns[0]!
    ep.proxy.blockUpgrades(false)
    const upgraded = new Promise<void>((resolve) => conn.on('transport', (c) => c.reason === 'upgrade' && resolve()))
    // Messages both ways all through the switch.
    let n = 0
    let stop = false
    const pump = (async () => {
      while (!stop && n < 4000) {
        n++
        await server.send(String(n))
        void conn.send(`c${n}`)
        if (n % 20 === 0) await sleep(5)
      }
    })()
    await upgraded
    await sleep(300)
    stop = true
    await pump
    expect(conn.transport).toBe('websocket')
    expect(server.transport).toBe('websocket')
    await until(() => seen.messages.length === n, 10_000, `${n} messages`)
    expect(seen.messages).toEqual(Array.from({ length: n }, (_, i) => String(i + 1)))
    await until(() => ep.received.get(server.id)!.length === n, 10_000, 'the client messages')
    expect(ep.received.get(server.id)).toEqual(Array.from({ length: n }, (_, i) => `c${i + 1}`))
    expect(seen.closes).toBe(0)
    expect(seen.opens).toBe(1)
    expect(seen.changes.at(-1)).toEqual({ from: 'long-polling', to: 'websocket', reason: 'upgrade' })
    expect(ep.conns.length).toBe(1)
    // Well past the probe's own deadline (10 s), the upgraded link keeps carrying both ways, untouched.
    for (let i = 1; i <= 110; i++) {
      await sleep(100)
      void conn.send(`late${i}`)
      await server.send(`late${i}`)
    }
    await until(() => seen.messages.length === n + 110, 5000, 'the late messages')
    expect(seen.closes).toBe(0)
    expect(seen.opens).toBe(1)
    expect(conn.transport).toBe('websocket')
  }, 40_000)
})

describe('delivery across drops', () => {
  it.each(['long-polling', 'sse', 'polling'] as const)(
    '%s: thousands of messages each way, in order and once, while every connection is reset or ended',
    async (kind) => {
      const ep = await endpoint()
      const conn = connect({ url: ep.url + `?drops=${kind}`, transports: [kind], poll: { interval: 100 } })
      const seen = record(conn)
      await conn.open()
      await until(() => ep.conns.length === 1)
      const server = ep.conns[0]!
      const total = kind === 'polling' ? 1000 : 3000
      const batch = total / 100
      let faults = 0
      const chaos = setInterval(() => ep.proxy.mode(++faults % 3 === 0 ? 'fin' : 'reset'), 60)
      const sends: Promise<void>[] = []
      for (let i = 1; i <= total; i++) {
        await server.send(String(i))
        sends.push(conn.send(`c${i}`))
        if (i % batch === 0) await sleep(25)
      }
      await until(() => seen.messages.length >= total, 30_000, `${total} messages at the app`)
      clearInterval(chaos)
      await Promise.all(sends)
      expect(faults).toBeGreaterThan(5)
      expect(seen.messages).toEqual(Array.from({ length: total }, (_, i) => String(i + 1)))
      await until(() => ep.received.get(server.id)!.length >= total, 10_000, 'the client messages at the server')
      expect(ep.received.get(server.id)).toEqual(Array.from({ length: total }, (_, i) => `c${i + 1}`))
      // One server connection all along: the session survived every drop.
      expect(ep.conns.length).toBe(1)
    },
    60_000,
  )

  it('sse: a server whose buffer of unacknowledged messages is small keeps sending while acknowledgements are slow', async () => {
    // POST answers come back 50 ms late: messages released by one acknowledgement arrive before its answer.
    const realFetch = globalThis.fetch
    globalThis.fetch = (async (url: string, init: RequestInit) => {
      const res = await realFetch(url, init)
      if (init.method === 'POST') await sleep(50)
      return res
    }) as typeof fetch
    cleanups.push(() => (globalThis.fetch = realFetch))
    const ep = await endpoint({ maxBufferBytes: 16 * 1024, maxStreamMs: 40_000 })
    const conn = connect({ url: ep.url + '?slow-acks', transports: ['sse'] })
    const seen = record(conn)
    await conn.open()
    await until(() => ep.conns.length === 1)
    const server = ep.conns[0]!
    const total = 5000
    const body = 'x'.repeat(100)
    const sends: Promise<void>[] = []
    for (let i = 1; i <= total; i++) {
      sends.push(server.send(`${i} ${body}`))
      if (sends.length >= 100) await sends.shift()
    }
    await Promise.all(sends)
    // Well before the stream's end (40 s), which would otherwise be the only thing to carry the cursor.
    await until(() => seen.messages.length >= total, 15_000, `${total} messages`)
    expect(seen.messages.map((m) => Number(String(m).split(' ')[0]))).toEqual(Array.from({ length: total }, (_, i) => i + 1))
  }, 30_000)

  it('an expired session starts a new one, with a close and an open', async () => {
    const ep = await endpoint({ idleMs: 500 })
    const conn = connect({ url: ep.url, transports: ['long-polling'], heartbeat: false })
    const seen = record(conn)
    await conn.open()
    await until(() => ep.conns.length === 1)
    ep.proxy.mode('blackhole')
    await sleep(1500)
    ep.proxy.mode('pass')
    await until(() => seen.opens === 2, 20_000, 'the second open')
    expect(seen.closes).toBe(1)
    await until(() => ep.conns.length === 2)
  }, 30_000)
})

describe('refusals and bad options', () => {
  it('authenticate false: NOT_AUTHORIZED, and the connection stops without an auth hook', async () => {
    const ep = await endpoint({ authenticate: () => false })
    const conn = connect({ url: ep.url, transports: ['long-polling'] })
    const seen = record(conn)
    await expect(conn.open()).rejects.toMatchObject({ code: 'NOT_AUTHORIZED' })
    expect(conn.state).toBe('closed')
    expect(seen.errors).toEqual(['NOT_AUTHORIZED'])
  })

  it('authenticate false: an auth hook with fresh credentials gets another try; the same ones again stop it', async () => {
    const ep = await endpoint({ authenticate: (req) => String(req.url).includes('token=good') })
    let calls = 0
    const fresh = connect({ url: ep.url, transports: ['long-polling'], auth: () => ({ query: { token: calls++ ? 'good' : 'bad' } }) })
    await fresh.open()
    expect(fresh.transport).toBe('long-polling')
    const stale = connect({ url: ep.url, transports: ['long-polling'], auth: () => ({ query: { token: 'bad' } }) })
    await expect(stale.open()).rejects.toMatchObject({ code: 'NOT_AUTHORIZED' })
  })

  it.each([
    [{ transports: [] }],
    [{ transports: ['websocket', 'websocket'] }],
    [{ transports: ['comet'] }],
    [{ transports: 'long-polling' }],
    [{ poll: { interval: 0 } }],
    [{ poll: null }],
    [{ probeInterval: 0 }],
    [{ poll: { interval: '1000' } }],
    [{ poll: { intervall: 1000 } }],
    [{ probeInterval: -1 }],
  ])('%j throws INVALID_OPTION', (bad) => {
    expect(() => createConnection({ url: 'ws://127.0.0.1:1/ll', platform: web(), ...(bad as object) })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION' }),
    )
    expect(() => createMqttClient({ url: 'ws://127.0.0.1:1/ll', platform: web(), ...(bad as object) })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION' }),
    )
  })
})

describe('MQTT over the HTTP transports', () => {
  it.each(['long-polling', 'sse', 'polling'] as const)(
    '%s: connect, subscribe, publish QoS 0 and 1, waitFor',
    async (kind) => {
      const aedes = await Aedes.createBroker()
      cleanups.push(() => new Promise<void>((resolve) => aedes.close(() => resolve())))
      const ep = await endpoint({ onConnection: (conn) => void aedes.handle(toDuplex(conn) as never) })
      const client: MqttClient = createMqttClient({
        url: ep.url,
        transports: [kind],
        poll: { interval: 100 },
        platform: web(),
        reconnect: { min: 50 },
      })
      cleanups.push(() => client.end(true))
      await client.connect()
      expect(client.transport).toBe(kind)
      const heard: string[] = []
      await client.subscribe('bikes/7/#', (message) => heard.push(message.text()), { qos: 1 })
      const waiting = client.waitFor('bikes/7/unlocked', { timeout: 5000, qos: 1 })
      await client.publish('bikes/7/unlocked', { ok: true }, { qos: 1 })
      await client.publish('bikes/7/state', 'riding')
      const message = await waiting
      expect(message.json()).toEqual({ ok: true })
      await until(() => heard.length === 2)
      expect(heard).toEqual(['{"ok":true}', 'riding'])
    },
    20_000,
  )
})

/** A `wx.request`-shaped host over Node's fetch, with no `connectSocket` (a platform build without sockets). */
function httpHost() {
  return {
    request(options: {
      url: string
      method: string
      header?: Record<string, string>
      data?: string
      success(res: unknown): void
      fail(err: unknown): void
    }) {
      const controller = new AbortController()
      fetch(options.url, { method: options.method, headers: options.header, body: options.data, signal: controller.signal })
        .then(async (res) => options.success({ statusCode: res.status, data: await res.text(), header: {} }))
        .catch((err: Error) => options.fail({ errMsg: `request:fail ${err.message}` }))
      return { abort: () => controller.abort() }
    },
  }
}
