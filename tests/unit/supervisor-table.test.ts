/**
 * The supervisor's state machine, checked in milliseconds: one table of (state, event) → (next state, reason, effects)
 * run against both of its drivers, the core Connection and the MQTT client, over a scripted platform (fake adapter and
 * lifecycle host) under fake timers. The fake link answers like a real one would (a pong, a CONNACK, a SUBACK, a
 * PINGRESP) while it is alive and goes silent when the test kills it. The real-socket contract suites in
 * tests/integration are the end-to-end check of the same rules.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  createConnection,
  LongLinkError,
  type Adapter,
  type ConnectionState,
  type LifecycleHost,
  type TransportEvents,
  type WireData,
} from '../../uni_modules/longlink-socket/js_sdk/index'
import { createMqttClient } from '../../uni_modules/longlink-socket/js_sdk/mqtt'

// ---- a scripted platform ----------------------------------------------------------------------------------------

/** One link the fake adapter opened, with what the client sent on it. */
interface FakeLink {
  events: TransportEvents
  sent: WireData[]
  /** While false the link swallows everything and answers nothing (a silently dead link). */
  alive: boolean
  /** Set once the client asked the link to close. */
  closedBy?: { code?: number; reason?: string }
}

type Listener = (res?: unknown) => void

/** A fake adapter plus the lifecycle host behind it: the test drives network, hide and show. */
function createFakePlatform(answer: (link: FakeLink, data: WireData) => void) {
  const links: FakeLink[] = []
  const listeners = { network: [] as Listener[], show: [] as Listener[], hide: [] as Listener[] }
  let networkType = 'wifi'
  const remove = (list: Listener[], cb?: Listener) => list.splice(list.indexOf(cb!) >>> 0, 1)
  const lifecycle: LifecycleHost = {
    onNetworkStatusChange: (cb) => listeners.network.push(cb as Listener),
    offNetworkStatusChange: (cb) => remove(listeners.network, cb as Listener),
    getNetworkType: ({ success }) => success && success({ networkType }),
    onAppShow: (cb) => listeners.show.push(cb),
    offAppShow: (cb) => remove(listeners.show, cb),
    onAppHide: (cb) => listeners.hide.push(cb),
    offAppHide: (cb) => remove(listeners.hide, cb),
  }
  const adapter: Adapter = {
    name: 'fake',
    lifecycle,
    open(_request, events) {
      const link: FakeLink = { events, sent: [], alive: true }
      links.push(link)
      return {
        send(data) {
          const wire =
            typeof data === 'string' ? data : ArrayBuffer.isView(data) ? data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) : data
          // A dead link takes the bytes (the platform cannot know) and nothing ever answers them.
          link.sent.push(wire as WireData)
          if (link.alive) answer(link, wire as WireData)
          return Promise.resolve()
        },
        close(code, reason) {
          link.closedBy = { code, reason }
          // A live socket confirms the close, as platforms do, a moment later.
          if (link.alive) Promise.resolve().then(() => events.onClose(code ?? 1000, reason ?? ''))
        },
      }
    },
  }
  return {
    adapter,
    links,
    last: () => links[links.length - 1],
    setNetwork(type: string) {
      networkType = type
      for (const cb of [...listeners.network]) cb({ isConnected: type !== 'none', networkType: type })
    },
    hide: () => [...listeners.hide].forEach((cb) => cb()),
    show: () => [...listeners.show].forEach((cb) => cb()),
    listeners: () => listeners.network.length + listeners.show.length + listeners.hide.length,
  }
}

type Platform = ReturnType<typeof createFakePlatform>

/** Answers later, as a platform delivers: never from inside the client's own call. */
const later = (fn: () => void) => void Promise.resolve().then(fn)

// ---- MQTT bytes, just enough for the fake broker ---------------------------------------------------------------------

/** The packets in one frame: type and body. */
function packets(data: WireData): { type: number; flags: number; body: Uint8Array }[] {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : new Uint8Array(data)
  const out: { type: number; flags: number; body: Uint8Array }[] = []
  for (let i = 0; i < bytes.length;) {
    const head = bytes[i++]
    let length = 0
    for (let shift = 0; ; shift += 7) {
      const b = bytes[i++]
      length += (b & 0x7f) << shift
      if (!(b & 0x80)) break
    }
    out.push({ type: head >> 4, flags: head & 0x0f, body: bytes.subarray(i, i + length) })
    i += length
  }
  return out
}

/** The payloads of the PUBLISH packets a link carried, as text. */
function published(link: FakeLink): string[] {
  const texts: string[] = []
  for (const data of link.sent) {
    for (const p of packets(data)) {
      if (p.type !== 3) continue
      const topicLength = (p.body[0] << 8) | p.body[1]
      const start = 2 + topicLength + ((p.flags >> 1) & 3 ? 2 : 0)
      texts.push(new TextDecoder().decode(p.body.subarray(start)))
    }
  }
  return texts
}

