/**
 * The rider policy of the embedded broker: who may connect, with which client id, subscribe to what, publish where,
 * and hear which delivery; plus the bounds on each connection. All refusals are counted (admin), logged through a
 * bounded log, and a connection that keeps being refused is cut off.
 *
 * - **Login**: username = rider id, password = a token from `POST /api/login` for that rider. Missing credentials →
 *   CONNACK 4; a bad, expired or foreign token → 5. A keepalive outside `mqttMinKeepaliveS..mqttMaxKeepaliveS` (0
 *   included) → 3 (server unavailable: the client should change its setting), and so is a rider over
 *   `maxConnectionsPerRider`.
 * - **Token expiry**: a connection is closed when its token expires; the client logs in again with a fresh token.
 * - **Client ids are bound to riders**: an id in use (or kept as a persistent session) by one rider is refused to
 *   every other rider (CONNACK 2, identifier rejected) instead of kicking the owner off. The same rider connecting
 *   again with its id replaces its old connection (logged as `takeover`). With several processes on one broker
 *   state (`REDIS_URL`) the binding and the persistent session count are cluster-wide ({@link PolicyDeps.clusterBindings});
 *   the bound on connections per rider stays per process.
 * - **Subscribe**: `mobike/unlocked|locked/<bike>` of a bike the rider holds (the bike service decides), and the
 *   rider's own `riders/<rider>/#` (where the backend may write to one rider); anything else gets SUBACK 0x80.
 * - **Publish**: riders publish nothing (the app needs no publish: everything it asks goes through the HTTP API); a
 *   PUBLISH closes the connection (MQTT 3.1.1 has no way to refuse one) and a CONNECT with a will is refused (5).
 * - **Bounds**: client ids of at most `maxClientIdLength` characters `A-Z a-z 0-9 _ - . : @` (else 2); at most
 *   `maxPersistentSessionsPerRider` persistent sessions (`clean: false`) per rider and `maxSubscriptionsPerConnection`
 *   subscriptions per connection; a connection cut off for its refusals leaves its rider refused (3) for
 *   `refusalWindowMs`.
 * - **Delivery**: a bike event reaches a rider only when the event names that rider, so a subscription that
 *   outlived its hold (a reservation that expired, a ride that ended) hears nothing of the next rider; `riders/<r>/…`
 *   reaches rider r only.
 */
import type { AedesPublishPacket, AuthenticateError, AuthErrorCode, Client, ConnectPacket, PublishPacket, Subscription } from 'aedes'
import type { WebSocket } from 'ws'
import { parseBikeTopic } from '../api-contract'
import type { Metrics } from '../metrics'
import type { BikeService } from '../bikes'
import type { Limits } from '../config'
import type { LogLimiter, Logger } from '../log'
import type { TokenService } from '../tokens'
import { createLocalBindings, type BindRefusal, type ClusterBindings } from './bindings'

/** One connected rider, for the admin page. */
export interface ConnectionInfo {
  rider: string
  clientId: string
  /** How the client reaches the broker (`mqtt/websocket`, or `mqtt/<transport>` over a LongLink session). */
  transport: string
  /** Remote address, as the broker saw it. */
  address: string
  /** When the client connected (ms since epoch). */
  since: number
  /** Round trip of the last WebSocket ping the server sent, when known. */
  lastRttMs: number | null
}

/** What the policy needs of a LongLink connection (see ../longlink): its carrier, and whether it closed. */
export interface LinkLike {
  readonly transport: string
  on(event: 'close', handler: () => void): unknown
}

interface Meta {
  /** The WebSocket of a plain `/mqtt` connection (pinged for the round trip); null for a LongLink connection. */
  ws: WebSocket | null
  /** The LongLink connection (HTTP transports, or a WebSocket that joined a session); null for a plain WebSocket. */
  link: LinkLike | null
  /** A LongLink connection that closed (a plain WebSocket's state is its readyState). */
  linkClosed?: boolean
  address: string
  since: number
  rider?: string
  keepalive?: number
  clean?: boolean
  will?: boolean
  /** Filters this connection is subscribed to (for the per-connection bound; an array: a few, and ~20 k riders). */
  subs: string[]
  rtt: number | null
  pingSent?: number
  expiry?: NodeJS.Timeout
  /** Refused operations in the current window, and when that window started. */
  refusalCount: number
  refusalStart: number
  reason?: string
}

