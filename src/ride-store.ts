/** Hands the session and bike from the unlock page to the ride page (in memory: a token never goes into a URL). */
import type { Session } from './bike-api'

let current: { session: Session; bike: string; unlockedAt: number; mqttUrl: string } | undefined

export function startRide(session: Session, bike: string, unlockedAt: number, mqttUrl: string): void {
  current = { session, bike, unlockedAt, mqttUrl }
}

export function currentRide(): typeof current {
  return current
}

export function endRide(): void {
  current = undefined
}