/** The CONNACK return code the fake broker answers with (0: accepted, 5: not authorized). */
let connackCode = 0

/** A broker that answers every CONNECT, grants every SUBSCRIBE and answers every PINGREQ, while the link is alive. */
function fakeBroker(link: FakeLink, data: WireData): void {
  for (const p of packets(data)) {
    if (p.type === 1) later(() => link.alive && link.events.onMessage(new Uint8Array([0x20, 0x02, 0x00, connackCode]).buffer))
    if (p.type === 8) later(() => link.alive && link.events.onMessage(new Uint8Array([0x90, 0x03, p.body[0], p.body[1], 0x00]).buffer))
    if (p.type === 12) later(() => link.alive && link.events.onMessage(new Uint8Array([0xd0, 0x00]).buffer))
  }
}

/** Fake timers for the clients' timers and clock; promise reactions and setImmediate stay real. */
const useFakeClock = () => vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] })

/**
 * Lets `ms` of fake time pass, then lets every chain of promise reactions and due timers run out: MQTT.js passes a
 * CONNACK through stream callbacks that take a few turns to emit `connect`.
 */
async function settle(ms = 0): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms)
  for (let i = 0; i < 30; i++) {
    await new Promise((resolve) => setImmediate(resolve))
    await vi.advanceTimersByTimeAsync(0)
  }
}

// ---- the two drivers ------------------------------------------------------------------------------------------------

/** What the table needs of a client, whichever driver is behind it. */
interface Client {
  readonly state: ConnectionState
  on(event: string, handler: (payload: never) => void): () => void
  start(): Promise<void>
  stop(): Promise<void>
  /** Queues one application message (a send, a publish). */
  queue(text: string): Promise<void>
  /** The application messages a link carried. */
  carried(link: FakeLink): string[]
}

interface Driver {
  name: string
  /** How long an open link may stay silent before the driver's own watchdog drops it. */
  silenceMs: number
  /** The checks (heartbeat pings, PINGREQs) a link carried. */
  probes(link: FakeLink): number
  create(platform: Platform, extra?: Record<string, unknown>): Client
  /** Makes the link open as the platform and the server would (MQTT: the socket opens, CONNACK follows). */
  linkOpens(link: FakeLink): void
}

/** One shape for both clients: their state and events as they are, the rest named the same. */
function asClient(
  c: { readonly state: ConnectionState; on(event: never, handler: never): () => void },
  calls: Pick<Client, 'start' | 'stop' | 'queue'>,
  carried: Client['carried'],
): Client {
  return {
    get state() {
      return c.state
    },
    on: (event, handler) => c.on(event as never, handler as never),
    ...calls,
    carried,
  }
}

const drivers: Driver[] = [
  {
    name: 'Connection',
    silenceMs: 5000 + 2000,
    probes: (link) => link.sent.filter((d) => d === 'ping').length,
    create(platform, extra = {}) {
      const c = createConnection({
        url: 'ws://fake/ws',
        platform: platform.adapter,
        // The watchdog is slower than the check's own deadline, so the table sees the check decide.
        heartbeat: { interval: 5000, timeout: 2000 },
        verifyTimeout: 300,
        reconnect: { min: 1000, max: 8000, jitter: 0, maxRetries: 3 },
        ...extra,
      })
      return asClient(
        c,
        { start: () => c.open(), stop: () => c.close(), queue: (text) => c.send(text) },
        (link) => link.sent.filter((d) => d !== 'ping') as string[],
      )
    },
    linkOpens: (link) => link.events.onOpen(),
  },
  {
    name: 'MQTT client',
    silenceMs: 1.5 * 5000,
    probes: (link) => link.sent.reduce((n, d) => n + packets(d).filter((p) => p.type === 12).length, 0),
    create(platform, extra = {}) {
      const c = createMqttClient({
        url: 'ws://fake/mqtt',
        platform: platform.adapter,
        keepalive: 5,
        verifyTimeout: 300,
        reconnect: { min: 1000, max: 8000, jitter: 0, maxRetries: 3 },
        ...extra,
      })
      return asClient(c, { start: () => c.connect(), stop: () => c.end(), queue: (text) => c.publish('t', text) }, published)
    },
    linkOpens: (link) => link.events.onOpen(),
  },
]

// ---- the table --------------------------------------------------------------------------------------------------------

/** What an event did besides the transitions. */
interface Effects {
  /** The `close` event's reason, or false for none. */
  close: string | false
  /** The next attempt: after the backoff delay, at once (a new link is already being made), or none scheduled. */
  retry: 'backoff' | 'now' | false
  /** Errors reported, by code. */
  errors?: string[]
  /** Checks (pings, PINGREQs) the event made the client send on the link. */
  probes?: number
  /** The `close` event's message, when it matters. */
  message?: string
}

