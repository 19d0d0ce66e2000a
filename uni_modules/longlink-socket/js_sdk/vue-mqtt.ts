/**
 * Vue 3 composables for the MQTT entry. The client ends and subscriptions leave when their owner's scope is
 * disposed (the component unmounts or the page unloads), so a page cannot leak a socket or a subscription.
 */
import { onScopeDispose, shallowRef, type ShallowRef } from 'vue'
import type { LongLinkError } from './errors'
import { createMqttClient } from './mqtt'
import type { MqttMessage } from './mqtt/message'
import type { MqttClient, MqttClientOptions, Subscription } from './mqtt/types'
import type { ConnectionState, TransportName } from './types'

/** What `useMqtt` returns: the client and reactive views of it. */
export interface UseMqtt {
  client: MqttClient
  state: ShallowRef<ConnectionState>
  /** The last error reported (cleared when the link opens). */
  error: ShallowRef<LongLinkError | undefined>
  /** The transport in use (`websocket`, `sse`, `long-polling`, `polling`), reactive. */
  transport: ShallowRef<TransportName>
}

/** Creates an MQTT client owned by the current scope, connects it (unless `connect: false`), ends it on dispose. */
export function useMqtt(options: MqttClientOptions, { connect = true }: { connect?: boolean } = {}): UseMqtt {
  const client = createMqttClient(options)
  const state = shallowRef(client.state)
  const error = shallowRef<LongLinkError>()
  const transport = shallowRef(client.transport)
  client.on('state', (change) => (state.value = change.to))
  client.on('transport', (change) => (transport.value = change.to))
  client.on('error', (e) => (error.value = e))
  client.on('open', () => (error.value = undefined))
  // A refusal also arrives as an `error` event; the catch only keeps it from surfacing as unhandled.
  if (connect) client.connect().catch(() => {})
  onScopeDispose(() => {
    client.end().catch(() => {})
  })
  return { client, state, error, transport }
}

/** What `useTopic` returns. */
export interface UseTopic {
  /** The last message on the filter. */
  message: ShallowRef<MqttMessage | undefined>
  /** The subscription once the broker acknowledged it. */
  subscription: ShallowRef<Subscription | undefined>
  error: ShallowRef<LongLinkError | undefined>
}

/**
 * Subscribes `client` to `filter` for the current scope; `onMessage` (optional) runs for each message. The handler
 * leaves on dispose (UNSUBSCRIBE goes out only if it was the filter's last).
 */
export function useTopic(
  client: MqttClient,
  filter: string,
  onMessage?: (message: MqttMessage) => void,
  { qos = 0 }: { qos?: 0 | 1 | 2 } = {},
): UseTopic {
  const message = shallowRef<MqttMessage>()
  const subscription = shallowRef<Subscription>()
  const error = shallowRef<LongLinkError>()
  let disposed = false
  client
    .subscribe(
      filter,
      (received) => {
        message.value = received
        if (onMessage) onMessage(received)
      },
      { qos },
    )
    .then(
      (s) => {
        if (disposed) s.unsubscribe().catch(() => {})
        else subscription.value = s
      },
      (e: LongLinkError) => {
        error.value = e
      },
    )
  onScopeDispose(() => {
    disposed = true
    if (subscription.value) subscription.value.unsubscribe().catch(() => {})
  })
  return { message, subscription, error }
}
