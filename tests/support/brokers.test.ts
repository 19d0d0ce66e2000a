/**
 * Proves the broker helpers of ./brokers behave as documented, with MQTT.js (Node side, over ws) as the
 * client: aedes in process (MQTT 3.1.1) and a mosquitto child process (MQTT 3.1.1 and 5).
 * Mosquitto suites are skipped when the binary is missing, except under CI (CI=true), where a missing
 * `.ci/install-system.sh` step must fail loudly.
 */
import { afterEach, describe, expect, it } from 'vitest'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { WebSocket } from 'ws'
import { hasMosquitto, startAedes, startMosquitto, type AedesBroker, type MosquittoBroker } from './brokers'

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.()
})

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)
    }),
  ])
}

/** Resolves true if `p` settles within `ms`, false otherwise (never rejects). */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const settled = await Promise.race([
    p.then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms)
    }),
  ])
  clearTimeout(timer)
  return settled
}

async function aedes(opts?: Parameters<typeof startAedes>[0]): Promise<AedesBroker> {
  const b = await startAedes(opts)
  cleanups.push(() => b.close())
  return b
}

async function mosquitto(opts?: Parameters<typeof startMosquitto>[0]): Promise<MosquittoBroker> {
  const b = await startMosquitto(opts)
  cleanups.push(() => b.close())
  return b
}

const base: IClientOptions = { connectTimeout: 2000, reconnectPeriod: 0, keepalive: 30 }

async function client(url: string, opts: IClientOptions = {}): Promise<MqttClient> {
  const c = await withTimeout(mqtt.connectAsync(url, { ...base, ...opts }), 4000, `connect ${url}`)
  cleanups.push(() => c.endAsync(true))
  return c
}

/** Connects expecting a refusal; returns the error (with `code` = CONNACK return/reason code). */
async function refused(url: string, opts: IClientOptions): Promise<Error & { code?: number }> {
  try {
    const c = await withTimeout(mqtt.connectAsync(url, { ...base, ...opts }), 4000, `connect ${url}`)
    cleanups.push(() => c.endAsync(true))
  } catch (err) {
    return err as Error & { code?: number }
  }
  throw new Error('connection was accepted')
}

function nextMessage(c: MqttClient, topic: string, ms = 3000): Promise<{ payload: string; retain: boolean }> {
  return withTimeout(
    new Promise((resolve) => {
      const onMessage = (t: string, payload: Buffer, packet: { retain?: boolean }): void => {
        if (t !== topic) return
        c.off('message', onMessage)
        resolve({ payload: payload.toString(), retain: !!packet.retain })
      }
      c.on('message', onMessage)
    }),
    ms,
    `message on ${topic}`,
  )
}

function nextEvent(c: MqttClient, event: 'connect' | 'close' | 'offline', ms = 3000): Promise<unknown> {
  return withTimeout(new Promise((resolve) => c.once(event as 'connect', resolve)), ms, `client ${event}`)
}

