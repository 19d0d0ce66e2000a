import { resolveTransportAdapter, watchTransport } from '../transports/resolve'
import { resolveOptions } from '../core/options'
import { createSupervisor } from '../core/supervisor'
import { fail, LongLinkError, messageOf } from '../errors'
import type { TransportRequest } from '../transport'
import mqtt, { type ErrorWithReasonCode, type MqttPacket } from '../vendor/mqtt.esm'
import { toMessage } from './message'
import { checkMqttOptions, qosOf, randomClientId, toPayload } from './options'
import { credentialsOf, refusalError, type Refusal } from './refusal'
import { createMqttStream, type StreamClose } from './stream'
import { createSubscriptions } from './subscriptions'
import { checkTopic } from './topic'
import type { MqttAuthResult, MqttClient, MqttClientEvents, MqttClientOptions } from './types'

/**
 * MQTT.js keeps its own fixed-period reconnect and CONNACK timer; the supervisor's backoff and connect deadline replace
 * them. A period of 0 would make MQTT.js drop unacked QoS 1/2 publishes of a clean session on every link loss, so while
 * a session runs both are set beyond any session instead (each connect clears MQTT.js's reconnect timer); once the
 * session stops the period is 0, so MQTT.js arms nothing.
 */
const NEVER = 2_147_483_647

/** How long a graceful `end()` may wait for acknowledgements of in-flight publishes before the link is cut. */
const END_WAIT_MS = 2000

/**
 * Creates an MQTT client over the plugin's own sockets. Throws INVALID_URL / INVALID_OPTION at once on bad input.
 * It does not connect until `connect()`. The supervisor owns the lifecycle (states, backoff, network and app rules,
 * verification after a return from background); this driver speaks MQTT: it decides the link is open once CONNACK
 * arrived and every filter is subscribed again.
 */
