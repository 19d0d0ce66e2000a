/**
 * Core benchmarks: throughput through a Connection (wx simulator) against a raw `ws` client on the same server,
 * recovery after a server restart, dead-link detection, and what the core adds to the mp-weixin bundle.
 */
import { WebSocket } from 'ws'
import type { Connection } from '../uni_modules/longlink-socket/js_sdk/index'
import { startFaultProxy } from '../tests/support/fault-proxy'
import { bundleDelta } from './lib/bundle-size'
import { compileAndImport } from './lib/compile'
import { startEchoServer } from './lib/echo-server'
import { median, round } from './lib/stats'

type CoreModule = typeof import('../uni_modules/longlink-socket/js_sdk/index')
type SimModule = typeof import('../tests/support/socket-task-sim')

// The SDK and the simulator are timed as production builds compile them.
let createConnection: CoreModule['createConnection']
let createWxSimulator: SimModule['createWxSimulator']

async function load() {
  ;({ createConnection } = await compileAndImport<CoreModule>('core', 'uni_modules/longlink-socket/js_sdk/index.ts'))
  ;({ createWxSimulator } = await compileAndImport<SimModule>('sim', 'tests/support/socket-task-sim.ts'))
}

/** A short pause before a timed run, after a full garbage collection when asked (node runs with --expose-gc). */
async function settle(collect: boolean) {
  if (collect) (globalThis as { gc?: () => void }).gc?.()
  await new Promise((resolve) => setTimeout(resolve, 50))
}

const MESSAGES = 20_000
const PAYLOAD = 'x'.repeat(100)
/** Paired rounds per throughput series: more rounds narrow the median on a noisy machine. */
const ROUNDS = 48

/** One client under test: how to send, who hears the echoes, how to finish. */
interface Pipe {
  /** Sends one message; returns what the client's send returns (a Connection: the message's promise). */
  send(data: string): unknown
  /** Sets the function every echo is handed to (replacing the previous one). */
  handle(handler: () => void): void
  close(): Promise<void> | void
}

/**
 * Messages per second each way: MESSAGES 100-byte messages echoed by the server. `window` messages go out at once,
 * then one more per echo; a window of MESSAGES is a single burst.
 */
async function rate(pipe: Pipe, window: number, awaitEach: boolean): Promise<number> {
  let received = 0
  let sent = 0
  let done!: () => void
  const finished = new Promise<void>((resolve) => (done = resolve))
  const outcomes: unknown[] = []
  const send = () => {
    const outcome = pipe.send(PAYLOAD)
    if (awaitEach) outcomes.push(outcome)
  }
  pipe.handle(() => {
    if (++received === MESSAGES) done()
    else if (sent < MESSAGES) {
      sent++
      send()
    }
  })
  const start = performance.now()
  for (; sent < Math.min(window, MESSAGES); sent++) send()
  await finished
  // Every send's own outcome, asked for: a Connection makes a real promise per message for it.
  if (awaitEach) await Promise.all(outcomes)
  return MESSAGES / ((performance.now() - start) / 1000)
}

const ignore = () => {}

/** Raw `ws`, decoding each echo to text as any consumer must (a browser WebSocket hands over strings too). */
async function rawPipe(url: string): Promise<Pipe> {
  const ws = new WebSocket(url)
  await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)))
  let handler = ignore
  ws.on('message', (data) => data.toString() && handler())
  return {
    send: (data) => ws.send(data),
    handle: (next) => (handler = next),
    close: () => ws.close(),
  }
}

/** A bare SocketTask of the wx simulator (no LongLink): what the simulator alone costs over raw `ws`. */
async function socketTaskPipe(url: string): Promise<Pipe> {
  const wx = createWxSimulator()
  const task = wx.connectSocket({ url, success() {} })
  await new Promise((resolve) => task.onOpen(resolve))
  let handler = ignore
  task.onMessage(() => handler())
  return {
    send: (data) => task.send({ data, success() {} }),
    handle: (next) => (handler = next),
    close: () => wx.dispose(),
  }
}

/** A Connection over the wx SocketTask simulator (itself over `ws`). */
async function connectionPipe(url: string): Promise<Pipe> {
  const wx = createWxSimulator()
  const connection = createConnection({ url, platform: wx as never })
  await connection.open()
  let handler = ignore
  connection.on('message', () => handler())
  return {
    send: (data) => connection.send(data),
    handle: (next) => (handler = next),
    close: async () => {
      await connection.close()
      wx.dispose()
    },
  }
}

