/**
 * A fleet of riders for the scale benchmark, in its own process: minimal MQTT 3.1.1 clients over `ws` (CONNECT,
 * SUBSCRIBE `riders/<rider>/#`, then only reading), so one process can hold 19,500 of them and the figures are the
 * backend's, not a client library's. Connections are spread over source addresses in 127.0.0.0/8.
 *
 * Commands (IPC): `connect` more riders with a bounded number of handshakes in flight; `reset` the delivery counters;
 * `deliveries` (count, first and last arrival, latency percentiles from each message's send time); `close`.
 */
import mqttPacket from 'mqtt-packet'
import { WebSocket } from 'ws'
import { serve, sourceAddress, wallNow } from './ipc'

interface Rider {
  ws: WebSocket
  ready: boolean
}

const riders: Rider[] = []
let received = 0
let firstAt = 0
let lastAt = 0
/** Latencies (ms) of the messages since the last reset; a typed array keeps 200k samples cheap. */
let latencies = new Float64Array(1 << 18)

function connectOne(url: string, rider: string, token: string, localAddress: string, timeoutMs: number): Promise<Rider> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, 'mqtt', { localAddress, perMessageDeflate: false, handshakeTimeout: timeoutMs })
    const parser = mqttPacket.parser({ protocolVersion: 4 })
    const entry: Rider = { ws, ready: false }
    const timer = setTimeout(() => fail(new Error('connect timeout')), timeoutMs)
    const fail = (error: Error): void => {
      clearTimeout(timer)
      ws.terminate()
      reject(error)
    }
    ws.on('error', fail)
    ws.on('close', () => !entry.ready && fail(new Error('closed before SUBACK')))
    ws.on('open', () => {
      // The longest keepalive the backend accepts: the fleet sends nothing but its handshake.
      ws.send(
        mqttPacket.generate({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 4,
          clean: true,
          clientId: rider,
          keepalive: 600,
          username: rider,
          password: Buffer.from(token),
        }),
      )
    })
    ws.on('message', (data: Buffer) => parser.parse(data))
    parser.on('packet', (packet) => {
      if (packet.cmd === 'connack') {
        if (packet.returnCode !== 0) return fail(new Error(`CONNACK ${packet.returnCode}`))
        ws.send(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `riders/${rider}/#`, qos: 0 }] }))
      } else if (packet.cmd === 'suback') {
        if (packet.granted[0] === 128) return fail(new Error('SUBACK refused'))
        clearTimeout(timer)
        entry.ready = true
        resolve(entry)
      } else if (packet.cmd === 'publish') {
        const now = wallNow()
        if (received < latencies.length) latencies[received] = now - Number(packet.payload.toString())
        if (received === 0) firstAt = now
        lastAt = now
        received++
      }
    })
    parser.on('error', (error) => fail(error))
  })
}

const percentileOf = (sorted: Float64Array, p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN

serve({
  /** Connects riders `from`..`to-1` (ids `names[i]`), `window` handshakes at a time; answers with timings. */
  async connect(args) {
    const { url, names, tokens, from, to } = args as { url: string; names: string[]; tokens: string[]; from: number; to: number }
    const window = Number(args.window ?? 200)
    const perAddress = Number(args.perAddress ?? 800)
    const started = wallNow()
    let nextIndex = from
    let failed = 0
    const errors = new Map<string, number>()
    const worker = async (): Promise<void> => {
      while (nextIndex < to) {
        const i = nextIndex++
        try {
          riders[i] = await connectOne(url, names[i], tokens[i], sourceAddress(i, perAddress), 30_000)
        } catch (error) {
          failed++
          const key = (error as Error).message
          errors.set(key, (errors.get(key) ?? 0) + 1)
        }
      }
    }
    await Promise.all(Array.from({ length: window }, worker))
    return { ms: wallNow() - started, connected: to - from - failed, failed, errors: Object.fromEntries(errors) }
  },
  reset() {
    received = 0
    firstAt = lastAt = 0
    latencies = new Float64Array(1 << 18)
    return true
  },
  /** How many messages arrived since the last reset (cheap: for polling while messages still arrive). */
  received: () => received,
  deliveries() {
    const n = Math.min(received, latencies.length)
    const sorted = latencies.slice(0, n).sort()
    return { received, firstAt, lastAt, p50: percentileOf(sorted, 50), p99: percentileOf(sorted, 99), max: n ? sorted[n - 1] : NaN }
  },
  /** Disconnects riders `from`..`to-1`, and waits until their sockets are closed. */
  async drop(args) {
    const { from, to } = args as { from: number; to: number }
    const closing = riders.slice(from, to).filter(Boolean)
    await Promise.all(
      closing.map(
        (r) =>
          new Promise<void>((resolve) =>
            r.ws.readyState === WebSocket.CLOSED ? resolve() : (r.ws.once('close', () => resolve()), r.ws.terminate()),
          ),
      ),
    )
    for (let i = from; i < to; i++) delete riders[i]
    return closing.length
  },
  open: () => riders.filter((r) => r?.ready && r.ws.readyState === WebSocket.OPEN).length,
  close() {
    for (const r of riders) r?.ws.terminate()
    riders.length = 0
    return true
  },
})
