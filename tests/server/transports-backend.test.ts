/**
 * The demo backend's `/mqtt` over LongLink's HTTP transports: the plugin's MQTT client (the `web` adapter: `ws` for the
 * WebSocket, Node's fetch for HTTP) through the fault proxy with WebSocket upgrades refused falls back to SSE,
 * long-polling or polling and runs the bike flow to "unlocked"; the rider policy, the per-address budget, the origin
 * check and CORS hold on those transports as on the WebSocket. Real sockets on loopback; every wait is bounded.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { ErrorCode } from '../../uni_modules/longlink-socket/js_sdk/index'
import type { MqttClient, MqttMessage } from '../../uni_modules/longlink-socket/js_sdk/mqtt'
import type { TransportChange } from '../../uni_modules/longlink-socket/js_sdk/types'
import { DEFAULT_LIMITS } from '../../server/config'
import { startMosquitto } from '../support/brokers'
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy'
import { until, within } from '../support/wait'
import { api, endClients, login, mqttClient, testBackend, type TestBackend } from './helpers'

const KINDS = ['sse', 'long-polling', 'polling'] as const

let backend: TestBackend
const cleanups: (() => unknown)[] = []

beforeAll(async () => {
  backend = await testBackend()
})
afterEach(async () => {
  await endClients()
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})
afterAll(async () => {
  await backend?.close()
})

/** A fault proxy in front of `target` that refuses every WebSocket upgrade (HTTP passes), closed after the test. */
async function noWebSocket(target: TestBackend): Promise<FaultProxy> {
  const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: target.port } })
  proxy.blockUpgrades(true)
  cleanups.push(() => proxy.close())
  return proxy
}

/** A client of `rider` on `url` with the given transports, logged in with a fresh token. */
async function riderClient(url: string, rider: string, transports: MqttClient['transport'][], base = backend.url): Promise<MqttClient> {
  const token = await login(base, rider)
  return mqttClient(url, { username: rider, password: token, transports, poll: { interval: 100 }, probeInterval: false })
}

/** Subscribes to `filter` (resolved on SUBACK) and returns the first message on it, bounded by 5 s. */
async function firstMessage(client: MqttClient, filter: string): Promise<() => Promise<MqttMessage>> {
  let received!: (message: MqttMessage) => void
  const message = new Promise<MqttMessage>((resolve) => (received = resolve))
  await client.subscribe(filter, (m) => received(m), { qos: 1 })
  return () => within(message, 5000, `a message on ${filter}`)
}

/** A raw session-opening request at `/mqtt` (what the plugin sends first on an HTTP transport). */
function openSession(base: string, headers: Record<string, string> = {}, transport = 'long-polling'): Promise<Response> {
  return fetch(`${base}/mqtt?transport=${transport}&open=1`, { headers, signal: AbortSignal.timeout(5000) })
}

describe('the bike flow with WebSocket refused', () => {
  it.each(KINDS)(
    "%s: falls back, logs in, subscribes, and hears the bike's unlock",
    async (kind) => {
      const proxy = await noWebSocket(backend)
      const rider = `tb_${kind.replace('-', '_')}`
      const bike = `tb-${kind}`
      const token = await login(backend.url, rider)
      const client = await riderClient(proxy.url('/mqtt'), rider, ['websocket', kind])
      const changes: TransportChange[] = []
      client.on('transport', (change) => changes.push(change))
      await client.connect()
      expect(client.transport).toBe(kind)
      expect(changes).toEqual([{ from: 'websocket', to: kind, reason: 'fallback' }])
      expect(proxy.upgradesRefused()).toBeGreaterThan(0)
      // The broker sees the rider over that transport (the admin's list says which).
      await until(() => backend.broker!.connections().some((c) => c.rider === rider))
      expect(backend.broker!.connections().find((c) => c.rider === rider)).toMatchObject({ transport: `mqtt/${kind}`, lastRttMs: null })

      expect((await api(backend.url, 'POST', `/api/bikes/${bike}/reserve`, { token })).status).toBe(200)
      const unlocked = await firstMessage(client, `mobike/unlocked/${bike}`)
      expect(await api(backend.url, 'POST', `/api/bikes/${bike}/unlock`, { token })).toEqual({ status: 202, body: { bike, status: 'unlocking' } })
      const message = await unlocked()
      expect(message.json()).toMatchObject({ bike, rider })
      expect(message.qos).toBe(1)
      expect((await api(backend.url, 'POST', `/api/bikes/${bike}/lock`, { token })).status).toBe(200)

      await client.end()
      await until(() => !backend.broker!.connections().some((c) => c.rider === rider), 5000, 'the rider gone')
    },
    20_000,
  )

  it('with WebSocket working, stays on the plain /mqtt WebSocket and opens no session', async () => {
    const sessions = () => backend.log.entries().filter((e) => e.event === 'longlink.session_open').length
    const before = sessions()
    const client = await riderClient(backend.mqttUrl, 'tb_plain', ['websocket', 'sse', 'long-polling'])
    await client.connect()
    expect(client.transport).toBe('websocket')
    await until(() => backend.broker!.connections().some((c) => c.rider === 'tb_plain'))
    expect(backend.broker!.connections().find((c) => c.rider === 'tb_plain')!.transport).toBe('mqtt/websocket')
    expect(sessions()).toBe(before)
  })
})