const PIPES = { raw: rawPipe, socketTask: socketTaskPipe, connection: connectionPipe }
type PipeName = keyof typeof PIPES
const NAMES = Object.keys(PIPES) as PipeName[]

/**
 * Long-lived clients per side. Each TCP connection has a speed of its own that lasts as long as it does (on this
 * machine one loopback socket can run 10% slower than another for its whole life, whatever code drives it), so a
 * figure from one client per side would measure that luck. Rounds rotate over several clients per side instead.
 */
const CLIENTS = 8

/** How one throughput series is run. */
interface Series {
  /** Messages in flight: MESSAGES for a single burst. */
  window: number
  /**
   * Clients connect once and carry the rounds between them (CLIENTS per side, taking turns), as
   * a long connection does in an app. Otherwise every run opens a fresh client: that adds what a brand-new client
   * costs before the JavaScript engine has optimised its code.
   */
  longLived: boolean
  /**
   * A full garbage collection before every timed run, so each starts from the same heap. It also makes V8 drop
   * optimised code whose object shapes died, node's own stream code included, so every side runs slower than in a
   * loop left alone, and a fixed per-message overhead weighs less in the ratio.
   */
  collect: boolean
  /** Every send's promise is awaited (Promise.all over the run), so each outcome is asked for. */
  awaitEach?: boolean
}

/** Paired rounds of raw / bare SocketTask / Connection runs for one series. */
async function throughputAt(url: string, { window, longLived, collect, awaitEach = false }: Series) {
  const rates: Record<PipeName, number[]> = { raw: [], socketTask: [], connection: [] }
  const overRaw: number[] = []
  const overTask: number[] = []
  const pools: Record<PipeName, Pipe[]> = { raw: [], socketTask: [], connection: [] }
  const run = async (name: PipeName, round: number) => {
    // Which clients meet in a round shifts every CLIENTS rounds, so no fixed pair of sockets weighs on the figure.
    const client = (round + NAMES.indexOf(name) * Math.floor(round / CLIENTS)) % CLIENTS
    const pipe = longLived ? pools[name][client] : await PIPES[name](url)
    const result = await rate(pipe, window, awaitEach)
    if (!longLived) await pipe.close()
    return result
  }
  try {
    // Created side by side, so no side gets all the first (or last) sockets; each is warmed up once.
    if (longLived) for (let i = 0; i < CLIENTS; i++) for (const name of NAMES) pools[name].push(await PIPES[name](url))
    for (let i = 0; i < (longLived ? CLIENTS : 1); i++) for (const name of NAMES) await run(name, i)
    // Rounds of the three runs back to back in a rotating order. Ratios are taken per round, between runs that saw
    // the same machine state, and their median is the figure: this 2-core VM drifts by ±15% from one round to the next.
    for (let round = 0; round < ROUNDS; round++) {
      const got = {} as Record<PipeName, number>
      for (let i = 0; i < NAMES.length; i++) {
        const name = NAMES[(i + round) % NAMES.length]
        await settle(collect)
        rates[name].push((got[name] = await run(name, round)))
      }
      overRaw.push(got.connection / got.raw)
      overTask.push(got.connection / got.socketTask)
    }
  } finally {
    for (const name of NAMES) for (const pipe of pools[name]) await pipe.close()
  }
  return {
    window: window >= MESSAGES ? 'burst (all 20,000 at once)' : `${window} in flight`,
    sends: awaitEach ? "every send's promise awaited" : 'fire and forget',
    clients: longLived ? `long-lived (${CLIENTS} per side, connected once, rotated across rounds)` : 'fresh for every run',
    forcedGcBeforeEachRun: collect,
    rawWsMsgPerSec: Math.round(median(rates.raw)),
    socketTaskSimMsgPerSec: Math.round(median(rates.socketTask)),
    connectionMsgPerSec: Math.round(median(rates.connection)),
    ratio: round(median(overRaw), 3),
    ratioRange: [round(Math.min(...overRaw), 3), round(Math.max(...overRaw), 3)],
    ratioOverBareSocketTask: round(median(overTask), 3),
  }
}