type From = 'idle' | 'connecting' | 'open' | 'open (hidden)' | 'reconnecting' | 'offline (network)' | 'offline (hidden)' | 'closing' | 'closed'

/** (state, event) → the transitions it causes, in order, as [state, reason] (none: the state stays), and its effects. */
type Row = [from: From, event: string, path: [ConnectionState, string][], effects: Effects]

const none: Effects = { close: false, retry: false }

const noAnswer: Effects = { close: 'heartbeat-timeout', retry: 'now', probes: 1, message: 'no answer to a check' }
const replacedAtOnce: [ConnectionState, string][] = [
  ['reconnecting', 'heartbeat-timeout'],
  ['connecting', 'reconnect'],
]

const table: Row[] = [
  ['idle', 'open()', [['connecting', 'open']], none],
  ['idle', 'close()', [['closed', 'user']], { close: 'user', retry: false }],
  ['connecting', 'link opens', [['open', 'connected']], none],
  ['connecting', 'open()', [], none],
  ['connecting', 'link closes', [['reconnecting', 'error']], { close: false, retry: 'backoff', errors: ['CONNECT_FAILED'] }],
  ['connecting', 'connect deadline', [['reconnecting', 'connect-timeout']], { close: false, retry: 'backoff', errors: ['CONNECT_TIMEOUT'] }],
  ['connecting', 'socket limit', [['closed', 'socket-limit']], { close: false, retry: false, errors: ['SOCKET_LIMIT'] }],
  // Refusals only the developer can lift (the mini-program's domain list, an unencrypted URL) stop as the limit does;
  // a TLS failure is retried (a portal network causes it too).
  ['connecting', 'domain refused', [['closed', 'error']], { close: false, retry: false, errors: ['DOMAIN_NOT_ALLOWED'] }],
  ['connecting', 'unencrypted URL refused', [['closed', 'error']], { close: false, retry: false, errors: ['INSECURE_URL'] }],
  ['connecting', 'TLS fails', [['reconnecting', 'error']], { close: false, retry: 'backoff', errors: ['TLS_FAILED'] }],
  ['connecting', 'network none', [['offline', 'network-lost']], none],
  ['connecting', 'network type changes', [], { ...none, probes: 0 }],
  ['connecting', 'hide', [['offline', 'background']], none],
  ['connecting', 'close()', [['closed', 'user']], { close: 'user', retry: false }],
  ['open', 'link closes', [['reconnecting', 'server']], { close: 'server', retry: 'backoff' }],
  ['open', 'link fails', [['reconnecting', 'error']], { close: 'error', retry: 'backoff', errors: ['SOCKET_ERROR'] }],
  ['open', 'socket limit', [['reconnecting', 'error']], { close: 'error', retry: 'backoff', errors: ['SOCKET_LIMIT'] }],
  ['open', 'link goes silent', [['reconnecting', 'heartbeat-timeout']], { close: 'heartbeat-timeout', retry: 'backoff' }],
  ['open', 'network none', [['offline', 'network-lost']], { close: 'network-lost', retry: false }],
  ['open', 'network type changes, probe answered', [], { ...none, probes: 1 }],
  ['open', 'network type changes, no answer', replacedAtOnce, noAnswer],
  ['open', 'hide, a while', [], { ...none, probes: 0 }],
  ['open', 'show without hide', [], { ...none, probes: 0 }],
  ['open (hidden)', 'show, probe answered', [], { ...none, probes: 1 }],
  ['open (hidden)', 'show, no answer', replacedAtOnce, noAnswer],
  ['open (hidden)', 'network type changes', [], { ...none, probes: 0 }],
  ['open (hidden)', 'link closes', [['offline', 'background']], { close: 'background', retry: false }],
  [
    'open',
    'close()',
    [
      ['closing', 'user'],
      ['closed', 'user'],
    ],
    { close: 'user', retry: false },
  ],
  ['reconnecting', 'retry timer', [['connecting', 'reconnect']], none],
  ['reconnecting', 'network none', [['offline', 'network-lost']], none],
  ['reconnecting', 'network type changes', [], none],
  ['reconnecting', 'hide', [['offline', 'background']], none],
  ['reconnecting', 'show without hide', [], none],
  ['reconnecting', 'close()', [['closed', 'user']], { close: 'user', retry: false }],
  ['offline (network)', 'network back', [['connecting', 'network-restored']], none],
  ['offline (network)', 'show without hide', [], none],
  ['offline (network)', 'close()', [['closed', 'user']], { close: 'user', retry: false }],
  ['offline (hidden)', 'show', [['connecting', 'foreground']], none],
  ['offline (hidden)', 'network type changes', [], none],
  ['closing', 'link confirms the close', [['closed', 'user']], { close: 'user', retry: false }],
  ['closing', 'link fails', [['closed', 'user']], { close: 'user', retry: false }],
  ['closing', 'network none', [], none],
  ['closing', 'hide', [], none],
  [
    'closing',
    'open()',
    [
      ['closed', 'user'],
      ['connecting', 'open'],
    ],
    { close: 'user', retry: false },
  ],
  ['closed', 'open()', [['connecting', 'open']], none],
  ['closed', 'close()', [], none],
]

