/**
 * Vue 3 composables for the core connection. Whatever a composable opens is closed when its owner goes away (a
 * page unloading unmounts its components, which disposes their scope), so a page cannot leak a socket.
 * MQTT composables live in `./vue-mqtt`, so pages that only use the core never load MQTT.js.
 */
import { onScopeDispose, shallowRef, type ShallowRef } from 'vue'
import { createConnection } from './index'
import type { Connection } from './core/connection'
import type { LongLinkError } from './errors'
import type { ConnectionOptions, ConnectionState, MessageData, TransportName } from './types'

/** What `useConnection` returns: the connection and reactive views of it. */
export interface UseConnection {
  connection: Connection
  /** The connection's state, reactive. */
  state: ShallowRef<ConnectionState>
  /** The last message received. */
  lastMessage: ShallowRef<MessageData | undefined>
  /** The last error reported (cleared when the link opens). */
  error: ShallowRef<LongLinkError | undefined>
  /** The transport in use (`websocket`, `sse`, `long-polling`, `polling`), reactive. */
  transport: ShallowRef<TransportName>
  /** Sends through the connection (queued while not open). */
  send: Connection['send']
}

/**
 * Creates a connection owned by the current component or effect scope and opens it (unless `open: false`).
 * It closes when the scope is disposed: the component unmounts or the page unloads.
 */
export function useConnection(options: ConnectionOptions, { open = true }: { open?: boolean } = {}): UseConnection {
  const connection = createConnection(options)
  const state = shallowRef(connection.state)
  const lastMessage = shallowRef<MessageData>()
  const error = shallowRef<LongLinkError>()
  const transport = shallowRef(connection.transport)
  connection.on('state', (change) => (state.value = change.to))
  connection.on('transport', (change) => (transport.value = change.to))
  connection.on('message', (data) => (lastMessage.value = data))
  connection.on('error', (e) => (error.value = e))
  connection.on('open', () => (error.value = undefined))
  // Rejections also arrive as `error` events; the catch only keeps them from surfacing as unhandled.
  if (open) connection.open().catch(() => {})
  onScopeDispose(() => {
    connection.close().catch(() => {})
  })
  return { connection, state, lastMessage, error, transport, send: (data) => connection.send(data) }
}
