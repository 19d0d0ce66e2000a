import type { LongLinkError } from './errors'
import type { Adapter, SocketHost, WireData } from './transport'
import type { RequestHost } from './sse/types'
import type { TransportChange, TransportOptions } from './transports/options'

export type { TransportChange, TransportName, TransportOptions } from './transports/options'

/**
 * The states of a {@link Connection}. One transition function changes them and emits `state`.
 * - `idle`: created, `open()` not called yet.
 * - `connecting`: one attempt is under way.
 * - `open`: the link is up; sends go straight out.
 * - `reconnecting`: the link dropped or an attempt failed; the next attempt waits for its backoff delay.
 * - `offline`: no attempts because the network is `none` or the app is in the background; resumes by itself.
 * - `closing`: `close()` was called and the link is shutting down.
 * - `closed`: nothing runs; `open()` starts again.
 */
export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'offline' | 'closing' | 'closed'

/**
 * Why a link went down or why the state changed. Documented in readme.md.
 * - `user`: `close()` was called (the only intentional reason).
 * - `server`: the server closed the link.
 * - `heartbeat-timeout`: no inbound traffic for `heartbeat.interval + heartbeat.timeout`, or no answer within
 *   `verifyTimeout` to the check made after a return from the background or a network switch.
 * - `network-lost`: the platform said the network type is `none`.
 * - `background`: the app went to the background (mini-programs kill sockets ~5 s later).
 * - `connect-timeout`: an attempt did not open within `connectTimeout`.
 * - `error`: the platform reported an error (socket error, refused handshake, `fail`, auth hook failure).
 * - `retries-exhausted`: `reconnect.maxRetries` attempts failed in a row.
 * - `socket-limit`: the platform refused another socket.
 * - `idle-timeout`: SSE: no byte at all (comments included) for `idleTimeout`.
 * - `open` / `reconnect` / `network-restored` / `foreground`: reasons carried by the transitions toward a link;
 *   `rotate`: SSE ended a healthy stream before the platform's request cap (`maxStreamMs`) and resumes it.
 */
export type CloseReason =
  | 'user'
  | 'server'
  | 'heartbeat-timeout'
  | 'network-lost'
  | 'background'
  | 'connect-timeout'
  | 'error'
  | 'retries-exhausted'
  | 'socket-limit'
  | 'idle-timeout'

/** The reason carried by a `state` event: a close reason, or what moved the connection toward a link. */
export type TransitionReason = CloseReason | 'open' | 'connected' | 'reconnect' | 'network-restored' | 'foreground' | 'rotate'

/** Anything `send` accepts. Plain objects are sent as JSON text. */
export type SendData = string | ArrayBuffer | ArrayBufferView | Record<string, unknown> | unknown[]

/** Inbound data: text frames are strings, binary frames are ArrayBuffers holding exactly the frame's bytes. */
export type MessageData = WireData

/** The `close` event: the link went down. `intentional` is true only after `close()` (MQTT: `end()`). */
export interface CloseEvent {
  code: number
  reason: CloseReason
  intentional: boolean
  /** The peer's close reason text. */
  message: string
}

/** The `reconnecting` event: the next attempt is scheduled after `delay` ms. */
export interface ReconnectingEvent {
  attempt: number
  delay: number
  reason: CloseReason
}

/** The `state` event: the state changed. Emitted before the event that goes with the change. */
export interface StateChange {
  from: ConnectionState
  to: ConnectionState
  reason: TransitionReason
}

/** Payloads of every event, one type per event. */
export interface ConnectionEvents {
  /** The link is open (first time or after a reconnect). The queue has already been flushed. */
  open: { reconnected: boolean }
  /** A message from the server (heartbeat pongs, and a text ping the server echoes while it waits, are not delivered). */
  message: MessageData
  /** The link went down. `intentional` is true only after `close()`. `message` is the peer's close reason text. */
  close: CloseEvent
  /** Something failed; the connection keeps going unless the error says it stopped (see readme.md). */
  error: LongLinkError
  /** The next attempt is scheduled after `delay` ms. */
  reconnecting: ReconnectingEvent
  /** The state changed. Emitted before the event that goes with the change. */
  state: StateChange
  /** The transport in use changed (`transports` with more than one): {from, to, reason: 'fallback' | 'upgrade'}. */
  transport: TransportChange
}

/** The event names of a connection. */
export type ConnectionEventName = keyof ConnectionEvents

/** What the `auth` hook may return: extra headers and query parameters for this attempt only. */
export interface AuthResult {
  header?: Record<string, string> | undefined
  query?: Record<string, string | number | boolean> | undefined
}

/** What the `auth` hook is told about the attempt it prepares. */
export interface AuthContext {
  /** 0 for the first attempt after `open()` or after a stable link, then 1, 2, … */
  attempt: number
  /** Why this attempt happens. */
  reason: TransitionReason
}

