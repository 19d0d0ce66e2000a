import { fail, messageOf, type LongLinkError } from '../errors'
import type { ConnectionState } from '../types'
import type { MqttClient as Engine } from '../vendor/mqtt.esm'
import type { MqttMessage } from './message'
import { qosOf } from './options'
import { checkFilter, topicMatches } from './topic'
import type { Subscription } from './types'

type Handler = (message: MqttMessage) => void

/** One filter: its handlers, the QoS asked for, and whether the broker holds it on the current link. */
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

/** What the subscriptions need of their client. */
export interface SubscriptionHost {
  readonly state: ConnectionState
  report(error: LongLinkError): void
  /** Runs work on MQTT.js once it knows whether it is connected (see the client's `withEngine`). */
  withEngine(work: () => void): void
}

/** The per-filter handlers of an MQTT client, with their SUBSCRIBE/UNSUBSCRIBE traffic and `waitFor`. */
export interface Subscriptions {
  subscribe(filter: string, handler: Handler, options?: { qos?: 0 | 1 | 2 | undefined }): Promise<Subscription>
  waitFor(filter: string, options?: { timeout?: number | undefined; qos?: 0 | 1 | 2 | undefined }): Promise<MqttMessage>
  /** After CONNACK: subscribes again every filter the broker does not hold. Resolves once all are answered. */
  restore(sessionPresent: boolean): Promise<void>
  /** Runs the handlers whose filter the message is for. */
  dispatch(message: MqttMessage): void
  /** The session is over: subscribes and `waitFor`s still waiting reject with `closed`. */
  stop(closed: LongLinkError): void
}

/** Subscriptions over one MQTT.js client. */
export function createSubscriptions(engine: Engine, version: 4 | 5, host: SubscriptionHost): Subscriptions {
  const subs = new Map<string, Entry>()
  /** `waitFor`s under way, each with the function that ends it. */
  const waits = new Set<(error: LongLinkError) => void>()
  let ids = 0

  /** Sends SUBSCRIBE for one filter and settles its waiting subscribes; never rejects. */
  function sendSubscribe(filter: string): Promise<void> {
    const entry = subs.get(filter)
    if (!entry) return Promise.resolve()
    const properties = version === 5 ? { subscriptionIdentifier: entry.id } : undefined
    return new Promise<void>((resolve) => {
      engine.subscribe(filter, { qos: entry.qos, properties }, (error, _granted, packet) => {
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
          if (entry.handlers.length > entry.waiters.length) host.report(refused)
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
    // The last handler left: only now does the broker hear of it (offline, a clean session forgets it anyway).
    subs.delete(filter)
    return new Promise((resolve) => host.withEngine(() => (engine.connected ? engine.unsubscribe(filter, {}, () => resolve()) : resolve())))
  }

  function subscribe(filter: string, handler: Handler, options: { qos?: 0 | 1 | 2 | undefined } = {}): Promise<Subscription> {
    checkFilter(filter)
    if (typeof handler !== 'function') throw fail('INVALID_OPTION', 'subscribe needs a handler function')
    const qos = qosOf(options && options.qos)
    const state = host.state
    if (state === 'closing' || state === 'closed') return Promise.reject(fail('CLOSED', `client ${state}`))
    let entry = subs.get(filter)
    const upgrade = !!entry && qos > entry.qos
    if (!entry) subs.set(filter, (entry = { id: ++ids, qos, handlers: [], acked: false, waiters: [] }))
    entry.handlers.push(handler)
    if (entry.acked && !upgrade) return Promise.resolve(subscription(filter, handler, entry.qos))
    if (upgrade) {
      entry.qos = qos
      entry.acked = false
    }
    const promise = new Promise<Subscription>((resolve, reject) => entry!.waiters.push({ handler, resolve, reject }))
    // Once MQTT.js has its CONNACK (open, or still subscribing the others again) it goes out now; before that, the
    // next CONNACK subscribes every filter that is not acknowledged yet.
    if (engine.connected && entry.waiters.length === 1) sendSubscribe(filter)
    return promise
  }

  return {
    subscribe,

    waitFor(filter, options = {}) {
      checkFilter(filter)
      const timeout = options.timeout ?? 30_000
      if (!(timeout > 0)) throw fail('INVALID_OPTION', 'waitFor timeout must be a positive number of ms')
      return new Promise<MqttMessage>((resolve, reject) => {
        let subscribed: Subscription | undefined
        let done = false
        const finish = (error?: LongLinkError, message?: MqttMessage) => {
          if (done) return
          done = true
          waits.delete(finish)
          clearTimeout(timer)
          // Clean up: the handler leaves whatever happened (UNSUBSCRIBE only if it was the filter's last).
          if (subscribed) subscribed.unsubscribe().catch(() => {})
          else removeHandler(filter, handler).catch(() => {})
          error ? reject(error) : resolve(message!)
        }
        const handler: Handler = (message) => finish(undefined, message)
        const timer = setTimeout(() => finish(fail('TIMEOUT', `no message on ${filter} within ${timeout} ms`)), timeout)
        waits.add(finish)
        subscribe(filter, handler, { qos: options.qos }).then(
          (s) => {
            if (done) s.unsubscribe().catch(() => {})
            else subscribed = s
          },
          (error) => finish(error),
        )
      })
    },

    restore(sessionPresent) {
      for (const entry of subs.values()) if (!sessionPresent) entry.acked = false
      const again = [...subs.keys()].filter((filter) => !subs.get(filter)!.acked)
      return Promise.all(again.map(sendSubscribe)).then(() => {})
    },

    dispatch(message) {
      // MQTT 5 brokers send one copy per matching subscription, each tagged with its identifier: route by the tag so
      // overlapping filters do not deliver a message twice. Untagged messages (MQTT 3.1.1) route by matching.
      const tag = message.packet.properties && message.packet.properties['subscriptionIdentifier']
      const tags = tag === undefined ? undefined : ([] as unknown[]).concat(tag)
      subs.forEach((entry, filter) => {
        if (tags ? !tags.includes(entry.id) : !topicMatches(filter, message.topic)) return
        for (const handler of entry.handlers.slice()) {
          try {
            handler(message)
          } catch (error) {
            host.report(fail('HANDLER_ERROR', `"message" handler threw: ${messageOf(error)}`, error))
          }
        }
      })
    },

    stop(closed) {
      subs.forEach((entry) => entry.waiters.splice(0).forEach((waiter) => waiter.reject(closed)))
      for (const finish of [...waits]) finish(closed)
    },
  }
}
