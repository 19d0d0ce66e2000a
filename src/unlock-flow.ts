/**
 * The unlock flow, in the order that cannot miss the message: log in, reserve the bike, connect, subscribe to the
 * bike's "unlocked" topic, only then ask the backend to unlock, wait for the message, end the client.
 *
 * A ride the rider already holds is never a dead end. When the reservation is refused (BIKE_BUSY, RIDER_BUSY), the
 * unlock is refused, or the message does not come in time, the flow asks the backend for the rider's active rides:
 * a ride on this bike opens (riding) or goes on unlocking (the unlock request is idempotent), a ride on another bike
 * is reported as {@link RidingElsewhereError}, and only otherwise does the original error stand.
 */
import { unlockedTopic, type HoldStatus, type RideView } from '@/server/api-contract'
import { createMqttClient, LongLinkError, type MqttClientOptions, type MqttMessage } from '@/uni_modules/longlink-socket/js_sdk/mqtt'
import { activeRides, BikeApiError, brokerConfig, login, reserve, unlock, type Credential, type Session } from './bike-api'
import { demoTransports, mqttUrl } from './config'
import { connectWithSession, sessionAuth } from './mqtt-session'

export type UnlockStep = 'login' | 'connecting' | 'subscribed' | 'requested' | 'unlocked'

/** How long one unlock request waits for the bike's message. */
const WAIT_MS = 15_000
/** Unlock requests per flow while the ride stays `unlocking`: the first, and one more after a wait that timed out. */
const UNLOCK_ROUNDS = 2

/** The ride the flow opened. */
export interface UnlockResult {
  session: Session
  /** The bike ridden (the one asked for, or the rider's other bike for {@link resumeRide}). */
  bike: string
  /** When the ride started, by the backend's clock: from the unlocked message, or from the rider's active ride. */
  startedAt: number
  /** The broker the flow used, for the ride page to use too. */
  mqttUrl: string
  /** The unlocked message, when the flow heard it (not when it found the ride already under way). */
  message?: MqttMessage
}

/**
 * The rider already rides (or is unlocking) another bike, `ride.bike`; {@link resumeRide} with `session` opens that
 * ride. `code` is RIDING_ELSEWHERE, `details` carries the bike and its status for the rider's message.
 */
export class RidingElsewhereError extends Error {
  readonly code = 'RIDING_ELSEWHERE'
  readonly details: { bike: string; status: HoldStatus }

  constructor(
    /** The logged-in session, to open the other ride without a new login. */
    readonly session: Session,
    /** The rider's ride on the other bike. */
    readonly ride: RideView,
  ) {
    super(`the rider already ${ride.status === 'riding' ? 'rides' : 'unlocks'} bike ${ride.bike}`)
    this.name = 'RidingElsewhereError'
    this.details = { bike: ride.bike, status: ride.status }
  }
}

/**
 * Runs the flow for the rider of `credential` and `bike`, reporting each step; a ride already under way on `bike`
 * reports `login`, then `unlocked`. Rejects with a {@link RidingElsewhereError}, a BikeApiError (LOGIN_REFUSED,
 * SESSION_EXPIRED, BIKE_BUSY, NETWORK, …) or a LongLinkError (NOT_AUTHORIZED, TIMEOUT, …).
 */
export async function runUnlockFlow(
  credential: Credential,
  bike: string,
  onStep: (step: UnlockStep) => void,
  extra: Partial<MqttClientOptions> = {},
): Promise<UnlockResult> {
  onStep('login')
  const session = await login(credential)
  let held: RideView | undefined
  try {
    await reserve(session, bike)
  } catch (error) {
    if (!isBusy(error)) throw error
    held = await heldRide(session, bike, error)
  }
  return finish(session, bike, held, onStep, extra)
}

/**
 * Opens the ride `session`'s rider holds on `bike` (the other bike of a {@link RidingElsewhereError}): at once when it
 * is under way, through the rest of the flow when it is still unlocking. Rejects with RIDE_NOT_FOUND when the rider no
 * longer holds that bike, or as {@link runUnlockFlow}.
 */
