/**
 * The store: everything the backend must not forget on a restart (riders, holds, rides and fares, refresh tokens,
 * ride events).
 * One interface, two implementations: SQLite (a local file, the default; `sqlite.ts`) and PostgreSQL
 * (`DATABASE_URL`; `postgres.ts`). Every method is one transaction, so two requests (or two backend processes) racing
 * for the same bike cannot both win. Times are ms since epoch.
 */
import type { HoldStatus, RideEventType, RideSummary } from '../api-contract'

export interface RiderRecord {
  id: string
  /** scrypt hash (`scrypt$N$r$p$salt$hash`, base64url parts) of the demo password; null when the rider logs in otherwise. */
  passwordHash: string | null
  /** WeChat openid bound to this rider, if any. */
  wechatOpenId: string | null
  createdAt: number
}

export interface HoldRecord {
  bike: string
  rider: string
  status: HoldStatus
  /** End of a reservation (status `reserved`). */
  reservedUntil: number | null
  /** When the simulated lock opens (status `unlocking`). */
  unlockAt: number | null
  /** When the ride started (status `riding`). */
  startedAt: number | null
}

/** A finished ride as stored: the summary riders see, with the store's id. */
export type RideRecord = RideSummary & { id: number }

/** One change of a rider's hold, as kept for the rider's event stream. */
export interface RideEventRecord {
  /** Grows with every event of the database, and survives restarts. */
  id: number
  rider: string
  bike: string
  type: RideEventType
  /** The event's payload, as given to {@link Store.appendRideEvent} (kept as JSON). */
  data: unknown
  /** When it happened. */
  at: number
}

/** Outcome of a claim on a bike (reserve or unlock). */
export type ClaimResult =
  | { ok: true; hold: HoldRecord }
  /** Another rider holds the bike, or (for unlock) this rider's own hold on it is past `reserved`. */
  | { ok: false; reason: 'bike-busy'; status: HoldStatus }
  /** This rider is unlocking or riding another bike. */
  | { ok: false; reason: 'rider-busy'; bike: string }

export type FinishResult = { ok: true; ride: RideRecord } | { ok: false; reason: 'not-found' | 'unlocking' }

export interface Store {
  readonly kind: 'sqlite' | 'postgres'

  /**
   * Inserts the rider when absent (seeding); on any conflict (the id, or a WeChat openid already bound) the existing
   * rider is left as it is: read it back to know which rider holds the openid.
   */
  addRider(rider: RiderRecord): Promise<void>
  getRider(id: string): Promise<RiderRecord | undefined>
  riderByWechat(openId: string): Promise<RiderRecord | undefined>

  /**
   * Reserve `bike` for `rider` until `until`. Free bike, an expired reservation, or this rider's own reservation →
   * ok (the reservation is set or renewed). A live reservation of this rider on another bike is dropped (a new
   * reservation replaces an old one). Another rider's live hold → bike-busy; this rider unlocking/riding another
   * bike → rider-busy; this rider already unlocking/riding this bike → bike-busy with that status.
   */
  reserve(rider: string, bike: string, now: number, until: number): Promise<ClaimResult>
  /** Same claim rules as reserve, then the hold becomes `unlocking` with `unlockAt`. */
  startUnlock(rider: string, bike: string, now: number, unlockAt: number): Promise<ClaimResult>
  /**
   * `unlocking` → `riding` with `startedAt`, and the rider's `riding` ride event (`{bike, rider, time}`) in the same
   * transaction, so no later event of the ride (its `locked`) can take an earlier id, and a process dying in between
   * leaves no ride without its event. The hold after the change with that event's id, or undefined when it is no
   * longer unlocking.
   */
  completeUnlock(bike: string, rider: string, startedAt: number): Promise<(HoldRecord & { rideEventId: number }) | undefined>
  /**
   * The ride that started at `startedAt` has been announced: {@link Store.overdueUnlocks} no longer lists it. Until
   * then a completed unlock stays owed (the process may die between the start and the announcement).
   */
  markAnnounced(bike: string, rider: string, startedAt: number): Promise<void>
  /**
   * Ends the rider's ride on `bike`: deletes the hold and records the ride with its fare (from `fareFor(durationMs)`),
   * in one transaction, so a fare is recorded exactly once. not-found: no riding hold of this rider on the bike;
   * unlocking: still unlocking.
   */
  finishRide(rider: string, bike: string, endedAt: number, fareFor: (durationMs: number) => number): Promise<FinishResult>
  // `fareFor` must be pure and synchronous: PostgreSQL may run the transaction again after a deadlock.
  /** The live hold on a bike (expired reservations are absent). */
  holdOfBike(bike: string, now: number): Promise<HoldRecord | undefined>
  /** The rider's live holds (at most one unlocking/riding, at most one reserved). */
  holdsOfRider(rider: string, now: number): Promise<HoldRecord[]>
  /** Holds `unlocking` (to finish unlocks interrupted by a restart). */
  unlockingHolds(): Promise<HoldRecord[]>
  /**
   * At most `limit` holds whose unlock is overdue, oldest first: `unlocking` with `unlockAt` at or before `dueBy` (not
   * finished), or `riding` since `dueBy` or before and not yet announced ({@link Store.markAnnounced}). What another
   * process sharing the database should have done by now (it may have died).
   */
  overdueUnlocks(dueBy: number, limit: number): Promise<HoldRecord[]>
  /** Number of holds unlocking or riding. */
  activeRideCount(): Promise<number>
  /** Deletes expired reservations; returns how many. */
  expireReservations(now: number): Promise<number>
  /** The rider's finished rides, newest first. */
  ridesOf(rider: string, limit?: number): Promise<RideRecord[]>
  /** The rider's latest finished ride (on `bike`, when given), or undefined. */
  lastRide(rider: string, bike?: string): Promise<RideRecord | undefined>

  /**
   * Keeps an event of `rider` and returns its id. `data` must survive `JSON.stringify`. Ids grow in the order events
   * are committed for one rider, also across processes sharing a PostgreSQL database, so a reader that resumes after
   * the last id it saw misses none of that rider's events.
   */
  appendRideEvent(rider: string, bike: string, type: RideEventType, data: unknown, at: number): Promise<number>
  /** The rider's events with an id above `afterId`, oldest first, at most `limit`. */
  rideEventsAfter(rider: string, afterId: number, limit: number): Promise<RideEventRecord[]>

  /** Keeps a refresh token's hash for `rider` until `expiresAt`. */
  saveRefreshToken(hash: string, rider: string, expiresAt: number): Promise<void>
  /** Deletes the refresh token and returns its rider, when it exists and has not expired (one use only). */
  takeRefreshToken(hash: string, now: number): Promise<string | undefined>

  /** Deletes expired refresh tokens (abandoned sessions); returns how many. */
  expireRefreshTokens(now: number): Promise<number>

  /** A cheap round trip (for `/healthz`). */
  ping(): Promise<void>
  close(): Promise<void>
}
