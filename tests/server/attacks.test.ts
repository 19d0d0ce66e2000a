/**
 * Attacks on the backend, tried on loopback as an attacker (and an operator) would: malformed requests, a rider
 * listening to other riders' bikes, client-id takeover, oversized packets and frames, leaked broker credentials,
 * login guessing, foreign origins, refusal floods, Host header spoofing, slow requests and connection floods.
 * Each test asserts what a user would check: the safe answer, nothing heard that should not be, a bounded log,
 * and a process that still answers `GET /healthz`.
 */
import { once } from 'node:events'
import http from 'node:http'
import net from 'node:net'
import type { Duplex } from 'node:stream'
import { Worker } from 'node:worker_threads'
import mqtt, { type IClientOptions, type MqttClient as MqttJsClient } from 'mqtt'
import mqttPacket from 'mqtt-packet'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { DEFAULT_LIMITS, loadConfig } from '../../server/config'
import { hasMosquitto, startMosquitto, type MosquittoBroker } from '../support/brokers'
import { sleep, until, within } from '../support/wait'
import {
  allLogLines,
  api,
  connackCode,
  DEMO_PASSWORD,
  endClients,
  endJsClients,
  jsClient,
  login,
  mqttClient,
  tempDataDir,
  testBackend,
  trackJsClient,
  type JsonBody,
  type TestBackend,
} from './helpers'

// ---------------------------------------------------------------------------------------------------------------
// helpers: every socket, client and extra backend is tracked and closed after each test

let main: TestBackend
const extraBackends = new Set<TestBackend>()
const rawSockets = new Set<net.Socket>()
const webSockets = new Set<WebSocket>()
const brokers = new Set<MosquittoBroker>()
/** Exceptions nothing caught: in a real process each one would end the backend. */
const uncaught: unknown[] = []
const onUncaught = (err: unknown): void => void uncaught.push(err)

async function extraBackend(...args: Parameters<typeof testBackend>): Promise<TestBackend> {
  const b = await testBackend(...args)
  extraBackends.add(b)
  return b
}

interface HttpAnswer {
  status: number
  headers: http.IncomingHttpHeaders
  text: string
  json(): JsonBody
}