/** What the policy needs from the backend (the embedded broker passes these on). */
export interface PolicySources {
  tokens: TokenService
  logger: Logger
  /** Bounded log for refusals. */
  noisy: LogLimiter
  bikes: Pick<BikeService, 'canWatch' | 'reannounce'>
  metrics: Metrics
  limits: Limits
  /** How often the server measures each link's round trip with a WebSocket ping (ms). */
  rttIntervalMs?: number
}

export interface PolicyDeps extends PolicySources {
  /** The connected client with this id, if any (aedes' own table). */
  clientById(id: string): Client | undefined
  closing(): boolean
  /** Client id bindings shared with the other processes of a cluster; absent for one process. */
  clusterBindings?: ClusterBindings
}

/** Client ids the broker accepts: printable, no spaces, nothing that could confuse a log or a topic. */
const CLIENT_ID = /^[A-Za-z0-9_.:@-]+$/

/** Whether the connection under a client is still open (a CONNECT that waited may find it gone). */
const isOpen = (meta: Meta): boolean => (meta.ws ? meta.ws.readyState === meta.ws.OPEN : !meta.linkClosed)

const refusal = (returnCode: 2 | 3 | 4 | 5, message: string): AuthenticateError =>
  Object.assign(new Error(message), { returnCode: returnCode as unknown as AuthErrorCode })