export async function benchCoreThroughput() {
  await load()
  const server = await startEchoServer()
  try {
    const burst = await throughputAt(server.url, { window: MESSAGES, longLived: true, collect: true })
    const burstUncollected = await throughputAt(server.url, { window: MESSAGES, longLived: true, collect: false })
    const windowed = await throughputAt(server.url, { window: 100, longLived: true, collect: true })
    const freshBurst = await throughputAt(server.url, { window: MESSAGES, longLived: false, collect: true })
    const burstAwaited = await throughputAt(server.url, { window: MESSAGES, longLived: true, collect: true, awaitEach: true })
    return {
      messages: MESSAGES,
      payloadBytes: PAYLOAD.length,
      burst,
      burstUncollected,
      windowed,
      freshBurst,
      burstAwaited,
      target: 'burst ratio >= 0.9 (long-lived clients, a forced GC before each run)',
      pass: burst.ratio >= 0.9,
    }
  } finally {
    await server.close()
  }
}

function nextMessage(connection: Connection, match: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (off(), reject(new Error(`no "${match}" within ${timeoutMs} ms`))), timeoutMs)
    const off = connection.on('message', (data) => {
      if (data !== match) return
      clearTimeout(timer)
      off()
      resolve()
    })
  })
}

async function recovery() {
  const min = 500
  const server = await startEchoServer('hello')
  const wx = createWxSimulator()
  const connection = createConnection({ url: server.url, platform: wx as never, reconnect: { min, max: 5000, minUptime: 100 } })
  const samples: number[] = []
  try {
    const first = nextMessage(connection, 'hello', 5000)
    await connection.open()
    await first
    for (let i = 0; i < 7; i++) {
      await new Promise((r) => setTimeout(r, 300))
      const back = nextMessage(connection, 'hello', 10_000)
      const start = performance.now()
      await server.restart()
      await back
      samples.push(performance.now() - start)
    }
  } finally {
    await connection.close()
    wx.dispose()
    await server.close()
  }
  const worst = Math.max(...samples)
  return {
    reconnectMin: min,
    samplesMs: samples.map((s) => Math.round(s)),
    medianMs: Math.round(median(samples)),
    maxMs: Math.round(worst),
    target: `<= reconnect.min + 300 = ${min + 300} ms`,
    pass: worst <= min + 300,
  }
}

async function deadLink() {
  const interval = 1000
  const timeout = 1000
  const server = await startEchoServer()
  const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: server.port } })
  const wx = createWxSimulator()
  const connection = createConnection({
    url: proxy.url('/bench'),
    platform: wx as never,
    heartbeat: { interval, timeout },
    reconnect: { min: 50, max: 100 },
  })
  const samples: number[] = []
  try {
    await connection.open()
    for (let i = 0; i < 3; i++) {
      // Some traffic first, so the silence starts when the blackhole does.
      const echoed = nextMessage(connection, 'mark', 2000)
      await connection.send('mark')
      await echoed
      const start = performance.now()
      proxy.mode('blackhole')
      await new Promise<void>((resolve) => {
        const off = connection.on('close', (event) => event.reason === 'heartbeat-timeout' && (off(), resolve()))
      })
      samples.push(performance.now() - start)
      proxy.mode('pass')
      await new Promise<void>((resolve) => {
        const off = connection.on('open', () => (off(), resolve()))
      })
    }
  } finally {
    await connection.close()
    wx.dispose()
    await proxy.close()
    await server.close()
  }
  const worst = Math.max(...samples)
  return {
    intervalMs: interval,
    timeoutMs: timeout,
    samplesMs: samples.map((s) => Math.round(s)),
    maxMs: Math.round(worst),
    target: `<= interval + timeout + 1000 = ${interval + timeout + 1000} ms`,
    pass: worst <= interval + timeout + 1000,
  }
}

function size() {
  const result = bundleDelta(
    `import { createConnection } from '@/uni_modules/longlink-socket/js_sdk/index'
const connection = createConnection({ url: 'wss://example.com/ws' })
const label = ref(connection.state)
connection.on('message', (data) => (label.value = String(data)))
connection.open().then(() => connection.send('hi'))`,
    'core',
  )
  return {
    baseJsBytes: result.base.minified,
    addedMinifiedBytes: result.addedMinified,
    addedGzipBytes: result.addedGzip,
    target: '<= 6000 gzip bytes',
    pass: result.addedGzip <= 6000,
  }
}

/** Runs every core benchmark and returns the figures. */
export async function benchCore() {
  await load()
  return {
    throughput: await benchCoreThroughput(),
    recovery: await recovery(),
    deadLink: await deadLink(),
    size: size(),
  }
}