/** One HTTP request on its own connection, with any headers (Host and Origin included), bounded by 5 s. */
function request(
  port: number,
  method: string,
  path: string,
  opts: { headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers: { connection: 'close', ...opts.headers }, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) as JsonBody })
      })
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within 5 s`)))
    req.on('error', reject)
    req.end(opts.body)
  })
}

/** The backend answers `GET /healthz` with 200; returns its body. */
async function expectHealthy(b: TestBackend): Promise<JsonBody> {
  const r = await request(b.port, 'GET', '/healthz')
  expect(r.status, `GET /healthz on ${b.url}: ${r.text}`).toBe(200)
  return r.json()
}

const rssOf = async (b: TestBackend): Promise<number> => (await expectHealthy(b)).process.rssBytes as number

/** A raw TCP connection to the backend: what it received, whether and when it closed. */
interface Raw {
  sock: net.Socket
  connected: Promise<unknown>
  closed: Promise<void>
  readonly isClosed: boolean
  readonly closedAt: number | undefined
  text(): string
  bytes(): Buffer
  status(): number | undefined
  /** Writes unless the socket is gone (a trickling attacker does not care about errors). */
  write(data: string | Buffer): void
}

function raw(port: number): Raw {
  const sock = net.connect({ host: '127.0.0.1', port })
  rawSockets.add(sock)
  const chunks: Buffer[] = []
  let closedAt: number | undefined
  sock.on('data', (d: Buffer) => chunks.push(d))
  sock.on('error', () => {})
  const closed = new Promise<void>((resolve) =>
    sock.once('close', () => {
      closedAt = performance.now()
      rawSockets.delete(sock)
      resolve()
    }),
  )
  const bytes = (): Buffer => Buffer.concat(chunks)
  return {
    sock,
    connected: once(sock, 'connect'),
    closed,
    get isClosed() {
      return closedAt !== undefined
    },
    get closedAt() {
      return closedAt
    },
    bytes,
    text: () => bytes().toString('latin1'),
    status() {
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(bytes().toString('latin1'))
      return m ? Number(m[1]) : undefined
    },
    write(data) {
      if (!sock.destroyed && sock.writable) sock.write(data)
    },
  }
}

/** Sends `data` on a fresh connection and waits (bounded) until the backend closes it. */
async function rawExchange(port: number, data: string | Buffer, timeoutMs = 5000): Promise<Raw> {
  const r = raw(port)
  await within(r.connected, 2000, 'TCP connect')
  r.write(data)
  await within(r.closed, timeoutMs, 'the backend closing the connection')
  return r
}

/** Body of a raw HTTP answer. */
const bodyOf = (r: Raw): string => r.text().split('\r\n\r\n').slice(1).join('\r\n\r\n')

/** A WebSocket handshake: `101` and the open socket, or the HTTP status it was refused with (0: no answer). */
function wsHandshake(
  url: string,
  opts: { protocols?: string[]; headers?: Record<string, string> } = {},
): Promise<{ status: number; ws: WebSocket; body: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, opts.protocols ?? ['mqtt'], { headers: opts.headers, handshakeTimeout: 3000 })
    webSockets.add(ws)
    ws.once('close', () => webSockets.delete(ws))
    ws.on('error', () => resolve({ status: 0, ws, body: '' }))
    ws.once('open', () => resolve({ status: 101, ws, body: '' }))
    ws.once('unexpected-response', (req, res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, ws, body: Buffer.concat(chunks).toString('utf8') })
        req.destroy()
      })
      res.on('error', () => resolve({ status: res.statusCode ?? 0, ws, body: '' }))
    })
  })
}

/** Resolves with the close code of a WebSocket (bounded). */
function wsClosed(ws: WebSocket, timeoutMs: number): Promise<number> {
  if (ws.readyState === ws.CLOSED) return Promise.resolve(1006)
  return within(new Promise<number>((resolve) => ws.once('close', (code: number) => resolve(code))), timeoutMs, 'WebSocket close')
}

/** An MQTT.js 5 client, never reconnecting, with a 3 s connect timeout. */
async function connectJs(url: string, opts: IClientOptions = {}): Promise<MqttJsClient> {
  const { code, client } = await connackCode(url, opts)
  expect(code, 'CONNACK return code').toBe(0)
  await until(() => client.connected, 2000, 'MQTT.js connected')
  return client
}

const closedJs = (c: MqttJsClient, timeoutMs: number): Promise<void> =>
  c.connected || c.reconnecting ? within(new Promise<void>((r) => c.once('close', () => r())), timeoutMs, 'MQTT.js close') : Promise.resolve()

/** A raw MQTT-over-WebSocket client built from mqtt-packet: send any packet, read every packet. */
async function rawMqtt(url: string): Promise<{ ws: WebSocket; packets: mqttPacket.Packet[]; send(p: mqttPacket.Packet | Buffer): void }> {
  const { status, ws } = await wsHandshake(url)
  expect(status, 'WebSocket handshake').toBe(101)
  const packets: mqttPacket.Packet[] = []
  const parser = mqttPacket.parser({ protocolVersion: 4 })
  parser.on('packet', (p) => packets.push(p))
  parser.on('error', () => {})
  ws.on('message', (d: Buffer) => parser.parse(d))
  return {
    ws,
    packets,
    send(p) {
      if (ws.readyState === ws.OPEN) ws.send(Buffer.isBuffer(p) ? p : mqttPacket.generate(p))
    },
  }
}

const connectPacket = (o: {
  clientId: string
  username?: string
  password?: string
  keepalive?: number
  clean?: boolean
}): mqttPacket.IConnectPacket => ({
  cmd: 'connect',
  protocolId: 'MQTT',
  protocolVersion: 4,
  clientId: o.clientId,
  clean: o.clean ?? true,
  keepalive: o.keepalive ?? 30,
  ...(o.username !== undefined && { username: o.username }),
  ...(o.password !== undefined && { password: Buffer.from(o.password) }),
})

/** The MQTT "remaining length" varint. */
function varint(n: number): number[] {
  const out: number[] = []
  do {
    let byte = n % 128
    n = Math.floor(n / 128)
    if (n > 0) byte |= 0x80
    out.push(byte)
  } while (n > 0)
  return out
}

/**
 * The connection-flood attacker (a worker thread, plain JS): `parallel` loops, each opening a TCP connection, sending
 * the WebSocket handshake and a CONNECT with a bad token in one write, and counting the CONNACK 5 it gets back.
 */
const FLOOD_WORKER = `
const { parentPort, workerData } = require('node:worker_threads')
const net = require('node:net')
const { port, target, budgetMs, parallel } = workerData
const payload = Buffer.from(workerData.payload)
const refusedConnack = Buffer.from([0x82, 0x04, 0x20, 0x02, 0x00, 0x05])
const t0 = Date.now()
let started = 0, refused = 0, other = 0
const attempt = () => new Promise((resolve) => {
  const sock = net.connect({ host: '127.0.0.1', port })
  let data = Buffer.alloc(0)
  const timer = setTimeout(() => sock.destroy(), 5000)
  sock.on('error', () => {})
  sock.once('connect', () => sock.write(payload))
  sock.on('data', (d) => {
    data = Buffer.concat([data, d])
    if (data.includes(refusedConnack)) sock.destroy()
  })
  sock.once('close', () => {
    clearTimeout(timer)
    if (data.includes(refusedConnack)) refused++
    else other++
    resolve()
  })
})
const loop = async () => {
  while (started < target && Date.now() - t0 < budgetMs) {
    started++
    await attempt()
  }
}
Promise.all(Array.from({ length: parallel }, loop)).then(() => parentPort.postMessage({ refused, other }))
`

/** Parsed log entries of `event` (optionally matching `fields`). */
function logged(b: TestBackend, event: string, fields: Record<string, unknown> = {}): Record<string, unknown>[] {
  return b.log.entries().filter((e) => e.event === event && Object.entries(fields).every(([k, v]) => e[k] === v))
}

/** An admin session cookie (`name=value`) from `POST /admin/login` with the backend's own origin. */
async function adminCookie(b: TestBackend): Promise<string> {
  const r = await request(b.port, 'POST', '/admin/login', {
    headers: { origin: b.url, 'content-type': 'application/json' },
    body: JSON.stringify({ password: 'admin-secret-pw' }),
  })
  expect(r.status, r.text).toBe(200)
  const setCookie = r.headers['set-cookie']?.[0]
  expect(setCookie).toMatch(/^longlink_admin=/)
  return setCookie!.split(';')[0]
}

beforeAll(async () => {
  process.on('uncaughtException', onUncaught)
  process.on('unhandledRejection', onUncaught)
  main = await testBackend()
})

afterEach(async () => {
  await endClients()
  await endJsClients()
  for (const ws of webSockets) ws.terminate()
  webSockets.clear()
  for (const s of rawSockets) s.destroy()
  rawSockets.clear()
  await Promise.all([...brokers].map((m) => m.close()))
  brokers.clear()
  await Promise.all([...extraBackends].map((b) => within(b.close(), 10_000, 'backend close')))
  extraBackends.clear()
  // Whatever the attack, the process survives: the shared backend still answers, and nothing threw uncaught
  // (an uncaught exception ends a real backend process; the test runner only reports it).
  await expectHealthy(main)
  const thrown = uncaught.splice(0).map((e) => (e instanceof Error ? (e.stack ?? e.message).split('\n').slice(0, 3).join(' ') : String(e)))
  expect(thrown, 'uncaught exceptions').toEqual([])
})

afterAll(async () => {
  process.off('uncaughtException', onUncaught)
  process.off('unhandledRejection', onUncaught)
  await main?.close()
})

// ---------------------------------------------------------------------------------------------------------------

describe('1. request targets that new URL() cannot parse', () => {
  const targets = ['//a:b', '//[', '//localhost:99999/']

  for (const target of targets) {
    it(`GET ${target} → a 4xx JSON answer, not a crash`, async () => {
      const r = await rawExchange(main.port, `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${main.port}\r\nConnection: close\r\n\r\n`)
      expect(r.status()).toBeGreaterThanOrEqual(400)
      expect(r.status()).toBeLessThan(500)
      expect(r.text()).toMatch(/content-type: application\/json/i)
      expect(JSON.parse(bodyOf(r))).toMatchObject({ error: { status: r.status() } })
      await expectHealthy(main)
    })
  }

  it('a WebSocket upgrade to those targets (and to *, an absolute URL) is answered or closed', async () => {
    for (const target of [...targets, '*', 'http://evil/mqtt', '/mqtt/../admin/live']) {
      const r = await rawExchange(
        main.port,
        `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${main.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n`,
      )
      const status = r.status()
      if (status !== undefined) expect(status, target).toBeGreaterThanOrEqual(400)
      await expectHealthy(main)
    }
  })

  it('GET *, GET http://evil/ and a request without Host → 400', async () => {
    for (const line of [`GET * HTTP/1.1\r\nHost: 127.0.0.1:${main.port}`, `GET http://evil/ HTTP/1.1\r\nHost: evil`, 'GET /healthz HTTP/1.1']) {
      const r = await rawExchange(main.port, `${line}\r\nConnection: close\r\n\r\n`)
      expect(r.status(), line).toBe(400)
      expect(r.text()).not.toMatch(/evil/)
    }
    await expectHealthy(main)
  })
})

