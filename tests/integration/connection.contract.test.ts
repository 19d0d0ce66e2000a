/**
 * One contract, run against every adapter (wx simulator, uni simulator, web over `ws`), on real sockets to a
 * real server on loopback. The simulators follow the documented SocketTask semantics.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import {
  createConnection,
  createWebAdapter,
  ErrorCode,
  type Connection,
  type ConnectionOptions,
  type PlatformOption,
  type WebSocketConstructor,
} from '../../uni_modules/longlink-socket/js_sdk/index'
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy'
import { createUniSimulator, createWxSimulator } from '../support/socket-task-sim'
import { startTestServer, type TestServer } from '../support/test-server'
import { nextEvent, record, sleep, until } from '../support/wait'

type Simulator = ReturnType<typeof createWxSimulator>

interface Fixture {
  name: string
  /** Whether the platform caps concurrent sockets (mini-programs: 5). */
  limited: boolean
  setup(): { platform: PlatformOption; sim: Simulator }
  teardown(): void
}

const g = globalThis as Record<string, unknown>

const fixtures: Fixture[] = [
  {
    name: 'wx',
    limited: true,
    setup() {
      const sim = createWxSimulator()
      g.wx = sim
      return { platform: 'wx', sim }
    },
    teardown: () => delete g.wx,
  },
  {
    name: 'uni',
    limited: true,
    setup() {
      const sim = createUniSimulator()
      g.uni = sim
      return { platform: 'uni', sim: sim as unknown as Simulator }
    },
    teardown: () => delete g.uni,
  },
  {
    name: 'web',
    limited: false,
    setup() {
      // The browser has no app show/hide; the simulator stands in as the lifecycle source the tests drive.
      const sim = createWxSimulator()
      return { platform: createWebAdapter(WebSocket as unknown as WebSocketConstructor, sim), sim }
    },
    teardown: () => {},
  },
]