export async function resumeRide(
  session: Session,
  bike: string,
  onStep: (step: UnlockStep) => void,
  extra: Partial<MqttClientOptions> = {},
): Promise<UnlockResult> {
  const held = await heldRide(session, bike, new BikeApiError('RIDE_NOT_FOUND', 404, `no ride on bike ${bike}`))
  return finish(session, bike, held, onStep, extra)
}

/** A refusal that may be the rider's own ride: the bike is held, or the rider holds another. */
function isBusy(error: unknown): boolean {
  return error instanceof BikeApiError && (error.code === 'BIKE_BUSY' || error.code === 'RIDER_BUSY')
}

/**
 * The rider's ride (unlocking or riding) on `bike`, from the backend. Throws a {@link RidingElsewhereError} when the
 * rider's ride is on another bike, and `cause` when there is no ride or the backend could not tell.
 */
async function heldRide(session: Session, bike: string, cause: unknown): Promise<RideView> {
  let rides: RideView[]
  try {
    rides = (await activeRides(session)).rides
  } catch {
    throw cause
  }
  const started = rides.filter((ride) => ride.status !== 'reserved')
  const own = started.find((ride) => ride.bike === bike)
  if (own) return own
  if (started.length > 0) throw new RidingElsewhereError(session, started[0])
  throw cause
}

/** The flow after the reservation: straight to the ride when `held` is under way, else subscribe, unlock, wait. */
async function finish(
  session: Session,
  bike: string,
  held: RideView | undefined,
  onStep: (step: UnlockStep) => void,
  extra: Partial<MqttClientOptions>,
): Promise<UnlockResult> {
  const { mqttUrl: url } = await brokerConfig().catch(() => ({ mqttUrl: mqttUrl() }))
  const riding = (ride: RideView): UnlockResult => {
    onStep('unlocked')
    return { session, bike, startedAt: ride.startedAt ?? Date.now(), mqttUrl: url }
  }
  if (held?.status === 'riding') return riding(held)
  onStep('connecting')
  const current = () => session
  // No fixed password: the hook hands out a fresh token before every attempt, so a token that expires mid-flow
  // costs one reconnect, not the unlock. Where WebSocket is refused the client falls back to the next transport.
  const client = createMqttClient({
    url,
    auth: sessionAuth(current),
    keepalive: 30,
    reconnect: { maxRetries: 3 },
    transports: demoTransports(),
    ...extra,
  })
  try {
    await connectWithSession(client, current)
    let received!: (message: MqttMessage) => void
    const unlocked = new Promise<MqttMessage>((resolve) => (received = resolve))
    // `subscribe` resolves on SUBACK: only then is the unlock requested, so the message cannot come first. A client
    // that subscribes again after a reconnect hears the unlock again once the ride is under way.
    await client.subscribe(unlockedTopic(bike), (message) => received(message), { qos: 1 })
    onStep('subscribed')
    for (let round = 1; ; round++) {
      try {
        await unlock(session, bike)
      } catch (error) {
        if (!isBusy(error)) throw error
        // Refused although subscribed: the rider's own ride (unlocking or riding) is fine, anything else is not.
        const ride = await heldRide(session, bike, error)
        if (ride.status === 'riding') return riding(ride)
      }
      onStep('requested')
      const message = await within(unlocked, WAIT_MS)
      if (message) {
        onStep('unlocked')
        return { session, bike, startedAt: Number((message.json() as { time?: unknown }).time) || Date.now(), mqttUrl: url, message }
      }
      // No message in time (the backend restarted, or the link was down when it was published): ask what became of it.
      const timeout = new LongLinkError('TIMEOUT', `the bike did not report unlocked within ${WAIT_MS / 1000} s`)
      const ride = await heldRide(session, bike, timeout)
      if (ride.status === 'riding') return riding(ride)
      if (round >= UNLOCK_ROUNDS) throw timeout
    }
  } finally {
    await client.end().catch(() => {})
  }
}

/** `promise`'s value, or undefined when it takes longer than `ms`. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))
  return Promise.race([promise, late]).finally(() => clearTimeout(timer))
}
