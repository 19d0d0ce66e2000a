import { resolveAdapter } from '../adapters/resolve'
import { backoffDelay, nextStep } from '../core/backoff'
import { Emitter } from '../core/emitter'
import { watchLifecycle } from '../core/lifecycle'
import { redactHeaders, redactUrl, toLogFn } from '../core/log'
import { checkHeader, resolveOptions, withQuery } from '../core/options'
import { fail, LongLinkError, messageOf } from '../errors'
import type { TransportRequest } from '../transport'
import type { CloseReason, ConnectionState, TransitionReason } from '../types'
import mqtt, { type ErrorWithReasonCode, type MqttPacket } from '../vendor/mqtt.esm'
import { toMessage, type MqttMessage } from './message'
import { createMqttStream } from './stream'
import { checkFilter, checkTopic, topicMatches } from './topic'
import type { MqttAuthResult, MqttClient, MqttClientEvents, MqttClientOptions, MqttPayload, Subscription } from './types'

/**
 * MQTT.js keeps its own fixed-period reconnect; ours replaces it. A period of 0 would make MQTT.js drop unacked
 * QoS 1/2 publishes of a clean session on every link loss, so the period is set beyond any session instead and
 * our backoff calls `reconnect()` first (each connect clears MQTT.js's timer).
 */
const NEVER = 2_147_483_647

/** CONNACK codes that mean "who you are was refused": MQTT 3.1.1 return codes 4, 5; MQTT 5 reason codes 0x86, 0x87, 0x8C. */
const AUTH_REFUSALS = [4, 5, 0x86, 0x87, 0x8c]

type Handler = (message: MqttMessage) => void

interface Entry {
  /** MQTT 5 subscription identifier: tells which filter a message came for when filters overlap. */
  id: number
  qos: 0 | 1 | 2
  handlers: Handler[]
  /** The broker acknowledged this filter on the current link. */
  acked: boolean
  /** Subscribes waiting for the SUBACK. */
  waiters: { handler: Handler; resolve: (s: Subscription) => void; reject: (e: LongLinkError) => void }[]
}

function toPayload(payload: MqttPayload): string | Uint8Array {
  if (typeof payload === 'string') return payload
  if (payload instanceof Uint8Array) return payload
  if (Object.prototype.toString.call(payload) === '[object ArrayBuffer]') return new Uint8Array(payload as ArrayBuffer)
  if (ArrayBuffer.isView(payload)) return new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength)
  if (payload !== null && typeof payload === 'object') return JSON.stringify(payload)
  throw fail('INVALID_DATA', `cannot publish ${payload === null ? 'null' : typeof payload}`)
}


function qosOf(value: unknown): 0 | 1 | 2 {
  if (value === undefined) return 0
  if (value !== 0 && value !== 1 && value !== 2) throw fail('INVALID_OPTION', `qos must be 0, 1 or 2, got ${String(value)}`)
  return value
}

function randomClientId(): string {
  let id = 'longlink_'
  for (let i = 0; i < 12; i++) id += Math.floor(Math.random() * 36).toString(36)
  return id
}

/** Validates the MQTT-specific options (the shared ones go through the core's resolver). */
function checkMqttOptions(o: MqttClientOptions): void {
  const bad = (message: string): never => {
    throw fail('INVALID_OPTION', message)
  }
  if (o.clientId !== undefined && (typeof o.clientId !== 'string' || o.clientId.length > 65535)) bad('clientId must be a string')
  if (o.keepalive !== undefined && !(Number.isInteger(o.keepalive) && o.keepalive >= 0 && o.keepalive <= 65535)) bad('keepalive must be whole seconds, 0–65535')
  if (o.username !== undefined && typeof o.username !== 'string') bad('username must be a string')
  if (o.password !== undefined && typeof o.password !== 'string') bad('password must be a string')
  if (o.clean !== undefined && typeof o.clean !== 'boolean') bad('clean must be a boolean')
  if (o.protocolVersion !== undefined && o.protocolVersion !== 4 && o.protocolVersion !== 5) bad('protocolVersion must be 4 (MQTT 3.1.1) or 5')
  if (o.clean === false && o.clientId === undefined) bad('clean: false needs a fixed clientId, or the broker cannot find the session again')
  if (o.will !== undefined) {
    if (!o.will || typeof o.will !== 'object') bad('will must be { topic, payload, qos?, retain? }')
    checkTopic(o.will.topic)
    qosOf(o.will.qos)
  }
}