describe.each(fixtures)('Connection contract over $name', (fixture) => {
  let server: TestServer
  let sim: Simulator
  let platform: PlatformOption
  const open: Connection[] = []

  function connect(options: Partial<ConnectionOptions> = {}): Connection {
    const connection = createConnection({
      url: server.url('/ws'),
      platform,
      reconnect: { min: 50, max: 400 },
      ...options,
    })
    open.push(connection)
    return connection
  }

  beforeEach(async () => {
    server = await startTestServer()
    ;({ platform, sim } = fixture.setup())
  })

  afterEach(async () => {
    await Promise.all(open.splice(0).map((c) => c.close().catch(() => {})))
    sim.dispose()
    fixture.teardown()
    await server.close()
  })

  it('round-trips text and plain objects, counting them in stats', async () => {
    const connection = connect()
    await connection.open()
    expect(connection.state).toBe('open')
    const echoed = nextEvent(connection, 'message')
    await connection.send('héllo')
    expect(await echoed).toBe('héllo')
    const json = nextEvent(connection, 'message')
    await connection.send({ bike: 'B1', n: 1 })
    expect(JSON.parse((await json) as string)).toEqual({ bike: 'B1', n: 1 })
    expect(connection.stats).toMatchObject({ messagesOut: 2, messagesIn: 2, bytesOut: 6 + 19, bytesIn: 6 + 19 })
    expect(connection.stats.uptime).toBeGreaterThanOrEqual(0)
  })

  it('sends exactly the bytes of a subarray view and receives an ArrayBuffer', async () => {
    const connection = connect()
    await connection.open()
    const whole = Uint8Array.from({ length: 64 }, (_, i) => i)
    const view = whole.subarray(10, 20)
    const echoed = nextEvent(connection, 'message')
    await connection.send(view)
    const data = await echoed
    expect(Object.prototype.toString.call(data)).toBe('[object ArrayBuffer]')
    expect([...new Uint8Array(data as ArrayBuffer)]).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19])
    const seen = server.messages.at(-1)!
    expect(seen.isBinary).toBe(true)
    expect([...new Uint8Array(seen.data as Buffer)]).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19])
    // A DataView over a slice, and a whole ArrayBuffer.
    const dv = new DataView(whole.buffer, 60, 4)
    const echoed2 = nextEvent(connection, 'message')
    await connection.send(dv)
    expect([...new Uint8Array((await echoed2) as ArrayBuffer)]).toEqual([60, 61, 62, 63])
  })

  it('queues sends made before open and while reconnecting, and delivers them in order', async () => {
    const connection = connect()
    const early = [connection.send('q1'), connection.send('q2')]
    await connection.open()
    await Promise.all(early)
    // A resolved send means the platform took the message; wait until it is really there before cutting the link.
    await until(() => server.messages.length === 2, 2000, 'the early messages')
    await server.stop()
    await nextEvent(connection, 'reconnecting')
    const queued = Array.from({ length: 10 }, (_, i) => connection.send(`m${i}`))
    await server.start()
    await nextEvent(connection, 'open', 5000)
    await Promise.all(queued)
    await until(() => server.messages.length === 12, 2000, 'all twelve messages')
    const texts = server.messages.filter((m) => !m.isBinary).map((m) => m.data.toString())
    expect(texts).toEqual(['q1', 'q2', ...Array.from({ length: 10 }, (_, i) => `m${i}`)])
  })

  it('rejects sends beyond queue.max with QUEUE_FULL and keeps the others', async () => {
    const connection = connect({ queue: { max: 3 } })
    const kept = [connection.send('a'), connection.send('b'), connection.send('c')]
    await expect(connection.send('d')).rejects.toMatchObject({ code: ErrorCode.QUEUE_FULL })
    await connection.open()
    await Promise.all(kept)
    await until(() => server.messages.length === 3, 2000, 'three messages')
    expect(server.messages.map((m) => m.data.toString())).toEqual(['a', 'b', 'c'])
  })

  it('an intentional close never reconnects and rejects queued work with CLOSED', async () => {
    const connection = connect()
    const log = record(connection)
    await connection.open()
    await connection.close(1000, 'bye')
    expect(connection.state).toBe('closed')
    expect(log.of('close')).toEqual([{ code: 1000, reason: 'user', intentional: true, message: 'bye' }])
    await expect(connection.send('late')).rejects.toMatchObject({ code: ErrorCode.CLOSED })
    await sleep(300)
    expect(server.handshakes).toHaveLength(1)
    expect(log.of('reconnecting')).toEqual([])
    // Closing while reconnecting stops the loop too and rejects what waited.
    const again = connect()
    await again.open()
    await server.stop()
    await nextEvent(again, 'reconnecting')
    const waiting = again.send('never')
    await again.close()
    await expect(waiting).rejects.toMatchObject({ code: ErrorCode.CLOSED })
    await server.start()
    await sleep(500)
    expect(again.state).toBe('closed')
    expect(server.connections.size).toBe(0)
  })

  it('reconnects after a server close with growing, jittered delays', async () => {
    const connection = connect({ reconnect: { min: 40, max: 2000, factor: 2, jitter: 0.5 } })
    const log = record(connection)
    await connection.open()
    for (let i = 0; i < 4; i++) {
      server.dropAll(4001, 'go away')
      await nextEvent(connection, 'open', 5000)
    }
    const closes = log.of('close')
    expect(closes).toHaveLength(4)
    expect(closes.every((c) => c.reason === 'server' && !c.intentional && c.code === 4001)).toBe(true)
    const attempts = log.of('reconnecting')
    expect(attempts.map((a) => a.attempt)).toEqual([1, 2, 3, 4])
    attempts.forEach((a, i) => {
      const bound = 40 * 2 ** i
      expect(a.delay).toBeGreaterThanOrEqual(bound / 2)
      expect(a.delay).toBeLessThanOrEqual(bound)
    })
    for (let i = 1; i < attempts.length; i++) expect(attempts[i].delay).toBeGreaterThanOrEqual(attempts[i - 1].delay)
    expect(connection.stats.reconnects).toBe(4)
    expect(server.handshakes).toHaveLength(5)
  })

  it('detects a blackholed link within interval + timeout and replaces it', async () => {
    let proxy: FaultProxy | undefined
    try {
      proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: server.port } })
      const interval = 300
      const timeout = 300
      const connection = connect({ url: proxy.url('/ws'), heartbeat: { interval, timeout } })
      await connection.open()
      const rtt = await (async () => {
        await until(() => connection.stats.rtt !== undefined, 2000, 'a heartbeat round trip')
        return connection.stats.rtt
      })()
      expect(rtt).toBeGreaterThanOrEqual(0)
      const silentSince = Date.now()
      proxy.mode('blackhole')
      const closed = await nextEvent(connection, 'close', 5000)
      const detectedAfter = Date.now() - silentSince
      expect(closed).toMatchObject({ reason: 'heartbeat-timeout', intentional: false })
      expect(detectedAfter).toBeLessThanOrEqual(interval + timeout + 1000)
      proxy.mode('pass')
      const reopened = await nextEvent(connection, 'open', 5000)
      expect(reopened.reconnected).toBe(true)
      const echo = nextEvent(connection, 'message')
      await connection.send('after')
      expect(await echo).toBe('after')
    } finally {
      await proxy?.close()
    }
  })

  it('times out an attempt that never opens and retries it', async () => {
    let proxy: FaultProxy | undefined
    try {
      proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: server.port } })
      proxy.mode('blackhole')
      const connection = connect({ url: proxy.url('/ws'), connectTimeout: 200 })
      const errors: string[] = []
      connection.on('error', (e) => errors.push(e.code))
      const opened = connection.open()
      const retry = await nextEvent(connection, 'reconnecting', 3000)
      expect(retry.reason).toBe('connect-timeout')
      expect(errors).toContain(ErrorCode.CONNECT_TIMEOUT)
      proxy.mode('pass')
      await opened
      expect(connection.state).toBe('open')
    } finally {
      await proxy?.close()
    }
  })

  it('pauses while the network is none and reconnects at once when it returns', async () => {
    const connection = connect({ reconnect: { min: 5000, max: 10_000 } })
    const log = record(connection)
    await connection.open()
    sim.setNetwork('none')
    await until(() => connection.state === 'offline', 2000, 'offline')
    expect(log.of('close').at(-1)).toMatchObject({ reason: 'network-lost', intentional: false })
    await sleep(300)
    expect(server.handshakes).toHaveLength(1)
    const started = Date.now()
    sim.setNetwork('wifi')
    await nextEvent(connection, 'open', 3000)
    // "At once": far below the 5 s backoff minimum.
    expect(Date.now() - started).toBeLessThan(2500)
    expect(server.handshakes).toHaveLength(2)
    // The old socket's late close callback did not start a second cycle.
    await sleep(200)
    expect(log.of('close')).toHaveLength(1)
    expect(connection.state).toBe('open')
  })

  it('stops heartbeats and attempts in the background and recovers on show', async () => {
    const connection = connect({ heartbeat: { interval: 100, timeout: 300 }, reconnect: { min: 5000, max: 10_000 } })
    await connection.open()
    await until(() => server.messages.some((m) => m.data.toString() === 'ping'), 2000, 'a ping')
    sim.hide()
    await sleep(50)
    const pingsAtHide = server.messages.filter((m) => m.data.toString() === 'ping').length
    server.dropAll(1001, 'killed in background')
    await until(() => connection.state === 'offline', 2000, 'offline in background')
    await sleep(400)
    expect(server.messages.filter((m) => m.data.toString() === 'ping').length).toBe(pingsAtHide)
    expect(server.handshakes).toHaveLength(1)
    sim.show()
    await nextEvent(connection, 'open', 3000)
    expect(server.handshakes).toHaveLength(2)
  })

  it('verifies an open link on show and replaces it when it is dead', async () => {
    let proxy: FaultProxy | undefined
    try {
      proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: server.port } })
      const connection = connect({ url: proxy.url('/ws'), heartbeat: { interval: 60_000, timeout: 300 } })
      await connection.open()
      sim.hide()
      proxy.mode('blackhole')
      sim.show()
      const closed = await nextEvent(connection, 'close', 3000)
      expect(closed.reason).toBe('heartbeat-timeout')
      proxy.mode('pass')
      await nextEvent(connection, 'open', 3000)
    } finally {
      await proxy?.close()
    }
  })

  it.each([
    ['shown again after a hide', (host: Simulator) => (host.hide(), () => host.show())],
    ['the network type changes', (host: Simulator) => () => host.setNetwork('4g')],
  ])('is back within 5 s when %s over a link that died silently (heartbeat 25 s / 10 s)', async (_when, arrange) => {
    let proxy: FaultProxy | undefined
    try {
      proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: server.port } })
      const connection = connect({ url: proxy.url('/ws'), heartbeat: { interval: 25_000, timeout: 10_000 } })
      const log = record(connection)
      const got: unknown[] = []
      connection.on('message', (data) => got.push(data))
      await connection.open()
      const trigger = arrange(sim)
      // The link dies without a FIN or RST (a lost NAT mapping); new connections get through.
      proxy.mode('sever')
      const since = Date.now()
      trigger()
      // The server greets every new link, as a backend that pushes the ride's state on connect would.
      const fresh = await server.waitForConnection(2, 6000)
      fresh.send('hello again')
      await until(() => got.includes('hello again'), 6000, 'the greeting on the new link')
      expect(Date.now() - since).toBeLessThan(5000)
      expect(log.of('close')).toEqual([expect.objectContaining({ reason: 'heartbeat-timeout', intentional: false })])
      // Replaced at once, not after a backoff delay.
      expect(log.of('reconnecting')).toEqual([expect.objectContaining({ delay: 0, reason: 'heartbeat-timeout' })])
    } finally {
      await proxy?.close()
    }
  })

  it('keeps a healthy link when shown again and when the network type changes', async () => {
    const connection = connect({ heartbeat: { interval: 25_000, timeout: 10_000 }, verifyTimeout: 300 })
    const log = record(connection)
    await connection.open()
    sim.hide()
    sim.show()
    await sleep(50)
    sim.setNetwork('4g')
    await sleep(600)
    // Both checks went out and were answered: no second handshake, no close.
    expect(server.messages.filter((m) => m.data.toString() === 'ping').length).toBe(2)
    expect(server.handshakes).toHaveLength(1)
    expect(log.of('close')).toEqual([])
    expect(connection.state).toBe('open')
  })

  it('calls the auth hook before every attempt and uses its fresh token', async () => {
    let issued = 0
    const contexts: number[] = []
    const connection = connect({
      header: { 'X-App': 'demo' },
      auth: async ({ attempt }) => {
        contexts.push(attempt)
        issued++
        return { header: { Authorization: `Bearer t${issued}` }, query: { token: `t${issued}` } }
      },
    })
    await connection.open()
    server.dropAll(4000, 'token expired')
    await nextEvent(connection, 'open', 3000)
    server.dropAll(4000, 'token expired')
    await nextEvent(connection, 'open', 3000)
    expect(server.handshakes.map((h) => new URL(h.url, 'ws://x').searchParams.get('token'))).toEqual(['t1', 't2', 't3'])
    expect(server.handshakes.map((h) => h.headers.authorization)).toEqual(['Bearer t1', 'Bearer t2', 'Bearer t3'])
    expect(server.handshakes.every((h) => h.headers['x-app'] === 'demo')).toBe(true)
    expect(contexts).toEqual([0, 1, 2])
  })

  it('a failing auth hook fails the attempt with AUTH_FAILED and the next attempt asks again', async () => {
    let calls = 0
    const connection = connect({
      auth: () => {
        calls++
        if (calls === 1) throw new Error('token service down')
        return { query: { token: 'ok' } }
      },
    })
    const errors: string[] = []
    connection.on('error', (e) => errors.push(e.code))
    await connection.open()
    expect(errors).toEqual([ErrorCode.AUTH_FAILED])
    expect(server.handshakes).toHaveLength(1)
  })

  it('passes protocols through to the handshake', async () => {
    const connection = connect({ protocols: ['mqtt', 'json'] })
    await connection.open()
    expect(server.handshakes[0].offeredProtocols).toEqual(['mqtt', 'json'])
  })

  it('isolates a throwing handler: reported as an error, the others and the link go on', async () => {
    const connection = connect()
    await connection.open()
    const errors: unknown[] = []
    const got: unknown[] = []
    connection.on('message', () => {
      throw new Error('boom')
    })
    connection.on('message', (data) => got.push(data))
    connection.on('error', (e) => errors.push(e))
    connection.on('error', () => {
      throw new Error('error handler fails too')
    })
    await connection.send('one')
    await until(() => got.length === 1, 2000, 'first message')
    await connection.send('two')
    await until(() => got.length === 2, 2000, 'second message')
    expect(errors).toHaveLength(2)
    expect(errors[0]).toMatchObject({ code: ErrorCode.HANDLER_ERROR })
    expect(connection.state).toBe('open')
  })

  it('swallows heartbeat pongs and measures their round trip', async () => {
    const connection = connect({ heartbeat: { interval: 50, timeout: 500 } })
    const got: unknown[] = []
    connection.on('message', (d) => got.push(d))
    await connection.open()
    await until(() => connection.stats.rtt !== undefined, 2000, 'rtt')
    expect(got).toEqual([])
    expect(connection.stats.messagesIn).toBe(0)
  })

  it('gives up after maxRetries with RETRIES_EXHAUSTED', async () => {
    await server.stop()
    const connection = connect({ reconnect: { min: 10, max: 20, maxRetries: 2 } })
    const log = record(connection)
    await expect(connection.open()).rejects.toMatchObject({ code: ErrorCode.RETRIES_EXHAUSTED })
    expect(connection.state).toBe('closed')
    expect(log.of('reconnecting').map((r) => r.attempt)).toEqual([1, 2])
    expect(log.of('state').at(-1)).toMatchObject({ to: 'closed', reason: 'retries-exhausted' })
  })

  it('with reconnect off, a failed first attempt rejects open() and the link stays down', async () => {
    await server.stop()
    const connection = connect({ reconnect: false })
    await expect(connection.open()).rejects.toMatchObject({ code: ErrorCode.CONNECT_FAILED })
    expect(connection.state).toBe('closed')
  })

  it('removes every platform listener it added on close()', async () => {
    const connection = connect()
    await connection.open()
    const during = sim.listenerCount()
    expect(during.network + during.appShow + during.appHide).toBeGreaterThan(0)
    await connection.close()
    expect(sim.listenerCount()).toEqual({ network: 0, appShow: 0, appHide: 0 })
  })

  it('keeps tokens and passwords out of the log', async () => {
    const lines: string[] = []
    const connection = connect({
      url: server.url('/ws?token=s3cr3t-token&room=7'),
      header: { Authorization: 'Bearer s3cr3t-header', 'X-Password': 's3cr3t-pass' },
      auth: () => ({ query: { access_token: 's3cr3t-fresh' } }),
      logger: (_level, line) => lines.push(line),
    })
    await connection.open()
    server.dropAll(4000, 'again')
    await nextEvent(connection, 'open', 3000)
    await connection.close()
    expect(lines.length).toBeGreaterThan(3)
    const log = lines.join('\n')
    expect(log).not.toMatch(/s3cr3t/)
    // Which query parameters and headers were sent is there; no value is, whatever its name.
    expect(log).toMatch(/\?token=\*\*\*&room=\*\*\*&access_token=\*\*\* via \w+ \[Authorization,X-Password\]/)
    expect(log).not.toMatch(/room=7/)
  })

  it('open() after close() starts a fresh session', async () => {
    const connection = connect()
    await connection.open()
    await connection.close()
    await connection.open()
    expect(connection.state).toBe('open')
    expect(server.handshakes).toHaveLength(2)
  })

  it.runIf(fixture.limited)('a sixth socket gives SOCKET_LIMIT, not a hang', async () => {
    const five = Array.from({ length: 5 }, () => connect())
    await Promise.all(five.map((c) => c.open()))
    const sixth = connect()
    const errors: string[] = []
    sixth.on('error', (e) => errors.push(e.code))
    await expect(sixth.open()).rejects.toMatchObject({ code: ErrorCode.SOCKET_LIMIT })
    expect(sixth.state).toBe('closed')
    expect(errors).toEqual([ErrorCode.SOCKET_LIMIT])
    // Once a slot frees, the same connection can open.
    await five[0].close()
    await sixth.open()
    expect(sixth.state).toBe('open')
  })
})