describe('the rider policy over the HTTP transports', () => {
  it.each(KINDS)(
    '%s: a wrong token is refused (NOT_AUTHORIZED), and so is another rider’s bike',
    async (kind) => {
      const bad = mqttClient(backend.mqttUrl, { username: 'tb_acl_a', password: 'garbage', transports: [kind], poll: { interval: 100 } })
      await expect(bad.connect()).rejects.toMatchObject({ code: ErrorCode.NOT_AUTHORIZED })

      const other = await login(backend.url, 'tb_acl_b')
      const bike = `tb-acl-${kind}`
      expect((await api(backend.url, 'POST', `/api/bikes/${bike}/reserve`, { token: other })).status).toBe(200)
      const client = await riderClient(backend.mqttUrl, 'tb_acl_a', [kind])
      await client.connect()
      expect(client.transport).toBe(kind)
      await expect(client.subscribe(`mobike/unlocked/${bike}`, () => {})).rejects.toMatchObject({ code: ErrorCode.SUBSCRIBE_REFUSED })
      await expect(client.subscribe('mobike/#', () => {})).rejects.toMatchObject({ code: ErrorCode.SUBSCRIBE_REFUSED })
      // Its own namespace is fine.
      await expect(client.subscribe('riders/tb_acl_a/#', () => {})).resolves.toMatchObject({ filter: 'riders/tb_acl_a/#' })
      await api(backend.url, 'POST', `/api/bikes/${bike}/lock`, { token: other })
    },
    20_000,
  )

  it('the same rider and client id connecting again replaces the old session link (takeover)', async () => {
    const link = async (transport: MqttClient['transport']) =>
      mqttClient(backend.mqttUrl, {
        clientId: 'tb-take-1',
        reconnect: false,
        username: 'tb_take',
        password: await login(backend.url, 'tb_take'),
        transports: [transport],
      })
    const first = await link('long-polling')
    await first.connect()
    const closed = new Promise<void>((resolve) => first.on('close', () => resolve()))
    const second = await link('sse')
    await second.connect()
    await within(closed, 5000, 'the first link closed')
    expect(backend.log.entries().some((e) => e.event === 'mqtt.takeover' && e.rider === 'tb_take')).toBe(true)
    expect(backend.broker!.connections().filter((c) => c.rider === 'tb_take')).toEqual([expect.objectContaining({ transport: 'mqtt/sse' })])
  }, 20_000)
})

