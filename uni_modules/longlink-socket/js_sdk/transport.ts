import type { LongLinkError } from './errors'
import type { TransportChange, TransportName } from './transports/options'

/** What travels on the wire: text, or exactly the bytes of an ArrayBuffer. */
export type WireData = string | ArrayBuffer

/** One connection attempt's parameters, as the platform receives them. */
export interface TransportRequest {
  url: string
  header?: Record<string, string> | undefined
  protocols?: string[] | undefined
  /** The platform's own connect timeout (ms), passed through untouched. */
  timeout?: number | undefined
}

/**
 * Callbacks a transport calls. A transport may call `onError` and `onClose` both, in any order, or call
 * nothing after `close()`: the connection's state machine copes with all of these.
 */
export interface TransportEvents {
  onOpen(): void
  onMessage(data: WireData): void
  onClose(code: number, reason: string): void
  onError(error: LongLinkError): void
}

/** One live link. A SocketTask, a browser WebSocket — or later an SSE or long-polling channel — behind one shape. */
export interface Transport {
  /** Sends one message; resolves when the platform accepted it. Views are sent as exactly their bytes. */
  send(data: string | ArrayBuffer | ArrayBufferView): Promise<void>
  /** Starts closing. Never throws. */
  close(code?: number, reason?: string): void
  /**
   * Lets go of the link without ending what it belongs to: a session of the HTTP transports is kept for the next
   * attempt, which resumes it. Links without one have no `detach`, and are closed instead.
   */
  detach?(): void
}

/** Network and app lifecycle APIs of a host (wx, uni, my, tt, a browser shim). Each one is optional. */
export interface LifecycleHost {
  onNetworkStatusChange?(cb: (res: { isConnected: boolean; networkType: string }) => void): void
  offNetworkStatusChange?(cb?: (res: { isConnected: boolean; networkType: string }) => void): void
  getNetworkType?(options: { success?: (res: { networkType: string }) => void; fail?: (err: unknown) => void }): unknown
  onAppShow?(cb: (res?: unknown) => void): void
  offAppShow?(cb?: (res?: unknown) => void): void
  onAppHide?(cb: (res?: unknown) => void): void
  offAppHide?(cb?: (res?: unknown) => void): void
}

/** A SocketTask as wx, uni, my and tt return it. */
export interface SocketTaskLike {
  send(options: { data: WireData; success?: () => void; fail?: (err: { errMsg?: string }) => void }): void
  close(options: { code?: number | undefined; reason?: string | undefined; success?: () => void; fail?: (err: unknown) => void }): void
  onOpen(cb: (res?: unknown) => void): void
  onClose(cb: (res: { code?: number; reason?: string }) => void): void
  onError(cb: (res: { errMsg?: string }) => void): void
  /** Alipay marks a binary frame `isBuffer` and hands it over as base64 text. */
  onMessage(cb: (res: { data: unknown; isBuffer?: boolean }) => void): void
}

/** Any object with a SocketTask-returning `connectSocket`, plus optional lifecycle APIs. */
export interface SocketHost extends LifecycleHost {
  connectSocket(options: Record<string, unknown>): SocketTaskLike | unknown
  /** Alipay: turns the base64 text of a binary frame (a message marked `isBuffer`) back into its bytes. */
  base64ToArrayBuffer?(base64: string): ArrayBuffer
}

/** The one interface every platform adapter implements. */
export interface Adapter {
  /** Short name for logs: `uni`, `wx`, `web`, or the host's. */
  readonly name: string
  /** Starts one attempt. Errors surface through `events.onError`, never as throws after return. */
  open(request: TransportRequest, events: TransportEvents): Transport
  /** Lifecycle APIs the connection may use (network and app show/hide). */
  readonly lifecycle?: LifecycleHost | undefined
  /** The transport in use (`websocket`, `sse`, `long-polling`, `polling`); `websocket` when absent. */
  readonly transport?: TransportName
  /** Set by the client: told when `transport` changes. */
  onTransport?: ((change: TransportChange) => void) | undefined
  /** Told when the client goes offline (no network, app hidden): failures around it are not the transport's. */
  blocked?(): void
  /** Told when the client stops: anything kept for a next attempt is let go. */
  end?(): void
  /**
   * After a failure that would stop the client (the socket limit, a domain not allowed, an insecure URL): whether the
   * adapter still has a way to go (another transport), so the client goes on instead.
   */
  recoverable?(): boolean
}
