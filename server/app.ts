/**
 * Wires the backend together on one HTTP server: `/api/*` the bike API (route table over the domain, event streams
 * included), `/mqtt` the embedded broker (a plain WebSocket, or LongLink's HTTP transports and session WebSockets on the
 * same path, see ./longlink), `/admin*` the admin page and its live feed, `/healthz`, and `/`
 * the H5 build. Everything that must survive a restart lives in the store (SQLite file by default, PostgreSQL with
 * `DATABASE_URL`). With `REDIS_URL` several such processes share one broker state (./broker/cluster) and one
 * PostgreSQL database, behind any TCP or HTTP load balancer.
 */
import { createHmac } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type net from 'node:net'
import type { Duplex } from 'node:stream'
import { lockedTopic, unlockedTopic } from './api-contract'
import { createAccounts } from './accounts'
import { createAdmin } from './admin/index'
import { createMetrics, type Metrics } from './metrics'
import { createBikeService, type BikeService } from './bikes'
import type { ClusterState } from './broker/cluster'
import { createEmbeddedBroker, type EmbeddedBroker } from './broker/embedded'
import { connectExternalBus, publicBrokerUrl, type Bus } from './bus'
import { loadConfig, loadSseSettings, type BackendConfig, type SseSettings } from './config'
import { createOriginPolicy, WECHAT_ORIGIN, type OriginPolicy } from './http/origins'
import { remoteAddress, type Target } from './http/request'
import { ApiError, sendJson } from './http/respond'
import { bikeRoutes, createRouter } from './http/routes'
import { createHttpServer, rejectSocket } from './http/server'
import { serveStatic } from './http/static'
import { createLockSimulator } from './lock-sim'
import { createLogger, createLogLimiter, createLogRing, type Logger } from './log'
import { bridgeToBroker } from './broker/bridge'
import { attachLongLink, type LongLinkHandle } from './longlink/index'
import { createStreamRegistry } from './longlink/sse'
import { openStore } from './store/open'
import type { Store } from './store/types'
import { createTokenService, type TokenService } from './tokens'
import { createDevVerifier, createJscode2sessionVerifier, type WechatVerifier } from './wechat'

export interface BackendOptions {
  /** Overrides on top of the environment (e.g. `{ port: 0, unlockDelayMs: 50, dataDir }`). */
  config?: Partial<BackendConfig>
  /** Overrides of the event stream settings on top of the environment. */
  sse?: Partial<SseSettings>
  /** Environment to read (default `process.env`). */
  env?: Record<string, string | undefined>
  logger?: Logger
}

export interface BackendStats {
  /** MQTT clients connected to the embedded broker (null with an external broker: unknown). */
  online: number | null
  activeRides: number
  totals: { messagesIn: number; messagesOut: number; reconnects: number; refusals: number }
  broker: 'embedded' | 'external'
  database: Store['kind']
  uptimeMs: number
}

export interface Backend {
  /** `http://host:port` (no trailing slash). */
  readonly url: string
  /** Where the app connects for MQTT (`ws://host:port/mqtt`, or the external broker without credentials). */
  readonly mqttUrl: string
  readonly port: number
  readonly config: BackendConfig
  readonly tokens: TokenService
  readonly store: Store
  readonly bikes: BikeService
  /** The embedded broker, undefined with `BROKER_URL`. */
  readonly broker: EmbeddedBroker | undefined
  stats(): BackendStats
  close(): Promise<void>
}

