/**
 * The unlock flow, in the order that cannot miss the message: log in, reserve the bike, connect, subscribe to the
 * bike's "unlocked" topic, only then ask the backend to unlock, wait for the message, end the client.
 */
import { unlockedTopic } from '@/server/api-contract'
import { createMqttClient, LongLinkError, type MqttClientOptions, type MqttMessage } from '@/uni_modules/longlink-socket/js_sdk/mqtt'
import { brokerConfig, login, reserve, unlock, type Credential, type Session } from './bike-api'
import { mqttUrl } from './config'
import { connectWithSession, sessionAuth } from './mqtt-session'

export type UnlockStep = 'login' | 'connecting' | 'subscribed' | 'requested' | 'unlocked'

export interface UnlockResult {
  session: Session
  message: MqttMessage
  /** The broker the flow used, for the ride page to use too. */
  mqttUrl: string
}

/**
 * Runs the flow for the rider of `credential` and `bike`, reporting each step. Rejects with a BikeApiError
 * (LOGIN_REFUSED, SESSION_EXPIRED, BIKE_BUSY, NETWORK, …) or a LongLinkError (NOT_AUTHORIZED, TIMEOUT, …).
 */
export async function runUnlockFlow(
  credential: Credential,
  bike: string,
  onStep: (step: UnlockStep) => void,
  extra: Partial<MqttClientOptions> = {},
): Promise<UnlockResult> {
  onStep('login')
  const session = await login(credential)
  await reserve(session, bike)
  onStep('connecting')
  const { mqttUrl: url } = await brokerConfig().catch(() => ({ mqttUrl: mqttUrl() }))
  const current = () => session
  // No fixed password: the hook hands out a fresh token before every attempt, so a token that expires mid-flow
  // costs one reconnect, not the unlock.
  const client = createMqttClient({ url, auth: sessionAuth(current), keepalive: 30, reconnect: { maxRetries: 3 }, ...extra })
  try {
    await connectWithSession(client, current)
    let received!: (message: MqttMessage) => void
    const unlocked = new Promise<MqttMessage>((resolve) => (received = resolve))
    // `subscribe` resolves on SUBACK: only then is the unlock requested, so the message cannot come first.
    await client.subscribe(unlockedTopic(bike), (message) => received(message), { qos: 1 })
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
