/**
 * `npm run bench -- transports`: what each transport of the plugin costs against WebSocket, on this machine's
 * loopback. The server (`attachLongLink` on `node:http`, compiled as a deployment would run it) lives in a child
 * process (bench/transports/server.ts), the plugin's clients (its production build, Node's `fetch` and `ws` as the
 * `web` platform) in this one, so the two never share an event loop. Rows: websocket, sse, long-polling, and polling
 * every 1000 ms and every 100 ms. Heartbeats are off: the figures are the transports' own.
 *
 * 1. Throughput: MESSAGES messages of SIZE characters from the server's `conn.send` (as fast as its promises admit
 *    them, at most WINDOW unsettled) to the client's `message` handler; a fresh connection per row and round, the
 *    rows in a rotating order, ROUNDS rounds; the ratio to WebSocket is taken within each round. A round in which no
 *    message arrived for STALL_MS is counted as stalled (the longest gap is reported too).
 * 2. Latency: the server sends LATENCY_RATE messages per second for SECONDS (+1 s of warm-up, not counted), each
 *    stamped with its send time; latency = arrival at the handler − stamp, corrected by the offset between the two
 *    processes' clocks (measured over IPC, the sample with the shortest round trip).
 * 3. Requests: every row connected at once, TRICKLE_RATE messages per second to each for SECONDS, HTTP requests at
 *    the path counted at the server per client (session opens, down GETs, POSTs) per delivered message; then the other
 *    way, each client sending TRICKLE_RATE per second: requests per message the server received.
 *
 * Knobs: BENCH_TRANSPORTS_SECONDS (default 10), BENCH_TRANSPORTS_ROUNDS (5), BENCH_TRANSPORTS_MESSAGES (20000),
 * BENCH_TRANSPORTS_WINDOW (1000), BENCH_TRANSPORTS_ROWS (comma-separated labels, websocket always included).
 */
import { fork, type ChildProcess } from 'node:child_process'
import { WebSocket } from 'ws'
import type { Connection } from '../uni_modules/longlink-socket/js_sdk/index'
import { compile, compileAndImport } from './lib/compile'
import { median, percentile, round } from './lib/stats'
import { caller, wallNow } from './scale/ipc'

type CoreModule = typeof import('../uni_modules/longlink-socket/js_sdk/index')
type Kind = 'websocket' | 'sse' | 'long-polling' | 'polling'

interface Row {
  label: string
  kind: Kind
  /** Short polling: ms between two polls. */
  interval?: number
}

const ALL_ROWS: Row[] = [
  { label: 'websocket', kind: 'websocket' },
  { label: 'sse', kind: 'sse' },
  { label: 'long-polling', kind: 'long-polling' },
  { label: 'polling-1000', kind: 'polling', interval: 1000 },
  { label: 'polling-100', kind: 'polling', interval: 100 },
]

const env = (name: string, fallback: number): number => {
  const value = Number(process.env[name] ?? fallback)
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number`)
  return value
}
const SECONDS = env('BENCH_TRANSPORTS_SECONDS', 10)
const ROUNDS = Math.round(env('BENCH_TRANSPORTS_ROUNDS', 5))
const MESSAGES = Math.round(env('BENCH_TRANSPORTS_MESSAGES', 20_000))
const WANTED = (process.env.BENCH_TRANSPORTS_ROWS ?? '').split(',').filter(Boolean)
const ROWS = ALL_ROWS.filter((row) => row.kind === 'websocket' || !WANTED.length || WANTED.includes(row.label))
/** Characters per message (its send time and number, padded). */
const SIZE = 100
/** Sends the server leaves unsettled at most in a burst. */
const WINDOW = Math.round(env('BENCH_TRANSPORTS_WINDOW', 1000))
const WARMUP_MESSAGES = 500
const LATENCY_RATE = 100
const WARMUP_SECONDS = 1
const TRICKLE_RATE = 10
/** How long the last messages of a run may take beyond it (a 1000 ms poll, a retried request). */
const GRACE_MS = 10_000

let createConnection: CoreModule['createConnection']
let createWebAdapter: CoreModule['createWebAdapter']

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** `promise`, or a rejection naming `what` after `ms`. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms)))
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** Waits until `done()` holds, checking every 5 ms; throws naming `what` (and `state()`) after `ms`. */
async function until(done: () => boolean, ms: number, what: string, state: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + ms
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms ${state()}`)
    await sleep(5)
  }
}

