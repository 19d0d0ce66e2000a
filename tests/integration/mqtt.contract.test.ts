/**
 * The MQTT entry against real brokers on loopback: aedes in process (MQTT 3.1.1) and Debian's mosquitto (3.1.1 and
 * 5), through the wx and uni SocketTask simulators and the web adapter over `ws`. The other side of each flow is a
 * plain MQTT.js client in Node.
 */
import mqtt, { type MqttClient as NodeMqttClient } from 'mqtt'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { createWebAdapter, ErrorCode, type WebSocketConstructor } from '../../uni_modules/longlink-socket/js_sdk/index'
import { createMqttClient, type MqttClient, type MqttClientOptions, type MqttMessage } from '../../uni_modules/longlink-socket/js_sdk/mqtt'
import { hasMosquitto, startAedes, startMosquitto, type AedesBroker, type MosquittoBroker } from '../support/brokers'
import { startFaultProxy } from '../support/fault-proxy'
import { createUniSimulator, createWxSimulator } from '../support/socket-task-sim'
import { sleep, until } from '../support/wait'

type Sim = ReturnType<typeof createWxSimulator>

interface BrokerFixture {
  name: string
  protocolVersion: 4 | 5
  start(
    users?: Record<string, string>,
  ): Promise<{ url: string; port: number; restart(): Promise<void>; close(): Promise<void>; pause?(): void; resume?(): void }>
}

const brokers: BrokerFixture[] = [
  {
    name: 'aedes (3.1.1)',
    protocolVersion: 4,
    async start(users) {
      const b: AedesBroker = await startAedes(users ? { authenticate: (_c, u, p) => users[u ?? ''] === p } : {})
      return { url: b.url, port: b.port, restart: () => b.restart(), close: () => b.close() }
    },
  },
  ...([4, 5] as const).map((v) => ({
    name: `mosquitto (${v === 4 ? '3.1.1' : '5'})`,
    protocolVersion: v,
    async start(users?: Record<string, string>) {
      const b: MosquittoBroker = await startMosquitto(users ? { users } : {})
      return { url: b.url, port: b.wsPort, restart: () => b.restart(), close: () => b.close(), pause: () => b.pause(), resume: () => b.resume() }
    },
  })),
]

if (!hasMosquitto()) throw new Error('mosquitto is not installed: run .ci/install-system.sh (CI does)')

/** A Node-side MQTT.js peer: the "backend" of each flow. */
async function peer(url: string, protocolVersion: 4 | 5): Promise<NodeMqttClient> {
  return mqtt.connectAsync(url, { protocolVersion, reconnectPeriod: 0, clientId: `peer_${Math.random().toString(36).slice(2, 10)}` })
}

function collect(): { messages: MqttMessage[]; handler: (m: MqttMessage) => void } {
  const messages: MqttMessage[] = []
  return { messages, handler: (m) => messages.push(m) }
}