describe('2. a subscription that outlives its hold', () => {
  it("rider A hears only its own six events, nothing of B's or C's rides on the same bikes", async () => {
    const bikes = ['leak1', 'leak2', 'leak3']
    const riders = ['leak_a', 'leak_b', 'leak_c']
    const heard = new Map<string, string[]>()
    const clients = new Map<string, { token: string; c: ReturnType<typeof mqttClient> }>()
    for (const rider of riders) {
      const token = await login(main.url, rider)
      const c = mqttClient(main.mqttUrl, { username: rider, password: token })
      const list: string[] = []
      heard.set(rider, list)
      c.on('message', (m) => list.push(`${m.topic} ${(m.json() as { rider?: string }).rider}`))
      await within(c.connect(), 5000, `${rider} connects`)
      clients.set(rider, { token, c })
    }
    const take = async (rider: string, bike: string): Promise<void> => {
      const { token, c } = clients.get(rider)!
      const list = heard.get(rider)!
      expect((await api(main.url, 'POST', `/api/bikes/${bike}/reserve`, { token })).status).toBe(200)
      await within(
        c.subscribe(`mobike/unlocked/${bike}`, () => {}, { qos: 1 }),
        3000,
        'subscribe',
      )
      expect((await api(main.url, 'POST', `/api/bikes/${bike}/unlock`, { token })).status).toBe(202)
      await within(
        c.subscribe(`mobike/locked/${bike}`, () => {}, { qos: 1 }),
        3000,
        'subscribe',
      )
      await until(() => list.includes(`mobike/unlocked/${bike} ${rider}`), 5000, `${rider} hears the unlock of ${bike}`)
      expect((await api(main.url, 'POST', `/api/bikes/${bike}/lock`, { token })).status).toBe(200)
      await until(() => list.includes(`mobike/locked/${bike} ${rider}`), 5000, `${rider} hears the lock of ${bike}`)
    }
    for (const bike of bikes) await take('leak_a', bike)
    for (const rider of ['leak_b', 'leak_c']) for (const bike of bikes) await take(rider, bike)
    await sleep(300)
    const own = (rider: string): string[] => bikes.flatMap((b) => [`mobike/unlocked/${b} ${rider}`, `mobike/locked/${b} ${rider}`])
    // A is still subscribed to all six filters (the plugin never unsubscribes) and hears only its own rides.
    expect(clients.get('leak_a')!.c.connected).toBe(true)
    expect(heard.get('leak_a')).toEqual(own('leak_a'))
    expect(heard.get('leak_b')).toEqual(own('leak_b'))
    expect(heard.get('leak_c')).toEqual(own('leak_c'))
  })
})

describe('3. client-id takeover', () => {
  it("rider B cannot take rider A's live client id: refused with 2, A stays connected and still gets messages", async () => {
    const a = await login(main.url, 'take_a')
    const b = await login(main.url, 'take_b')
    const clientId = 'take-shared-id'
    const ca = await connectJs(main.mqttUrl, { clientId, username: 'take_a', password: a })
    await within(ca.subscribeAsync('riders/take_a/inbox', { qos: 1 }), 3000, 'SUBACK')
    let aClosed = false
    ca.on('close', () => (aClosed = true))
    const { code } = await connackCode(main.mqttUrl, { clientId, username: 'take_b', password: b })
    expect(code).toBe(2)
    await sleep(200)
    expect(aClosed).toBe(false)
    expect(ca.connected).toBe(true)
    const got = new Promise<string>((r) => ca.on('message', (topic, p) => r(`${topic} ${p.toString()}`)))
    await main.broker!.bus.publish('riders/take_a/inbox', { hello: 'a' }, 1)
    expect(await within(got, 3000, 'message to A')).toBe('riders/take_a/inbox {"hello":"a"}')
    expect(logged(main, 'mqtt.refused', { clientId, reason: 'client-id-taken' })).toHaveLength(1)
  })

  it("rider B cannot resume A's persistent session; A later gets its queued QoS 1 message", async () => {
    const a = await login(main.url, 'persist_a')
    const b = await login(main.url, 'persist_b')
    const clientId = 'persist-shared-id'
    const first = await connectJs(main.mqttUrl, { clientId, clean: false, username: 'persist_a', password: a })
    await within(first.subscribeAsync('riders/persist_a/inbox', { qos: 1 }), 3000, 'SUBACK')
    await within(first.endAsync(), 2000, 'A disconnects')
    await until(() => logged(main, 'mqtt.disconnect', { clientId }).length === 1, 2000, 'A disconnected')
    await main.broker!.bus.publish('riders/persist_a/inbox', { queued: 1 }, 1)
    for (const clean of [false, true]) {
      const { code } = await connackCode(main.mqttUrl, { clientId, clean, username: 'persist_b', password: b })
      expect(code, `clean: ${clean}`).toBe(2)
    }
    const messages: string[] = []
    const again = jsClient(main.mqttUrl, { clientId, clean: false, username: 'persist_a', password: a })
    again.on('message', (topic, p) => messages.push(`${topic} ${p.toString()}`))
    await within(new Promise((r) => again.once('connect', r)), 3000, 'A reconnects')
    await until(() => messages.length > 0, 3000, 'the queued message')
    expect(messages).toEqual(['riders/persist_a/inbox {"queued":1}'])
  })

  it('the same rider connecting again with its id replaces the old connection (mqtt.takeover)', async () => {
    const a = await login(main.url, 'take_same')
    const clientId = 'take-same-id'
    const old = await connectJs(main.mqttUrl, { clientId, username: 'take_same', password: a })
    const oldClosed = closedJs(old, 3000)
    const fresh = await connectJs(main.mqttUrl, { clientId, username: 'take_same', password: a })
    await oldClosed
    expect(fresh.connected).toBe(true)
    expect(logged(main, 'mqtt.takeover', { clientId, rider: 'take_same' })).toHaveLength(1)
    await until(() => logged(main, 'mqtt.disconnect', { clientId, reason: 'takeover' }).length === 1, 2000, 'old link logged as taken over')
  })
})

