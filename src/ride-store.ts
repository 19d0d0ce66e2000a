/** Hands the session and bike from the unlock page to the ride page (in memory: a token never goes into a URL). */
import type { Session } from './bike-api'

/** The ride under way, as the ride page needs it. */
export interface CurrentRide {
  session: Session
  bike: string
  unlockedAt: number
  mqttUrl: string
}

let current: CurrentRide | undefined

/** Records the ride the unlock flow just started. */
export function startRide(session: Session, bike: string, unlockedAt: number, mqttUrl: string): void {
  current = { session, bike, unlockedAt, mqttUrl }
}

/** The ride under way, if any. */
export function currentRide(): CurrentRide | undefined {
  return current
}

/** After a new login mid-ride (the old session expired): the ride goes on with the new session. */
export function replaceSession(session: Session): void {
  if (current) current = { ...current, session }
}

/** The ride is over (locked). */
export function endRide(): void {
  current = undefined
}
