/**
 * The part of MQTT.js's API the LongLink MQTT entry uses, typed here so the plugin type-checks without the `mqtt`
 * package installed. See https://github.com/mqttjs/MQTT.js for the full API.
 */
export interface MqttPacket {
  cmd: string
  messageId?: number
  topic?: string
  payload?: Uint8Array | string
  qos?: 0 | 1 | 2
  retain?: boolean
  dup?: boolean
  returnCode?: number
  reasonCode?: number
  sessionPresent?: boolean
  granted?: (number | { qos: number })[]
  properties?: Record<string, unknown>
  [key: string]: unknown
}

/** The stream a stream builder returns: MqttClient pipes it, writes packets to it, ends and destroys it. */
export interface DuplexLike {
  pipe<T>(destination: T): T
  write(chunk: unknown, encoding?: unknown, callback?: () => void): boolean
  end(callback?: () => void): unknown
  destroy(error?: Error): unknown
  on(event: string, listener: (...args: any[]) => void): unknown
  once(event: string, listener: (...args: any[]) => void): unknown
  removeListener(event: string, listener: (...args: any[]) => void): unknown
  setMaxListeners(n: number): unknown
  cork?(): void
  uncork?(): void
}

export interface ClientOptions {
  clientId?: string | undefined
  keepalive?: number | undefined
  clean?: boolean | undefined
  protocolVersion?: 3 | 4 | 5 | undefined
  protocolId?: string | undefined
  username?: string | undefined
  password?: string | Uint8Array | undefined
  will?:
    | { topic: string; payload: string | Uint8Array; qos?: 0 | 1 | 2 | undefined; retain?: boolean | undefined; properties?: Record<string, unknown> | undefined }
    | undefined
  reconnectPeriod?: number | undefined
  connectTimeout?: number | undefined
  resubscribe?: boolean | undefined
  manualConnect?: boolean | undefined
  queueQoSZero?: boolean | undefined
  properties?: Record<string, unknown> | undefined
  [key: string]: unknown
}

export interface ErrorWithReasonCode extends Error {
  code?: number | string
}

export declare class MqttClient {
  constructor(streamBuilder: (client: MqttClient) => DuplexLike, options: ClientOptions)
  options: ClientOptions
  connected: boolean
  disconnecting: boolean
  reconnecting: boolean
  stream: DuplexLike
  incomingStore: unknown
  outgoingStore: unknown
  /** Packets waiting for a connection, with their callbacks. */
  queue: { packet: MqttPacket; cb?: (error?: Error) => void }[]
  /** QoS ≥ 1 publishes (and other packets) waiting for their acknowledgement, by message id. */
  outgoing: Record<string, { volatile?: boolean; cmd?: string; cb?: (error?: Error, packet?: MqttPacket) => void }>
  /** Sends PINGREQs and declares the link dead; exists while connected with a keepalive. */
  keepaliveManager?: { clear(): void; reschedule(): void } | null
  connect(): this
  /** Sends one PINGREQ now (the keepalive's own ping). */
  sendPing(): void
  reconnect(opts?: { incomingStore?: unknown; outgoingStore?: unknown }): this
  end(force?: boolean, callback?: () => void): this
  subscribe(
    topic: string | string[] | Record<string, { qos: 0 | 1 | 2 }>,
    options: { qos?: 0 | 1 | 2 | undefined; properties?: Record<string, unknown> | undefined },
    callback: (error: ErrorWithReasonCode | null | undefined, subscriptions?: { topic: string; qos: number }[], packet?: MqttPacket) => void,
  ): this
  unsubscribe(topic: string | string[], options: Record<string, unknown>, callback: (error?: Error | null) => void): this
  publish(
    topic: string,
    message: string | Uint8Array,
    options: { qos?: 0 | 1 | 2 | undefined; retain?: boolean | undefined; properties?: Record<string, unknown> | undefined },
    callback: (error?: ErrorWithReasonCode | null) => void,
  ): this
  on(event: 'connect', listener: (packet: MqttPacket) => void): this
  on(event: 'message', listener: (topic: string, payload: Uint8Array, packet: MqttPacket) => void): this
  on(event: 'error', listener: (error: ErrorWithReasonCode) => void): this
  on(event: 'close' | 'end' | 'offline' | 'reconnect', listener: () => void): this
  on(event: string, listener: (...args: any[]) => void): this
  removeAllListeners(event?: string): this
  emit(event: string, ...args: unknown[]): boolean
}

declare const mqtt: {
  MqttClient: typeof MqttClient
}
export default mqtt