export function createMqttClient(options: MqttClientOptions): MqttClient {
  if (!options || typeof options !== 'object') throw fail('INVALID_OPTION', 'options with a url are required')
  checkMqttOptions(options)
  const resolved = resolveOptions(
    {
      url: options.url,
      header: options.header,
      protocols: options.protocols ?? ['mqtt'],
      connectTimeout: options.connectTimeout,
      verifyTimeout: options.verifyTimeout,
      reconnect: options.reconnect,
      queue: options.queue,
      auth: options.auth as never,
      logger: options.logger,
      heartbeat: false,
    },
    '[longlink:mqtt]',
  )
  const adapter = resolveTransportAdapter(options)
  const clientId = options.clientId ?? randomClientId()
  const version = options.protocolVersion ?? 4
  const { log } = resolved

  let request: TransportRequest | undefined
  /** Whether the link MQTT.js works on belongs to the current attempt. */
  let current = () => false
  let started = false
  /** The next attempt begins a new session (first connect, or connect after the session stopped). */
  let freshSession = true
  /** MQTT.js has a stream whose close it has not processed yet. */
  let streamLive = false
  /**
   * Work waiting for MQTT.js to finish with a stream the supervisor dropped: until MQTT.js has processed its close it
   * still believes it is connected, and would write to the dead stream what belongs in its offline queue.
   */
  let afterClose: (() => void)[] | undefined
  /** How the current stream closed, once it has. */
  let lastClose: StreamClose | undefined
  /** MQTT.js reported a protocol violation (an error with a reason code) on the current stream. */
  let engineFault = false
  /** The credentials of the current attempt, to tell a retry with fresh ones from the same ones again. */
  let credentials = ''
  /** A refused CONNACK on the current link (MQTT.js closes the link next). */
  let refusal: Refusal | undefined
  /** The refusal the attempt under way must improve on. */
  let retrying: Refusal | undefined
  /** Fresh credentials were already tried after a refusal: a second refusal in a row stops the client. */
  let retried = false
  /** Set when the session stopped: what MQTT.js still fails with then is a CLOSED for the caller. */
  let stopped = false
  let endTimer: ReturnType<typeof setTimeout> | undefined
  let packetsIn = 0
  let offlineQueued = 0
  let forceEnd = false

  const engine = new mqtt.MqttClient(
    () => {
      lastClose = undefined
      engineFault = false
      const stream = createMqttStream(adapter, request!, {
        opened: () => {
          log('debug', `socket open, CONNECT sent as ${clientId}`)
          // The broker accepted the socket: a failure before CONNACK cost it work (backoff climbs in full).
          sv.reached()
        },
        closed: (close) => (lastClose = close),
      })
      streamLive = true
      return stream
    },
    {
      clientId,
      keepalive: options.keepalive ?? 30,
      clean: options.clean ?? true,
      protocolVersion: version,
      will: options.will && { ...options.will, payload: toPayload(options.will.payload) as string | Uint8Array, qos: qosOf(options.will.qos) },
      // MQTT 5 ends a session at disconnect unless told otherwise; `clean: false` means "keep it", as in 3.1.1.
      properties: version === 5 && options.clean === false ? { sessionExpiryInterval: 0xffffffff, ...options.properties } : options.properties,
      connectTimeout: NEVER,
      reconnectPeriod: NEVER,
      resubscribe: false,
      manualConnect: true,
      queueQoSZero: true,
    },
  )

  const sv = createSupervisor<MqttClientEvents>(resolved, adapter, {
    begin(next, extra, attempt) {
      request = next
      current = attempt
      engine.options.username = (extra as MqttAuthResult).username ?? options.username
      engine.options.password = (extra as MqttAuthResult).password ?? options.password
      credentials = credentialsOf(next, engine.options.username, engine.options.password as string | undefined)
      stopped = false
      const refused = retrying
      retrying = undefined
      if (refused) {
        // After a refused login only fresh credentials are worth another attempt: the same would be refused again.
        if (credentials === refused.credentials) return sv.terminal(refused.error, 'error')
        retried = true
        sv.report(refused.error)
      }
      const start = () => {
        if (!attempt()) return
        engine.options.reconnectPeriod = NEVER
        if (!started) {
          started = true
          engine.connect()
        } else if (freshSession) {
          // After the session stopped MQTT.js has closed its stores: a new session starts with new ones.
          engine.reconnect()
        } else {
          // Within a session the stores carry unacknowledged QoS ≥ 1 publishes across the reconnect.
          engine.reconnect({ incomingStore: engine.incomingStore, outgoingStore: engine.outgoingStore })
        }
        freshSession = false
      }
      withEngine(start)
    },
    drop() {
      if (streamLive && !afterClose && engine.stream) {
        afterClose = []
        engine.stream.destroy()
      }
    },
    probe() {
      if (!engine.connected) return undefined
      const before = packetsIn
      engine.sendPing()
      return () => packetsIn !== before
    },
    // While hidden the platform suspends timers: MQTT.js's keepalive would judge the link by a clock that jumped. The
    // check on show answers instead, and its PINGRESP re-arms the keepalive.
    hide: () => engine.keepaliveManager && engine.keepaliveManager.clear(),
    end() {
      // The session ends: MQTT.js must not arm its own reconnect timer when the last stream's close comes in.
      engine.options.reconnectPeriod = 0
      // A hard end (no DISCONNECT) fails what is in flight; a graceful one lets it be acknowledged, for a while.
      if (forceEnd) failPending(fail('CLOSED', 'ended by end(true)'))
      else endTimer = setTimeout(() => engine.stream && engine.stream.destroy(), END_WAIT_MS)
      engine.end(forceEnd, () => {
        clearTimeout(endTimer)
        // A DISCONNECT that could not go out (the link was gone) must not go out at the start of the next session.
        engine.queue.splice(0)
        sv.ended()
      })
    },
    stop(closed) {
      stopped = true
      adapter.end && adapter.end()
      subscriptions.stop(closed)
      freshSession = true
      retrying = undefined
      retried = false
      engine.options.reconnectPeriod = 0
      // Unless an intentional end is already stopping MQTT.js, what it holds fails now and it stops (its timers, its
      // stores).
      if (engine.disconnecting) return
      failPending(closed)
      if (started) engine.end(true)
    },
  })
  watchTransport(adapter, sv as never)
  const subscriptions = createSubscriptions(engine, version, {
    get state() {
      return sv.state
    },
    report: sv.report,
    withEngine,
  })

  /** Runs `work` on MQTT.js now, or once it has processed the close of a stream the supervisor dropped. */
  function withEngine(work: () => void): void {
    if (afterClose) afterClose.push(work)
    else work()
  }

  /** Fails what MQTT.js still holds: in-flight QoS ≥ 1 publishes and the packets in its offline queue. */
  function failPending(closed: LongLinkError): void {
    const outgoing = engine.outgoing
    for (const id of Object.keys(outgoing)) {
      const entry = outgoing[id]!
      delete outgoing[id]
      if (entry.cb) entry.cb(closed)
    }
    for (const queued of engine.queue.splice(0)) if (queued.cb) queued.cb(closed)
  }

  engine.on('connect', (packet) => current() && connacked(packet))
  engine.on('close', () => {
    streamLive = false
    const waiting = afterClose
    afterClose = undefined
    if (waiting) for (const work of waiting) work()
    else if (sv.state === 'closing') {
      // A graceful end waiting for acknowledgements lost its link: they cannot come now.
      failPending(fail('CLOSED', 'the link closed before the publish was acknowledged'))
      engine.emit('outgoingEmpty')
    } else if (current()) linkClosed()
  })
  engine.on('error', (error) => current() && engineError(error))
  engine.on('packetreceive', () => packetsIn++)
  engine.on('message', (topic, payload, packet) => {
    const message = toMessage(topic, payload, packet)
    sv.emit('message', message)
    subscriptions.dispatch(message)
  })

  function connacked(packet: MqttPacket): void {
    if (sv.state !== 'connecting') return
    refusal = undefined
    retried = false
    const sessionPresent = !!packet.sessionPresent
    // The attempt this CONNACK belongs to: a later one must not be declared open by it.
    const attempt = current
    // Every live filter the broker does not hold is subscribed again before the state says `open`.
    subscriptions.restore(sessionPresent).then(() => attempt() && sv.state === 'connecting' && sv.up({ sessionPresent }))
  }

  function engineError(error: ErrorWithReasonCode): void {
    // The link itself failed (a socket error, the socket limit): the supervisor's rule for a failed link, as in the core.
    if (error instanceof LongLinkError) return sv.failed(error)
    const code = Number(error.code)
    // A refused CONNACK (MQTT.js does not count as connected yet): MQTT.js closes the link next, and `linkClosed`
    // decides whether trying again can help.
    if (code > 0 && !engine.connected) return void (refusal = { error: refusalError(code, error), credentials })
    // MQTT.js destroyed the stream itself. Without a code, its keepalive went unanswered: no socket error, the close
    // says `heartbeat-timeout`, as the core tells a dead link. With one, a protocol violation: reported, and the close
    // says `error`.
    if (code > 0) engineFault = true
    else if (lastClose && lastClose.cause === 'destroyed') return
    const failed = fail(sv.state === 'connecting' ? 'CONNECT_FAILED' : 'SOCKET_ERROR', messageOf(error), error)
    if (code > 0) failed.reasonCode = code
    sv.report(failed)
  }

  function linkClosed(): void {
    const refused = refusal
    refusal = undefined
    if (refused) {
      // Fresh credentials get one try after a refusal (a hook that signs a new password each time would otherwise
      // loop); no hook, or a second refusal in a row, stops the client.
      if (!options.auth || retried) return sv.terminal(refused.error, 'error')
      retrying = refused
      return sv.retry('error')
    }
    const { cause, code, reason } = lastClose || { cause: 'closed', code: 1006, reason: '' }
    sv.closed(code, reason, cause !== 'destroyed' ? 'server' : engineFault ? 'error' : 'heartbeat-timeout')
  }

  function publishError(error: ErrorWithReasonCode): LongLinkError {
    const state = sv.state
    if (stopped || state === 'closing' || state === 'closed') return fail('CLOSED', 'the client ended before the publish completed', error)
    const failed = fail('PUBLISH_FAILED', messageOf(error), error)
    if (typeof error.code === 'number') failed.reasonCode = error.code
    return failed
  }

  const api: MqttClient = {
    get state() {
      return sv.state
    },
    get connected() {
      return sv.state === 'open'
    },
    get clientId() {
      return clientId
    },
    get platform() {
      return adapter.name
    },
    get transport() {
      return adapter.transport || 'websocket'
    },
    on: sv.on,
    off: sv.off,
    connect: sv.open,
    subscribe: subscriptions.subscribe,
    waitFor: subscriptions.waitFor,

    publish(topic, payload, opts = {}) {
      checkTopic(topic)
      const qos = qosOf(opts && opts.qos)
      let body: string | Uint8Array
      try {
        body = toPayload(payload)
      } catch (error) {
        return Promise.reject(error)
      }
      const state = sv.state
      if (state === 'closing' || state === 'closed') return Promise.reject(fail('CLOSED', `client ${state}`))
      const offline = state !== 'open'
      if (offline && offlineQueued >= resolved.queueMax) return Promise.reject(fail('QUEUE_FULL', `offline queue full (${resolved.queueMax})`))
      if (offline) offlineQueued++
      return new Promise<void>((resolve, reject) => {
        // MQTT.js keeps the packet (in its queue offline, in its outgoing store while unacknowledged) across reconnects.
        withEngine(() =>
          engine.publish(topic, body, { qos, retain: !!opts.retain, properties: opts.properties }, (error) => {
            if (offline) offlineQueued--
            error ? reject(publishError(error)) : resolve()
          }),
        )
      })
    },

    end(force = false) {
      forceEnd = force
      return sv.close(1000, '')
    },
  }
  return api
}