describe.each(brokers)('MQTT over $name', (fixture) => {
  let broker: Awaited<ReturnType<BrokerFixture['start']>>
  let sim: Sim
  const clients: MqttClient[] = []
  const peers: NodeMqttClient[] = []

  function client(options: Partial<MqttClientOptions> = {}): MqttClient {
    const c = createMqttClient({
      url: broker.url,
      platform: sim as never,
      protocolVersion: fixture.protocolVersion,
      reconnect: { min: 50, max: 500 },
      ...options,
    })
    clients.push(c)
    return c
  }

  async function backend(): Promise<NodeMqttClient> {
    const p = await peer(broker.url, fixture.protocolVersion)
    peers.push(p)
    return p
  }

  beforeAll(async () => {
    broker = await fixture.start()
  })
  afterAll(async () => {
    await broker.close()
  })
  beforeEach(() => {
    sim = createWxSimulator()
  })
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.end(true).catch(() => {})))
    await Promise.all(peers.splice(0).map((p) => p.endAsync(true).catch(() => {})))
    sim.dispose()
  })

  it('runs the bike-unlock flow: connect, subscribe, unlock, message, end', async () => {
    const rider = client({ keepalive: 30, clientId: `rider_${Date.now()}` })
    await rider.connect()
    expect(rider.state).toBe('open')
    // Subscribe first, then ask for the unlock, so the message cannot be missed.
    const unlocked = rider.waitFor('mobike/unlocked/B42', { timeout: 5000, qos: 1 })
    await sleep(50)
    const server = await backend()
    await server.publishAsync('mobike/unlocked/B42', JSON.stringify({ bike: 'B42', rider: 'r1' }), { qos: 1 })
    const message = await unlocked
    expect(message.topic).toBe('mobike/unlocked/B42')
    expect(message.json()).toEqual({ bike: 'B42', rider: 'r1' })
    expect(message.qos).toBe(1)
    await rider.end()
    expect(rider.state).toBe('closed')
  })

  it('publishes with QoS 1 and a 200 KB binary payload arrives byte-exact', async () => {
    const c = client()
    await c.connect()
    const server = await backend()
    await server.subscribeAsync('bin/#', { qos: 1 })
    const got = new Promise<Buffer>((resolve) => server.on('message', (_t, payload) => resolve(payload)))
    const whole = new Uint8Array(200_010).map((_, i) => (i * 7) % 256)
    await c.publish('bin/blob', whole.subarray(10), { qos: 1 })
    const payload = await got
    expect(payload.length).toBe(200_000)
    expect(Buffer.compare(payload, Buffer.from(whole.subarray(10)))).toBe(0)
    // And the other way round.
    // mosquitto over WebSocket holds a 200 KB message for about 5 s on its way to a plain MQTT.js peer: time enough.
    const back = c.waitFor('bin/back', { timeout: 15_000 })
    await sleep(50)
    await server.publishAsync('bin/back', Buffer.from(whole.subarray(10)), { qos: 1 })
    const received = await back
    expect(received.payload.byteLength).toBe(200_000)
    expect(Buffer.compare(Buffer.from(received.payload), Buffer.from(whole.subarray(10)))).toBe(0)
  })

  it('dispatches by wildcard: only handlers whose filter matches run', async () => {
    const c = client()
    await c.connect()
    const plus = collect()
    const hash = collect()
    const exact = collect()
    const other = collect()
    await c.subscribe('city/+/bikes', plus.handler)
    await c.subscribe('city/#', hash.handler)
    await c.subscribe('city/sh/bikes', exact.handler)
    await c.subscribe('town/#', other.handler)
    const server = await backend()
    await server.publishAsync('city/sh/bikes', 'a', { qos: 1 })
    await server.publishAsync('city/bj', 'b', { qos: 1 })
    await until(() => hash.messages.length >= 2, 3000, 'two messages on city/#')
    await sleep(100)
    expect(plus.messages.map((m) => m.text())).toEqual(['a'])
    expect(exact.messages.map((m) => m.text())).toEqual(['a'])
    expect(hash.messages.map((m) => m.text()).sort()).toEqual(['a', 'b'])
    expect(other.messages).toEqual([])
  })

  it('isolates a throwing handler and keeps the client open', async () => {
    const c = client()
    await c.connect()
    const errors: string[] = []
    c.on('error', (e) => errors.push(e.code))
    const good = collect()
    await c.subscribe('t/x', () => {
      throw new Error('boom')
    })
    await c.subscribe('t/x', good.handler)
    const server = await backend()
    await server.publishAsync('t/x', '1', { qos: 1 })
    await server.publishAsync('t/x', '2', { qos: 1 })
    await until(() => good.messages.length === 2, 3000, 'both messages')
    expect(errors).toEqual([ErrorCode.HANDLER_ERROR, ErrorCode.HANDLER_ERROR])
    expect(c.state).toBe('open')
  })

  it('sends UNSUBSCRIBE only when the last handler of a filter leaves', async () => {
    const c = client()
    await c.connect()
    const first = collect()
    const second = collect()
    const s1 = await c.subscribe('u/t', first.handler)
    const s2 = await c.subscribe('u/t', second.handler)
    const server = await backend()
    await s1.unsubscribe()
    await server.publishAsync('u/t', 'still', { qos: 1 })
    await until(() => second.messages.length === 1, 3000, 'message to the remaining handler')
    expect(first.messages).toEqual([])
    await s2.unsubscribe()
    await server.publishAsync('u/t', 'gone', { qos: 1 })
    const seen: string[] = []
    c.on('message', (m) => seen.push(m.topic))
    await sleep(300)
    // The broker no longer sends: nothing arrives at the client at all.
    expect(seen).toEqual([])
  })

  it('waitFor times out with TIMEOUT and cleans up', async () => {
    const c = client()
    await c.connect()
    await expect(c.waitFor('never/here', { timeout: 200 })).rejects.toMatchObject({ code: ErrorCode.TIMEOUT })
    const seen: string[] = []
    c.on('message', (m) => seen.push(m.topic))
    const server = await backend()
    await server.publishAsync('never/here', 'late', { qos: 1 })
    await sleep(300)
    expect(seen).toEqual([])
  })

  it('keeps two clients on one host apart', async () => {
    const a = client()
    const b = client()
    await Promise.all([a.connect(), b.connect()])
    const gotA = collect()
    const gotB = collect()
    await a.subscribe('two/a', gotA.handler)
    await b.subscribe('two/b', gotB.handler)
    const server = await backend()
    await server.publishAsync('two/a', 'for a', { qos: 1 })
    await server.publishAsync('two/b', 'for b', { qos: 1 })
    await until(() => gotA.messages.length === 1 && gotB.messages.length === 1, 3000, 'one message each')
    await a.end()
    await server.publishAsync('two/b', 'b again', { qos: 1 })
    await until(() => gotB.messages.length === 2, 3000, 'b still receiving after a ended')
    expect(gotA.messages.map((m) => m.text())).toEqual(['for a'])
    expect(b.state).toBe('open')
  })

  it('resubscribes after a broker restart and messages flow again', async () => {
    const c = client({ reconnect: { min: 100, max: 400 } })
    const opens: { sessionPresent: boolean; reconnected: boolean }[] = []
    c.on('open', (e) => opens.push(e))
    await c.connect()
    const got = collect()
    await c.subscribe('restart/t', got.handler, { qos: 1 })
    await broker.restart()
    await until(() => opens.length === 2, 8000, 'the reconnect')
    expect(opens[1]).toMatchObject({ reconnected: true, sessionPresent: false })
    const server = await backend()
    await server.publishAsync('restart/t', 'after', { qos: 1 })
    await until(() => got.messages.length === 1, 3000, 'a message after the restart')
  })

  it('delivers QoS 1 messages sent while a clean: false subscriber was offline, exactly once', async () => {
    const clientId = `durable_${fixture.protocolVersion}_${Date.now()}`
    const c = client({ clientId, clean: false, reconnect: { min: 50, max: 200 } })
    await c.connect()
    const got = collect()
    await c.subscribe('durable/t', got.handler, { qos: 1 })
    sim.setNetwork('none')
    await until(() => c.state === 'offline', 3000, 'offline')
    const server = await backend()
    for (let i = 0; i < 5; i++) await server.publishAsync('durable/t', `m${i}`, { qos: 1 })
    sim.setNetwork('wifi')
    await until(() => got.messages.length >= 5, 5000, 'the five messages')
    await sleep(300)
    expect(got.messages.map((m) => m.text())).toEqual(['m0', 'm1', 'm2', 'm3', 'm4'])
  })

  it('queues publishes while offline and sends them on reconnect; QUEUE_FULL past queue.max', async () => {
    const c = client({ queue: { max: 3 } })
    await c.connect()
    const server = await backend()
    await server.subscribeAsync('queued/t', { qos: 1 })
    const received: string[] = []
    server.on('message', (_t, p) => received.push(p.toString()))
    sim.setNetwork('none')
    await until(() => c.state === 'offline', 3000, 'offline')
    const sent = [c.publish('queued/t', 'q1', { qos: 1 }), c.publish('queued/t', 'q2'), c.publish('queued/t', 'q3', { qos: 1 })]
    await expect(c.publish('queued/t', 'q4')).rejects.toMatchObject({ code: ErrorCode.QUEUE_FULL })
    sim.setNetwork('wifi')
    await Promise.all(sent)
    await until(() => received.length === 3, 3000, 'three queued messages')
    expect(received.sort()).toEqual(['q1', 'q2', 'q3'])
  })

  it('ends on purpose: no reconnect, pending work rejects with CLOSED', async () => {
    const c = client()
    await c.connect()
    const waiting = expect(c.waitFor('end/t', { timeout: 5000 })).rejects.toMatchObject({ code: ErrorCode.CLOSED })
    const states: string[] = []
    c.on('state', (s) => states.push(s.to))
    await c.end()
    await waiting
    await sleep(300)
    expect(c.state).toBe('closed')
    expect(states).toEqual(['closing', 'closed'])
    await expect(c.publish('end/t', 'x')).rejects.toMatchObject({ code: ErrorCode.CLOSED })
  })
})

