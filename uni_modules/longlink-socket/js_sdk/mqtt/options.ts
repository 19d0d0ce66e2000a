import { checkKeys } from '../core/options'
import { fail } from '../errors'

// Replaced by the host's bundler (see checkKeys in core/options.ts); module-scoped, so a host with Node's types keeps its own.
declare const process: { env: { NODE_ENV?: string } }

/** The options of an MQTT client (an unknown key is a typo: INVALID_OPTION in development builds). */
const MQTT_KEYS = [
  'url',
  'platform',
  'clientId',
  'keepalive',
  'username',
  'password',
  'auth',
  'clean',
  'protocolVersion',
  'will',
  'properties',
  'reconnect',
  'connectTimeout',
  'verifyTimeout',
  'header',
  'protocols',
  'queue',
  'logger',
  'transports',
  'poll',
  'probeInterval',
]
import { checkTopic } from './topic'
import type { MqttClientOptions, MqttPayload } from './types'

/** Throws INVALID_OPTION for a QoS that is not 0, 1 or 2; undefined means 0. */
export function qosOf(value: unknown): 0 | 1 | 2 {
  if (value === undefined) return 0
  if (value !== 0 && value !== 1 && value !== 2) throw fail('INVALID_OPTION', `qos must be 0, 1 or 2, got ${String(value)}`)
  return value
}

/** A payload as MQTT.js sends it: text, exactly a view's bytes, or a plain object as JSON. Throws INVALID_DATA. */
export function toPayload(payload: MqttPayload): string | Uint8Array {
  if (typeof payload === 'string') return payload
  if (payload instanceof Uint8Array) return payload
  if (Object.prototype.toString.call(payload) === '[object ArrayBuffer]') return new Uint8Array(payload as ArrayBuffer)
  if (ArrayBuffer.isView(payload)) return new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength)
  if (payload !== null && typeof payload === 'object') return JSON.stringify(payload)
  throw fail('INVALID_DATA', `cannot publish ${payload === null ? 'null' : typeof payload}`)
}

/** `longlink_` and 12 random characters. */
export function randomClientId(): string {
  let id = 'longlink_'
  for (let i = 0; i < 12; i++) id += Math.floor(Math.random() * 36).toString(36)
  return id
}

/** Validates the MQTT-specific options (the shared ones go through the core's resolver), throwing INVALID_OPTION. */
export function checkMqttOptions(o: MqttClientOptions): void {
  const bad = (message: string): never => {
    throw fail('INVALID_OPTION', message)
  }
  if (process.env.NODE_ENV !== 'production') {
    checkKeys('', o, MQTT_KEYS)
    checkKeys('will.', o.will, ['topic', 'payload', 'qos', 'retain', 'properties'])
  }
  if (o.clientId !== undefined && (typeof o.clientId !== 'string' || o.clientId.length > 65535)) bad('clientId must be a string')
  if (o.keepalive !== undefined && !(Number.isInteger(o.keepalive) && o.keepalive >= 0 && o.keepalive <= 65535))
    bad('keepalive must be whole seconds, 0–65535')
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