describe('startAedes', () => {
  it('carries pub/sub over ws (MQTT 3.1.1) and echoes the mqtt subprotocol', async () => {
    const b = await aedes()
    expect(b.url).toBe(`ws://127.0.0.1:${b.port}/mqtt`)

    const sub = await client(b.url, { protocolVersion: 4 })
    const pub = await client(b.url, { protocolVersion: 4 })
    expect(b.clients()).toBe(2)
    await sub.subscribeAsync('t/1', { qos: 1 })
    const got = nextMessage(sub, 't/1')
    await pub.publishAsync('t/1', 'hello', { qos: 1 })
    expect((await got).payload).toBe('hello')

    // server-side publish, retained: a later subscriber gets it
    await b.publish('t/retained', 'kept', { qos: 1, retain: true })
    const late = await client(b.url, { protocolVersion: 4 })
    const retained = nextMessage(late, 't/retained')
    await late.subscribeAsync('t/retained')
    expect(await retained).toEqual({ payload: 'kept', retain: true })

    for (const offered of [['mqtt'], ['mqttv3.1']]) {
      const ws = new WebSocket(b.url, offered)
      await withTimeout(new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject)), 2000, 'ws open')
      expect(ws.protocol).toBe(offered[0])
      ws.terminate()
    }
  })

  it('offers a plain TCP listener too when asked', async () => {
    const b = await aedes({ tcp: true })
    expect(b.tcpPort).toBeGreaterThan(0)
    const tcp = await client(`mqtt://127.0.0.1:${b.tcpPort}`, { protocolVersion: 4 })
    const ws = await client(b.url, { protocolVersion: 4 })
    await ws.subscribeAsync('x')
    const got = nextMessage(ws, 'x')
    await tcp.publishAsync('x', 'over tcp', { qos: 1 })
    expect((await got).payload).toBe('over tcp')
  })

  it('stop() drops clients and keeps the port; start() lets them reconnect to the same session', async () => {
    const b = await aedes({ tcp: true })
    const { port, tcpPort } = b
    const c = await client(b.url, {
      protocolVersion: 4,
      clientId: 'keeper',
      clean: false,
      reconnectPeriod: 100,
      resubscribe: false, // prove the broker kept the subscription, not the client
    })
    await c.subscribeAsync('s/#', { qos: 1 })
    const closed = nextEvent(c, 'close')
    await b.stop()
    await closed
    expect(b.listening).toBe(false)
    expect(b.clients()).toBe(0)
    await expect(withTimeout(mqtt.connectAsync(b.url, { ...base, connectTimeout: 500 }), 1500, 'connect while stopped')).rejects.toThrow()

    // published while the client is away: queued in its persistent session (QoS 1)
    await b.publish('s/while-down', 'queued', { qos: 1 })
    const reconnected = nextEvent(c, 'connect', 4000)
    const queued = nextMessage(c, 's/while-down', 4000)
    await b.start()
    expect(b.port).toBe(port)
    expect(b.tcpPort).toBe(tcpPort)
    expect((await reconnected) as { sessionPresent: boolean }).toMatchObject({ sessionPresent: true })
    expect((await queued).payload).toBe('queued')
    const fresh = nextMessage(c, 's/after')
    await b.publish('s/after', 'live', { qos: 1 })
    expect((await fresh).payload).toBe('live')

    const again = nextEvent(c, 'connect', 4000)
    await b.restart()
    await again
    expect(b.clients()).toBe(1)
  })

  it('refuses logins with CONNACK return code 4 (false) or the thrown returnCode, and gates subscriptions', async () => {
    const b = await aedes({
      authenticate: (_client, username, password) => {
        if (username === 'banned') throw Object.assign(new Error('banned'), { returnCode: 5 })
        return username === 'alice' && password === 's3cret'
      },
      authorizeSubscribe: (_client, sub) => !sub.topic.startsWith('secret/'),
    })
    expect((await refused(b.url, { protocolVersion: 4, username: 'alice', password: 'wrong' })).code).toBe(4)
    expect((await refused(b.url, { protocolVersion: 4 })).code).toBe(4)
    expect((await refused(b.url, { protocolVersion: 4, username: 'banned', password: 'x' })).code).toBe(5)
    expect(b.clients()).toBe(0)

    const ok = await client(b.url, { protocolVersion: 4, username: 'alice', password: 's3cret' })
    // MQTT.js rejects a SUBACK holding any 0x80; the packet still tells which topic was refused
    const err = (await ok.subscribeAsync(['open/1', 'secret/1']).then(
      () => undefined,
      (e: unknown) => e,
    )) as { packet?: { granted?: number[] } } | undefined
    expect(err?.packet?.granted).toEqual([0, 128])
  })
})

