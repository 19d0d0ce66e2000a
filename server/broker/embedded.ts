/**
 * The embedded MQTT broker: aedes (MQTT 3.1.1) behind `ws` on the backend's HTTP server at `/mqtt` (subprotocol
 * `mqtt` or `mqttv3.1` echoed), with the rider policy of {@link ./policy}. The same aedes and policy serve the LongLink
 * connections of `/mqtt` (SSE, long-polling, polling, and WebSockets joining those sessions: {@link EmbeddedBroker.link}). The backend publishes through
 * {@link EmbeddedBroker.bus} (aedes' own `publish`: trusted, no auth hooks). With {@link EmbeddedBrokerDeps.cluster}
 * several processes share one broker state (./cluster).
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { Aedes, type Client } from 'aedes'
import { WebSocketServer, type WebSocket } from 'ws'
import { parseBikeTopic } from '../api-contract'
import type { Bus } from '../bus'
import { toDuplex, type LongLinkConnection } from '../longlink/index'
import type { ClusterState } from './cluster'
import { createRiderPolicy, type ConnectionInfo, type PolicySources } from './policy'
import { createPacketGuard, WebSocketDuplex } from './ws-stream'

export interface EmbeddedBroker {
  readonly aedes: Aedes
  readonly bus: Bus
  /** Takes a WebSocket upgrade for `/mqtt` (origin and address limits are checked before). */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void
  /** Serves MQTT over a LongLink connection of `/mqtt` (origin and address limits are checked before). */
  link(conn: LongLinkConnection): void
  /** MQTT clients connected (CONNACKed). */
  online(): number
  /** The connected riders, for the admin page. */
  connections(): ConnectionInfo[]
  /** Drops every client and closes aedes. */
  close(): Promise<void>
}

export interface EmbeddedBrokerDeps extends PolicySources {
  /** Called when a client connects or disconnects. */
  onChange?: () => void
  /** The state shared with other processes (`REDIS_URL`); closed with the broker. Absent: aedes' in-memory state. */
  cluster?: ClusterState
}