export function createRiderPolicy(deps: PolicyDeps) {
  const { tokens, logger, noisy, metrics, limits } = deps
  const metas = new WeakMap<object, Meta>()
  const live = new Set<Client>()
  const bindings = createLocalBindings()
  const perRider = new Map<string, Set<Client>>()
  /** When each rider last lost a link (for the reconnect count). */
  const lastLoss = new Map<string, number>()
  /** Who a bike event is for, parsed once per payload (aedes hands each subscriber its own packet, the same payload). */
  const eventRider = new WeakMap<object, string | null>()
  /** Riders cut off for their refusals, and until when their connections are refused. */
  const penalty = new Map<string, number>()

  const strike = (client: Client, event: string, fields: Record<string, unknown>): void => {
    metrics.countRefusal()
    noisy.warn(event, fields)
    const meta = metas.get(client)
    if (!meta) return
    const now = Date.now()
    if (now - meta.refusalStart >= limits.refusalWindowMs) {
      meta.refusalStart = now
      meta.refusalCount = 0
    }
    if (++meta.refusalCount > limits.maxRefusalsPerConnection && !meta.reason) {
      meta.reason = 'too-many-refusals'
      if (meta.rider) {
        if (penalty.size > 10_000) for (const [r, until] of penalty) if (until <= now) penalty.delete(r)
        penalty.set(meta.rider, now + limits.refusalWindowMs)
      }
      logger.warn('mqtt.cut_off', { clientId: client.id, rider: meta.rider, refusals: meta.refusalCount, windowMs: limits.refusalWindowMs })
      client.close()
    }
  }
  const refuseLogin = (client: Client, meta: Meta | undefined, reason: string, fields: Record<string, unknown> = {}): void => {
    metrics.countRefusal()
    noisy.warn('mqtt.refused', { clientId: client.id, address: meta?.address, reason, ...fields })
  }

  /** The meta of each WebSocket, for the one pong handler all sockets share (no closure per rider). */
  const metaOfSocket = new WeakMap<WebSocket, Meta>()
  function onPong(this: WebSocket): void {
    const meta = metaOfSocket.get(this)
    if (!meta) return
    if (meta.pingSent !== undefined) meta.rtt = Math.round((performance.now() - meta.pingSent) * 10) / 10
    meta.pingSent = undefined
  }

  /** A new connection's record, over a WebSocket or a LongLink connection. */
  function register(client: object, ws: WebSocket | null, link: LinkLike | null, address: string): Meta {
    const now = Date.now()
    const meta: Meta = { ws, link, address, since: now, rtt: null, refusalCount: 0, refusalStart: now, subs: [] }
    metas.set(client, meta)
    return meta
  }

  const rtt = setInterval(() => {
    for (const client of live) {
      const meta = metas.get(client)
      // A LongLink connection has no ping of its own: MQTT's keepalive and the session's idle expiry watch it.
      if (!meta?.ws || meta.ws.readyState !== meta.ws.OPEN) continue
      meta.pingSent = performance.now()
      meta.ws.ping()
    }
  }, deps.rttIntervalMs ?? 15_000)
  rtt.unref()

  return {
    /** Keeps what the policy needs to know about a new WebSocket connection. */
    attach(client: object, ws: WebSocket, address: string): void {
      const meta = register(client, ws, null, address)
      metaOfSocket.set(ws, meta)
      ws.on('pong', onPong)
    },

    /**
     * The same for a LongLink connection (`/mqtt` over SSE, long-polling, polling, or a WebSocket joining a session):
     * the same login, limits, takeover and cut-offs; no ping (no round trip is measured).
     */
    attachLink(client: object, link: LinkLike, address: string): void {
      const meta = register(client, null, link, address)
      link.on('close', () => (meta.linkClosed = true))
    },

    preConnect(client: Client, packet: ConnectPacket, done: (error: Error | null, success: boolean) => void): void {
      const meta = metas.get(client)
      if (meta) {
        meta.keepalive = packet.keepalive
        meta.clean = packet.clean
        meta.will = packet.will !== undefined && packet.will !== null
      }
      done(null, true)
    },

    authenticate(
      client: Client,
      username: Readonly<string | undefined>,
      password: Readonly<Buffer | undefined>,
      done: (error: AuthenticateError | null, success: boolean | null) => void,
    ): void {
      const meta = metas.get(client)
      const id = client.id
      if (deps.closing()) return done(refusal(3, 'server shutting down'), false)
      // The connection went away while its CONNECT waited: register nothing for it.
      if ((client as unknown as { closed?: boolean }).closed || !meta || !isOpen(meta)) {
        return done(refusal(3, 'connection closed'), false)
      }
      if (!username || !password) {
        refuseLogin(client, meta, 'missing-credentials')
        return done(refusal(4, 'username and password required'), false)
      }
      const result = tokens.verify(password.toString('utf8'))
      if (!result.ok) {
        refuseLogin(client, meta, result.reason, { username: username.slice(0, 64) })
        return done(refusal(5, `token ${result.reason}`), false)
      }
      const rider = result.riderId
      if (rider !== username) {
        refuseLogin(client, meta, 'username-mismatch', { username: username.slice(0, 64) })
        return done(refusal(5, 'token belongs to another rider'), false)
      }
      if (id.length > limits.maxClientIdLength || !CLIENT_ID.test(id)) {
        refuseLogin(client, meta, 'bad-client-id', { rider, length: id.length })
        return done(refusal(2, `client id must be 1..${limits.maxClientIdLength} characters of A-Z a-z 0-9 _ - . : @`), false)
      }
      if (meta.will) {
        refuseLogin(client, meta, 'will-not-allowed', { rider })
        return done(refusal(5, 'riders may not publish, so a will is not accepted'), false)
      }
      const until = penalty.get(rider)
      if (until !== undefined && until > Date.now()) {
        refuseLogin(client, meta, 'cut-off', { rider, retryAfterMs: until - Date.now() })
        return done(refusal(3, 'too many refused operations; try again later'), false)
      }
      const keepalive = meta.keepalive ?? 0
      if (keepalive < limits.mqttMinKeepaliveS || keepalive > limits.mqttMaxKeepaliveS) {
        refuseLogin(client, meta, 'keepalive-out-of-bounds', { rider, keepalive })
        return done(refusal(3, `keepalive must be ${limits.mqttMinKeepaliveS}..${limits.mqttMaxKeepaliveS} s`), false)
      }
      const persistent = meta.clean === false
      const refused = (why: BindRefusal): void => {
        if (why === 'taken') {
          refuseLogin(client, meta, 'client-id-taken', { rider })
          return done(refusal(2, 'client id belongs to another rider'), false)
        }
        refuseLogin(client, meta, 'too-many-sessions', { rider, limit: limits.maxPersistentSessionsPerRider })
        done(refusal(3, `at most ${limits.maxPersistentSessionsPerRider} persistent sessions per rider`), false)
      }
      const local = bindings.check(id, rider, persistent, limits.maxPersistentSessionsPerRider)
      if (local) return refused(local)
      /** Refuses a rider over its connections in this process; true when it did. */
      const overConnections = (): boolean => {
        const previous = deps.clientById(id)
        const mine = perRider.get(rider)
        if (!mine || mine.size < limits.maxConnectionsPerRider || (previous !== undefined && mine.has(previous))) return false
        refuseLogin(client, meta, 'too-many-connections', { rider, limit: limits.maxConnectionsPerRider })
        done(refusal(3, `at most ${limits.maxConnectionsPerRider} connections per rider`), false)
        return true
      }
      if (overConnections()) return
      const admit = (): void => {
        const previous = deps.clientById(id)
        if (previous && perRider.get(rider)?.has(previous)) {
          const old = metas.get(previous)
          if (old) old.reason = 'takeover'
          logger.info('mqtt.takeover', { clientId: id, rider })
        }
        // Bound now, before the CONNACK, so a second rider racing for the same id is refused.
        bindings.bind(id, rider, persistent)
        meta.rider = rider
        meta.expiry = setTimeout(
          () => {
            meta.reason = 'token-expired'
            client.close()
          },
          Math.min(Math.max(result.expiresAt - Date.now(), 0), 2 ** 31 - 1),
        )
        meta.expiry.unref()
        let set = perRider.get(rider)
        if (!set) perRider.set(rider, (set = new Set()))
        set.add(client)
        done(null, true)
      }
      const cluster = deps.clusterBindings
      if (!cluster) return admit()
      // The cluster-wide binding, taken atomically in Redis; then the checks that may have changed while it was asked.
      cluster.claim(id, rider, persistent, limits.maxPersistentSessionsPerRider).then(
        (why) => {
          if (why) return refused(why)
          const gone = deps.closing() || (client as unknown as { closed?: boolean }).closed || !isOpen(meta)
          const again = gone ? undefined : bindings.check(id, rider, persistent, limits.maxPersistentSessionsPerRider)
          if (gone || again || overConnections()) {
            cluster.release(id, rider).catch((err: unknown) => noisy.warn('mqtt.binding_release_failed', { clientId: id, rider, error: err }))
            if (gone) return done(refusal(3, 'connection closed'), false)
            if (again) return refused(again)
            return
          }
          admit()
        },
        (err: unknown) => {
          refuseLogin(client, meta, 'binding-unavailable', { rider, error: (err as Error).message })
          done(refusal(3, 'shared broker state unavailable; try again later'), false)
        },
      )
    },

    authorizeSubscribe(client: Client | null, sub: Subscription, done: (error: Error | null, subscription?: Subscription | null) => void): void {
      const meta = client ? metas.get(client) : undefined
      const rider = meta?.rider
      const topic = sub.topic
      // No query for a connection already cut off: its remaining filters are refused as they come.
      if (!client || !meta || !rider || meta.reason) return done(null, null)
      if (!meta.subs.includes(topic) && meta.subs.length >= limits.maxSubscriptionsPerConnection) {
        strike(client, 'acl.subscribe.refused', { clientId: client.id, rider, topic: topic.slice(0, 200), reason: 'too-many-subscriptions' })
        return done(null, null)
      }
      const own = `riders/${rider}/`
      const grant = (): void => {
        if (!meta.subs.includes(topic)) meta.subs.push(topic)
        done(null, sub)
      }
      // The rider's own namespace (a rider id has no wildcard characters, so the prefix confines any filter after it).
      if (topic.startsWith(own) && topic.length > own.length) return grant()
      deps.bikes.canWatch(rider, topic).then(
        (ok) => {
          if (ok) return grant()
          strike(client, 'acl.subscribe.refused', { clientId: client.id, rider, topic: topic.slice(0, 200) })
          done(null, null)
        },
        (err: unknown) => {
          logger.error('acl.subscribe.failed', { clientId: client.id, rider, error: err })
          done(null, null)
        },
      )
    },

    authorizePublish(client: Client | null, packet: PublishPacket, done: (error?: Error | null) => void): void {
      // No client: the backend's own publish (riders' wills, the other client-less publish, are refused at CONNECT).
      if (!client) return done(null)
      const rider = metas.get(client)?.rider
      strike(client, 'acl.publish.refused', { clientId: client.id, rider, topic: packet.topic.slice(0, 200), retain: packet.retain })
      done(new Error('riders may not publish'))
    },

    authorizeForward(client: Client, packet: AedesPublishPacket): AedesPublishPacket | null {
      if (packet.topic.startsWith('$SYS')) return packet
      const rider = metas.get(client)?.rider
      const topic = packet.topic
      // `riders/<rider>/…`, the one-rider messages: decided from the topic alone, with no allocation (the hot path of
      // targeted delivery). Same answer as the general path below: the second level must be this rider.
      if (topic.startsWith('riders/')) {
        if (!rider || !topic.startsWith(rider, 7)) return null
        const end = 7 + rider.length
        if (topic.length > end && topic.charCodeAt(end) !== 47 /* '/' */) return null
        metrics.countOut()
        return packet
      }
      const key = packet.payload as object
      let forWhom = eventRider.get(key)
      if (forWhom === undefined) {
        forWhom = null
        if (parseBikeTopic(packet.topic)) {
          try {
            const who = (JSON.parse(packet.payload.toString()) as { rider?: unknown }).rider
            if (typeof who === 'string') forWhom = who
          } catch {
            // A bike event that is not JSON names nobody: it reaches nobody.
          }
        } else forWhom = '*'
        eventRider.set(key, forWhom)
      }
      if (forWhom !== '*' && (rider === undefined || forWhom !== rider)) return null
      metrics.countOut()
      return packet
    },

    /** CONNACK sent: the rider is online. */
    ready(client: Client): void {
      const meta = metas.get(client)
      live.add(client)
      const rider = meta?.rider
      if (rider && lastLoss.has(rider) && Date.now() - lastLoss.get(rider)! < 5 * 60_000) metrics.countReconnect()
      if (rider) lastLoss.delete(rider)
      logger.info('mqtt.connect', { clientId: client.id, rider, address: meta?.address })
    },

    /** The client unsubscribed: the filters no longer count against its bound. */
    unsubscribed(client: Client, topics: string[]): void {
      const meta = metas.get(client)
      if (meta) meta.subs = meta.subs.filter((t) => !topics.includes(t))
    },

    /** The rider of a connection (undefined before login). */
    riderOf: (client: Client): string | undefined => metas.get(client)?.rider,

    /** Whether the connection asked to keep its session (`clean: false`). */
    resumable: (client: Client): boolean => metas.get(client)?.clean === false,

    failed(client: Client, reason: string): void {
      const meta = metas.get(client)
      if (meta && !meta.reason) meta.reason = reason
    },

    gone(client: Client): void {
      live.delete(client)
      const meta = metas.get(client)
      if (!meta?.rider) return
      clearTimeout(meta.expiry)
      const graceful = (client as unknown as { _disconnected?: boolean })._disconnected
      const reason = deps.closing() ? 'server-shutdown' : (meta.reason ?? (graceful ? 'client-disconnect' : 'connection-lost'))
      logger.info('mqtt.disconnect', { clientId: client.id, rider: meta.rider, reason })
      if (reason !== 'client-disconnect' && reason !== 'takeover') lastLoss.set(meta.rider, Date.now())
      if (lastLoss.size > 100_000) lastLoss.clear()
      perRider.get(meta.rider)?.delete(client)
      if (perRider.get(meta.rider)?.size === 0) perRider.delete(meta.rider)
      const rider = meta.rider
      bindings.release(client.id, rider)
      // Lost while Redis is away: the binding then stays until its key expires (see ./redis-bindings).
      deps.clusterBindings
        ?.release(client.id, rider)
        .catch((err: unknown) => noisy.warn('mqtt.binding_release_failed', { clientId: client.id, rider, error: err }))
      meta.rider = undefined
    },

    connections(): ConnectionInfo[] {
      const out: ConnectionInfo[] = []
      for (const client of live) {
        const meta = metas.get(client)
        if (!meta?.rider) continue
        out.push({
          rider: meta.rider,
          clientId: client.id,
          transport: meta.link ? `mqtt/${meta.link.transport}` : 'mqtt/websocket',
          address: meta.address,
          since: meta.since,
          lastRttMs: meta.rtt,
        })
      }
      return out
    },

    close(): void {
      clearInterval(rtt)
      for (const client of live) clearTimeout(metas.get(client)?.expiry)
    },
  }
}