describe('4. size limits', () => {
  it('three unauthenticated CONNECTs announcing 200 MB are cut off at once, each reported once; memory does not grow', async () => {
    const before = await rssOf(main)
    const firstLine = main.log.lines.length
    const header = Buffer.from([0x10, ...varint(200_000_000)])
    const attacks = [0, 1, 2].map(async (i) => {
      const { status, ws } = await wsHandshake(main.mqttUrl)
      expect(status).toBe(101)
      const closed = wsClosed(ws, 5000)
      const t0 = performance.now()
      // The second attacker sends its header one byte per WebSocket message.
      if (i === 1) for (const byte of header) ws.send(Buffer.from([byte]))
      else ws.send(header)
      const filler = Buffer.alloc(1024, 0x41)
      let sent = 0
      while (ws.readyState === ws.OPEN && performance.now() - t0 < 2000) {
        ws.send(filler)
        sent += filler.length
        await sleep(10)
      }
      await closed
      return { ms: performance.now() - t0, sent }
    })
    const results = await Promise.all(attacks)
    const after = await rssOf(main)
    console.log(
      `[measure] 200 MB CONNECT x3: cut off after ${results.map((r) => Math.round(r.ms) + ' ms').join(', ')}; ` +
        `RSS ${(before / 2 ** 20).toFixed(1)} → ${(after / 2 ** 20).toFixed(1)} MB (${((after - before) / 2 ** 20).toFixed(1)} MB)`,
    )
    for (const r of results) expect(r.ms).toBeLessThan(1000)
    expect(after - before).toBeLessThan(30 * 2 ** 20)
    // The operator reads one report per attacker, naming what it announced (1 + 4 header bytes + 200,000,000).
    const reports = main.log
      .entries()
      .slice(firstLine)
      .filter((e) => e.event === 'mqtt.packet_too_large')
      .map((e) => e.announced)
    expect(reports).toEqual([200_000_005, 200_000_005, 200_000_005])
  })

  it("an authenticated rider's 90 MB PUBLISH closes its connection", async () => {
    const token = await login(main.url, 'big_pub')
    const c = await connectJs(main.mqttUrl, { username: 'big_pub', password: token })
    const closed = closedJs(c, 5000)
    const topic = Buffer.from('riders/big_pub/x')
    const stream = c.stream as unknown as Duplex
    stream.write(Buffer.concat([Buffer.from([0x30, ...varint(90 * 2 ** 20)]), Buffer.from([topic.length >> 8, topic.length & 0xff]), topic]))
    const chunk = Buffer.alloc(32 * 1024, 0x42)
    for (let sent = 0; sent < 4 * 2 ** 20 && c.connected && !stream.destroyed; sent += chunk.length) {
      stream.write(chunk)
      await sleep(1)
    }
    await closed
    expect(c.connected).toBe(false)
    expect(logged(main, 'mqtt.packet_too_large').some((e) => (e.announced as number) > 90 * 2 ** 20)).toBe(true)
  })

  it('a retained PUBLISH to the rider’s own topic closes the connection and is not kept', async () => {
    const token = await login(main.url, 'retainer')
    const c = await connectJs(main.mqttUrl, { username: 'retainer', password: token })
    const closed = closedJs(c, 3000)
    c.publish('riders/retainer/x', 'kept?', { qos: 0, retain: true })
    await closed
    expect(logged(main, 'acl.publish.refused', { rider: 'retainer', retain: true })).toHaveLength(1)
    const reader = await connectJs(main.mqttUrl, { username: 'retainer', password: token })
    const got: string[] = []
    reader.on('message', (topic, p) => got.push(`${topic} ${p.toString()}`))
    await within(reader.subscribeAsync('riders/retainer/x', { qos: 1 }), 3000, 'SUBACK')
    await sleep(300)
    expect(got).toEqual([])
  })

  it('a rider publishing a forged unlock on mobike/unlocked/<bike> is closed; the bike’s holder hears nothing', async () => {
    const holder = await login(main.url, 'forge_holder')
    const attacker = await login(main.url, 'forge_attacker')
    expect((await api(main.url, 'POST', '/api/bikes/forge1/reserve', { token: holder })).status).toBe(200)
    const h = await connectJs(main.mqttUrl, { username: 'forge_holder', password: holder })
    const heard: string[] = []
    h.on('message', (topic) => heard.push(topic))
    await within(h.subscribeAsync('mobike/unlocked/forge1', { qos: 1 }), 3000, 'SUBACK')
    const c = await connectJs(main.mqttUrl, { username: 'forge_attacker', password: attacker })
    const closed = closedJs(c, 3000)
    c.publish('mobike/unlocked/forge1', JSON.stringify({ bike: 'forge1', rider: 'forge_holder', time: Date.now() }), { qos: 1 })
    await closed
    await sleep(300)
    expect(heard).toEqual([])
    expect(logged(main, 'acl.publish.refused', { rider: 'forge_attacker', topic: 'mobike/unlocked/forge1' })).toHaveLength(1)
  })

  it('/admin/live refuses a 50 MB frame (1009 or closed)', async () => {
    const cookie = await adminCookie(main)
    const { status, ws } = await wsHandshake(`ws://127.0.0.1:${main.port}/admin/live`, { protocols: [], headers: { origin: main.url, cookie } })
    expect(status).toBe(101)
    const closed = wsClosed(ws, 10_000)
    const t0 = performance.now()
    ws.send(Buffer.alloc(50 * 2 ** 20, 0x43))
    const code = await closed
    console.log(`[measure] /admin/live 50 MB frame: closed with ${code} after ${Math.round(performance.now() - t0)} ms`)
    expect([1009, 1006]).toContain(code)
  })
})