function gc(): void {
  ;(globalThis as { gc?: () => void }).gc?.()
}

// ---- the server process ------------------------------------------------------------------------------------------

interface Server {
  child: ChildProcess
  call: ReturnType<typeof caller>
  url: string
  exited: Promise<unknown>
}

async function startServer(): Promise<Server> {
  const file = await compile('transports-server', 'bench/transports/server.ts')
  const child = fork(file, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const { port, path } = await new Promise<{ port: number; path: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the bench server did not listen within 20 s')), 20_000)
    child.on('message', (m: { listening?: number; path?: string }) => {
      if (!m.listening) return
      clearTimeout(timer)
      resolve({ port: m.listening, path: m.path! })
    })
    child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`the bench server exited (${code}) before listening`))))
  })
  return { child, call: caller(child), url: `ws://127.0.0.1:${port}${path}`, exited }
}

async function stopServer(server: Server): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return
  await server.call('close', {}, 10_000).catch(() => {})
  // It exits when the IPC channel closes.
  if (server.child.connected) server.child.disconnect()
  await Promise.race([server.exited, sleep(5000)])
  if (server.child.exitCode === null && server.child.signalCode === null) {
    server.child.kill('SIGKILL')
    await Promise.race([server.exited, sleep(2000)])
  }
}

/**
 * The server's wall clock minus ours (ms), from the IPC round trip that was shortest: the server's reading is taken
 * to be from the middle of it, so the error is at most half that round trip.
 */
async function clockOffset(server: Server): Promise<{ offsetMs: number; uncertaintyMs: number }> {
  let best = { offsetMs: 0, uncertaintyMs: Infinity }
  for (let i = 0; i < 30; i++) {
    const t0 = wallNow()
    const theirs = await server.call<number>('now', {}, 5000)
    const t1 = wallNow()
    if ((t1 - t0) / 2 < best.uncertaintyMs) best = { offsetMs: theirs - (t0 + t1) / 2, uncertaintyMs: (t1 - t0) / 2 }
  }
  return { offsetMs: round(best.offsetMs, 3), uncertaintyMs: round(best.uncertaintyMs, 3) }
}

// ---- the clients -------------------------------------------------------------------------------------------------

interface Client {
  row: Row
  /** The name it said hello with (and carries on its URL). */
  id: string
  conn: Connection
  /** Set to what must hear each message. */
  onMessage: (data: string) => void
  close(): Promise<void>
}

let clients = 0
const live = new Set<Client>()

/** A connection for `row`, open, its hello acknowledged by the server. */
async function connect(server: Server, row: Row): Promise<Client> {
  const id = `${row.label}.${++clients}`
  const conn = createConnection({
    url: `${server.url}?bench=${encodeURIComponent(id)}`,
    transports: [row.kind],
    platform: createWebAdapter(WebSocket as never, undefined),
    ...(row.interval ? { poll: { interval: row.interval } } : {}),
    heartbeat: false,
    reconnect: { min: 50, max: 1000 },
    probeInterval: false,
  })
  const client: Client = {
    row,
    id,
    conn,
    onMessage: () => {},
    async close() {
      live.delete(client)
      await within(conn.close(), 5000, `closing ${id}`).catch((error: Error) => console.warn(`  ${error.message}`))
    },
  }
  live.add(client)
  conn.on('message', (data) => client.onMessage(data as string))
  await within(conn.open(), 15_000, `opening ${id}`)
  if (conn.transport !== row.kind) throw new Error(`${id} runs on ${conn.transport}, not ${row.kind}`)
  // A session's send settles once the server acknowledged it; a WebSocket's once written (the server waits for it).
  await within(conn.send(`hello ${id}`), 10_000, `${id}'s hello`)
  return client
}