/** Starts the backend; see {@link Backend}. */
export async function startBackend(options: BackendOptions = {}): Promise<Backend> {
  const config = loadConfig(options.env ?? process.env, options.config)
  const { limits } = config
  const ring = createLogRing(200)
  const logger = ring.wrap(options.logger ?? createLogger())
  const noisy = createLogLimiter(logger, limits.refusalLogLines, limits.logWindowMs)
  // Warnings are what a client can cause at will (refused logins, tokens, origins): they go through the bounded log.
  const bounded: Logger = { ...logger, warn: (event, fields) => noisy.warn(event, fields) }
  const startedAt = Date.now()

  const store = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, logger })
  // Whatever was opened before a failure is closed again, so a failed start leaves no socket, timer or file open.
  const opened: (() => unknown)[] = [() => store.close(), () => noisy.close()]
  try {
    const sse = loadSseSettings(options.env ?? process.env, limits, store.kind, options.sse)
    const metrics: Metrics = createMetrics()
    const tokens = createTokenService(config.tokenSecret)
    const wechat: WechatVerifier[] = []
    if (config.wechat) wechat.push(createJscode2sessionVerifier(config.wechat))
    if (config.wechatDevLogin) wechat.push(createDevVerifier())
    const accounts = createAccounts({
      store,
      tokens,
      logger: bounded,
      wechat,
      config: { tokenTtlMs: config.tokenTtlMs, refreshTtlMs: config.refreshTtlMs, loginFailuresPerMinute: limits.loginFailuresPerMinute },
      refused: () => metrics.countRefusal(),
    })
    await accounts.seed(config.demoRiders, config.demoPassword)

    let bus: Bus | undefined
    const bikes = createBikeService({
      store,
      locks: createLockSimulator(),
      logger,
      config,
      events: {
        unlocked: (m) => bus!.publish(unlockedTopic(m.bike), m, 1),
        locked: (s) => bus!.publish(lockedTopic(s.bike), s, 1),
      },
    })

    let broker: EmbeddedBroker | undefined
    let redis: ClusterState | undefined
    let external: Awaited<ReturnType<typeof connectExternalBus>> | undefined
    if (config.brokerUrl) {
      external = await connectExternalBus({
        url: config.brokerUrl,
        username: config.brokerUsername,
        password: config.brokerPassword,
        logger,
        metrics,
      })
      opened.push(() => external?.close())
      bus = external
    } else {
      let cluster: ClusterState | undefined
      if (config.redisUrl) {
        // A binding outlives the longest connection it may serve (one token's life), see ./broker/redis-bindings.
        // Loaded only here: a single process never pays for the Redis packages (start time, about 8 MB of memory).
        const { connectCluster } = await import('./broker/cluster')
        cluster = await connectCluster({
          url: config.redisUrl,
          nodeId: config.nodeId,
          bindingTtlMs: config.tokenTtlMs + 60_000,
          sessionTtlMs: config.refreshTtlMs,
          logger: bounded,
        })
        redis = cluster
        opened.push(() => cluster?.close())
      }
      broker = await createEmbeddedBroker({ tokens, logger, noisy, bikes, metrics, limits, cluster })
      opened.push(() => broker?.close())
      bus = broker.bus
    }

    opened.push(() => bikes.close())
    const admin = createAdmin({
      logger: bounded,
      metrics,
      gauges: () => ({ online: broker ? broker.online() : null, activeRides: bikes.activeRideCount() }),
      riders: () => broker?.connections() ?? [],
      logs: ring,
      adminPassword: config.adminPassword,
      secret: createHmac('sha256', config.tokenSecret).update('admin-session').digest(),
      pageDir: config.adminDir,
      // The admin page is a browser page of this backend: its origin must be one of ours (never none, never WeChat).
      isAllowedOrigin: (origin) => origin !== undefined && origin !== WECHAT_ORIGIN && origins.allowSocket(origin),
      maxPayload: limits.adminMaxWsPayloadBytes,
      maxViewers: limits.adminMaxViewers,
      loginFailuresPerMinute: limits.adminLoginFailuresPerMinute,
    })

    opened.push(() => admin.close())
    let origins: OriginPolicy = createOriginPolicy(config, config.port)
    let port = config.port
    const hostForUrl = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host
    const mqttUrlFor = (req?: IncomingMessage): string => {
      if (config.publicMqttUrl) return config.publicMqttUrl
      if (config.brokerUrl) return publicBrokerUrl(config.brokerUrl)
      if (config.publicOrigin) return `${config.publicOrigin.replace(/^http/, 'ws')}/mqtt`
      // The Host header only when it names this machine (a phone on the LAN uses the LAN address); never a foreign one.
      const host = req?.headers.host
      return origins.ownHost(host) ? `ws://${host}/mqtt` : `ws://${hostForUrl}:${port}/mqtt`
    }

    const health = async (): Promise<{ ok: boolean; body: Record<string, unknown> }> => {
      const t = performance.now()
      const database = await Promise.race([
        store.ping().then(
          () => ({ ok: true }),
          (err: unknown) => ({ ok: false, error: (err as Error).message }),
        ),
        new Promise<{ ok: false; error: string }>((r) => setTimeout(() => r({ ok: false, error: 'timeout' }), 2000).unref()),
      ])
      const dbMs = Math.round((performance.now() - t) * 10) / 10
      const brokerOk = broker ? !broker.aedes.closed && (redis?.ok() ?? true) : (external?.connected() ?? false)
      const ok = database.ok && brokerOk
      return {
        ok,
        body: {
          status: ok ? 'ok' : 'degraded',
          process: { pid: process.pid, uptimeMs: Date.now() - startedAt, rssBytes: process.memoryUsage.rss() },
          database: { kind: store.kind, latencyMs: dbMs, ...database },
          broker: {
            kind: broker ? 'embedded' : 'external',
            ok: brokerOk,
            ...(broker && { online: broker.online() }),
            ...(redis && { cluster: { node: config.nodeId, redis: redis.ok() } }),
          },
        },
      }
    }

    const streams = createStreamRegistry({ perAddress: sse.streamsPerAddress })
    opened.push(() => streams.closeAll())
    const router = createRouter(
      bikeRoutes({
        bikes,
        accounts,
        tokens,
        // Its warnings (refused streams) are what a client can cause at will.
        logger: bounded,
        maxBodyBytes: limits.httpMaxBodyBytes,
        mqttUrl: mqttUrlFor,
        refused: () => metrics.countRefusal(),
        streams,
        sse,
      }),
      { tokens, logger: bounded, maxBodyBytes: limits.httpMaxBodyBytes, refused: () => metrics.countRefusal() },
    )

    /** Open WebSocket connections and `/mqtt` HTTP-transport sessions per remote address (every path). */
    const perAddress = new Map<string, number>()
    /** The `/mqtt` HTTP-transport sessions alone, per remote address. */
    const sessionsPerAddress = new Map<string, number>()
    const bump = (map: Map<string, number>, address: string, by: 1 | -1): void => {
      const n = (map.get(address) ?? 0) + by
      if (n <= 0) map.delete(address)
      else map.set(address, n)
    }
    const allowedOrigin = (req: IncomingMessage, path: string, address: string): boolean => {
      const origin = typeof req.headers.origin === 'string' ? req.headers.origin : undefined
      if (origins.allowSocket(origin)) return true
      metrics.countRefusal()
      noisy.warn('ws.refused', { path, address, reason: 'origin', origin: origin?.slice(0, 200) })
      return false
    }
    /**
     * LongLink at `/mqtt`: with the embedded broker, the HTTP transports and session WebSockets (plain WebSockets stay on
     * the broker's own path below); with an external one, everything, each connection bridged to that broker.
     */
    let longlink: LongLinkHandle | undefined

    const upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer, target: Target): void => {
      const path = target.pathname
      if (path !== '/mqtt' && path !== '/admin/live') return rejectSocket(socket, 404, 'NOT_FOUND', 'no WebSocket here')
      if (path === '/mqtt' && !broker && !longlink) return rejectSocket(socket, 404, 'NOT_FOUND', 'this backend uses an external broker')
      const address = remoteAddress(req)
      // A WebSocket joining an HTTP-transport session: the session was admitted (origin, address) when it opened and
      // is counted as one connection whatever its carrier.
      if (path === '/mqtt' && target.query.has('sid')) {
        if (!allowedOrigin(req, path, address)) return rejectSocket(socket, 403, 'FORBIDDEN', 'origin not allowed')
        if (!longlink?.handleUpgrade(req, socket, head)) rejectSocket(socket, 404, 'NOT_FOUND', 'no WebSocket here')
        return
      }
      const count = perAddress.get(address) ?? 0
      if (count >= limits.maxConnectionsPerAddress) {
        metrics.countRefusal()
        noisy.warn('ws.refused', { path, address, reason: 'too-many-connections', limit: limits.maxConnectionsPerAddress })
        return rejectSocket(socket, 429, 'RATE_LIMITED', 'too many connections from this address')
      }
      if (path === '/mqtt' && !allowedOrigin(req, path, address)) return rejectSocket(socket, 403, 'FORBIDDEN', 'origin not allowed')
      // With an external broker LongLink takes plain WebSockets too, and counts them as its connections.
      if (path === '/mqtt' && !broker) {
        if (!longlink!.handleUpgrade(req, socket, head)) rejectSocket(socket, 404, 'NOT_FOUND', 'no WebSocket here')
        return
      }
      perAddress.set(address, count + 1)
      socket.once('close', () => bump(perAddress, address, -1))
      if (path === '/mqtt') broker!.upgrade(req, socket, head)
      else admin.upgrade(req, socket, head)
    }

    /**
     * Who may open an HTTP-transport session at `/mqtt` (the MQTT login comes after, in the CONNECT, as on a
     * WebSocket): an allowed origin, and an address under its connection budget. Returns the client key (the address):
     * the module's own per-client bound, the same number, answers 429 when the address's sessions alone fill it; when
     * its WebSockets fill it, the session is refused here with 429 as well (a refusal for now).
     */
    const admitSession = (req: IncomingMessage): string | false => {
      const address = remoteAddress(req)
      if (!allowedOrigin(req, '/mqtt', address)) return false
      const sessions = sessionsPerAddress.get(address) ?? 0
      if ((perAddress.get(address) ?? 0) >= limits.maxConnectionsPerAddress) {
        metrics.countRefusal()
        noisy.warn('ws.refused', { path: '/mqtt', address, reason: 'too-many-connections', limit: limits.maxConnectionsPerAddress, sessions })
        // A refusal for now, not for good: the module answers 429 and the client retries later.
        if (sessions < limits.maxConnectionsPerAddress) throw Object.assign(new Error('too many connections from this address'), { status: 429 })
      }
      return address
    }

    const server = createHttpServer({
      limits,
      logger,
      noisy,
      cors: (origin) => origins.cors(origin),
      upgrade,
      takeover: (req, res, target) => target.pathname === '/mqtt' && longlink !== undefined && longlink.handleRequest(req, res),
      async handle(req, res, target) {
        const answer = await router(req, target)
        if (answer) return 'stream' in answer ? answer.stream(res) : sendJson(res, answer.status, answer.body)
        // Only the embedded broker serves MQTT here; with an external one the app connects to that broker itself.
        if (target.pathname === '/mqtt') throw new ApiError(404, 'NOT_FOUND', 'this backend uses an external broker')
        if (target.pathname === '/healthz') {
          if (req.method !== 'GET' && req.method !== 'HEAD')
            throw new ApiError(405, 'METHOD_NOT_ALLOWED', 'use GET', undefined, { allow: 'GET, HEAD' })
          const { ok, body } = await health()
          return sendJson(res, ok ? 200 : 503, body)
        }
        if (target.pathname === '/admin' || target.pathname.startsWith('/admin/')) {
          if (await admin.handle(req, res, new URL(target.pathname + (target.query.size ? '?' + target.query : ''), 'http://localhost'))) return
          throw new ApiError(404, 'NOT_FOUND', 'no such admin route')
        }
        await serveStatic(config.h5Dir, req, res, target)
      },
    })

    const brokerUrl = config.brokerUrl
    {
      const embedded = broker
      longlink = attachLongLink(server, {
        path: '/mqtt',
        listen: false,
        // The embedded broker takes plain WebSockets on its own tuned path; the bridge to an external one takes all.
        plainWebSocket: !embedded,
        authenticate: admitSession,
        cors: (origin) => origins.cors(origin),
        onConnection(conn) {
          const address = conn.remoteAddress
          bump(perAddress, address, 1)
          bump(sessionsPerAddress, address, 1)
          conn.on('close', () => {
            bump(perAddress, address, -1)
            bump(sessionsPerAddress, address, -1)
          })
          if (embedded) embedded.link(conn)
          else bridgeToBroker(conn, brokerUrl!, (message) => noisy.warn('mqtt.bridge_failed', { error: message }))
        },
        // The sid names this process (a proxy in front of several routes by it): the node id in the characters allowed.
        node: config.nodeId.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 32) || 'node',
        logger: bounded,
        hold: limits.longlinkHoldMs,
        maxStreamMs: limits.longlinkMaxStreamMs,
        idleMs: limits.longlinkIdleMs,
        maxBufferBytes: limits.longlinkMaxBufferBytes,
        maxRequestBytes: limits.longlinkMaxRequestBytes,
        maxSessions: limits.longlinkMaxSessions,
        maxSessionsPerClient: limits.maxConnectionsPerAddress,
        maxPayload: limits.longlinkMaxRequestBytes,
      })
      const handle = longlink
      opened.push(() => handle.close())
    }
    opened.push(
      () => server.close(),
      () => server.closeAll(),
    )
    port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject)
      server.listen({ port: config.port, host: config.host, backlog: limits.listenBacklog }, () => {
        server.off('error', reject)
        const actual = (server.address() as net.AddressInfo).port
        origins = createOriginPolicy(config, actual)
        resolve(actual)
      })
    })
    await bikes.start()
    logger.info('backend.listening', {
      host: config.host,
      port,
      broker: broker ? 'embedded' : 'external',
      database: store.kind,
      ...(redis && { cluster: config.nodeId }),
    })

    let closed = false
    return {
      url: `http://${hostForUrl}:${port}`,
      mqttUrl: mqttUrlFor(),
      port,
      config,
      tokens,
      store,
      bikes,
      broker,
      stats: () => ({
        online: broker ? broker.online() : null,
        activeRides: bikes.activeRideCount(),
        totals: metrics.totals(),
        broker: broker ? 'embedded' : 'external',
        database: store.kind,
        uptimeMs: Date.now() - startedAt,
      }),
      async close() {
        if (closed) return
        closed = true
        bikes.close()
        admin.close()
        // Streams end before the store closes: a stream reading the store at that moment must find it still open.
        streams.closeAll()
        const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()))
        // Session clients hear 1001 on their carrier before the broker drops their MQTT clients.
        await longlink?.close()
        if (broker) await broker.close()
        else await external?.close()
        server.closeAll()
        await serverClosed
        noisy.close()
        await store.close()
        logger.info('backend.closed', { port })
      },
    }
  } catch (err) {
    for (const close of opened.reverse())
      await Promise.resolve()
        .then(close)
        .catch(() => {})
    throw err
  }
}