describe.skipIf(!hasMosquitto())('5. the external broker’s password', () => {
  it('never reaches /api/config nor the log, also while the broker is down', async () => {
    const m = await startMosquitto({ users: { svc: 'S3cretPass' } })
    brokers.add(m)
    const b = await extraBackend({}, { BROKER_URL: `mqtt://svc:S3cretPass@127.0.0.1:${m.mqttPort}` })
    const config = await request(b.port, 'GET', '/api/config')
    expect(config.status).toBe(200)
    expect(config.text).not.toContain('S3cretPass')
    expect(config.text).not.toContain('svc:')
    expect(config.json().mqttUrl).toBe(`mqtt://127.0.0.1:${m.mqttPort}`)
    await m.stop()
    await until(() => logged(b, 'bus.disconnect').length > 0 && logged(b, 'bus.error').length > 0, 5000, 'bus.disconnect and bus.error logged')
    const r = await request(b.port, 'GET', '/healthz')
    expect([200, 503]).toContain(r.status)
    await b.close()
    expect(b.log.lines.length).toBeGreaterThan(3)
    for (const line of b.log.lines) expect(line).not.toContain('S3cretPass')
  })

  it('a wrong broker password fails the start with an error that does not quote it', async () => {
    const m = await startMosquitto({ users: { svc: 'S3cretPass' } })
    brokers.add(m)
    const t0 = performance.now()
    const lines = allLogLines.length
    const err = await testBackend({}, { BROKER_URL: `mqtt://svc:WrongPass99@127.0.0.1:${m.mqttPort}` }).then(
      (b) => {
        extraBackends.add(b)
        return undefined
      },
      (e: unknown) => e as Error,
    )
    console.log(`[measure] start with a wrong broker password failed after ${Math.round(performance.now() - t0)} ms: ${err?.message}`)
    expect(err).toBeInstanceOf(Error)
    expect(err!.message).not.toContain('WrongPass99')
    expect(String(err!.stack)).not.toContain('WrongPass99')
    const log = allLogLines.slice(lines).flat()
    expect(log.some((l) => l.includes('bus.error'))).toBe(true)
    for (const line of log) expect(line).not.toContain('WrongPass99')
  })
})

describe('6. login', () => {
  it('no password → 400, wrong → 401, the 11th failure in a minute → 429 with retry-after', async () => {
    const b = await extraBackend()
    expect((await api(b.url, 'POST', '/api/login', { body: { rider: 'rider1' } })).status).toBe(400)
    expect((await api(b.url, 'POST', '/api/login', { body: { rider: 'rider1', password: 'wrong-password' } })).status).toBe(401)
    for (let i = 2; i <= 10; i++) {
      expect(
        (await api(b.url, 'POST', '/api/login', { body: { rider: `rider${(i % 5) + 1}`, password: `guess-${i}` } })).status,
        `failure ${i}`,
      ).toBe(401)
    }
    const limited = await request(b.port, 'POST', '/api/login', {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ rider: 'rider1', password: 'guess-11' }),
    })
    expect(limited.status).toBe(429)
    expect(limited.json().error.code).toBe('RATE_LIMITED')
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0)
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(60)
    await expectHealthy(b)
  })

  it('on 0.0.0.0 without DEMO_PASSWORD the well-known demo password does not work', async () => {
    expect(loadConfig({ HOST: '0.0.0.0', DATA_DIR: tempDataDir() }).demoPassword).toBeUndefined()
    const b = await extraBackend({ host: '0.0.0.0', demoPassword: undefined })
    expect(b.config.demoPassword).toBeUndefined()
    const r = await api(b.url, 'POST', '/api/login', { body: { rider: 'rider1', password: DEMO_PASSWORD } })
    expect(r.status).toBe(401)
    await expectHealthy(b)
  })

  it('an MQTT link is closed when its token expires, and the expired token is refused at CONNECT (5)', async () => {
    const b = await extraBackend({ tokenTtlMs: 1500 })
    const r = await api(b.url, 'POST', '/api/login', { body: { rider: 'rider1', password: DEMO_PASSWORD } })
    expect(r.status).toBe(200)
    const { token, expiresAt } = r.body as { token: string; expiresAt: number }
    const c = await connectJs(b.mqttUrl, { username: 'rider1', password: token })
    await closedJs(c, 4000)
    const lateBy = Date.now() - expiresAt
    console.log(`[measure] MQTT link closed ${lateBy} ms after its token expired`)
    expect(lateBy).toBeGreaterThanOrEqual(-50)
    expect(lateBy).toBeLessThan(1000)
    expect(logged(b, 'mqtt.disconnect', { rider: 'rider1', reason: 'token-expired' })).toHaveLength(1)
    expect((await connackCode(b.mqttUrl, { username: 'rider1', password: token })).code).toBe(5)
    await expectHealthy(b)
  })
})