// ---- 1. throughput -----------------------------------------------------------------------------------------------

/** Arrivals further apart than this in a burst are a stall: longer than any poll interval of the rows. */
const STALL_MS = 5000

/**
 * `count` messages through `client`: messages per second from the request to the last arrival, and the longest time
 * between two arrivals.
 */
async function burst(server: Server, client: Client, count: number): Promise<{ rate: number; gapMs: number }> {
  let received = 0
  let misplaced = 0
  let previous = 0
  let gapMs = 0
  // Each message carries its number: every one must come once, in order (the check costs every row the same).
  client.onMessage = (data) => {
    const now = performance.now()
    if (previous && now - previous > gapMs) gapMs = now - previous
    previous = now
    const at = data.indexOf(' ') + 1
    if (Number(data.slice(at, data.indexOf(' ', at))) !== ++received) misplaced++
  }
  const start = wallNow()
  const sending = server.call('burst', { label: client.id, count, window: WINDOW, size: SIZE }, 120_000)
  await until(
    () => received >= count,
    120_000,
    `${client.id}: ${count} messages`,
    () => `(${received} arrived)`,
  )
  const ms = wallNow() - start
  await sending
  client.onMessage = () => {}
  if (misplaced) throw new Error(`${client.id}: ${misplaced} of ${count} messages out of place`)
  return { rate: count / (ms / 1000), gapMs }
}

async function throughput(server: Server) {
  const rates: Record<string, number[]> = {}
  const ratios: Record<string, number[]> = {}
  const gaps: Record<string, number[]> = {}
  for (const row of ROWS) {
    rates[row.label] = []
    ratios[row.label] = []
    gaps[row.label] = []
  }
  for (let r = 0; r < ROUNDS; r++) {
    const got: Record<string, number> = {}
    for (let i = 0; i < ROWS.length; i++) {
      const row = ROWS[(i + r) % ROWS.length]
      const client = await connect(server, row)
      try {
        await burst(server, client, WARMUP_MESSAGES)
        gc()
        await sleep(50)
        const { rate, gapMs } = await burst(server, client, MESSAGES)
        got[row.label] = rate
        gaps[row.label].push(gapMs)
        if (gapMs > STALL_MS) console.log(`  ${client.id}: no message for ${Math.round(gapMs)} ms in the middle of the burst`)
      } finally {
        await client.close()
      }
      rates[row.label].push(got[row.label])
    }
    for (const row of ROWS) ratios[row.label].push(got[row.label] / got.websocket)
    console.log(`  throughput round ${r + 1}/${ROUNDS}: ${ROWS.map((row) => `${row.label} ${Math.round(got[row.label])}/s`).join(', ')}`)
  }
  return Object.fromEntries(
    ROWS.map((row) => [
      row.label,
      {
        messagesPerSec: Math.round(median(rates[row.label])),
        ratio: round(median(ratios[row.label]), 3),
        ratioRange: [round(Math.min(...ratios[row.label]), 3), round(Math.max(...ratios[row.label]), 3)],
        longestGapMs: Math.round(Math.max(...gaps[row.label])),
        stalledRounds: gaps[row.label].filter((gap) => gap > STALL_MS).length,
      },
    ]),
  )
}

// ---- 2. latency --------------------------------------------------------------------------------------------------