describe.each([
  ['wx', createWxSimulator],
  ['uni', createUniSimulator],
] as const)('socket limit as WeChat DevTools and Android report it (%s: success, then onError)', (_name, make) => {
  it('still gives SOCKET_LIMIT', async () => {
    const server = await startTestServer()
    const sim = make({ refusalStyle: 'error' })
    const connections = Array.from({ length: 6 }, () =>
      createConnection({ url: server.url('/ws'), platform: sim as never, reconnect: { min: 50, max: 100 } }),
    )
    try {
      await Promise.all(connections.slice(0, 5).map((c) => c.open()))
      await expect(connections[5].open()).rejects.toMatchObject({ code: ErrorCode.SOCKET_LIMIT })
      expect(connections[5].state).toBe('closed')
    } finally {
      await Promise.all(connections.map((c) => c.close()))
      sim.dispose()
      await server.close()
    }
  })
})

describe('bad input', () => {
  const platform = { connectSocket: () => undefined }

  it.each(['http://example.com', 'example.com', '', 'ws://', 'wss:// spaced', 'ftp://x'])('rejects the url %j with INVALID_URL', (url) => {
    expect(() => createConnection({ url, platform })).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_URL }))
  })

  it('rejects a url that is not a string', () => {
    expect(() => createConnection({ url: 42 as unknown as string, platform })).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_URL }))
  })

  it.each([
    ['heartbeat.interval', { heartbeat: { interval: -1 } }],
    ['heartbeat.timeout', { heartbeat: { timeout: Number.NaN } }],
    ['heartbeat.pong', { heartbeat: { pong: 5 } }],
    ['reconnect.min', { reconnect: { min: 'a' } }],
    ['reconnect.max below min', { reconnect: { min: 100, max: 10 } }],
    ['reconnect.factor', { reconnect: { factor: 0.5 } }],
    ['reconnect.jitter', { reconnect: { jitter: 2 } }],
    ['reconnect.maxRetries', { reconnect: { maxRetries: 1.5 } }],
    ['queue.max', { queue: { max: -1 } }],
    ['connectTimeout', { connectTimeout: 0 }],
    ['verifyTimeout', { verifyTimeout: -5 }],
    ['verifyTimeout not a number', { verifyTimeout: '3000' }],
    ['protocols', { protocols: ['has space'] }],
    ['header', { header: { a: 1 } }],
    ['auth', { auth: 'token' }],
    ['platform', { platform: 'alipay' }],
    ['platform object', { platform: {} }],
  ])('rejects %s with INVALID_OPTION', (_name, extra) => {
    expect(() => createConnection({ url: 'ws://127.0.0.1:1/x', platform, ...(extra as object) })).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_OPTION }),
    )
  })

  it('names a missing platform with UNSUPPORTED_PLATFORM', () => {
    expect(() => createConnection({ url: 'ws://127.0.0.1:1/x', platform: 'wx' })).toThrow(
      expect.objectContaining({ code: ErrorCode.UNSUPPORTED_PLATFORM }),
    )
  })

  it('rejects unsendable data with INVALID_DATA and bad close codes with INVALID_OPTION', async () => {
    const connection = createConnection({ url: 'ws://127.0.0.1:1/x', platform })
    await expect(connection.send(42 as never)).rejects.toMatchObject({ code: ErrorCode.INVALID_DATA })
    await expect(connection.send(undefined as never)).rejects.toMatchObject({ code: ErrorCode.INVALID_DATA })
    const circular: Record<string, unknown> = {}
    circular.self = circular
    await expect(connection.send(circular)).rejects.toMatchObject({ code: ErrorCode.INVALID_DATA })
    await expect(connection.close(1001)).rejects.toMatchObject({ code: ErrorCode.INVALID_OPTION })
    expect(() => connection.on('nope' as never, () => {})).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_OPTION }))
    expect(() => connection.on('message', 'x' as never)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_OPTION }))
  })
})