describe('7. origins', () => {
  it('/mqtt: Origin null or foreign → 403; none, WeChat and our own → accepted', async () => {
    const cases: [string | undefined, number][] = [
      ['null', 403],
      ['https://evil.example', 403],
      [undefined, 101],
      ['https://servicewechat.com', 101],
      [main.url, 101],
      [`http://localhost:${main.port}`, 101],
    ]
    for (const [origin, expected] of cases) {
      const { status, ws } = await wsHandshake(main.mqttUrl, { headers: origin === undefined ? {} : { origin } })
      expect(status, `Origin: ${origin}`).toBe(expected)
      ws.terminate()
    }
  })

  it('POST /admin/login from a foreign origin (or none) → 403, even with the right password', async () => {
    for (const headers of [{ origin: 'https://evil.example' }, { origin: 'null' }, {}] as Record<string, string>[]) {
      const r = await request(main.port, 'POST', '/admin/login', {
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({ password: 'admin-secret-pw' }),
      })
      expect(r.status, JSON.stringify(headers)).toBe(403)
      expect(r.headers['set-cookie']).toBeUndefined()
    }
  })

  it('/admin/live with a foreign origin is refused even with a valid session cookie', async () => {
    const cookie = await adminCookie(main)
    for (const origin of ['https://evil.example', 'null', 'https://servicewechat.com']) {
      const { status } = await wsHandshake(`ws://127.0.0.1:${main.port}/admin/live`, { protocols: [], headers: { origin, cookie } })
      expect(status, origin).toBe(403)
    }
    const none = await wsHandshake(`ws://127.0.0.1:${main.port}/admin/live`, { protocols: [], headers: { cookie } })
    expect(none.status).toBe(403)
    const own = await wsHandshake(`ws://127.0.0.1:${main.port}/admin/live`, { protocols: [], headers: { origin: main.url, cookie } })
    expect(own.status).toBe(101)
  })

  it('CORS: a foreign origin gets no access-control-allow-origin; a configured one is echoed, never *', async () => {
    const evil = await request(main.port, 'GET', '/api/config', { headers: { origin: 'https://evil.example' } })
    expect(evil.status).toBe(200)
    expect(evil.headers['access-control-allow-origin']).toBeUndefined()
    const b = await extraBackend({ allowedOrigins: ['https://app.example'] })
    const app = await request(b.port, 'GET', '/api/config', { headers: { origin: 'https://app.example' } })
    expect(app.headers['access-control-allow-origin']).toBe('https://app.example')
    const evil2 = await request(b.port, 'GET', '/api/config', { headers: { origin: 'https://evil.example' } })
    expect(evil2.headers['access-control-allow-origin']).toBeUndefined()
    const preflight = await request(b.port, 'OPTIONS', '/api/login', {
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    })
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined()
    await expectHealthy(b)
  })
})

describe('8. the admin needs its credential', () => {
  it('GET /admin/stats without a cookie → 401; DELETE /admin and PUT /admin/stats → 405', async () => {
    expect((await request(main.port, 'GET', '/admin/stats')).status).toBe(401)
    expect((await request(main.port, 'GET', '/admin/stats', { headers: { authorization: 'Bearer wrong' } })).status).toBe(401)
    expect((await request(main.port, 'DELETE', '/admin')).status).toBe(405)
    expect((await request(main.port, 'PUT', '/admin/stats', { body: '{}' })).status).toBe(405)
    const cookie = await adminCookie(main)
    expect((await request(main.port, 'GET', '/admin/stats', { headers: { cookie } })).status).toBe(200)
  })
})

describe('9. refusal floods', () => {
  let flood: TestBackend
  beforeAll(async () => {
    flood = await testBackend()
  })
  afterAll(async () => {
    await flood?.close()
  })

  it('one rider sending 50,000 forbidden SUBSCRIBEs is cut off; its refusal log stays bounded', async () => {
    const token = await login(flood.url, 'flooder')
    const c = await rawMqtt(flood.mqttUrl)
    c.send(connectPacket({ clientId: 'flooder-1', username: 'flooder', password: token }))
    await until(() => c.packets.some((p) => p.cmd === 'connack'), 3000, 'CONNACK')
    expect((c.packets[0] as mqttPacket.IConnackPacket).returnCode).toBe(0)
    const closed = wsClosed(c.ws, 10_000)
    const t0 = performance.now()
    let batch: Buffer[] = []
    let size = 0
    let sent = 0
    for (let i = 0; i < 50_000; i++) {
      const p = mqttPacket.generate({
        cmd: 'subscribe',
        messageId: (i % 65535) + 1,
        subscriptions: [{ topic: `mobike/unlocked/nope${i % 1000}`, qos: 1 }],
      })
      batch.push(p)
      size += p.length
      if (size > 60_000 || i === 49_999) {
        if (c.ws.readyState !== c.ws.OPEN) break
        c.ws.send(Buffer.concat(batch))
        sent += batch.length
        batch = []
        size = 0
      }
    }
    await closed
    const ms = Math.round(performance.now() - t0)
    const cut = logged(flood, 'mqtt.cut_off', { clientId: 'flooder-1' })
    const refusedLines = logged(flood, 'acl.subscribe.refused').length
    console.log(
      `[measure] SUBSCRIBE flood: ${sent} packets written, closed after ${ms} ms, cut off at ${cut[0]?.refusals} refusals ` +
        `(limit ${flood.config.limits.maxRefusalsPerConnection}), ${flood.stats().totals.refusals} refusals counted, ` +
        `${refusedLines} acl.subscribe.refused lines, SUBACKs received ${c.packets.filter((p) => p.cmd === 'suback').length}`,
    )
    expect(cut).toHaveLength(1)
    expect(refusedLines).toBeLessThanOrEqual(flood.config.limits.refusalLogLines)
    expect(logged(flood, 'mqtt.disconnect', { clientId: 'flooder-1', reason: 'too-many-refusals' })).toHaveLength(1)
    await expectHealthy(flood)
  })

  it('50,000 refused CONNECTs over 50 parallel connections leave a bounded log', async () => {
    const budgetMs = 30_000
    const upgrade = Buffer.from(
      `GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1:${flood.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n`,
    )
    const connect = mqttPacket.generate(connectPacket({ clientId: '', username: 'rider1', password: 'not.a-token' }))
    // One masked WebSocket binary frame (mask 0: the payload goes as is) right behind the handshake.
    const frame = Buffer.concat([Buffer.from([0x82, 0x80 | connect.length, 0, 0, 0, 0]), connect])
    const before = flood.log.lines.length
    const t0 = performance.now()
    // The attacker runs on its own thread (its own core), as a separate machine would.
    const attacker = new Worker(FLOOD_WORKER, {
      eval: true,
      workerData: { port: flood.port, payload: Buffer.concat([upgrade, frame]), target: 50_000, budgetMs, parallel: 50 },
    })
    let result: { refused: number; other: number }
    try {
      result = await within(
        new Promise<{ refused: number; other: number }>((resolve, reject) => {
          attacker.once('message', resolve)
          attacker.once('error', reject)
        }),
        budgetMs + 10_000,
        'the attacker thread',
      )
    } finally {
      await attacker.terminate()
    }
    const ms = Math.round(performance.now() - t0)
    await sleep(200)
    const during = flood.log.lines.length - before
    const suppressedBefore = logged(flood, 'log.suppressed').length
    await expectHealthy(flood)
    await within(flood.close(), 10_000, 'backend close')
    const total = flood.log.lines.length - before
    const events = new Map<string, number>()
    for (const e of flood.log.entries().slice(before)) events.set(e.event as string, (events.get(e.event as string) ?? 0) + 1)
    console.log(
      `[measure] ${result.refused} refused CONNECTs (+${result.other} other) in ${ms} ms (${Math.round((result.refused / ms) * 1000)}/s): ` +
        `${during} log lines while under attack, ${total} including the close (${JSON.stringify(Object.fromEntries(events))})`,
    )
    expect(result.refused).toBeGreaterThan(5_000)
    const limit = flood.config.limits.refusalLogLines
    const suppressed = logged(flood, 'log.suppressed').length - suppressedBefore
    expect(during).toBeLessThanOrEqual(limit * 3 + 5)
    expect(total).toBeLessThanOrEqual(limit * 3 + suppressed + 10)
  }, 60_000)
})