/** Latencies at LATENCY_RATE messages per second through a fresh connection of `row`. */
async function latency(server: Server, row: Row, offsetMs: number) {
  const client = await connect(server, row)
  try {
    const skip = LATENCY_RATE * WARMUP_SECONDS
    const samples: number[] = []
    let received = 0
    client.onMessage = (data) => {
      const arrived = wallNow()
      received++
      const space = data.indexOf(' ')
      const stamp = Number(data.slice(0, space))
      const n = Number(data.slice(space + 1, data.indexOf(' ', space + 1)))
      if (n > skip) samples.push(arrived - (stamp - offsetMs))
    }
    const seconds = SECONDS + WARMUP_SECONDS
    const { sent, failures } = await server.call<{ sent: number; failures: number }>(
      'pace',
      { labels: [client.id], rate: LATENCY_RATE, seconds, size: SIZE },
      seconds * 1000 + 30_000,
    )
    await until(
      () => received >= sent,
      GRACE_MS,
      `${client.id}: ${sent} paced messages`,
      () => `(${received} arrived)`,
    )
    return {
      messages: samples.length,
      failedSends: failures,
      p50Ms: round(median(samples), 1),
      p99Ms: round(percentile(samples, 99), 1),
      maxMs: round(Math.max(...samples), 1),
    }
  } finally {
    await client.close()
  }
}

// ---- 3. requests per message -------------------------------------------------------------------------------------

interface Requests {
  opens: number
  gets: number
  posts: number
}

const perMessage = (n: number, messages: number): number | null => (messages ? round(n / messages, 3) : null)

/** Every row at once: TRICKLE_RATE messages per second down, then up, with the HTTP requests each costs. */
async function trickle(server: Server) {
  const all = await Promise.all(ROWS.map((row) => connect(server, row)))
  try {
    // Down: the server sends; each client counts what it gets.
    const got = new Map<Client, number>(all.map((c) => [c, 0]))
    for (const c of all) c.onMessage = () => void got.set(c, got.get(c)! + 1)
    await server.call('reset')
    const { sent } = await server.call<{ sent: number }>(
      'pace',
      { labels: all.map((c) => c.id), rate: TRICKLE_RATE, seconds: SECONDS, size: SIZE },
      SECONDS * 1000 + 30_000,
    )
    await until(
      () => all.every((c) => got.get(c)! >= sent),
      GRACE_MS,
      `every client: ${sent} trickled messages`,
      () => JSON.stringify(Object.fromEntries(all.map((c) => [c.id, got.get(c)]))),
    )
    const down = await server.call<Record<string, Requests>>('requests')

    // Up: each client sends; the server counts what it takes.
    for (const c of all) c.onMessage = () => {}
    await server.call('reset')
    const count = Math.round(TRICKLE_RATE * SECONDS)
    const started = wallNow()
    const sends: Promise<void>[] = []
    for (let n = 1; n <= count; n++) {
      await sleep(Math.max(0, started + ((n - 1) / TRICKLE_RATE) * 1000 - wallNow()))
      for (const c of all) sends.push(c.conn.send(`up ${n} `.padEnd(SIZE, 'x')))
    }
    await within(Promise.all(sends), GRACE_MS, 'the clients’ sends')
    let received: Record<string, number> = {}
    const deadline = Date.now() + GRACE_MS
    do {
      received = await server.call<Record<string, number>>('received')
      if (all.every((c) => (received[c.id] ?? 0) >= count)) break
      await sleep(50)
    } while (Date.now() < deadline)
    const up = await server.call<Record<string, Requests>>('requests')

    return Object.fromEntries(
      all.map((c) => {
        const d = down[c.id] ?? { opens: 0, gets: 0, posts: 0 }
        const u = up[c.id] ?? { opens: 0, gets: 0, posts: 0 }
        const delivered = got.get(c)!
        const taken = received[c.id] ?? 0
        return [
          c.row.label,
          {
            down: {
              delivered,
              gets: d.gets,
              posts: d.posts,
              getsPerMessage: perMessage(d.gets, delivered),
              postsPerMessage: perMessage(d.posts, delivered),
              requestsPerMessage: perMessage(d.gets + d.posts + d.opens, delivered),
            },
            up: {
              sent: count,
              received: taken,
              gets: u.gets,
              posts: u.posts,
              postsPerMessage: perMessage(u.posts, taken),
              requestsPerMessage: perMessage(u.gets + u.posts + u.opens, taken),
            },
          },
        ]
      }),
    )
  } finally {
    await Promise.all(all.map((c) => c.close()))
  }
}