describe.each(brokers)('MQTT login over $name', (fixture) => {
  let broker: Awaited<ReturnType<BrokerFixture['start']>>
  let sim: Sim
  beforeAll(async () => {
    broker = await fixture.start({ rider: 'right' })
    sim = createWxSimulator()
  })
  afterAll(async () => {
    sim.dispose()
    await broker.close()
  })

  it('a refused login gives NOT_AUTHORIZED and no retry loop', async () => {
    const c = createMqttClient({
      url: broker.url,
      platform: sim as never,
      protocolVersion: fixture.protocolVersion,
      username: 'rider',
      password: 'wrong',
      reconnect: { min: 20, max: 50 },
    })
    const attempts: string[] = []
    c.on('state', (s) => s.to === 'connecting' && attempts.push(s.reason))
    await expect(c.connect()).rejects.toMatchObject({ code: ErrorCode.NOT_AUTHORIZED })
    await sleep(400)
    expect(attempts).toHaveLength(1)
    expect(c.state).toBe('closed')
    expect(sim.openTasks()).toBe(0)
  })

  it('retries once the auth hook yields new credentials', async () => {
    const passwords = ['wrong', 'right']
    let calls = 0
    const c = createMqttClient({
      url: broker.url,
      platform: sim as never,
      protocolVersion: fixture.protocolVersion,
      auth: () => ({ username: 'rider', password: passwords[Math.min(calls++, 1)] }),
    })
    const errors: string[] = []
    c.on('error', (e) => errors.push(e.code))
    await c.connect()
    expect(c.state).toBe('open')
    expect(errors).toEqual([ErrorCode.NOT_AUTHORIZED])
    await c.end()
  })
})