/** The state a row starts from, as the client names it. */
const stateOf = (from: From) => from.split(' ')[0] as ConnectionState

describe.each(drivers)('supervisor table over the $name driver', (driver) => {
  let platform: Platform
  let client: Client
  let log: { states: { to: string; reason: string }[]; closes: { reason: string; message: string }[]; retries: { delay: number }[]; errors: string[] }

  beforeEach(() => {
    useFakeClock()
    platform = createFakePlatform((link, data) => {
      if (driver.name === 'Connection') {
        if (data === 'ping') later(() => link.alive && link.events.onMessage('pong'))
      } else fakeBroker(link, data)
    })
  })
  afterEach(async () => {
    const stopped = client.stop().catch(() => {})
    await settle(2000)
    await stopped
    vi.useRealTimers()
  })

  function track(c: Client): Client {
    log = { states: [], closes: [], retries: [], errors: [] }
    c.on('state', (e: { to: string; reason: string }) => log.states.push(e))
    c.on('close', (e: { reason: string; message: string }) => log.closes.push(e))
    c.on('reconnecting', (e: { delay: number }) => log.retries.push(e))
    c.on('error', (e: { code: string }) => log.errors.push(e.code))
    return c
  }

  /** Brings a fresh client to `from`, then forgets what happened on the way. */
  async function reach(from: From): Promise<void> {
    client = track(driver.create(platform))
    if (from === 'idle') return reset()
    client.start().catch(() => {})
    await settle()
    if (from !== 'connecting') {
      driver.linkOpens(platform.last())
      await settle()
      expect(client.state).toBe('open')
    }
    if (from === 'open (hidden)') platform.hide()
    if (from === 'reconnecting') {
      platform.last().events.onClose(4000, 'bye')
      await settle()
    }
    if (from === 'offline (network)') platform.setNetwork('none')
    if (from === 'offline (hidden)') {
      platform.hide()
      platform.last().events.onClose(1000, 'interrupted')
    }
    if (from === 'closing') {
      platform.last().alive = false // no confirmation: the close stays under way
      client.stop().catch(() => {})
    }
    if (from === 'closed') {
      const stopped = client.stop()
      await settle()
      await stopped
    }
    await settle()
    reset()
  }

  function reset(): void {
    log.states.length = log.closes.length = log.retries.length = log.errors.length = 0
  }

  async function apply(event: string): Promise<void> {
    const link = platform.last()
    const silently = () => {
      link.alive = false
    }
    switch (event) {
      case 'open()':
        client.start().catch(() => {})
        // From `closing`, the dead link never confirms: the close ends after its grace period (1 s), then the session
        // starts.
        return settle(1100)
      case 'link opens':
        driver.linkOpens(link)
        return settle()
      case 'link closes':
        link.events.onClose(4001, 'going away')
        return settle()
      case 'link fails':
        link.events.onError(new LongLinkError('SOCKET_ERROR', 'socket error: boom'))
        link.events.onClose(1006, 'abnormal closure')
        return settle()
      case 'link goes silent':
        silently()
        return settle(driver.silenceMs + 100)
      case 'connect deadline':
        return settle(10_000)
      case 'socket limit':
        link.events.onError(new LongLinkError('SOCKET_LIMIT', 'connectSocket:fail exceed max task count'))
        return settle()
      case 'domain refused':
        link.events.onError(new LongLinkError('DOMAIN_NOT_ALLOWED', 'connectSocket failed: connectSocket:fail url not in domain list'))
        return settle()
      case 'unencrypted URL refused':
        link.events.onError(new LongLinkError('INSECURE_URL', 'connectSocket failed: connectSocket:fail invalid url "ws://fake/ws"'))
        return settle()
      case 'TLS fails':
        link.events.onError(new LongLinkError('TLS_FAILED', 'socket error: ssl hand shake error'))
        return settle()
      case 'network none':
        platform.setNetwork('none')
        return settle()
      case 'network back':
        platform.setNetwork('wifi')
        return settle()
      case 'network type changes':
      case 'network type changes, probe answered':
        platform.setNetwork('4g')
        return settle(400)
      case 'network type changes, no answer':
        silently()
        platform.setNetwork('4g')
        return settle(400)
      case 'hide':
        platform.hide()
        return settle()
      case 'hide, a while':
        // Longer than the heartbeat interval and the keepalive: nothing is sent while hidden.
        platform.hide()
        return settle(6000)
      case 'show':
      case 'show without hide':
        platform.show()
        return settle()
      case 'show, probe answered':
        platform.show()
        return settle(400)
      case 'show, no answer':
        silently()
        platform.show()
        return settle(400)
      case 'retry timer':
        return settle(1000)
      case 'close()':
        client.stop().catch(() => {})
        return settle()
      case 'link confirms the close':
        link.alive = true
        link.events.onClose(1000, '')
        return settle()
    }
    throw new Error(`unknown event ${event}`)
  }

  it.each(table)('%s + %s', async (from, event, path, effects) => {
    await reach(from)
    expect(client.state).toBe(stateOf(from))
    const link = platform.last()
    const linksBefore = platform.links.length
    const probesBefore = link ? driver.probes(link) : 0
    await apply(event)
    expect(log.states.map((s) => [s.to, s.reason])).toEqual(path)
    expect(client.state).toBe(path.length ? path[path.length - 1][0] : stateOf(from))
    expect(log.closes.map((c) => c.reason)).toEqual(effects.close ? [effects.close] : [])
    if (effects.message) expect(log.closes[0]).toMatchObject({ message: effects.message })
    expect(log.errors).toEqual(effects.errors ?? [])
    if (effects.probes !== undefined) expect(driver.probes(link) - probesBefore).toBe(effects.probes)
    if (effects.retry === 'backoff') expect(log.retries).toEqual([expect.objectContaining({ delay: 1000 })])
    else if (effects.retry === 'now') {
      expect(log.retries).toEqual([expect.objectContaining({ delay: 0 })])
      expect(platform.links.length).toBe(linksBefore + 1)
    } else expect(log.retries).toEqual([])
    // Only the rows that start a new link made one.
    if (!path.some(([to]) => to === 'connecting')) expect(platform.links.length).toBe(linksBefore)
  })

  it('flushes what was queued while connecting, in order, once the link is open', async () => {
    client = track(driver.create(platform))
    const queued = [client.queue('q1'), client.queue('q2')]
    client.start().catch(() => {})
    await settle()
    expect(client.carried(platform.last())).toEqual([])
    driver.linkOpens(platform.last())
    await settle()
    await Promise.all(queued)
    expect(client.carried(platform.last())).toEqual(['q1', 'q2'])
  })

  it('stops every timer and platform listener once closed, and after the socket limit', async () => {
    await reach('open')
    const stopped = client.stop()
    await settle()
    await stopped
    expect(client.state).toBe('closed')
    expect(vi.getTimerCount(), 'timers left after close()').toBe(0)
    expect(platform.listeners()).toBe(0)
    await reach('connecting')
    await apply('socket limit')
    expect(client.state).toBe('closed')
    expect(vi.getTimerCount(), 'timers left after the socket limit').toBe(0)
    expect(platform.listeners()).toBe(0)
  })

  it('gives up after maxRetries failures in a row with RETRIES_EXHAUSTED', async () => {
    await reach('reconnecting')
    for (let i = 0; i < 3; i++) {
      await settle(8000)
      platform.last().events.onClose(1006, 'refused')
      await settle()
    }
    expect(client.state).toBe('closed')
    expect(log.states.at(-1)).toEqual(expect.objectContaining({ to: 'closed', reason: 'retries-exhausted' }))
    expect(log.errors.at(-1)).toBe('RETRIES_EXHAUSTED')
    expect(vi.getTimerCount()).toBe(0)
  })

  it('grows the backoff while failures go on, and a show without a hide does not reset it', async () => {
    await reach('reconnecting')
    await settle(1000)
    // The link opens and drops again before it proved stable: a failure that cost the server work climbs in full.
    driver.linkOpens(platform.last())
    await settle()
    platform.last().events.onClose(1006, 'dropped')
    await settle()
    expect(log.retries.map((r) => r.delay)).toEqual([2000])
    platform.show()
    await vi.advanceTimersByTimeAsync(1980)
    expect(client.state).toBe('reconnecting')
    await settle(20)
    expect(client.state).toBe('connecting')
  })

  it('an attempt the server never accepted (refused) climbs the ladder by refusedWeight, 0.25 by default', async () => {
    client = track(driver.create(platform, { reconnect: { min: 1000, max: 8000, jitter: 0 } }))
    client.start().catch(() => {})
    for (let i = 0; i < 6; i++) {
      await settle(log.retries.at(-1)?.delay ?? 0)
      expect(client.state).toBe('connecting')
      platform.last().events.onClose(1006, 'connection refused')
      await settle()
    }
    // The first retry waits up to `min`; then bounds min × 2^(climb − 1) for climb 1.25, 1.5, 1.75, 2, 2.25 (jitter 0).
    expect(log.retries.map((r) => r.delay)).toEqual([1000, 1189, 1414, 1682, 2000, 2378])
    // A link that opens and drops before it proved stable climbs in full from there.
    await settle(2378)
    driver.linkOpens(platform.last())
    await settle()
    platform.last().events.onClose(1006, 'dropped')
    await settle()
    expect(log.retries.at(-1)!.delay).toBe(4757)
  })

  it('refused attempts climb slowly only up to 4 × min: a server away for long sees its clients back off in full', async () => {
    client = track(driver.create(platform, { reconnect: { min: 1000, max: 30_000, jitter: 0 } }))
    client.start().catch(() => {})
    for (let i = 0; i < 12; i++) {
      await settle(log.retries.at(-1)?.delay ?? 0)
      platform.last().events.onClose(1006, 'connection refused')
      await settle()
    }
    // climb 1, 1.25 … 3 in quarter steps (bound 4000 at 3), then 4, 5, 6: 8 s, 16 s, 30 s (max).
    expect(log.retries.map((r) => r.delay)).toEqual([1000, 1189, 1414, 1682, 2000, 2378, 2828, 3364, 4000, 8000, 16_000, 30_000])
  })

  it('a failing auth hook climbs in full: it usually asks a server, which may be the one in trouble', async () => {
    let calls = 0
    client = track(
      driver.create(platform, {
        reconnect: { min: 1000, max: 8000, jitter: 0 },
        auth: () => {
          calls++
          throw new Error('token service unavailable')
        },
      }),
    )
    client.start().catch(() => {})
    for (let i = 0; i < 3; i++) await settle(log.retries.at(-1)?.delay ?? 0)
    expect(calls).toBe(3)
    expect(log.retries.map((r) => r.delay)).toEqual([1000, 2000, 4000])
  })

  it('refusedWeight 1 gives the plain exponential ladder for refused attempts', async () => {
    client = track(driver.create(platform, { reconnect: { min: 1000, max: 8000, jitter: 0, refusedWeight: 1 } }))
    client.start().catch(() => {})
    for (let i = 0; i < 4; i++) {
      await settle(log.retries.at(-1)?.delay ?? 0)
      platform.last().events.onClose(1006, 'connection refused')
      await settle()
    }
    expect(log.retries.map((r) => r.delay)).toEqual([1000, 2000, 4000, 8000])
  })

  it('an attempt that timed out climbs in full: an overloaded server sees its clients back off', async () => {
    client = track(driver.create(platform, { connectTimeout: 500 }))
    client.start().catch(() => {})
    await settle()
    for (let i = 0; i < 3; i++) {
      platform.last().alive = false
      await settle(500)
      expect(log.closes.length).toBe(0)
      await settle(log.retries.at(-1)!.delay)
    }
    expect(log.retries.map((r) => r.delay)).toEqual([1000, 2000, 4000])
  })

  it('a close() from an event handler while a link goes down is final: no retry is scheduled after it', async () => {
    await reach('open')
    client.on('close', () => void client.stop().catch(() => {}))
    platform.last().events.onClose(4001, 'going away')
    await settle(20_000)
    expect(client.state).toBe('closed')
    expect(log.states.map((s) => s.to)).toEqual(['reconnecting', 'closed'])
    expect(log.retries.length).toBeLessThanOrEqual(1)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('close() before open() rejects what was queued with CLOSED and ends with a close event', async () => {
    client = track(driver.create(platform))
    const queued = client.queue('never').then(
      () => 'sent',
      (e: { code: string }) => e.code,
    )
    await client.stop()
    expect(await queued).toBe('CLOSED')
    expect(log.closes).toEqual([expect.objectContaining({ reason: 'user', intentional: true })])
    client.start().catch(() => {})
    await settle()
    expect(platform.links.length).toBe(1)
    driver.linkOpens(platform.last())
    await settle()
    // Nothing of the closed session went out on the new link.
    expect(client.carried(platform.last())).toEqual([])
  })

  it('a check under way when close() is called no longer applies: the close ends the session', async () => {
    await reach('open (hidden)')
    platform.last().alive = false
    platform.show()
    await settle(100)
    const stopped = client.stop()
    await settle(2000)
    await stopped
    expect(client.state).toBe('closed')
    expect(log.states.map((s) => s.to)).toEqual(['closing', 'closed'])
    expect(log.retries).toEqual([])
    expect(platform.links.length).toBe(1)
  })

  it('a failing auth hook fails that attempt with AUTH_FAILED; the next attempt, after the backoff, asks again', async () => {
    let calls = 0
    client = track(
      driver.create(platform, {
        auth: () => {
          if (calls++ === 0) throw new Error('token service down')
          return { query: { token: 'fresh' } }
        },
      }),
    )
    client.start().catch(() => {})
    await settle()
    expect(log.errors).toEqual(['AUTH_FAILED'])
    expect(log.retries).toEqual([expect.objectContaining({ delay: 1000, reason: 'error' })])
    expect(platform.links.length).toBe(0)
    await settle(1000)
    expect(calls).toBe(2)
    driver.linkOpens(platform.last())
    await settle()
    expect(client.state).toBe('open')
  })

  it('ignores what a replaced link still reports', async () => {
    await reach('open')
    const old = platform.last()
    old.events.onClose(4001, 'going away')
    await settle(1000)
    driver.linkOpens(platform.last())
    await settle()
    expect(client.state).toBe('open')
    reset()
    old.events.onClose(1006, 'late')
    old.events.onError(new LongLinkError('SOCKET_ERROR', 'late'))
    await settle()
    expect(client.state).toBe('open')
    expect([...log.states, ...log.closes, ...log.errors]).toEqual([])
  })

  it('hidden, then offline, then shown, then online: attempts wait for both, then start at once', async () => {
    await reach('reconnecting')
    platform.hide()
    platform.setNetwork('none')
    platform.show()
    await settle(5000)
    expect(client.state).toBe('offline')
    const links = platform.links.length
    platform.setNetwork('wifi')
    await settle()
    expect(log.states.map((s) => [s.to, s.reason])).toEqual([
      ['offline', 'background'],
      ['connecting', 'network-restored'],
    ])
    expect(platform.links.length).toBe(links + 1)
  })

  it('with reconnect off, a lost link closes the session', async () => {
    client = track(driver.create(platform, { reconnect: false }))
    const opened = client.start()
    await settle()
    driver.linkOpens(platform.last())
    await settle()
    await opened
    platform.last().events.onClose(4001, 'going away')
    await settle()
    expect(client.state).toBe('closed')
    expect(log.closes).toEqual([expect.objectContaining({ reason: 'server' })])
    expect(log.retries).toEqual([])
  })
})

describe('MQTT refused logins over the scripted platform', () => {
  let platform: Platform
  beforeEach(() => {
    useFakeClock()
    platform = createFakePlatform(fakeBroker)
    connackCode = 5
  })
  afterEach(() => {
    connackCode = 0
    vi.useRealTimers()
  })

  /**
   * Connects with `auth` and opens every link the client makes; returns how connect() ended and what was asked. The
   * broker refuses the first CONNECT and, unless `refuseAll`, accepts the later ones.
   */
  async function attempt(auth?: () => { password: string }, refuseAll = false) {
    const c = createMqttClient({ url: 'ws://fake/mqtt', platform: platform.adapter, username: 'rider', password: 'wrong', auth })
    const errors: string[] = []
    c.on('error', (e) => errors.push(e.code))
    const outcome = c.connect().then(
      () => 'open',
      (e) => e.code as string,
    )
    for (let i = 0; i < 5; i++) {
      await settle()
      const link = platform.last()
      if (link && !link.sent.length) link.events.onOpen()
      // The next CONNECT is accepted: only fresh credentials reach it.
      if (i === 1 && !refuseAll) connackCode = 0
    }
    await settle(100)
    return { state: c.state, outcome: await outcome, errors, links: platform.links.length, timers: vi.getTimerCount(), client: c }
  }

  it('without an auth hook, a refused login stops at once with NOT_AUTHORIZED: one attempt, nothing left running', async () => {
    const got = await attempt()
    expect(got).toMatchObject({ state: 'closed', outcome: 'NOT_AUTHORIZED', errors: ['NOT_AUTHORIZED'], links: 1, timers: 0 })
  })

  it('asks the auth hook again once and, given the same credentials, stops with the refusal', async () => {
    let calls = 0
    const got = await attempt(() => (calls++, { password: 'wrong' }))
    expect(got).toMatchObject({ state: 'closed', outcome: 'NOT_AUTHORIZED', errors: ['NOT_AUTHORIZED'], links: 1, timers: 0 })
    expect(calls).toBe(2)
  })

  it('tries fresh credentials from the auth hook at once, reporting the refusal', async () => {
    const passwords = ['wrong', 'right']
    let calls = 0
    const got = await attempt(() => ({ password: passwords[Math.min(calls++, 1)] }))
    expect(got).toMatchObject({ state: 'open', outcome: 'open', errors: ['NOT_AUTHORIZED'], links: 2 })
    // The hook was asked once per attempt: the refused one and the one with fresh credentials.
    expect(calls).toBe(2)
    const stopped = got.client.end()
    await settle(100)
    await stopped
  })

  it('tries fresh credentials once: a second refusal in a row stops the client, however fresh the next ones would be', async () => {
    let calls = 0
    const got = await attempt(() => ({ password: `signed-${calls++}` }), true)
    expect(got).toMatchObject({ state: 'closed', outcome: 'NOT_AUTHORIZED', errors: ['NOT_AUTHORIZED', 'NOT_AUTHORIZED'], links: 2, timers: 0 })
  })
})

describe('MQTT backoff: a broker that accepted the socket', () => {
  beforeEach(() => useFakeClock())
  afterEach(() => vi.useRealTimers())

  it('a socket that opened but closed before CONNACK cost the broker work: the ladder climbs in full', async () => {
    // A broker that takes the socket and never answers the CONNECT (overloaded, or not MQTT at all).
    const platform = createFakePlatform(() => {})
    const c = createMqttClient({ url: 'ws://fake/mqtt', platform: platform.adapter, reconnect: { min: 1000, max: 8000, jitter: 0 } })
    const delays: number[] = []
    c.on('reconnecting', (e) => delays.push(e.delay))
    c.connect().catch(() => {})
    for (let i = 0; i < 3; i++) {
      await settle(delays.at(-1) ?? 0)
      platform.last().events.onOpen()
      await settle()
      platform.last().events.onClose(1006, 'closed by the broker')
      await settle()
    }
    expect(delays).toEqual([1000, 2000, 4000])
    await c.end(true)
  })
})

describe('MQTT work in flight when a session ends, over the scripted platform', () => {
  let platform: Platform
  beforeEach(() => {
    useFakeClock()
    platform = createFakePlatform(fakeBroker)
  })
  afterEach(() => vi.useRealTimers())

  /** Ends the client, letting fake time pass for the close to be confirmed. */
  async function end(c: { end(): Promise<void> }): Promise<void> {
    const ended = c.end()
    await settle(2100)
    await ended
  }

  const outcome = (p: Promise<unknown>) =>
    p.then(
      () => 'done',
      (e: { code: string }) => e.code,
    )

  async function connected(extra: Record<string, unknown> = {}) {
    const c = createMqttClient({ url: 'ws://fake/mqtt', platform: platform.adapter, reconnect: { min: 1000, max: 1000, jitter: 0 }, ...extra })
    c.connect().catch(() => {})
    await settle()
    platform.last().events.onOpen()
    await settle()
    expect(c.state).toBe('open')
    return c
  }

  it('a hard end rejects a QoS 1 publish still waiting for its PUBACK with CLOSED', async () => {
    const c = await connected()
    // The fake broker never acknowledges a publish.
    const inFlight = outcome(c.publish('t', 'x', { qos: 1 }))
    await settle()
    const ended = c.end(true)
    await settle(100)
    await ended
    expect(await inFlight).toBe('CLOSED')
    expect(vi.getTimerCount()).toBe(0)
  })

  it('a graceful end whose link dies while it waits for acknowledgements still ends, and what waited gets CLOSED', async () => {
    const c = await connected()
    const inFlight = outcome(c.publish('t', 'x', { qos: 1 }))
    await settle()
    let ended = false
    c.end().then(() => (ended = true))
    await settle()
    expect(ended).toBe(false)
    // The link goes: nothing will acknowledge the publish now.
    platform.last().alive = false
    platform.last().events.onClose(1006, 'abnormal closure')
    await settle(100)
    expect(ended).toBe(true)
    expect(c.state).toBe('closed')
    expect(await inFlight).toBe('CLOSED')
  })

  it('a graceful end waits for acknowledgements a bounded time only', async () => {
    const c = await connected()
    const inFlight = outcome(c.publish('t', 'x', { qos: 1 }))
    await settle()
    let ended = false
    c.end().then(() => (ended = true))
    await settle(1000)
    expect(ended).toBe(false)
    await settle(3000)
    expect(ended).toBe(true)
    expect(await inFlight).toBe('CLOSED')
  })

  it('ending while offline rejects queued publishes with CLOSED, and the next session does not send them', async () => {
    const c = await connected()
    platform.setNetwork('none')
    await settle()
    expect(c.state).toBe('offline')
    const queued = [outcome(c.publish('t', 'q0')), outcome(c.publish('t', 'q1', { qos: 1 }))]
    await settle()
    await end(c)
    expect(await Promise.all(queued)).toEqual(['CLOSED', 'CLOSED'])
    platform.setNetwork('wifi')
    c.connect().catch(() => {})
    await settle()
    platform.last().events.onOpen()
    await settle()
    expect(c.state).toBe('open')
    expect(published(platform.last())).toEqual([])
    await end(c)
  })

  it('an adapter that fails from inside open() fails the attempt, and the client goes on retrying', async () => {
    let failures = 1
    const failing: Adapter = {
      ...platform.adapter,
      open(request, events) {
        if (failures-- > 0) {
          events.onError(new LongLinkError('CONNECT_FAILED', 'connectSocket failed: url not in domain list'))
          return { send: () => Promise.reject(new LongLinkError('SEND_FAILED', 'never open')), close() {} }
        }
        return platform.adapter.open(request, events)
      },
    }
    const c = createMqttClient({ url: 'ws://fake/mqtt', platform: failing, reconnect: { min: 1000, max: 1000, jitter: 0 } })
    const errors: string[] = []
    c.on('error', (e) => errors.push(e.code))
    c.connect().catch(() => {})
    await settle()
    expect(c.state).toBe('reconnecting')
    expect(errors).toEqual(['CONNECT_FAILED'])
    await settle(1000)
    platform.last().events.onOpen()
    await settle()
    expect(c.state).toBe('open')
    await end(c)
  })
})
