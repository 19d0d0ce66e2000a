import { fail } from '../errors'
import type { MqttPacket } from '../vendor/mqtt.esm'
import { utf8Decode } from './utf8'

/** One received MQTT message, as every handler gets it. */
export interface MqttMessage {
  /** The topic it was published to. */
  readonly topic: string
  /** Exactly the payload bytes. */
  readonly payload: Uint8Array
  /** QoS it was delivered with. */
  readonly qos: 0 | 1 | 2
  /** Whether it is a retained message the broker replayed on subscribe. */
  readonly retain: boolean
  /** The raw MQTT.js packet (properties, dup flag, message id…). */
  readonly packet: MqttPacket
  /** The payload as UTF-8 text. */
  text(): string
  /** The payload parsed as JSON; throws INVALID_DATA when it is not JSON. */
  json<T = unknown>(): T
}

/** Wraps what MQTT.js delivers; the payload becomes a plain Uint8Array over the same bytes (no Buffer polyfill type). */
export function toMessage(topic: string, payload: Uint8Array, packet: MqttPacket): MqttMessage {
  const bytes = new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength)
  let text: string | undefined
  return {
    topic,
    payload: bytes,
    qos: (packet.qos || 0) as 0 | 1 | 2,
    retain: !!packet.retain,
    packet,
    text: () => (text === undefined ? (text = utf8Decode(bytes)) : text),
    json<T>() {
      try {
        return JSON.parse(this.text()) as T
      } catch (error) {
        throw fail('INVALID_DATA', `the payload on ${topic} is not JSON`, error)
      }
    },
  }
}