describe('MQTT keepalive finds a half-open link', () => {
  it('within 1.5 × keepalive (fault proxy blackhole, aedes)', async () => {
    const broker = await startAedes()
    const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: broker.port } })
    const sim = createWxSimulator()
    const c = createMqttClient({ url: proxy.url('/mqtt'), platform: sim as never, keepalive: 1, reconnect: { min: 50, max: 100 } })
    try {
      await c.connect()
      const since = Date.now()
      proxy.mode('blackhole')
      const closed = await new Promise<{ reason: string }>((resolve) => c.on('close', resolve))
      expect(closed.reason).toBe('heartbeat-timeout')
      expect(Date.now() - since).toBeLessThanOrEqual(1500 + 700)
      proxy.mode('pass')
      await until(() => c.state === 'open', 5000, 'reconnected')
    } finally {
      await c.end(true)
      sim.dispose()
      await proxy.close()
      await broker.close()
    }
  })

  it('within 1.5 × keepalive (mosquitto stopped with SIGSTOP)', async () => {
    const broker = await startMosquitto()
    const sim = createWxSimulator()
    const c = createMqttClient({ url: broker.url, platform: sim as never, keepalive: 1, reconnect: { min: 50, max: 100 } })
    try {
      await c.connect()
      const since = Date.now()
      broker.pause()
      const closed = await new Promise<{ reason: string }>((resolve) => c.on('close', resolve))
      expect(closed.reason).toBe('heartbeat-timeout')
      expect(Date.now() - since).toBeLessThanOrEqual(1500 + 700)
      broker.resume()
      await until(() => c.state === 'open', 8000, 'reconnected after SIGCONT')
    } finally {
      await c.end(true)
      sim.dispose()
      await broker.close()
    }
  })
})

