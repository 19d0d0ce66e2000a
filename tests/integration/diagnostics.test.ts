/**
 * What a developer is told when the setup is wrong, on real sockets on loopback: a server that never answers the
 * heartbeat, a server that echoes it, a domain outside the mini-program's allow-list, `ws://` on a device that requires
 * `wss://`, a certificate nobody trusts (a `wss://` server with the self-signed certificate of tests/fixtures/tls), and
 * platform error objects of every shape. Tests run in a development build (NODE_ENV is not `production`), where the
 * messages also say the fix.
 */
import { readFileSync } from 'node:fs'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocket, WebSocketServer } from 'ws'
import {
  createConnection,
  createWebAdapter,
  isLongLinkError,
  type Connection,
  type ConnectionOptions,
  type LongLinkError,
  type PlatformOption,
  type WebSocketConstructor,
} from '../../uni_modules/longlink-socket/js_sdk/index'
import { createEventSource } from '../../uni_modules/longlink-socket/js_sdk/sse'
import { startFaultProxy } from '../support/fault-proxy'
import { freePort } from '../support/ports'
import { createRequestSimulator } from '../support/request-sim'
import { createUniSimulator, createWxSimulator, WX_ERR_MSG, type SimulatorOptions } from '../support/socket-task-sim'
import { startTestServer, type TestServer } from '../support/test-server'
import { until } from '../support/wait'

type Simulator = ReturnType<typeof createWxSimulator>

const g = globalThis as Record<string, unknown>

interface Side {
  name: 'wx' | 'uni' | 'web'
  platform(options?: SimulatorOptions): PlatformOption
}

let sims: Simulator[] = []
const connections: Connection[] = []
const closers: (() => Promise<void> | void)[] = []

function simulator(kind: 'wx' | 'uni', options?: SimulatorOptions): Simulator {
  const sim = (kind === 'wx' ? createWxSimulator(options) : createUniSimulator(options)) as Simulator
  sims.push(sim)
  g[kind] = sim
  return sim
}

const sides: Side[] = [
  { name: 'wx', platform: (options) => (simulator('wx', options), 'wx') },
  { name: 'uni', platform: (options) => (simulator('uni', options), 'uni') },
  { name: 'web', platform: () => createWebAdapter(WebSocket as unknown as WebSocketConstructor, undefined) },
]

function connect(options: ConnectionOptions): { connection: Connection; errors: LongLinkError[]; closes: string[]; messages: unknown[] } {
  const connection = createConnection({ reconnect: { min: 20, max: 60 }, ...options })
  connections.push(connection)
  const errors: LongLinkError[] = []
  const closes: string[] = []
  const messages: unknown[] = []
  connection.on('error', (error) => errors.push(error))
  connection.on('close', (event) => closes.push(event.reason))
  connection.on('message', (data) => messages.push(data))
  return { connection, errors, closes, messages }
}

const codes = (errors: LongLinkError[]) => errors.map((e) => e.code)

afterEach(async () => {
  await Promise.all(connections.splice(0).map((c) => c.close().catch(() => {})))
  for (const close of closers.splice(0)) await close()
  for (const sim of sims) sim.dispose()
  sims = []
  delete g.wx
  delete g.uni
})

async function server(options: Parameters<typeof startTestServer>[0]): Promise<TestServer> {
  const s = await startTestServer(options)
  closers.push(() => s.close())
  return s
}

