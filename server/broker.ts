/**
 * The embedded MQTT broker: aedes (MQTT 3.1.1) behind `ws` on the backend's HTTP server at `/mqtt`
 * (subprotocol `mqtt` or `mqttv3.1` echoed), plus {@link connectExternalBus} for `BROKER_URL`.
 *
 * - Login: username = rider id, password = a token from `POST /api/login` for that rider. Anything else is refused
 *   with CONNACK return code 5 (not authorized; 4 when username or password is missing).
 * - Subscribe: only what `acl(rider, filter)` allows; anything else gets SUBACK 0x80 and a `acl.subscribe.refused` line.
 * - Publish: riders may not publish to `mobike/#` or `$SYS/#`; aedes then closes that client (MQTT 3.1.1 has no way
 *   to refuse one PUBLISH) and the refusal is logged.
 * - The backend publishes through {@link EmbeddedBroker.bus} (aedes' own `publish`, no auth hooks: trusted).
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { Aedes } from 'aedes'
import mqtt from 'mqtt'
import { createWebSocketStream, WebSocketServer } from 'ws'
import type { Metrics } from './admin'
import type { Bus } from './bikes'
import type { Logger } from './log'
import type { TokenService } from './tokens'

type AedesClient = Parameters<Aedes['authenticate']>[0]

export interface EmbeddedBroker {
  readonly aedes: Aedes
  readonly bus: Bus
  /** Takes a WebSocket upgrade for `/mqtt`. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void
  /** MQTT clients connected (CONNACKed). */
  online(): number
  /** Drops every client and closes aedes. */
  close(): Promise<void>
}

export interface EmbeddedBrokerDeps {
  tokens: TokenService
  logger: Logger
  acl: (rider: string, filter: string) => boolean
  metrics: Metrics
  onChange?: () => void
}

const riders = new WeakMap<object, string>()
const refusedError = (returnCode: 4 | 5, message: string): Error & { returnCode: 4 | 5 } => Object.assign(new Error(message), { returnCode })