describe('MQTT verifies the link when the app is shown again or the network type changes', () => {
  let broker: AedesBroker
  let proxy: Awaited<ReturnType<typeof startFaultProxy>>
  let sim: Sim
  beforeEach(async () => {
    broker = await startAedes()
    proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: broker.port } })
    sim = createWxSimulator()
  })
  afterEach(async () => {
    sim.dispose()
    await proxy.close()
    await broker.close()
  })

  it.each([
    ['shown again after a hide', (host: Sim) => (host.hide(), () => host.show())],
    ['the network type changes', (host: Sim) => () => host.setNetwork('4g')],
  ])('a message reaches the handler within 5 s when %s over a link that died silently (keepalive 30)', async (_when, arrange) => {
    const c = createMqttClient({ url: proxy.url('/mqtt'), platform: sim as never, keepalive: 30 })
    const got: string[] = []
    const closes: { reason: string }[] = []
    c.on('close', (e) => closes.push(e))
    let publisher: ReturnType<typeof setInterval> | undefined
    try {
      await c.connect()
      await c.subscribe('ride/r1', (m) => got.push(m.text()), { qos: 1 })
      const trigger = arrange(sim)
      // The link dies without a FIN or RST (a lost NAT mapping); new connections get through.
      proxy.mode('sever')
      const since = Date.now()
      trigger()
      // The backend keeps publishing the rider's event; the first copy that arrives ends the wait.
      publisher = setInterval(() => void broker.publish('ride/r1', 'unlocked', { qos: 1 }), 100)
      await until(() => got.length > 0, 8000, 'a message after the link was replaced')
      expect(Date.now() - since).toBeLessThan(5000)
      expect(closes).toEqual([expect.objectContaining({ reason: 'heartbeat-timeout', intentional: false })])
    } finally {
      clearInterval(publisher)
      await c.end(true)
    }
  })

  it('keeps a healthy link when shown again and when the network type changes', async () => {
    const c = createMqttClient({ url: proxy.url('/mqtt'), platform: sim as never, keepalive: 30, verifyTimeout: 300 })
    const states: string[] = []
    c.on('state', (e) => states.push(e.to))
    try {
      await c.connect()
      sim.hide()
      sim.show()
      await sleep(50)
      sim.setNetwork('4g')
      await sleep(600)
      expect(states).toEqual(['connecting', 'open'])
      expect(proxy.connections()).toBe(1)
      const got = c.waitFor('still/here', { timeout: 3000 })
      await sleep(50)
      await broker.publish('still/here', 'yes', { qos: 1 })
      expect((await got).text()).toBe('yes')
    } finally {
      await c.end()
    }
  })
})