describe('10. Host header', () => {
  it('/api/config never names a foreign Host; our own Host is kept', async () => {
    const evil = await request(main.port, 'GET', '/api/config', { headers: { host: 'evil.example:1234' } })
    expect(evil.status).toBe(200)
    expect(evil.json().mqttUrl).not.toContain('evil')
    expect(evil.json().mqttUrl).toBe(`ws://127.0.0.1:${main.port}/mqtt`)
    const own = await request(main.port, 'GET', '/api/config', { headers: { host: `127.0.0.1:${main.port}` } })
    expect(own.json().mqttUrl).toBe(`ws://127.0.0.1:${main.port}/mqtt`)
    const local = await request(main.port, 'GET', '/api/config', { headers: { host: `localhost:${main.port}` } })
    expect(local.json().mqttUrl).toBe(`ws://localhost:${main.port}/mqtt`)
  })
})

describe('11. slow and big requests', () => {
  const limits = { ...DEFAULT_LIMITS, httpHeadersTimeoutMs: 1000, httpRequestTimeoutMs: 2000 }

  it('a request line over 16 KB → 431', async () => {
    const r = await rawExchange(main.port, `GET /${'a'.repeat(17 * 1024)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`)
    expect(r.status()).toBe(431)
  })

  it('headers trickled byte by byte are cut off soon after httpHeadersTimeoutMs', async () => {
    const b = await extraBackend({ limits })
    const r = raw(b.port)
    await within(r.connected, 2000, 'connect')
    const t0 = performance.now()
    r.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n')
    const trickle = (async () => {
      while (!r.isClosed && performance.now() - t0 < 10_000) {
        r.write('x')
        await sleep(50)
      }
    })()
    await within(r.closed, 5000, 'headers timeout')
    await trickle
    const ms = r.closedAt! - t0
    console.log(`[measure] trickled headers: closed after ${Math.round(ms)} ms with ${r.status() ?? 'no answer'}`)
    expect(ms).toBeLessThan(limits.httpHeadersTimeoutMs + 2500)
    if (r.status() !== undefined) expect(r.status()).toBe(408)
    await expectHealthy(b)
  })

  it('a body trickled byte by byte is cut off soon after httpRequestTimeoutMs (not 300 s), and is no server error', async () => {
    const b = await extraBackend({ limits })
    const r = raw(b.port)
    await within(r.connected, 2000, 'connect')
    const t0 = performance.now()
    r.write('POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{')
    const trickle = (async () => {
      while (!r.isClosed && performance.now() - t0 < 10_000) {
        r.write(' ')
        await sleep(50)
      }
    })()
    await within(r.closed, 6000, 'request timeout')
    await trickle
    const ms = r.closedAt! - t0
    console.log(`[measure] trickled body: closed after ${Math.round(ms)} ms with ${r.status() ?? 'no answer'}`)
    expect(ms).toBeLessThan(limits.httpRequestTimeoutMs + 2500)
    if (r.status() !== undefined) expect(r.status()).toBe(408)
    await expectHealthy(b)
    expect(logged(b, 'http.error')).toEqual([])
  })

  const big = JSON.stringify({ rider: 'rider1', password: 'x'.repeat(2 ** 20) })

  it('a 1 MB JSON body → 413', async () => {
    const r = await request(main.port, 'POST', '/api/login', { headers: { 'content-type': 'application/json' }, body: big })
    expect(r.status).toBe(413)
    expect(r.json().error.code).toBe('BODY_TOO_LARGE')
  })

  it('a 1 MB chunked JSON body (no content-length) → 413, and the process survives', async () => {
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port: main.port,
          method: 'POST',
          path: '/api/login',
          headers: { connection: 'close', 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
        },
        (res) => {
          res.resume()
          resolve(res.statusCode ?? 0)
        },
      )
      req.setTimeout(5000, () => req.destroy(new Error('no answer within 5 s')))
      req.on('error', reject)
      for (let i = 0; i < 16; i++) req.write(big.slice(i * 65536, (i + 1) * 65536))
      req.end(big.slice(16 * 65536))
    })
    expect(chunked).toBe(413)
    await sleep(100)
    await expectHealthy(main)
  })

  it('a client hanging up in the middle of a body: the process survives and logs no server error', async () => {
    const before = logged(main, 'http.error').length
    for (const path of ['/api/login', '/api/bikes/b1/reserve']) {
      const r = raw(main.port)
      await within(r.connected, 2000, 'connect')
      r.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"rider":`)
      await sleep(50)
      r.sock.destroy()
      await sleep(100)
    }
    await expectHealthy(main)
    // A client that gives up is not a server error (and not an unbounded error-level line with a stack).
    expect(logged(main, 'http.error').slice(before)).toEqual([])
  })

  it('a text/plain body → 415', async () => {
    const r = await request(main.port, 'POST', '/api/login', {
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ rider: 'rider1', password: 'x' }),
    })
    expect(r.status).toBe(415)
    expect(r.json().error.code).toBe('UNSUPPORTED_MEDIA_TYPE')
  })
})

describe('12. connection limits', () => {
  it("a rider's 6th simultaneous MQTT connection → CONNACK 3; a slot frees when one ends", async () => {
    const token = await login(main.url, 'crowd')
    const five: MqttJsClient[] = []
    for (let i = 0; i < 5; i++) five.push(await connectJs(main.mqttUrl, { clientId: `crowd-${i}`, username: 'crowd', password: token }))
    expect((await connackCode(main.mqttUrl, { clientId: 'crowd-5', username: 'crowd', password: token })).code).toBe(3)
    expect(five.every((c) => c.connected)).toBe(true)
    await within(five[0].endAsync(), 2000, 'one link ends')
    await until(() => logged(main, 'mqtt.disconnect', { clientId: 'crowd-0' }).length === 1, 2000, 'one link ended')
    expect((await connackCode(main.mqttUrl, { clientId: 'crowd-6', username: 'crowd', password: token })).code).toBe(0)
  })

  it('keepalive 0 → CONNACK 3', async () => {
    const token = await login(main.url, 'no_keepalive')
    expect((await connackCode(main.mqttUrl, { username: 'no_keepalive', password: token, keepalive: 0 })).code).toBe(3)
  })

  it('with maxConnectionsPerAddress 3, the 4th WebSocket from 127.0.0.1 → 429 on the upgrade', async () => {
    const b = await extraBackend({ limits: { ...DEFAULT_LIMITS, maxConnectionsPerAddress: 3 } })
    const open: WebSocket[] = []
    for (let i = 0; i < 3; i++) {
      const { status, ws } = await wsHandshake(b.mqttUrl)
      expect(status).toBe(101)
      open.push(ws)
    }
    const fourth = await wsHandshake(b.mqttUrl)
    expect(fourth.status).toBe(429)
    expect(JSON.parse(fourth.body)).toMatchObject({ error: { code: 'RATE_LIMITED' } })
    open[0].terminate()
    await sleep(100)
    expect((await wsHandshake(b.mqttUrl)).status).toBe(101)
    await expectHealthy(b)
  })
})

describe('13. broker bounds', () => {
  const raw = (rider: string, token: string, extra: IClientOptions = {}): Promise<{ code: number | undefined; client: MqttJsClient }> =>
    new Promise((resolve) => {
      const client = mqtt.connect(main.mqttUrl, {
        username: rider,
        password: token,
        reconnectPeriod: 0,
        keepalive: 30,
        connectTimeout: 3000,
        ...extra,
      })
      trackJsClient(client)
      client.once('connect', () => resolve({ code: 0, client }))
      client.once('error', (err: Error & { code?: number }) => resolve({ code: err.code, client }))
      client.once('close', () => resolve({ code: undefined, client }))
    })

  it('a rider publishing anywhere is cut off; a will, a long or odd client id are refused at CONNECT', async () => {
    const token = await login(main.url, 'bounds_pub')
    const { code, client } = await raw('bounds_pub', token)
    expect(code).toBe(0)
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()))
    client.publish('riders/bounds_pub/note', 'x', { qos: 0 })
    await closed
    expect(logged(main, 'acl.publish.refused', { rider: 'bounds_pub' }).length).toBeGreaterThanOrEqual(1)
    expect(
      (await raw('bounds_pub', token, { will: { topic: 'riders/bounds_pub/gone', payload: Buffer.from('x'), qos: 0, retain: false } })).code,
    ).toBe(5)
    expect((await raw('bounds_pub', token, { clientId: 'x'.repeat(65) })).code).toBe(2)
    expect((await raw('bounds_pub', token, { clientId: 'has space' })).code).toBe(2)
    expect((await raw('bounds_pub', token, { clientId: 'ok_id-1.2:3@4' })).code).toBe(0)
  })

  it('at most 2 persistent sessions per rider, 50 subscriptions per connection', async () => {
    const token = await login(main.url, 'bounds_sess')
    for (const id of ['sess-1', 'sess-2']) {
      const { code, client } = await raw('bounds_sess', token, { clientId: id, clean: false })
      expect(code).toBe(0)
      await client.endAsync()
    }
    expect((await raw('bounds_sess', token, { clientId: 'sess-3', clean: false })).code).toBe(3)
    // An existing session's id comes back fine.
    const again = await raw('bounds_sess', token, { clientId: 'sess-1', clean: false })
    expect(again.code).toBe(0)
    await again.client.endAsync()

    const { client } = await raw('bounds_sess', token)
    const filters = Array.from({ length: 51 }, (_, i) => `riders/bounds_sess/f${i}`)
    const granted = await client.subscribeAsync(filters).then(
      (g) => g.map((x) => x.qos),
      (err: { packet?: { granted?: number[] } }) => err.packet?.granted ?? [],
    )
    expect(granted.filter((q) => q === 128)).toHaveLength(1)
    expect(granted.filter((q) => q !== 128)).toHaveLength(50)
  })

  it('a rider cut off for its refusals is refused (CONNACK 3) for the refusal window', async () => {
    const token = await login(main.url, 'bounds_cut')
    const { client } = await raw('bounds_cut', token)
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()))
    await client.subscribeAsync(Array.from({ length: 25 }, (_, i) => `mobike/unlocked/nope${i}`)).catch(() => {})
    await closed
    expect((await raw('bounds_cut', token)).code).toBe(3)
    expect(logged(main, 'mqtt.refused', { rider: 'bounds_cut', reason: 'cut-off' }).length).toBeGreaterThanOrEqual(1)
  })
})
