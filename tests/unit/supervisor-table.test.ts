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
          if (link.alive) {
            link.sent.push(wire as WireData)
            answer(link, wire as WireData)
          }
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
  create(platform: Platform, extra?: Record<string, unknown>): Client
  /** Makes the link open as the platform and the server would (MQTT: the socket opens, CONNACK follows). */
  linkOpens(link: FakeLink): void
}

const drivers: Driver[] = [
  {
    name: 'Connection',
    silenceMs: 1000 + 500,
    create(platform, extra = {}) {
      const c = createConnection({
        url: 'ws://fake/ws',
        platform: platform.adapter,
        heartbeat: { interval: 1000, timeout: 500 },
        reconnect: { min: 1000, max: 8000, jitter: 0, maxRetries: 3 },
        ...extra,
      })
      return {
        get state() {
          return c.state
        },
        on: (event, handler) => c.on(event as never, handler as never),
        start: () => c.open(),
        stop: () => c.close(),
        queue: (text) => c.send(text),
        carried: (link) => link.sent.filter((d) => d !== 'ping') as string[],
      }
    },
    linkOpens: (link) => link.events.onOpen(),
  },
  {
    name: 'MQTT client',
    silenceMs: 1500,
    create(platform, extra = {}) {
      const c = createMqttClient({
        url: 'ws://fake/mqtt',
        platform: platform.adapter,
        keepalive: 1,
        reconnect: { min: 1000, max: 8000, jitter: 0, maxRetries: 3 },
        ...extra,
      })
      return {
        get state() {
          return c.state
        },
        on: (event, handler) => c.on(event as never, handler as never),
        start: () => c.connect(),
        stop: () => c.end(),
        queue: (text) => c.publish('t', text),
        carried: published,
      }
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
}

type From = 'idle' | 'connecting' | 'open' | 'open (hidden)' | 'reconnecting' | 'offline (network)' | 'offline (hidden)' | 'closing' | 'closed'

/** (state, event) → the transitions it causes, in order, as [state, reason] (none: the state stays), and its effects. */
type Row = [from: From, event: string, path: [ConnectionState, string][], effects: Effects]

const none: Effects = { close: false, retry: false }

const table: Row[] = [
  ['idle', 'open()', [['connecting', 'open']], none],
  ['connecting', 'link opens', [['open', 'connected']], none],
  ['connecting', 'link closes', [['reconnecting', 'error']], { close: false, retry: 'backoff', errors: ['CONNECT_FAILED'] }],
  ['connecting', 'connect deadline', [['reconnecting', 'connect-timeout']], { close: false, retry: 'backoff', errors: ['CONNECT_TIMEOUT'] }],
  ['connecting', 'socket limit', [['closed', 'socket-limit']], { close: false, retry: false, errors: ['SOCKET_LIMIT'] }],
  ['connecting', 'network none', [['offline', 'network-lost']], none],
  ['connecting', 'hide', [['offline', 'background']], none],
  ['connecting', 'close()', [['closed', 'user']], { close: 'user', retry: false }],
  ['open', 'link closes', [['reconnecting', 'server']], { close: 'server', retry: 'backoff' }],
  ['open', 'link fails', [['reconnecting', 'error']], { close: 'error', retry: 'backoff', errors: ['SOCKET_ERROR'] }],
  ['open', 'link goes silent', [['reconnecting', 'heartbeat-timeout']], { close: 'heartbeat-timeout', retry: 'backoff' }],
  ['open', 'network none', [['offline', 'network-lost']], { close: 'network-lost', retry: false }],
  ['open', 'network type changes, probe answered', [], none],
  [
    'open',
    'network type changes, no answer',
    [
      ['reconnecting', 'heartbeat-timeout'],
      ['connecting', 'reconnect'],
    ],
    { close: 'heartbeat-timeout', retry: 'now' },
  ],
  ['open', 'hide', [], none],
  ['open', 'show without hide', [], none],
  ['open (hidden)', 'show, probe answered', [], none],
  [
    'open (hidden)',
    'show, no answer',
    [
      ['reconnecting', 'heartbeat-timeout'],
      ['connecting', 'reconnect'],
    ],
    { close: 'heartbeat-timeout', retry: 'now' },
  ],
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
  ['reconnecting', 'hide', [['offline', 'background']], none],
  ['reconnecting', 'show without hide', [], none],
  ['reconnecting', 'close()', [['closed', 'user']], { close: 'user', retry: false }],
  ['offline (network)', 'network back', [['connecting', 'network-restored']], none],
  ['offline (network)', 'show without hide', [], none],
  ['offline (network)', 'close()', [['closed', 'user']], { close: 'user', retry: false }],
  ['offline (hidden)', 'show', [['connecting', 'foreground']], none],
  ['offline (hidden)', 'network back', [], none],
  ['closing', 'link confirms the close', [['closed', 'user']], { close: 'user', retry: false }],
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
]

/** The state a row starts from, as the client names it. */
const stateOf = (from: From) => from.split(' ')[0] as ConnectionState

describe.each(drivers)('supervisor table over the $name driver', (driver) => {
  let platform: Platform
  let client: Client
  let log: { states: { to: string; reason: string }[]; closes: { reason: string }[]; retries: { delay: number }[]; errors: string[] }

  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] })
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
    c.on('close', (e: { reason: string }) => log.closes.push(e))
    c.on('reconnecting', (e: { delay: number }) => log.retries.push(e))
    c.on('error', (e: { code: string }) => log.errors.push(e.code))
    return c
  }

  /**
   * Lets `ms` of fake time pass, then a few more milliseconds in steps, each after every pending promise reaction has
   * run: MQTT.js passes a CONNACK through stream callbacks that take a few turns and a timer tick to emit `connect`.
   */
  async function settle(ms = 0): Promise<void> {
    await vi.advanceTimersByTimeAsync(ms)
    for (let i = 0; i < 30; i++) {
      await new Promise((resolve) => setImmediate(resolve))
      await vi.advanceTimersByTimeAsync(0)
    }
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
      case 'network none':
        platform.setNetwork('none')
        return settle()
      case 'network back':
        platform.setNetwork('wifi')
        return settle()
      case 'network type changes, probe answered':
        platform.setNetwork('4g')
        return settle(3100)
      case 'network type changes, no answer':
        silently()
        platform.setNetwork('4g')
        return settle(3000)
      case 'hide':
        platform.hide()
        return settle()
      case 'show':
      case 'show without hide':
        platform.show()
        return settle()
      case 'show, probe answered':
        platform.show()
        return settle(3100)
      case 'show, no answer':
        silently()
        platform.show()
        return settle(3000)
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
    const linksBefore = platform.links.length
    await apply(event)
    expect(log.states.map((s) => [s.to, s.reason])).toEqual(path)
    expect(client.state).toBe(path.length ? path[path.length - 1][0] : stateOf(from))
    expect(log.closes.map((c) => c.reason)).toEqual(effects.close ? [effects.close] : [])
    expect(log.errors).toEqual(effects.errors ?? [])
    if (effects.retry === 'backoff') expect(log.retries).toEqual([expect.objectContaining({ delay: 1000 })])
    else if (effects.retry === 'now') {
      expect(log.retries).toEqual([expect.objectContaining({ delay: 0 })])
      expect(platform.links.length).toBe(linksBefore + 1)
    } else expect(log.retries).toEqual([])
  })

  it('flushes what was queued while connecting, in order, once the link is open', async () => {
    client = track(driver.create(platform))
    const queued = [client.queue('q1'), client.queue('q2')]
    client.start().catch(() => {})
    await settle()
    expect(driver.name === 'Connection' ? client.carried(platform.last()) : []).toEqual([])
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
    platform.last().events.onClose(1006, 'refused')
    await settle()
    expect(log.retries.map((r) => r.delay)).toEqual([2000])
    platform.show()
    await vi.advanceTimersByTimeAsync(1980)
    expect(client.state).toBe('reconnecting')
    await settle(20)
    expect(client.state).toBe('connecting')
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
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] })
    platform = createFakePlatform(fakeBroker)
    connackCode = 5
  })
  afterEach(() => {
    connackCode = 0
    vi.useRealTimers()
  })

  async function settle(ms = 0): Promise<void> {
    await vi.advanceTimersByTimeAsync(ms)
    for (let i = 0; i < 30; i++) {
      await new Promise((resolve) => setImmediate(resolve))
      await vi.advanceTimersByTimeAsync(0)
    }
  }

  /** Connects with `auth` and opens every link the client makes; returns how connect() ended and what was asked. */
  async function attempt(auth?: () => { password: string }) {
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
      if (i === 1) connackCode = 0
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
})