describe('MQTT across platforms (aedes)', () => {
  let broker: AedesBroker
  beforeAll(async () => {
    broker = await startAedes({ authorizeSubscribe: (_c, sub) => !sub.topic.startsWith('forbidden/') })
  })
  afterAll(async () => {
    await broker.close()
  })

  const platforms = [
    { name: 'wx', make: () => createWxSimulator() as unknown as object },
    { name: 'uni', make: () => createUniSimulator() as unknown as object },
    { name: 'web', make: () => createWebAdapter(WebSocket as unknown as WebSocketConstructor) as unknown as object },
  ]

  it.each(platforms)('runs subscribe/publish over $name', async ({ make }) => {
    const platform = make()
    const c = createMqttClient({ url: broker.url, platform: platform as never })
    try {
      await c.connect()
      const got = c.waitFor('plat/t', { timeout: 3000 })
      await sleep(50)
      await c.publish('plat/t', { ok: true }, { qos: 1 })
      expect((await got).json()).toEqual({ ok: true })
    } finally {
      await c.end()
      ;(platform as { dispose?: () => void }).dispose?.()
    }
  })

  it('subscribes made before connect() resolve once connected, and messages flow', async () => {
    const sim = createWxSimulator()
    const c = createMqttClient({ url: broker.url, platform: sim as never })
    try {
      const got: string[] = []
      const early = c.subscribe('early/t', (m) => got.push(m.text()), { qos: 1 })
      await c.connect()
      const subscription = await early
      expect(subscription).toMatchObject({ filter: 'early/t', qos: 1 })
      await broker.publish('early/t', 'hello', { qos: 1 })
      await until(() => got.length === 1, 3000, 'the message')
    } finally {
      await c.end()
      sim.dispose()
    }
  })

  it('connects again after end()', async () => {
    const sim = createWxSimulator()
    const c = createMqttClient({ url: broker.url, platform: sim as never })
    try {
      await c.connect()
      await c.end()
      await c.connect()
      const got = c.waitFor('again/t', { timeout: 3000 })
      await sleep(50)
      await broker.publish('again/t', 'yes', { qos: 1 })
      expect((await got).text()).toBe('yes')
    } finally {
      await c.end()
      sim.dispose()
    }
  })

  it('publishes the will when the link dies without DISCONNECT', async () => {
    const sim = createWxSimulator()
    const watcher = await peer(broker.url, 4)
    await watcher.subscribeAsync('wills/#', { qos: 1 })
    const will = new Promise<string>((resolve) => watcher.on('message', (_t, p) => resolve(p.toString())))
    const c = createMqttClient({ url: broker.url, platform: sim as never, will: { topic: 'wills/r1', payload: { gone: 'r1' }, qos: 1 } })
    try {
      await c.connect()
      await c.end(true) // a hard close: no DISCONNECT, so the broker publishes the will
      expect(JSON.parse(await will)).toEqual({ gone: 'r1' })
    } finally {
      sim.dispose()
      await watcher.endAsync(true)
    }
  })

  it('pauses in the background and reconnects at once on show', async () => {
    const sim = createWxSimulator({ killOnHide: true, backgroundKillMs: 100 })
    const c = createMqttClient({ url: broker.url, platform: sim as never, reconnect: { min: 5000, max: 10_000 } })
    try {
      const got: string[] = []
      await c.connect()
      await c.subscribe('bg/t', (m) => got.push(m.text()))
      sim.hide()
      await until(() => c.state === 'offline', 3000, 'offline after the background kill')
      const started = Date.now()
      sim.show()
      await until(() => c.state === 'open', 3000, 'open again')
      expect(Date.now() - started).toBeLessThan(2500)
      await broker.publish('bg/t', 'back', { qos: 1 })
      await until(() => got.length === 1, 3000, 'a message after show')
    } finally {
      await c.end()
      sim.dispose()
    }
  })

  it('end() rejects a waitFor whose subscription the broker already acknowledged with CLOSED, at once', async () => {
    const sim = createWxSimulator()
    const c = createMqttClient({ url: broker.url, platform: sim as never })
    try {
      await c.connect()
      const waiting = c.waitFor('ended/t', { timeout: 20_000 })
      const outcome = waiting.then(
        () => 'message',
        (e) => e.code as string,
      )
      // Long enough for the SUBACK: the wait is now for a message only.
      await sleep(100)
      const since = Date.now()
      await c.end()
      expect(await outcome).toBe(ErrorCode.CLOSED)
      expect(Date.now() - since).toBeLessThan(2000)
    } finally {
      sim.dispose()
    }
  })

  it('a refused SUBACK rejects with SUBSCRIBE_REFUSED', async () => {
    const sim = createWxSimulator()
    const c = createMqttClient({ url: broker.url, platform: sim as never })
    try {
      await c.connect()
      await expect(c.subscribe('forbidden/x', () => {})).rejects.toMatchObject({ code: ErrorCode.SUBSCRIBE_REFUSED, reasonCode: 0x80 })
      expect(c.state).toBe('open')
    } finally {
      await c.end()
      sim.dispose()
    }
  })

  it('rejects bad filters and wildcard publishes with INVALID_TOPIC at once', () => {
    const c = createMqttClient({ url: broker.url, platform: createWxSimulator() as never })
    for (const filter of ['a/#/b', 'a+', ''])
      expect(() => c.subscribe(filter, () => {})).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_TOPIC }))
    expect(() => c.publish('a/+', 'x')).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_TOPIC }))
    expect(() => c.waitFor('#/a')).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_TOPIC }))
    expect(() => createMqttClient({ url: 'http://x', platform: createWxSimulator() as never })).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_URL }),
    )
    expect(() => createMqttClient({ url: broker.url, platform: createWxSimulator() as never, protocolVersion: 3 as never })).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_OPTION }),
    )
  })
})
