/**
 * The seed's unlock flow, in the order that cannot miss the message: connect, subscribe to the bike's "unlocked"
 * topic, only then ask the backend to unlock, wait for the message, end the client.
 */
import { createMqttClient, LongLinkError, type MqttClientOptions, type MqttMessage } from '@/uni_modules/longlink-socket/js_sdk/mqtt'
import { brokerConfig, login, reserve, unlock, type Session } from './bike-api'
import { mqttUrl } from './config'

export type UnlockStep = 'login' | 'connecting' | 'subscribed' | 'requested' | 'unlocked'

export interface UnlockResult {
  session: Session
  message: MqttMessage
  /** The broker the flow used, for the ride page to use too. */
  mqttUrl: string
}

/** Runs the flow for `rider` and `bike`, reporting each step; rejects with a BikeApiError or a LongLinkError. */
export async function runUnlockFlow(
  rider: string,
  bike: string,
  onStep: (step: UnlockStep) => void,
  extra: Partial<MqttClientOptions> = {},
): Promise<UnlockResult> {
  onStep('login')
  const session = await login(rider)
  await reserve(session, bike)
  onStep('connecting')
  const { mqttUrl: url } = await brokerConfig().catch(() => ({ mqttUrl: mqttUrl() }))
  const client = createMqttClient({ url, username: rider, password: session.token, keepalive: 30, reconnect: { maxRetries: 3 }, ...extra })
  try {
    await client.connect()
    let received!: (message: MqttMessage) => void
    const unlocked = new Promise<MqttMessage>((resolve) => (received = resolve))
    // `subscribe` resolves on SUBACK: only then is the unlock requested, so the message cannot come first.
    await client.subscribe(`mobike/unlocked/${bike}`, (message) => received(message), { qos: 1 })
    onStep('subscribed')
    await unlock(session, bike)
    onStep('requested')
    let timer: ReturnType<typeof setTimeout> | undefined
    const message = await Promise.race([
      unlocked,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new LongLinkError('TIMEOUT', 'the bike did not report unlocked within 15 s')), 15_000)
      }),
    ]).finally(() => clearTimeout(timer))
    onStep('unlocked')
    return { session, message, mqttUrl: url }
  } finally {
    await client.end().catch(() => {})
  }
}