const requireMosquitto = !!process.env.CI
describe.skipIf(!hasMosquitto() && !requireMosquitto)('startMosquitto', () => {
  it.each([4, 5] as const)('carries pub/sub over ws with MQTT protocolVersion %i', async (protocolVersion) => {
    const b = await mosquitto()
    expect(b.url).toBe(`ws://127.0.0.1:${b.wsPort}`)
    expect(b.mqttPort).not.toBe(b.wsPort)
    const sub = await client(b.url, { protocolVersion })
    const pub = await client(b.url, { protocolVersion })
    const tcp = await client(b.mqttUrl, { protocolVersion })
    await sub.subscribeAsync('m/#', { qos: 1 })
    const got = nextMessage(sub, 'm/1')
    await pub.publishAsync('m/1', `v${protocolVersion}`, { qos: 1 })
    expect((await got).payload).toBe(`v${protocolVersion}`)
    const viaTcp = nextMessage(sub, 'm/2')
    await tcp.publishAsync('m/2', 'tcp', { qos: 1 })
    expect((await viaTcp).payload).toBe('tcp')
  })

  it('with users: refuses a bad password with a reason code, accepts a good one', async () => {
    const b = await mosquitto({ users: { alice: 's3cret', bob: 'hunter2' } })
    expect(b.log()).not.toMatch(/Error/)

    const v4 = await refused(b.url, { protocolVersion: 4, username: 'alice', password: 'wrong' })
    expect(v4.code).toBe(5) // mosquitto 2.0 answers 3.1.1 bad credentials with "not authorized"
    const anon = await refused(b.url, { protocolVersion: 4 })
    expect(anon.code).toBe(5)
    const v5 = await refused(b.url, { protocolVersion: 5, username: 'alice', password: 'wrong' })
    expect(v5.code).toBe(135) // 0x87 Not authorized (not 0x86 Bad User Name or Password)

    const alice = await client(b.url, { protocolVersion: 4, username: 'alice', password: 's3cret' })
    const bob = await client(b.url, { protocolVersion: 5, username: 'bob', password: 'hunter2' })
    await bob.subscribeAsync('u/1', { qos: 1 })
    const got = nextMessage(bob, 'u/1')
    await alice.publishAsync('u/1', 'hi bob', { qos: 1 })
    expect((await got).payload).toBe('hi bob')
  })

  it('pause() (SIGSTOP) makes the broker silent; resume() lets the backlog through', async () => {
    const b = await mosquitto()
    const sub = await client(b.url, { protocolVersion: 4 })
    const pub = await client(b.url, { protocolVersion: 4 })
    await sub.subscribeAsync('p/1', { qos: 1 })
    const got = nextMessage(sub, 'p/1', 5000)

    b.pause()
    expect(b.paused).toBe(true)
    const published = pub.publishAsync('p/1', 'after pause', { qos: 1 })
    expect(await settlesWithin(published, 400)).toBe(false) // no PUBACK
    expect(await settlesWithin(got, 100)).toBe(false) // no delivery
    // a new client's CONNECT gets no CONNACK (the kernel still accepts the TCP connection)
    const late = mqtt.connect(b.url, { ...base, connectTimeout: 5000 })
    cleanups.push(() => late.endAsync(true))
    expect(await settlesWithin(new Promise((r) => late.once('connect', r)), 300)).toBe(false)

    b.resume()
    expect(b.paused).toBe(false)
    await withTimeout(published, 3000, 'PUBACK after resume')
    expect((await got).payload).toBe('after pause')
  })

  it('stop()/start() keeps the ports and a client reconnects', async () => {
    const b = await mosquitto()
    const { mqttPort, wsPort } = b
    const pid = b.pid
    const c = await client(b.url, { protocolVersion: 5, reconnectPeriod: 100 })
    const closed = nextEvent(c, 'close')
    await b.stop()
    await closed
    expect(b.pid).toBeUndefined()
    const reconnected = nextEvent(c, 'connect', 5000)
    await b.start()
    expect([b.mqttPort, b.wsPort]).toEqual([mqttPort, wsPort])
    expect(b.pid).not.toBe(pid)
    await reconnected
    await b.restart()
    await nextEvent(c, 'connect', 5000)
  })
})

describe('startMosquitto without the binary', () => {
  it('hasMosquitto() is false and startMosquitto() points at .ci/install-system.sh', async () => {
    const saved = process.env.MOSQUITTO_BIN
    process.env.MOSQUITTO_BIN = '/nonexistent/mosquitto'
    try {
      expect(hasMosquitto()).toBe(false)
      await expect(startMosquitto()).rejects.toThrow(/install-system\.sh/)
    } finally {
      if (saved === undefined) delete process.env.MOSQUITTO_BIN
      else process.env.MOSQUITTO_BIN = saved
    }
  })
})