// ---- the table ---------------------------------------------------------------------------------------------------

function table(rows: Record<string, Record<string, unknown>>): string {
  const head = ['transport', 'msg/s', '×ws', 'stalls', 'p50 ms', 'p99 ms', 'down GET/msg', 'down POST/msg', 'up POST/msg', 'up GET/msg']
  const lines = [head]
  for (const [label, r] of Object.entries(rows)) {
    const t = r.throughput as { messagesPerSec: number; ratio: number; stalledRounds: number }
    const l = r.latency as { p50Ms: number; p99Ms: number }
    const q = r.requests as {
      down: { getsPerMessage: number | null; postsPerMessage: number | null }
      up: { posts: number; received: number; gets: number }
    }
    const f = (v: number | null) => (v === null ? '-' : String(v))
    lines.push([
      label,
      String(t.messagesPerSec),
      t.ratio.toFixed(3),
      `${t.stalledRounds}/${ROUNDS}`,
      String(l.p50Ms),
      String(l.p99Ms),
      f(q.down.getsPerMessage),
      f(q.down.postsPerMessage),
      f(perMessage(q.up.posts, q.up.received)),
      f(perMessage(q.up.gets, q.up.received)),
    ])
  }
  const widths = head.map((_, i) => Math.max(...lines.map((line) => line[i].length)))
  return lines.map((line) => line.map((cell, i) => (i ? cell.padStart(widths[i]) : cell.padEnd(widths[i]))).join('  ')).join('\n')
}

/** Runs every transports benchmark and returns the figures. */
export async function benchTransports(): Promise<Record<string, unknown>> {
  ;({ createConnection, createWebAdapter } = await compileAndImport<CoreModule>('core', 'uni_modules/longlink-socket/js_sdk/index.ts'))
  const server = await startServer()
  try {
    const clock = await clockOffset(server)
    console.log(`  clock offset (server − client): ${clock.offsetMs} ms ± ${clock.uncertaintyMs} ms`)
    const through = await throughput(server)
    const latencies: Record<string, unknown> = {}
    for (const row of ROWS) {
      latencies[row.label] = await latency(server, row, clock.offsetMs)
      console.log(`  latency ${row.label}: ${JSON.stringify(latencies[row.label])}`)
    }
    const requests = await trickle(server)
    const rows: Record<string, Record<string, unknown>> = {}
    for (const row of ROWS) rows[row.label] = { throughput: through[row.label], latency: latencies[row.label], requests: requests[row.label] }
    console.log('\n' + table(rows) + '\n')
    return {
      setup: {
        throughput: `${MESSAGES} messages of ${SIZE} characters, server → client, at most ${WINDOW} sends unsettled; median of ${ROUNDS} rounds, ratio to websocket within each round; stalled: no message for ${STALL_MS} ms`,
        latency: `${LATENCY_RATE} messages/s for ${SECONDS} s after ${WARMUP_SECONDS} s of warm-up; server send → client handler`,
        requests: `every row connected at once, ${TRICKLE_RATE} messages/s for ${SECONDS} s down, then ${TRICKLE_RATE}/s up; HTTP requests counted at the server`,
        heartbeat: 'off (the default one, every 25 s, adds a ping up and a pong down per 25 s)',
        processes: 'server in a child process, clients in this one',
      },
      clock,
      rows,
    }
  } finally {
    for (const client of [...live]) await client.close()
    await stopServer(server)
  }
}