describe.each(sides)('heartbeat diagnostics over $name', (side) => {
  it('a server that never answers the ping: HEARTBEAT_UNANSWERED once (after two links in a row), saying what to do, while the link keeps being replaced', async () => {
    const s = await server({ echo: false, pong: false })
    const { connection, errors, closes } = connect({ url: s.url('/ws'), platform: side.platform(), heartbeat: { interval: 60, timeout: 60 } })
    await connection.open()
    await until(() => closes.length >= 3, 5000, 'three heartbeat timeouts')
    expect(closes.slice(0, 3)).toEqual(['heartbeat-timeout', 'heartbeat-timeout', 'heartbeat-timeout'])
    expect(codes(errors)).toEqual(['HEARTBEAT_UNANSWERED'])
    expect(errors[0]!.message).toContain('"pong"')
    // Said when the second link in a row went the same way, not at the first (that one could be a dead network).
    expect(closes.indexOf('heartbeat-timeout', 1)).toBeGreaterThan(0)
    expect(errors[0]!.message).toContain('heartbeat: false')
    // Reported, not fatal: the connection goes on.
    expect(['open', 'connecting', 'reconnecting']).toContain(connection.state)
    expect(s.acceptedCount).toBeGreaterThanOrEqual(3)
  })

  it('a server that answered once and then goes silent is a dead link, not a missing pong: no HEARTBEAT_UNANSWERED', async () => {
    const s = await server({ echo: false, pong: true })
    const { connection, errors, closes } = connect({ url: s.url('/ws'), platform: side.platform(), heartbeat: { interval: 60, timeout: 500 } })
    await connection.open()
    await until(() => connection.stats.rtt !== undefined, 3000, 'a pong')
    s.configure({ pong: false })
    await until(() => closes.filter((c) => c === 'heartbeat-timeout').length >= 2, 5000, 'two heartbeat timeouts')
    expect(codes(errors)).toEqual([])
  })

  it('a busy server whose link dies twice (a dead network, reconnects failing in between) is no missing pong', async () => {
    // The server talks every 20 ms, so no ping is ever needed and none is ever answered; the network then dies.
    const s = await server({ echo: false, pong: false })
    const talk = setInterval(() => s.broadcast('tick'), 20)
    closers.push(() => clearInterval(talk))
    const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: s.port } })
    closers.push(() => proxy.close())
    const { connection, errors, closes } = connect({
      url: proxy.url('/ws'),
      platform: side.platform(),
      heartbeat: { interval: 100, timeout: 100 },
      connectTimeout: 150,
    })
    for (let round = 1; round <= 2; round++) {
      await connection.open()
      proxy.mode('blackhole')
      await until(() => closes.filter((c) => c === 'heartbeat-timeout').length === round, 3000, 'the dead link found')
      // Attempts fail while the network is down; then it comes back.
      await until(() => codes(errors).filter((c) => c === 'CONNECT_TIMEOUT').length >= round, 3000, 'a failed attempt')
      proxy.mode('pass')
    }
    await connection.open()
    expect(codes(errors)).not.toContain('HEARTBEAT_UNANSWERED')
  })

  it('a server that echoes the ping has answered it: the app never receives its own ping, and the link stays', async () => {
    const s = await server({ echo: true, pong: false })
    const { connection, errors, closes, messages } = connect({
      url: s.url('/ws'),
      platform: side.platform(),
      // A ping goes out at most once per `timeout` (the answer is timed at the deadline).
      heartbeat: { interval: 40, timeout: 400 },
    })
    await connection.open()
    await until(() => s.messages.filter((m) => m.data === 'ping').length >= 4, 6000, 'four pings at the server')
    await connection.send('hello')
    await until(() => messages.includes('hello'), 2000, 'the echo of hello')
    expect(messages).toEqual(['hello'])
    expect(closes).toEqual([])
    expect(codes(errors)).toEqual([])
    expect(connection.stats.rtt).toBeTypeOf('number')
    expect(s.acceptedCount).toBe(1)
  })

  it('an echoed custom ping (an object sent as JSON, a new one each time) is no message either', async () => {
    const s = await server({ echo: true, pong: false })
    let n = 0
    const { connection, closes, messages } = connect({
      url: s.url('/ws'),
      platform: side.platform(),
      heartbeat: { interval: 40, timeout: 400, ping: () => ({ type: 'ping', n: ++n }), pong: (data) => data === 'never' },
    })
    await connection.open()
    await until(() => n >= 4, 6000, 'four pings')
    await connection.send({ type: 'ping', n: 0 })
    // The app's own message of the same shape is not the last ping: it comes back.
    await until(() => messages.length === 1, 2000, 'the echo of the app message')
    expect(messages).toEqual(['{"type":"ping","n":0}'])
    expect(closes).toEqual([])
  })
})

describe('an app message that looks like a ping', () => {
  it('reaches the app when no ping of ours waits for its answer', async () => {
    const s = await server({ echo: false, pong: true })
    const { connection, messages } = connect({ url: s.url('/ws'), platform: sides[0]!.platform(), heartbeat: { interval: 300, timeout: 1000 } })
    await connection.open()
    // Our first ping was sent and answered; the next one is 300 ms away. A server that now says "ping" on its own is
    // talking to the app.
    await until(() => connection.stats.rtt !== undefined, 3000, 'an answered ping')
    ;[...s.connections][0]!.send('ping')
    await until(() => messages.includes('ping'), 2000, 'the server ping to reach the app')
    expect(messages).toEqual(['ping'])
  })
})