export async function createEmbeddedBroker(deps: EmbeddedBrokerDeps): Promise<EmbeddedBroker> {
  const { logger, limits, metrics } = deps
  let closing = false
  let aedesRef: Aedes | undefined
  const policy = createRiderPolicy({
    ...deps,
    clusterBindings: deps.cluster?.bindings,
    clientById: (id) => (aedesRef as unknown as { clients: Record<string, Client> } | undefined)?.clients[id],
    closing: () => closing,
  })

  const aedes = await Aedes.createBroker({
    heartbeatInterval: 3_600_000,
    connectTimeout: limits.mqttConnectTimeoutMs,
    // A subscriber that stops reading must not hold every other delivery for aedes' default minute.
    drainTimeout: limits.mqttDrainTimeoutMs,
    maxClientsIdLength: 64,
    persistence: deps.cluster?.persistence,
    mq: deps.cluster?.mq,
    preConnect: policy.preConnect,
    authenticate: policy.authenticate,
    authorizeSubscribe: policy.authorizeSubscribe,
    authorizePublish: policy.authorizePublish,
    authorizeForward: policy.authorizeForward,
  })
  aedesRef = aedes

  aedes.on('publish', (packet) => {
    if (!packet.topic.startsWith('$SYS')) metrics.countIn()
  })
  aedes.on('clientReady', (client) => {
    policy.ready(client)
    // A shared session outlives the process that served it, and comes back subscribed (no subscribe to hear the
    // unlock again): that process may have died between starting the ride and announcing it.
    const rider = policy.riderOf(client)
    if (deps.cluster && rider && policy.resumable(client)) deps.bikes.reannounce(rider)
    deps.onChange?.()
  })
  aedes.on('clientError', (client, err: Error) => policy.failed(client, err.message))
  // aedes reports persistence failures as 'error' (missing from its typings): logged, never an uncaught exception.
  const emitter: NodeJS.EventEmitter = aedes
  emitter.on('error', (err: Error) => logger.error('mqtt.broker_error', { error: err }))
  aedes.on('unsubscribe', (topics: string[], client) => policy.unsubscribed(client, topics))
  // Subscribing to the unlock of a bike already ridden (after a reconnect, or a lost announcement) hears it again.
  aedes.on('subscribe', (subscriptions, client) => {
    const rider = policy.riderOf(client)
    if (!rider) return
    for (const sub of subscriptions) if (parseBikeTopic(sub.topic)?.kind === 'unlocked') deps.bikes.reannounce(rider, parseBikeTopic(sub.topic)!.bike)
  })
  aedes.on('connectionError', (client, err: Error) => deps.noisy.warn('mqtt.connection_error', { clientId: client?.id, error: err.message }))
  aedes.on('keepaliveTimeout', (client) => policy.failed(client, 'keepalive-timeout'))
  aedes.on('clientDisconnect', (client) => {
    policy.gone(client)
    deps.onChange?.()
  })

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: limits.mqttMaxWsPayloadBytes,
    perMessageDeflate: false,
    handleProtocols: (offered) => (offered.has('mqtt') ? 'mqtt' : offered.has('mqttv3.1') ? 'mqttv3.1' : false),
  })
  const sockets = new Set<WebSocket>()
  wss.on('connection', (ws: WebSocket, req: IncomingMessage) => {
    sockets.add(ws)
    // Only the address is kept: the request (its headers, its raw header list) would otherwise live as long as the
    // connection, about 1 KB per rider, held by these closures and by aedes (which keeps what `handle` is given).
    const address = req.socket.remoteAddress ?? 'unknown'
    const stream = new WebSocketDuplex(ws, limits.mqttMaxPacketBytes, (announced) => {
      metrics.countRefusal()
      deps.noisy.warn('mqtt.packet_too_large', { address, announced, limit: limits.mqttMaxPacketBytes })
    })
    stream.on('error', () => {})
    const client = aedes.handle(stream) as unknown as Client
    policy.attach(client, ws, address)
    // aedes reports a disconnect only for clients it registered: one that closes mid-CONNECT is released here.
    ws.once('close', () => {
      sockets.delete(ws)
      policy.gone(client)
    })
  })
  wss.on('error', (err) => logger.error('mqtt.ws_error', { error: err }))

  /** The LongLink connections' streams, destroyed when the broker closes. */
  const links = new Set<Duplex>()
  const link = (conn: LongLinkConnection): void => {
    const address = conn.remoteAddress
    // The packet bound of the WebSocket path, checked before toDuplex's handler pushes the bytes (this one runs first).
    const guard = createPacketGuard(limits.mqttMaxPacketBytes)
    conn.on('message', (data) => {
      const over = guard(typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data.buffer, data.byteOffset, data.byteLength))
      if (over === undefined) return
      metrics.countRefusal()
      deps.noisy.warn('mqtt.packet_too_large', { address, announced: over, limit: limits.mqttMaxPacketBytes, transport: conn.transport })
      conn.close(4413, 'packet too large')
    })
    const stream = toDuplex(conn)
    stream.on('error', () => {})
    links.add(stream)
    const client = aedes.handle(stream as never) as unknown as Client
    policy.attachLink(client, conn, address)
    conn.on('close', () => {
      links.delete(stream)
      policy.gone(client)
    })
  }

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
    link,
    online: () => aedes.connectedClients,
    connections: () => policy.connections(),
    async close() {
      if (closing) return
      closing = true
      policy.close()
      for (const ws of sockets) ws.terminate()
      for (const stream of links) stream.destroy()
      const deadline = Date.now() + 2000
      while (aedes.connectedClients > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5))
      wss.close()
      // aedes closes the cluster's emitter itself, which waits for Redis: bounded, then the cluster cuts its connections.
      const closed = new Promise<void>((resolve) => aedes.close(() => resolve()))
      await (deps.cluster ? Promise.race([closed, new Promise((r) => setTimeout(r, 2000).unref())]) : closed)
      await deps.cluster?.close()
    },
  }
}