describe('admission of HTTP-transport sessions', () => {
  it('a disallowed Origin is refused (401), an allowed one opens a session with the CORS headers of the origin policy', async () => {
    const b = await testBackend({ allowedOrigins: ['https://app.example'] })
    cleanups.push(() => b.close())
    for (const origin of ['https://evil.example', 'null']) {
      const refused = await openSession(b.url, { origin })
      expect(refused.status).toBe(401)
      expect(await refused.json()).toMatchObject({ error: 'NOT_AUTHORIZED' })
      expect(refused.headers.get('access-control-allow-origin')).toBeNull()
    }
    expect(b.log.entries().filter((e) => e.event === 'ws.refused' && e.reason === 'origin')).toHaveLength(2)

    const ok = await openSession(b.url, { origin: 'https://app.example' }, 'polling')
    expect(ok.status).toBe(200)
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://app.example')
    expect(await ok.json()).toMatchObject({ sid: expect.any(String), hold: DEFAULT_LIMITS.longlinkHoldMs })
    const preflight = await fetch(`${b.url}/mqtt?transport=long-polling&open=1`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'GET' },
    })
    expect(preflight.status).toBe(204)
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example')
    // The backend's own origin needs no CORS, and gets none.
    const own = await openSession(b.url, { origin: b.url })
    expect(own.status).toBe(200)
    expect(own.headers.get('access-control-allow-origin')).toBeNull()
    // A session WebSocket from a foreign origin is refused before it can join anything.
    const ws = new WebSocket(`${b.mqttUrl}?transport=websocket&sid=x.y&c=1&ack=0`, { headers: { origin: 'https://evil.example' } })
    const status = await new Promise<number>((resolve) => ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)))
    expect(status).toBe(403)
  })

  it('the per-address budget counts sessions and WebSockets together', async () => {
    const b = await testBackend({ limits: { ...DEFAULT_LIMITS, maxConnectionsPerAddress: 2 } })
    cleanups.push(() => b.close())
    expect((await openSession(b.url)).status).toBe(200)
    expect((await openSession(b.url, {}, 'sse')).status).toBe(200)
    // The address's sessions fill its budget: the module's own answer.
    const third = await openSession(b.url)
    expect(third.status).toBe(429)
    expect(await third.json()).toMatchObject({ error: 'TOO_MANY_SESSIONS' })
    // And a plain WebSocket from that address is over the budget too.
    const ws = new WebSocket(b.mqttUrl, ['mqtt'])
    const status = await new Promise<number>((resolve) => ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)))
    expect(status).toBe(429)
    expect(b.log.entries().filter((e) => e.event === 'ws.refused' && e.reason === 'too-many-connections').length).toBeGreaterThanOrEqual(2)
  })

  it('WebSockets filling the budget refuse a new session for now (429)', async () => {
    const b = await testBackend({ limits: { ...DEFAULT_LIMITS, maxConnectionsPerAddress: 1 } })
    cleanups.push(() => b.close())
    const ws = new WebSocket(b.mqttUrl, ['mqtt'])
    cleanups.push(() => ws.terminate())
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject))
    // A refusal for now: 429 with Retry-After (the client backs off and retries), not a 401 that would stop it.
    const refused = await openSession(b.url)
    expect(refused.status).toBe(429)
    expect(refused.headers.get('retry-after')).toBe('5')
    ws.close()
    let status = 0
    // The socket's close frees the budget a moment later.
    for (const deadline = Date.now() + 5000; status !== 200 && Date.now() < deadline;) status = (await openSession(b.url)).status
    expect(status).toBe(200)
  })

  it('a packet announced over the MQTT packet bound ends the session before anything is buffered', async () => {
    const { sid } = (await (await openSession(backend.url, {}, 'polling')).json()) as { sid: string }
    // A CONNECT header announcing 268 MB.
    const packet = { seq: 1, m: [{ b: Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f]).toString('base64') }], ack: 0 }
    const up = await fetch(`${backend.url}/mqtt?transport=polling&sid=${encodeURIComponent(sid)}`, { method: 'POST', body: JSON.stringify(packet) })
    expect(up.status).toBe(200)
    const down = (await (await fetch(`${backend.url}/mqtt?transport=polling&sid=${encodeURIComponent(sid)}&c=1&ack=0`)).json()) as { m: unknown[] }
    expect(down.m).toEqual([{ close: [4413, 'packet too large'] }])
    expect(backend.log.entries().some((e) => e.event === 'mqtt.packet_too_large' && e.transport === 'polling')).toBe(true)
  })

  it.each(['long-polling', 'websocket'] as const)(
    'with an external broker (BROKER_URL), /mqtt bridges each %s connection to it: the unlock arrives through the broker',
    async (kind) => {
      const mosquitto = await startMosquitto()
      cleanups.push(() => mosquitto.close())
      const b = await testBackend({}, { BROKER_URL: mosquitto.url })
      cleanups.push(() => b.close())
      const rider = `ext_${kind.replace('-', '_')}`
      const client = await riderClient(`${b.url.replace(/^http/, 'ws')}/mqtt`, rider, [kind], b.url)
      await client.connect()
      expect(client.transport).toBe(kind)
      const unlocked = await firstMessage(client, 'mobike/unlocked/ext-1')
      const token = await login(b.url, rider)
      expect((await api(b.url, 'POST', '/api/bikes/ext-1/unlock', { token })).status).toBe(202)
      expect(JSON.parse((await unlocked()).text())).toMatchObject({ bike: 'ext-1', rider })
    },
  )
})
