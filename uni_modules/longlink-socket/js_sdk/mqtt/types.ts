import type { LongLinkError } from '../errors'
import type {
  AuthContext,
  CloseEvent,
  ConnectionState,
  Logger,
  PlatformOption,
  ReconnectingEvent,
  ReconnectOptions,
  StateChange,
  TransportChange,
  TransportName,
  TransportOptions,
} from '../types'
import type { MqttMessage } from './message'

/** What `publish` accepts: text, bytes (ArrayBuffer or any view), or a plain object sent as JSON. */
export type MqttPayload = string | ArrayBuffer | ArrayBufferView | Record<string, unknown> | unknown[]

/** What the `auth` hook may return before an attempt: fresh credentials and handshake extras. */
export interface MqttAuthResult {
  username?: string | undefined
  password?: string | undefined
  header?: Record<string, string> | undefined
  query?: Record<string, string | number | boolean> | undefined
}

/** Options of {@link createMqttClient}. */
export interface MqttClientOptions extends TransportOptions {
  /** ws:// or wss:// URL of the broker's WebSocket listener. */
  url: string
  /** As in the core: `'auto'` (uni → wx → WebSocket), `'uni'`, `'wx'`, `'web'`, a host with `connectSocket`, or an adapter. */
  platform?: PlatformOption | undefined
  /** Default: `longlink_` and 12 random characters. Required with `clean: false`. */
  clientId?: string | undefined
  /** Seconds between keepalive pings; a silent link is dropped after 1.5 × keepalive. Default 30. */
  keepalive?: number | undefined
  username?: string | undefined
  password?: string | undefined
  /** Called before every attempt; may return fresh credentials, headers or query parameters. */
  auth?: ((context: AuthContext) => MqttAuthResult | void | Promise<MqttAuthResult | void>) | undefined
  /** Start without a broker session (default true). With false, the broker keeps subscriptions and QoS ≥ 1 messages. */
  clean?: boolean | undefined
  /** 4 (MQTT 3.1.1, default) or 5. */
  protocolVersion?: 4 | 5 | undefined
  /** Last will, published by the broker if the link dies without DISCONNECT. */
  will?:
    | {
        topic: string
        payload: MqttPayload
        qos?: 0 | 1 | 2 | undefined
        retain?: boolean | undefined
        properties?: Record<string, unknown> | undefined
      }
    | undefined
  /** MQTT 5 CONNECT properties. */
  properties?: Record<string, unknown> | undefined
  /** Jittered backoff as in the core, or false. */
  reconnect?: ReconnectOptions | false | undefined
  /** How long (ms) each attempt may take until it is open (CONNACK and every filter subscribed again). Default 10000. */
  connectTimeout?: number | undefined
  /**
   * How long (ms) an open link has to answer a PINGREQ sent when the app comes back from the background or the
   * network type changes; without a PINGRESP it is replaced at once, whatever `keepalive` says. Default 3000.
   */
  verifyTimeout?: number | undefined
  /** Handshake headers (mini-programs and App). */
  header?: Record<string, string> | undefined
  /** WebSocket subprotocols. Default `['mqtt']`. */
  protocols?: string | string[] | undefined
  /** Publishes made while not connected wait here, at most `max` (default 100), then QUEUE_FULL. */
  queue?: { max?: number | undefined } | undefined
  /** Receives debug lines; passwords and tokens are redacted. */
  logger?: Logger | undefined
}

/** Options of `publish`. */
export interface PublishOptions {
  qos?: 0 | 1 | 2 | undefined
  retain?: boolean | undefined
  /** MQTT 5 PUBLISH properties. */
  properties?: Record<string, unknown> | undefined
}

/** A live subscription of one handler. */
export interface Subscription {
  /** The filter subscribed to. */
  readonly filter: string
  /** The QoS the broker granted. */
  readonly qos: 0 | 1 | 2
  /** Removes this handler; UNSUBSCRIBE goes out only when it was the filter's last handler. */
  unsubscribe(): Promise<void>
}

/** Payloads of the MQTT client's events. */
export interface MqttClientEvents {
  /** CONNACK arrived and every filter is subscribed again. */
  open: { sessionPresent: boolean; reconnected: boolean }
  /** Every message, whichever handler it goes to. */
  message: MqttMessage
  /** The link went down; `intentional` only after `end()`. */
  close: CloseEvent
  error: LongLinkError
  reconnecting: ReconnectingEvent
  state: StateChange
  /** The transport in use changed (`transports` with more than one). */
  transport: TransportChange
}

/** An MQTT client over the plugin's own sockets. */
export interface MqttClient {
  readonly state: ConnectionState
  /** True while the state is `open`. */
  readonly connected: boolean
  readonly clientId: string
  /** The adapter in use. */
  readonly platform: string
  /** The transport in use: `websocket`, `sse`, `long-polling` or `polling` (see the `transports` option). */
  readonly transport: TransportName
  /**
   * Connects; resolves on CONNACK once every filter is subscribed. Rejects with NOT_AUTHORIZED or CONNACK_REFUSED
   * when the broker refuses (no retry loop unless the auth hook yields new credentials), CLOSED after `end()`,
   * SOCKET_LIMIT, DOMAIN_NOT_ALLOWED, INSECURE_URL, or RETRIES_EXHAUSTED.
   */
  connect(): Promise<void>
  /**
   * Adds a handler for a filter (`+`/`#` wildcards, `$share/group/...`). Several handlers may share a filter; only
   * handlers whose filter matches a topic run. Throws INVALID_TOPIC at once; rejects with SUBSCRIBE_REFUSED.
   */
  subscribe(filter: string, handler: (message: MqttMessage) => void, options?: { qos?: 0 | 1 | 2 | undefined }): Promise<Subscription>
  /** The first message on `filter` (subscribing if needed and cleaning up after); TIMEOUT after `timeout` ms (default 30000). */
  waitFor(filter: string, options?: { timeout?: number | undefined; qos?: 0 | 1 | 2 | undefined }): Promise<MqttMessage>
  /**
   * Publishes; resolves when the QoS handshake completes (QoS 0: when written). Offline publishes wait in a bounded
   * queue; QoS ≥ 1 ones are kept until acknowledged across reconnects. Throws INVALID_TOPIC at once for a wildcard.
   */
  publish(topic: string, payload: MqttPayload, options?: PublishOptions): Promise<void>
  /** Ends on purpose: DISCONNECT (or a hard close with `force`), no reconnect; pending work rejects with CLOSED. */
  end(force?: boolean): Promise<void>
  on<K extends keyof MqttClientEvents>(event: K, handler: (payload: MqttClientEvents[K]) => void): () => void
  off<K extends keyof MqttClientEvents>(event: K, handler?: (payload: MqttClientEvents[K]) => void): void
}