/**
 * Creates an MQTT client over the plugin's own sockets. Throws INVALID_URL / INVALID_OPTION at once on bad input.
 * It does not connect until `connect()`.
 */
export function createMqttClient(options: MqttClientOptions): MqttClient {
  if (!options || typeof options !== 'object') throw fail('INVALID_OPTION', 'options with a url are required')
  checkMqttOptions(options)
  const resolved = resolveOptions({
    url: options.url,
    header: options.header,
    protocols: options.protocols ?? ['mqtt'],
    connectTimeout: options.connectTimeout,
    reconnect: options.reconnect,
    queue: options.queue,
    auth: options.auth as never,
    logger: options.logger,
    heartbeat: false,
  })
  const adapter = resolveAdapter(options.platform)
  const policy = resolved.reconnect
  const log = toLogFn(options.logger, '[longlink:mqtt]')
  const emitter = new Emitter<MqttClientEvents>(['open', 'message', 'close', 'error', 'reconnecting', 'state'], handlerFailed)
  const emit = emitter.emit.bind(emitter)
  const clientId = options.clientId ?? randomClientId()
  const subs = new Map<string, Entry>()

  let state: ConnectionState = 'idle'
  let request: TransportRequest = { url: resolved.url, header: resolved.header, protocols: resolved.protocols, timeout: resolved.timeout }
  let generation = 0
  let attempt = 0
  let linksOpened = 0
  let started = false
  /** The next attempt begins a new session (first connect, or connect after end()). */
  let freshSession = true
  let hidden = false
  let networkDown = false
  /** Why we are about to drop the link ourselves (network lost, app hidden), so its close is told right. */
  let dropping: CloseReason | undefined
  let lastClose = { code: 1006, reason: '' }
  let credentials = ''
  let refusal: { error: LongLinkError; credentials: string } | undefined
  let retryTimer: ReturnType<typeof setTimeout> | undefined
  let uptimeTimer: ReturnType<typeof setTimeout> | undefined
  let stopWatching: (() => void) | undefined
  let connectWaiters: { resolve: () => void; reject: (e: LongLinkError) => void }[] = []
  let endWaiters: (() => void)[] = []
  let offlineQueued = 0
  let subscriptionIds = 0
  const version = options.protocolVersion ?? 4

  const client = new mqtt.MqttClient(
    () =>
      createMqttStream(adapter, request, {
        opened: () => log('debug', 'socket open, CONNECT sent'),
        closed: (code, reason) => (lastClose = { code, reason }),
      }),
    {
      clientId,
      keepalive: options.keepalive ?? 30,
      clean: options.clean ?? true,
      protocolVersion: version,
      will: options.will && { ...options.will, payload: toPayload(options.will.payload) as string | Uint8Array, qos: qosOf(options.will.qos) },
      // MQTT 5 ends a session at disconnect unless told otherwise; `clean: false` means "keep it", as in 3.1.1.
      properties: version === 5 && options.clean === false ? { sessionExpiryInterval: 0xffffffff, ...options.properties } : options.properties,
      connectTimeout: resolved.connectTimeout,
      reconnectPeriod: NEVER,
      resubscribe: false,
      manualConnect: true,
      queueQoSZero: true,
    },
  )
  client.on('connect', (packet) => connacked(packet))
  client.on('close', () => linkClosed())
  client.on('error', (error) => mqttError(error))
  client.on('message', (topic, payload, packet) => dispatch(toMessage(topic, payload, packet)))

  /** The one place the state changes: emits `state` {from, to, reason} before any event that goes with it. */
  function transition(to: ConnectionState, reason: TransitionReason): void {
    const from = state
    if (from === to) return
    state = to
    log('debug', `state ${from} -> ${to} (${reason})`)
    emit('state', { from, to, reason })
  }

  /** One attempt: ask the auth hook, then let MQTT.js (re)connect through a fresh stream. */
  function attemptConnect(reason: TransitionReason): void {
    clearTimeout(retryTimer)
    if (networkDown || hidden) return transition('offline', hidden ? 'background' : 'network-lost')
    const mine = ++generation
    transition('connecting', reason)
    Promise.resolve()
      .then(() => options.auth && options.auth({ attempt, reason }))
      .then(
        (extra) => {
          if (mine !== generation) return
          useCredentials(extra || undefined)
          log('debug', `connect ${redactUrl(request.url)} ${redactHeaders(request.header)} via ${adapter.name} as ${clientId}`)
          if (!started) {
            started = true
            client.connect()
          } else if (freshSession) {
            // After end() MQTT.js has closed its stores: a new session starts with new ones.
            client.reconnect()
          } else {
            // Within a session the stores carry unacknowledged QoS ≥ 1 publishes across the reconnect.
            client.reconnect({ incomingStore: client.incomingStore, outgoingStore: client.outgoingStore })
          }
          freshSession = false
        },
        (error) => mine === generation && down('error', undefined, fail('AUTH_FAILED', `auth hook failed: ${messageOf(error)}`, error)),
      )
      .catch((error) => mine === generation && down('error', undefined, error instanceof LongLinkError ? error : fail('CONNECT_FAILED', messageOf(error), error)))
  }

  function useCredentials(extra: MqttAuthResult | undefined): void {
    const header = checkHeader(extra && extra.header, 'auth().header')
    request = {
      url: withQuery(resolved.url, extra && extra.query),
      header: header ? { ...resolved.header, ...header } : resolved.header,
      protocols: resolved.protocols,
      timeout: resolved.timeout,
    }
    client.options.username = (extra && extra.username) ?? options.username
    client.options.password = (extra && extra.password) ?? options.password
    credentials = JSON.stringify([client.options.username, client.options.password, request.url, request.header])
  }

  function connacked(packet: MqttPacket): void {
    if (state !== 'connecting') return
    const mine = generation
    const sessionPresent = !!packet.sessionPresent
    const reconnected = linksOpened++ > 0
    refusal = undefined
    if (policy) uptimeTimer = setTimeout(() => (attempt = 0), policy.minUptime)
    // Every live filter the broker does not hold is subscribed again before the state says `open`.
    const again = [...subs.keys()].filter((filter) => !sessionPresent || !subs.get(filter)!.acked)
    Promise.all(again.map(sendSubscribe)).then(() => {
      if (mine !== generation || state !== 'connecting') return
      transition('open', reconnected ? 'reconnect' : 'connected')
      for (const waiter of connectWaiters.splice(0)) waiter.resolve()
      emit('open', { sessionPresent, reconnected })
    })
  }

  /** Sends SUBSCRIBE for one filter and settles its waiting subscribes; never rejects. */
  function sendSubscribe(filter: string): Promise<void> {
    const entry = subs.get(filter)
    if (!entry) return Promise.resolve()
    const properties = version === 5 ? { subscriptionIdentifier: entry.id } : undefined
    return new Promise<void>((resolve) => {
      client.subscribe(filter, { qos: entry.qos, properties }, (error, _subs, packet) => {
        resolve()
        if (subs.get(filter) !== entry) return
        // The SUBACK's own code: the granted QoS, or a failure ≥ 0x80 (MQTT.js drops it from the error it passes).
        const first = packet && packet.granted && packet.granted[0]
        const code = Number(typeof first === 'object' ? first.qos : first)
        if (error && !(code >= 0x80)) return // the link dropped first; the next CONNACK subscribes again
        if (code >= 0x80) {
          subs.delete(filter)
          const refused = fail('SUBSCRIBE_REFUSED', `the broker refused ${filter} (code ${code})`, error)
          refused.reasonCode = code
          for (const waiter of entry.waiters.splice(0)) waiter.reject(refused)
          if (entry.handlers.length > entry.waiters.length) report(refused)
          return
        }
        entry.acked = true
        for (const waiter of entry.waiters.splice(0)) waiter.resolve(subscription(filter, waiter.handler, code || 0))
      })
    })
  }

  function subscription(filter: string, handler: Handler, granted: number): Subscription {
    let active = true
    return {
      filter,
      qos: granted as 0 | 1 | 2,
      unsubscribe() {
        if (!active) return Promise.resolve()
        active = false
        return removeHandler(filter, handler)
      },
    }
  }

  function removeHandler(filter: string, handler: Handler): Promise<void> {
    const entry = subs.get(filter)
    if (!entry) return Promise.resolve()
    const index = entry.handlers.indexOf(handler)
    if (index >= 0) entry.handlers.splice(index, 1)
    if (entry.handlers.length > 0) return Promise.resolve()
    // The last handler left: only now does the broker hear of it.
    subs.delete(filter)
    if (!client.connected) return Promise.resolve()
    return new Promise((resolve) => client.unsubscribe(filter, {}, () => resolve()))
  }

  function dispatch(message: MqttMessage): void {
    emit('message', message)
    // MQTT 5 brokers send one copy per matching subscription, each tagged with its identifier: route by the tag so
    // overlapping filters do not deliver a message twice. Untagged messages (MQTT 3.1.1) route by matching.
    const tag = message.packet.properties && message.packet.properties.subscriptionIdentifier
    const ids = tag === undefined ? undefined : ([] as unknown[]).concat(tag)
    subs.forEach((entry, filter) => {
      if (ids ? !ids.includes(entry.id) : !topicMatches(filter, message.topic)) return
      for (const handler of entry.handlers.slice()) {
        try {
          handler(message)
        } catch (error) {
          handlerFailed(error, 'message')
        }
      }
    })
  }

  function mqttError(error: ErrorWithReasonCode): void {
    if (error instanceof LongLinkError) {
      if (error.code === 'SOCKET_LIMIT') return terminal(error, 'socket-limit')
      return report(error)
    }
    const code = Number(error.code)
    if (state === 'connecting' && code > 0) {
      // A refused CONNACK: MQTT.js closes the link next; `linkClosed` decides whether trying again can help.
      const refused = fail(AUTH_REFUSALS.includes(code) ? 'NOT_AUTHORIZED' : 'CONNACK_REFUSED', `the broker refused the connection (code ${code})`, error)
      refused.reasonCode = code
      refusal = { error: refused, credentials }
      return
    }
    report(fail(state === 'connecting' ? 'CONNECT_FAILED' : 'SOCKET_ERROR', messageOf(error), error))
  }

  function linkClosed(): void {
    if (state === 'closing' || state === 'closed' || state === 'idle') return
    const wasOpen = state === 'open'
    const refused = refusal
    refusal = undefined
    if (refused) return void retryAfterRefusal(refused)
    const locallyDestroyed = lastClose.reason === 'destroyed'
    const reason: CloseReason =
      dropping || (hidden ? 'background' : locallyDestroyed ? (wasOpen ? 'heartbeat-timeout' : 'connect-timeout') : wasOpen ? 'server' : 'error')
    dropping = undefined
    const error = wasOpen ? undefined : fail(reason === 'connect-timeout' ? 'CONNECT_TIMEOUT' : 'CONNECT_FAILED', `no CONNACK (${reason})`)
    down(reason, wasOpen ? { code: lastClose.code, message: lastClose.reason } : undefined, error)
  }

  /** After a refused login, only fresh credentials from the auth hook are worth another attempt. */
  function retryAfterRefusal(refused: { error: LongLinkError; credentials: string }): void {
    const mine = ++generation
    Promise.resolve()
      .then(() => options.auth && options.auth({ attempt: attempt + 1, reason: 'error' }))
      .then((extra) => {
        if (mine !== generation) return
        if (!options.auth) return terminal(refused.error, 'error')
        const before = credentials
        useCredentials(extra || undefined)
        if (credentials === refused.credentials || credentials === before) return terminal(refused.error, 'error')
        report(refused.error)
        attempt++
        attemptConnect('reconnect')
      })
      .catch((error) => mine === generation && terminal(fail('AUTH_FAILED', `auth hook failed: ${messageOf(error)}`, error), 'error'))
  }

  /** The link (or an attempt) is gone: tell the user, then retry later, wait offline, or stop. */
  function down(reason: CloseReason, closed?: { code: number; message: string }, error?: LongLinkError): void {
    generation++
    clearTimeout(uptimeTimer)
    const { to, because, stopError } = nextStep(policy, attempt, hidden || networkDown, reason, error)
    if (stopError) stop(stopError)
    transition(to, because)
    if (closed) emit('close', { code: closed.code, reason, intentional: false, message: closed.message })
    if (error) report(error)
    if (stopError && stopError !== error) report(stopError)
    if (to === 'reconnecting') {
      const delay = backoffDelay(++attempt, policy!)
      log('info', `retry ${attempt} in ${delay} ms (${reason})`)
      retryTimer = setTimeout(() => attemptConnect('reconnect'), delay)
      emit('reconnecting', { attempt, delay, reason })
    }
  }

  /** Stops for good with `error` (a refused login, the socket limit). */
  function terminal(error: LongLinkError, reason: TransitionReason): void {
    generation++
    stop(error)
    client.end(true)
    transition('closed', reason)
    report(error)
  }

  /** Ends the session: no more attempts or listeners; waiting work fails. */
  function stop(error: LongLinkError): void {
    clearTimeout(retryTimer)
    clearTimeout(uptimeTimer)
    stopWatching && stopWatching()
    stopWatching = undefined
    const closed = error.code === 'CLOSED' ? error : fail('CLOSED', error.message, error)
    for (const waiter of connectWaiters.splice(0)) waiter.reject(error)
    subs.forEach((entry) => entry.waiters.splice(0).forEach((waiter) => waiter.reject(closed)))
  }

  // ---- network and app lifecycle (the core's rules) --------------------------------------------------------

  function pause(reason: 'network-lost' | 'background'): void {
    if (state === 'open' || state === 'connecting') {
      dropping = reason
      // Destroying the stream makes MQTT.js close; `linkClosed` then goes offline.
      if (client.stream) client.stream.destroy()
      else down(reason)
    } else if (state === 'reconnecting') {
      clearTimeout(retryTimer)
      transition('offline', reason)
    }
  }

  function resume(reason: TransitionReason): void {
    if ((state === 'offline' || state === 'reconnecting') && !networkDown && !hidden) {
      attempt = 0
      attemptConnect(reason)
    }
  }

  // ---- helpers -------------------------------------------------------------------------------------------

  function handlerFailed(error: unknown, event: keyof MqttClientEvents): void {
    const wrapped = fail('HANDLER_ERROR', `"${String(event)}" handler threw: ${messageOf(error)}`, error)
    if (event === 'error') log('error', wrapped.message)
    else report(wrapped)
  }

  function report(error: LongLinkError): void {
    log('warn', `${error.code}: ${error.message}`)
    emit('error', error)
  }

  function publishError(error: ErrorWithReasonCode): LongLinkError {
    if (state === 'closing' || state === 'closed') return fail('CLOSED', 'the client ended before the publish completed', error)
    const failed = fail('PUBLISH_FAILED', messageOf(error), error)
    if (typeof error.code === 'number') failed.reasonCode = error.code
    return failed
  }

  const api: MqttClient = {
    get state() {
      return state
    },
    get connected() {
      return state === 'open'
    },
    get clientId() {
      return clientId
    },
    get platform() {
      return adapter.name
    },
    on: (event, handler) => emitter.on(event, handler),
    off: (event, handler) => emitter.off(event, handler),

    connect() {
      if (state === 'open') return Promise.resolve()
      if (state === 'closing') return new Promise<void>((resolve) => endWaiters.push(resolve)).then(api.connect)
      const ready = new Promise<void>((resolve, reject) => connectWaiters.push({ resolve, reject }))
      if (state === 'idle' || state === 'closed') {
        attempt = linksOpened = 0
        freshSession = true
        stopWatching = watchLifecycle(adapter.lifecycle, {
          network(online) {
            if (!online && !networkDown) {
              networkDown = true
              pause('network-lost')
            } else if (online && networkDown) {
              networkDown = false
              resume('network-restored')
            }
          },
          hide() {
            hidden = true
            // An open link stays: the platform suspends it about 5 s later and its close brings us offline.
            if (state !== 'open') pause('background')
          },
          show() {
            hidden = false
            resume('foreground')
          },
        })
        attemptConnect('open')
      }
      return ready
    },

    subscribe(filter, handler, opts = {}) {
      checkFilter(filter)
      if (typeof handler !== 'function') throw fail('INVALID_OPTION', 'subscribe needs a handler function')
      const qos = qosOf(opts && opts.qos)
      if (state === 'closing' || state === 'closed') return Promise.reject(fail('CLOSED', `client ${state}`))
      let entry = subs.get(filter)
      const upgrade = !!entry && qos > entry.qos
      if (!entry) subs.set(filter, (entry = { id: ++subscriptionIds, qos, handlers: [], acked: false, waiters: [] }))
      entry.handlers.push(handler)
      if (entry.acked && !upgrade) return Promise.resolve(subscription(filter, handler, entry.qos))
      if (upgrade) {
        entry.qos = qos
        entry.acked = false
      }
      const promise = new Promise<Subscription>((resolve, reject) => entry!.waiters.push({ handler, resolve, reject }))
      // Offline, the next CONNACK subscribes every filter that is not acknowledged yet.
      if (state === 'open' && entry.waiters.length === 1) sendSubscribe(filter)
      return promise
    },

    waitFor(filter, opts = {}) {
      checkFilter(filter)
      const timeout = opts.timeout ?? 30_000
      if (!(timeout > 0)) throw fail('INVALID_OPTION', 'waitFor timeout must be a positive number of ms')
      return new Promise<MqttMessage>((resolve, reject) => {
        let subscribed: Subscription | undefined
        let done = false
        const finish = (error?: LongLinkError, message?: MqttMessage) => {
          if (done) return
          done = true
          clearTimeout(timer)
          // Clean up: the handler leaves whatever happened (UNSUBSCRIBE only if it was the filter's last).
          if (subscribed) subscribed.unsubscribe().catch(() => {})
          else removeHandler(filter, handler).catch(() => {})
          error ? reject(error) : resolve(message!)
        }
        const handler: Handler = (message) => finish(undefined, message)
        const timer = setTimeout(() => finish(fail('TIMEOUT', `no message on ${filter} within ${timeout} ms`)), timeout)
        api.subscribe(filter, handler, { qos: opts.qos }).then(
          (s) => {
            if (done) s.unsubscribe().catch(() => {})
            else subscribed = s
          },
          (error) => finish(error),
        )
      })
    },

    publish(topic, payload, opts = {}) {
      checkTopic(topic)
      const qos = qosOf(opts && opts.qos)
      let body: string | Uint8Array
      try {
        body = toPayload(payload)
      } catch (error) {
        return Promise.reject(error)
      }
      if (state === 'closing' || state === 'closed') return Promise.reject(fail('CLOSED', `client ${state}`))
      const offline = state !== 'open'
      if (offline && offlineQueued >= resolved.queueMax) return Promise.reject(fail('QUEUE_FULL', `offline queue full (${resolved.queueMax})`))
      if (offline) offlineQueued++
      return new Promise<void>((resolve, reject) => {
        // MQTT.js keeps the packet (in its queue offline, in its outgoing store while unacknowledged) across reconnects.
        client.publish(topic, body, { qos, retain: !!opts.retain, properties: opts.properties }, (error) => {
          if (offline) offlineQueued--
          error ? reject(publishError(error)) : resolve()
        })
      })
    },

    end(force = false) {
      if (state === 'closed' || state === 'idle') {
        transition('closed', 'user')
        return Promise.resolve()
      }
      const done = new Promise<void>((resolve) => endWaiters.push(resolve))
      if (state === 'closing') return done
      const wasOpen = state === 'open'
      generation++
      stop(fail('CLOSED', 'ended by end()'))
      transition('closing', 'user')
      client.end(force, () => {
        transition('closed', 'user')
        emit('close', { code: 1000, reason: 'user', intentional: true, message: '' })
        for (const resolve of endWaiters.splice(0)) resolve()
      })
      if (!wasOpen && !force) log('debug', 'ended before a link was up')
      return done
    },
  }
  return api
}