/** Application-level heartbeat (mini-programs cannot send WebSocket ping frames from JS). */
export interface HeartbeatOptions {
  /** Send a ping after this many ms without inbound traffic. Default 25000. */
  interval?: number | undefined
  /** Declare the link dead when nothing arrives this many ms after the ping. Default 10000. */
  timeout?: number | undefined
  /** The ping to send: data, or a function returning it. Default `'ping'`. */
  ping?: SendData | (() => SendData) | undefined
  /** How to recognise a pong: equal text, or a predicate. Matching messages are not delivered. Default `'pong'`. */
  pong?: string | ((data: MessageData) => boolean) | undefined
}

/** Reconnect policy: jittered exponential backoff. */
export interface ReconnectOptions {
  /** Upper bound of the first retry's delay in ms. Default 1000. */
  min?: number | undefined
  /** Largest delay in ms. Default 30000. */
  max?: number | undefined
  /** Growth of the delay bound per attempt. Default 2. */
  factor?: number | undefined
  /**
   * Share of each delay that is random, 0…1: a delay is drawn from `[bound × (1 − jitter), bound]`.
   * 1 is full jitter; the default 0.5 spreads clients that lost the same server while keeping each
   * delay at least as long as the one before (with `factor` ≥ 2).
   */
  jitter?: number | undefined
  /** Failed attempts in a row before giving up with `RETRIES_EXHAUSTED`. Default Infinity. */
  maxRetries?: number | undefined
  /** A link must stay open this long (ms) before the attempt counter resets. Default 5000. */
  minUptime?: number | undefined
  /**
   * How far an attempt the server never accepted (connection refused, host unreachable: the socket never opened)
   * climbs the ladder, 0…1, against 1 for a failure that cost the server work (a timeout, a link that opened and
   * failed). Default 0.25: while a server restarts, its clients keep retrying at short intervals (bounds 1, 1.19, 1.41,
   * 1.68, 2 s …) and are back soon after it is, while an overloaded server, whose attempts time out, still sees them
   * back off in full. Only up to a bound of 4 × `min`: past it (a server away for long) every failure climbs in full.
   * A failing `auth` hook always climbs in full. The first retry always waits up to `min`. 1 gives the plain
   * exponential ladder. `maxRetries` counts attempts, whatever they climbed, so it is reached sooner in time.
   */
  refusedWeight?: number | undefined
}

/** A logger: a function, or an object with level methods (`console` works). Lines never hold secrets. */
export type Logger =
  | ((level: 'debug' | 'info' | 'warn' | 'error', message: string) => void)
  | {
      debug?: ((m: string) => void) | undefined
      info?: ((m: string) => void) | undefined
      warn?: ((m: string) => void) | undefined
      error?: ((m: string) => void) | undefined
    }

/**
 * The platform to use: a name, a host object with `connectSocket` (my, tt, a test simulator) and, for the HTTP
 * transports, `request`, or an adapter. A host with `request` alone runs only the HTTP transports.
 */
export type PlatformOption = 'auto' | 'uni' | 'wx' | 'web' | SocketHost | Adapter | RequestHost

/** Options of {@link createConnection}. */
export interface ConnectionOptions extends TransportOptions {
  /** ws:// or wss:// URL. The HTTP transports use the same URL with http:// or https://. */
  url: string
  /** Which socket API to use. Default `'auto'`: uni, then wx, then the standard WebSocket. */
  platform?: PlatformOption | undefined
  /** Handshake headers (mini-programs and App; browsers cannot set them). */
  header?: Record<string, string> | undefined
  /** WebSocket subprotocols. */
  protocols?: string | string[] | undefined
  /** Passed to the platform's `connectSocket` as its own timeout (ms). */
  timeout?: number | undefined
  /** Per-attempt limit (ms) for the link to open. Default 10000. */
  connectTimeout?: number | undefined
  /**
   * How long (ms) an open link has to answer a heartbeat ping sent when the app comes back from the background or
   * the network type changes; without an answer it is replaced at once. Default 3000. Needs `heartbeat`.
   */
  verifyTimeout?: number | undefined
  /** Heartbeat settings, or `false` to turn it off. */
  heartbeat?: HeartbeatOptions | false | undefined
  /** Reconnect policy, or `false` to never reconnect. */
  reconnect?: ReconnectOptions | false | undefined
  /** Outgoing queue used while the link is not open. */
  queue?: { max?: number | undefined } | undefined
  /** Called before every attempt; may return fresh headers/query (for example a refreshed token). */
  auth?: ((context: AuthContext) => AuthResult | void | Promise<AuthResult | void>) | undefined
  /** Receives debug lines; tokens and passwords are redacted. */
  logger?: Logger | undefined
}

/** Traffic and health figures of a connection (application messages only; heartbeats are not counted). */
export interface ConnectionStats {
  messagesIn: number
  messagesOut: number
  bytesIn: number
  bytesOut: number
  /** Links opened after the first one. */
  reconnects: number
  /** Round trip of the last answered heartbeat in ms, or undefined. */
  rtt: number | undefined
  /** How long the current link has been open (ms); 0 when not open. */
  uptime: number
}