export async function createEmbeddedBroker(deps: EmbeddedBrokerDeps): Promise<EmbeddedBroker> {
  const { tokens, logger, acl, metrics } = deps
  const disconnectReasons = new WeakMap<object, string>()
  let closing = false

  const aedes = await Aedes.createBroker({
    heartbeatInterval: 3_600_000,
    authenticate(client, username, password, done) {
      const clientId = client.id
      if (!username || !password) {
        logger.warn('mqtt.refused', { clientId, username, reason: 'missing-credentials' })
        return done(refusedError(4, 'username and password required'), false)
      }
      const result = tokens.verify(password.toString('utf8'))
      if (!result.ok) {
        logger.warn('mqtt.refused', { clientId, username, reason: result.reason })
        return done(refusedError(5, `token ${result.reason}`), false)
      }
      if (result.riderId !== username) {
        logger.warn('mqtt.refused', { clientId, username, reason: 'username-mismatch' })
        return done(refusedError(5, 'token belongs to another rider'), false)
      }
      riders.set(client, username)
      done(null, true)
    },
    authorizeSubscribe(client, sub, done) {
      const rider = client ? riders.get(client) : undefined
      if (rider && acl(rider, sub.topic)) return done(null, sub)
      logger.warn('acl.subscribe.refused', { clientId: client?.id, rider, topic: sub.topic })
      done(null, null)
    },
    authorizePublish(client, packet, done) {
      const rider = client ? riders.get(client) : undefined
      if (packet.topic.startsWith('$SYS') || packet.topic === 'mobike' || packet.topic.startsWith('mobike/')) {
        logger.warn('acl.publish.refused', { clientId: client?.id, rider, topic: packet.topic })
        return done(new Error(`publish to ${packet.topic} not allowed`))
      }
      done(null)
    },
    authorizeForward(_client, packet) {
      if (!packet.topic.startsWith('$SYS')) metrics.countOut()
      return packet
    },
  })

  aedes.on('publish', (packet) => {
    if (!packet.topic.startsWith('$SYS')) metrics.countIn()
  })
  aedes.on('client', (client: AedesClient) => {
    logger.info('mqtt.connect', { clientId: client.id, rider: riders.get(client) })
    deps.onChange?.()
  })
  aedes.on('clientError', (client: AedesClient, err: Error) => {
    if (!disconnectReasons.has(client)) disconnectReasons.set(client, err.message)
    logger.warn('mqtt.error', { clientId: client.id, rider: riders.get(client), error: err.message })
  })
  aedes.on('connectionError', (client: AedesClient, err: Error) => {
    logger.warn('mqtt.connection_error', { clientId: client?.id, error: err.message })
  })
  aedes.on('keepaliveTimeout', (client: AedesClient) => disconnectReasons.set(client, 'keepalive-timeout'))
  aedes.on('clientDisconnect', (client: AedesClient) => {
    const graceful = (client as unknown as { _disconnected?: boolean })._disconnected
    const reason = closing ? 'server-shutdown' : graceful ? 'client-disconnect' : (disconnectReasons.get(client) ?? 'connection-lost')
    logger.info('mqtt.disconnect', { clientId: client.id, rider: riders.get(client), reason })
    deps.onChange?.()
  })

  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (offered) => (offered.has('mqtt') ? 'mqtt' : offered.has('mqttv3.1') ? 'mqttv3.1' : false),
  })
  const streams = new Set<Duplex>()
  wss.on('connection', (ws, req) => {
    const stream = createWebSocketStream(ws)
    streams.add(stream)
    stream.on('error', () => {})
    stream.once('close', () => streams.delete(stream))
    aedes.handle(stream, req)
  })
  wss.on('error', (err) => logger.error('mqtt.ws_error', { error: err }))

  const bus: Bus = {
    publish: (topic, payload, qos) =>
      new Promise<void>((resolve, reject) => {
        if (closing) return reject(new Error('broker closed'))
        aedes.publish(
          { cmd: 'publish', topic, payload: Buffer.from(JSON.stringify(payload), 'utf8'), qos, retain: false, dup: false },
          (err?: Error | null) => (err ? reject(err) : resolve()),
        )
      }),
  }

  return {
    aedes,
    bus,
    upgrade(req, socket, head) {
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req))
    },
    online: () => aedes.connectedClients,
    async close() {
      if (closing) return
      closing = true
      for (const ws of wss.clients) ws.terminate()
      for (const s of streams) s.destroy()
      const deadline = Date.now() + 2000
      while (aedes.connectedClients > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5))
      wss.close()
      await new Promise<void>((resolve) => aedes.close(() => resolve()))
    },
  }
}

/** A {@link Bus} over an external broker: an ordinary MQTT.js client (reconnects every second while down). */
export async function connectExternalBus(opts: {
  url: string
  username?: string
  password?: string
  logger: Logger
  metrics: Metrics
  timeoutMs?: number
}): Promise<Bus & { close(): Promise<void> }> {
  const { logger } = opts
  const client = mqtt.connect(opts.url, {
    username: opts.username,
    password: opts.password,
    clientId: `longlink-backend-${Math.random().toString(36).slice(2, 10)}`,
    reconnectPeriod: 1000,
    connectTimeout: opts.timeoutMs ?? 10_000,
  })
  client.on('error', (err) => logger.error('bus.error', { broker: opts.url, error: err }))
  client.on('close', () => logger.warn('bus.disconnect', { broker: opts.url }))
  client.on('connect', () => logger.info('bus.connect', { broker: opts.url }))
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      client.end(true)
      reject(new Error(`external broker ${opts.url} not reachable within ${opts.timeoutMs ?? 10_000} ms`))
    }, opts.timeoutMs ?? 10_000)
    client.once('connect', () => {
      clearTimeout(timer)
      resolve()
    })
  })
  return {
    async publish(topic, payload, qos) {
      await client.publishAsync(topic, JSON.stringify(payload), { qos })
      opts.metrics.countIn()
    },
    close: async () => {
      await client.endAsync(true)
    },
  }
}