describe.each(['wx', 'uni'] as const)('mini-program refusals over %s', (kind) => {
  describe.each(['fail', 'error'] as const)('reported through %s', (refusalStyle) => {
    it('a domain outside the allow-list: DOMAIN_NOT_ALLOWED, the fix in the message, open() rejects, nothing retried', async () => {
      const s = await server({})
      const sim = simulator(kind, { allowedDomains: ['api.example.com'], refusalStyle })
      const { connection, errors } = connect({ url: s.url('/ws'), platform: kind })
      const opened = await connection.open().then(
        () => undefined,
        (error: unknown) => error,
      )
      expect(isLongLinkError(opened, 'DOMAIN_NOT_ALLOWED')).toBe(true)
      expect((opened as LongLinkError).message).toContain(WX_ERR_MSG.domainNotAllowedEvent)
      expect((opened as LongLinkError).message).toContain('server domains')
      expect(connection.state).toBe('closed')
      expect(codes(errors)).toEqual(['DOMAIN_NOT_ALLOWED'])
      expect(sim.tasks.length).toBe(1)
      expect(s.acceptedCount).toBe(0)
    })

    it('ws:// where the device requires wss://: INSECURE_URL saying to use wss://, open() rejects, nothing retried', async () => {
      const s = await server({})
      const sim = simulator(kind, { requireWss: true, refusalStyle })
      const { connection, errors } = connect({ url: s.url('/ws'), platform: kind })
      const opened = await connection.open().then(
        () => undefined,
        (error: unknown) => error,
      )
      expect(isLongLinkError(opened, 'INSECURE_URL')).toBe(true)
      expect((opened as LongLinkError).message).toContain('wss://')
      expect(connection.state).toBe('closed')
      expect(codes(errors)).toEqual(['INSECURE_URL'])
      expect(sim.tasks.length).toBe(1)
    })
  })

  it('a listed domain connects as usual', async () => {
    const s = await server({})
    simulator(kind, { allowedDomains: ['127.0.0.1'], requireWss: false })
    const { connection, errors } = connect({ url: s.url('/ws'), platform: kind })
    await connection.open()
    expect(codes(errors)).toEqual([])
  })
})

describe.each(sides)('a certificate nobody trusts, over $name', (side) => {
  it('TLS_FAILED, naming the likely causes, and retried like any failed attempt', async () => {
    const dir = join(__dirname, '../fixtures/tls')
    const tls = https.createServer({ cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) })
    const wss = new WebSocketServer({ server: tls })
    let upgraded = 0
    wss.on('connection', () => upgraded++)
    await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve))
    closers.push(async () => {
      wss.close()
      tls.closeAllConnections()
      await new Promise((resolve) => tls.close(resolve))
    })
    const { port } = tls.address() as AddressInfo
    const { connection, errors } = connect({ url: `wss://127.0.0.1:${port}/ws`, platform: side.platform() })
    void connection.open().catch(() => {})
    await until(() => errors.length >= 2, 5000, 'two failed attempts')
    expect(codes(errors).slice(0, 2)).toEqual(['TLS_FAILED', 'TLS_FAILED'])
    expect(errors[0]!.message).toMatch(/certificate|ssl/i)
    expect(errors[0]!.message).toContain('self-signed')
    expect(connection.state).not.toBe('closed')
    expect(upgraded).toBe(0)
  })
})

describe('SSE in an HTTPS page', () => {
  it('an http:// stream the browser refuses is INSECURE_URL, and the source stops', async () => {
    const g2 = globalThis as { location?: unknown }
    g2.location = { protocol: 'https:' }
    closers.push(() => void delete g2.location)
    // The browser blocks the request before it leaves ("Failed to fetch"); a closed port fails it the same way here.
    const port = await freePort()
    const source = createEventSource(`http://127.0.0.1:${port}/events`, { platform: 'web' })
    closers.push(() => source.close())
    const errors: LongLinkError[] = []
    source.on('error', (error) => errors.push(error))
    await until(() => source.readyState === 2, 3000, 'the source to stop')
    expect(codes(errors)).toEqual(['INSECURE_URL'])
    expect(errors[0]!.message).toContain('use https://')
  })
})

describe('SSE: a request domain outside the allow-list', () => {
  it.each(['wx', 'uni'] as const)('over %s: DOMAIN_NOT_ALLOWED, the source stops', async (kind) => {
    const sim = createRequestSimulator()
    closers.push(() => sim.close())
    const source = createEventSource('https://sse.example.com/events', { platform: kind === 'wx' ? sim.wx : (sim.uni as never) })
    closers.push(() => source.close())
    const errors: LongLinkError[] = []
    source.on('error', (error) => errors.push(error))
    await until(() => source.readyState === 2, 3000, 'the source to stop')
    expect(codes(errors)).toEqual(['DOMAIN_NOT_ALLOWED'])
    expect(errors[0]!.message).toContain('url not in domain list')
  })
})
