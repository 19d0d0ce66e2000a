/**
 * The bike service: reservations, unlock and lock, and fares. It knows nothing of HTTP or MQTT: it reads and writes
 * the {@link Store}, asks the {@link LockSimulator} to open locks, and announces what happened through
 * {@link BikeEvents} (the backend publishes those on MQTT). Failures are {@link BikeError}s with an API error code.
 *
 * **Who may watch a bike (subscribe before unlock).** The app subscribes to `mobike/unlocked/<id>` *before* it asks
 * for the unlock, so a rider may subscribe to it while it *holds* the bike: an unexpired reservation, an unlock in
 * progress or a ride. `mobike/locked/<id>` needs an unlock in progress or a ride. A bike is held by at most one rider
 * and a rider holds at most one bike. The broker also checks each delivery against the event's own rider, so a
 * subscription that outlives its hold hears nothing of the next rider.
 *
 * **Ride events.** Every change of a rider's hold (`reserved`, `unlocking`, `riding`, `locked`) is also kept in the
 * store as a ride event, then announced in this process ({@link BikeService.onRideEvent}): a rider's event stream
 * reads the store after the last id it sent, and the announcement only tells it when to read again.
 */
import {
  BIKE_ID,
  lockedTopic,
  parseBikeTopic,
  type ApiErrorCode,
  type HoldStatus,
  type ReserveResponse,
  type RideEventData,
  type RideEventType,
  type RideSummary,
  type RideView,
  type UnlockedMessage,
  type UnlockResponse,
} from './api-contract'
import type { LockSimulator } from './lock-sim'
import type { Logger } from './log'
import type { ClaimResult, HoldRecord, RideEventRecord, RideRecord, Store } from './store/types'

/** A refused domain operation, with the API error code that names it. */
export class BikeError extends Error {
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message)
    this.name = 'BikeError'
  }
}

/** Where the service announces unlocks and finished rides. */
export interface BikeEvents {
  unlocked(message: UnlockedMessage): Promise<void>
  locked(summary: RideSummary): Promise<void>
}

export interface BikeService {
  reserve(rider: string, bike: string): Promise<ReserveResponse>
  unlock(rider: string, bike: string): Promise<UnlockResponse>
  lock(rider: string, bike: string): Promise<RideSummary>
  activeRides(rider: string): Promise<RideView[]>
  /** Rides unlocking or under way (a cached count, refreshed on every change). */
  activeRideCount(): number
  /**
   * Announces the unlock of `bike` again when `rider` is riding it: a rider who missed the announcement (a restart
   * between the ride's start and its announcement, a reconnect at that moment) hears it when it subscribes again.
   * Without `bike`: the bike the rider is riding, if any (for a session that comes back subscribed).
   */
  reannounce(rider: string, bike?: string): void
  /** May `rider` subscribe to `filter`? (`mobike/unlocked|locked/<bike>` of a bike it holds.) */
  canWatch(rider: string, filter: string): Promise<boolean>
  /** The rider's latest finished ride (on `bike`, when given); RIDE_NOT_FOUND when there is none. */
  lastRide(rider: string, bike?: string): Promise<RideSummary>
  /** The rider's ride events after `afterId`, oldest first, at most `limit`. */
  rideEventsAfter(rider: string, afterId: number, limit: number): Promise<RideEventRecord[]>
  /** Hears each ride event once it is stored, in this process; returns what stops it. */
  onRideEvent(listener: (event: RideEventRecord) => void): () => void
  /** Schedules the unlocks a restart interrupted; call once after the events can be delivered. */
  start(): Promise<void>
  onChange(listener: () => void): void
  close(): void
}

export interface BikeServiceDeps {
  store: Store
  events: BikeEvents
  locks: LockSimulator
  logger: Logger
  config: {
    unlockDelayMs: number
    reserveTtlMs: number
    farePerMinute: number
    /**
     * After a restart, an unlock that fell due while the backend was down opens this long after start, not at once:
     * the riders' clients need a moment to reconnect and resubscribe, or they would miss the announcement.
     */
    resumeGraceMs?: number
    /**
     * Processes sharing one database: this often (ms; 0 or absent: never) this process finishes the unlocks that are
     * `takeoverGraceMs` past their time, whichever process started them: the one that did may have died, and its
     * rider must not wait for its restart.
     */
    takeoverSweepMs?: number
    takeoverGraceMs?: number
  }
  now?: () => number
}

/** Overdue unlocks one sweep finishes at most: a backlog is worked off over several sweeps, never in one burst. */
const TAKEOVER_BATCH = 50

/** The fare of a ride: per started minute, at least one minute, rounded to the fen. */
export function fareFor(durationMs: number, farePerMinute: number): number {
  const minutes = Math.max(1, Math.ceil(durationMs / 60_000))
  return Math.round(minutes * farePerMinute * 100) / 100
}

const checkBike = (bike: string): void => {
  if (typeof bike !== 'string' || !BIKE_ID.test(bike)) throw new BikeError('BAD_INPUT', 'bike id must match /^[A-Za-z0-9_-]{1,32}$/')
}

function refused(result: Extract<ClaimResult, { ok: false }>, bike: string): never {
  if (result.reason === 'rider-busy') throw new BikeError('RIDER_BUSY', `rider already has bike ${result.bike}`, { bike: result.bike })
  throw new BikeError('BIKE_BUSY', result.status === 'reserved' ? `bike ${bike} is in use` : `bike ${bike} is already ${result.status}`)
}

/** What a rider sees of a stored ride: everything but the store's id. */
const summaryOf = ({ id: _id, ...summary }: RideRecord): RideSummary => summary

const view = (h: HoldRecord): RideView => ({
  bike: h.bike,
  rider: h.rider,
  status: h.status as HoldStatus,
  ...(h.status === 'reserved' && h.reservedUntil !== null && { reservedUntil: h.reservedUntil }),
  ...(h.startedAt !== null && { startedAt: h.startedAt }),
})

export function createBikeService(deps: BikeServiceDeps): BikeService {
  const { store, events, locks, logger, config } = deps
  const now = deps.now ?? Date.now
  const listeners: (() => void)[] = []
  const eventListeners = new Set<(event: RideEventRecord) => void>()
  let rideCount = 0
  let closed = false
  let sweeper: NodeJS.Timeout | undefined
  let takeover: NodeJS.Timeout | undefined

  const changed = (): void => {
    void store.activeRideCount().then(
      (n) => {
        rideCount = n
        for (const l of listeners) l()
      },
      () => {},
    )
  }

  /**
   * Keeps a ride event, then announces it. Awaited before the action answers, so the rider's next action comes after
   * it; a failure is logged, not thrown: the change itself is committed, and failing the request would make the
   * client retry something that already happened.
   */
  const record = async <K extends RideEventType>(rider: string, bike: string, type: K, data: RideEventData[K], at: number): Promise<void> => {
    let id: number
    try {
      id = await store.appendRideEvent(rider, bike, type, data, at)
    } catch (err) {
      logger.error('ride_event.failed', { rider, bike, type, error: err })
      return
    }
    notify({ id, rider, bike, type, data, at })
  }
  /** Tells this process's listeners (the rider's event streams) of a stored event. */
  const notify = (event: RideEventRecord): void => {
    for (const listener of eventListeners) {
      try {
        listener(event)
      } catch (err) {
        logger.error('ride_event.listener_failed', { type: event.type, error: err })
      }
    }
  }

  /** The lock opened: the ride starts (once, even if two processes race) and the rider hears it; false when it had already. */
  const opened = async (bike: string, rider: string): Promise<boolean> => {
    if (closed) return false
    const time = now()
    const hold = await store.completeUnlock(bike, rider, time)
    if (!hold) return false
    changed()
    const message: UnlockedMessage = { bike, rider, time: hold.startedAt ?? time }
    // The store kept the `riding` event with the change: the streams only need to hear of it.
    notify({ id: hold.rideEventId, rider, bike, type: 'riding', data: message, at: message.time })
    await announceOwed(message)
    return true
  }
  /**
   * Publishes a ride's unlock, then marks it announced in the store; until then the store lists it as owed, so when
   * this process dies (or the publish fails) in between, a sweep announces it (at least once, never lost).
   */
  const announceOwed = async (message: UnlockedMessage): Promise<boolean> => {
    const { bike, rider } = message
    try {
      await events.unlocked(message)
      logger.info('bike.unlocked', { rider, bike })
    } catch (err) {
      logger.error('publish.failed', { topic: `mobike/unlocked/${bike}`, error: err })
      return false
    }
    await store.markAnnounced(bike, rider, message.time).catch((err: unknown) => logger.warn('bike.mark_announced_failed', { bike, error: err }))
    return true
  }
  const scheduleOpen = (hold: HoldRecord, notBefore = 0): void => {
    if (closed) return
    locks.schedule(hold.bike, Math.max(hold.unlockAt ?? now(), notBefore), () => {
      opened(hold.bike, hold.rider).catch((err: unknown) => logger.error('bike.unlock_failed', { bike: hold.bike, rider: hold.rider, error: err }))
    })
  }
  /**
   * Finishes a bounded batch of overdue unlocks. Safe against the process that started them and against other
   * sweepers: {@link Store.completeUnlock} flips a hold once, and only the caller that flipped it announces; an
   * unlock completed but never announced is announced again (a duplicate at worst, which QoS 1 allows anyway).
   */
  let sweeping = false
  /** The sweep fails every time while the database is down: logged when it starts failing and when it recovers. */
  let failing = false
  const sweepOverdue = async (): Promise<void> => {
    if (sweeping || closed) return
    sweeping = true
    try {
      const overdue = await store.overdueUnlocks(now() - (config.takeoverGraceMs ?? 2000), TAKEOVER_BATCH)
      for (const hold of overdue) {
        if (closed) break
        const { bike, rider } = hold
        if (hold.status === 'riding' && hold.startedAt !== null) {
          // Started, never announced: the process that started it died (or its publish failed) in between.
          if (await announceOwed({ bike, rider, time: hold.startedAt }))
            logger.info('bike.unlock_taken_over', { bike, rider, announcedOnly: true, overdueMs: now() - hold.startedAt })
        } else if (await opened(bike, rider)) logger.info('bike.unlock_taken_over', { bike, rider, overdueMs: now() - (hold.unlockAt ?? now()) })
      }
      if (failing) logger.info('bike.takeover_recovered')
      failing = false
    } catch (err) {
      if (!failing) logger.warn('bike.takeover_failed', { error: err })
      failing = true
    } finally {
      sweeping = false
    }
  }
  const announce = (hold: HoldRecord): void => {
    events
      .unlocked({ bike: hold.bike, rider: hold.rider, time: hold.startedAt ?? now() })
      .catch((err: unknown) => logger.error('publish.failed', { topic: `mobike/unlocked/${hold.bike}`, error: err }))
  }

  return {
    async reserve(rider, bike) {
      checkBike(bike)
      const at = now()
      const expiresAt = at + config.reserveTtlMs
      const result = await store.reserve(rider, bike, at, expiresAt)
      if (!result.ok) refused(result, bike)
      logger.info('bike.reserved', { rider, bike, expiresAt })
      await record(rider, bike, 'reserved', { bike, rider, status: 'reserved', expiresAt }, at)
      return { bike, status: 'reserved', expiresAt }
    },

    async unlock(rider, bike) {
      checkBike(bike)
      const at = now()
      const result = await store.startUnlock(rider, bike, at, at + config.unlockDelayMs)
      if (!result.ok) {
        // Asking again for an unlock already under way (a retry after a lost answer or message) is not an error.
        const mine = result.reason === 'bike-busy' ? await store.holdOfBike(bike, now()) : undefined
        if (mine?.rider === rider && mine.status !== 'reserved') {
          if (mine.status === 'riding') announce(mine)
          return { bike, status: 'unlocking' }
        }
        refused(result, bike)
      }
      // Recorded before the lock is asked to open, so `unlocking` always precedes `riding` in the rider's events.
      await record(rider, bike, 'unlocking', { bike, rider, status: 'unlocking' }, at)
      scheduleOpen(result.hold)
      logger.info('bike.unlocking', { rider, bike, delayMs: config.unlockDelayMs })
      changed()
      return { bike, status: 'unlocking' }
    },

    async lock(rider, bike) {
      checkBike(bike)
      const result = await store.finishRide(rider, bike, now(), (ms) => fareFor(ms, config.farePerMinute))
      if (!result.ok) {
        if (result.reason === 'unlocking') throw new BikeError('BIKE_BUSY', `bike ${bike} is still unlocking`)
        throw new BikeError('RIDE_NOT_FOUND', `no ride of yours on bike ${bike}`)
      }
      const { ride } = result
      const summary = summaryOf(ride)
      changed()
      logger.info('bike.locked', { rider, bike, durationMs: ride.durationMs, fare: ride.fare })
      await record(rider, bike, 'locked', summary, ride.endedAt)
      // The fare is recorded; the answer does not wait for the announcement (a broker that is down must not hold it),
      // and carries the same summary.
      events.locked(summary).catch((err: unknown) => logger.error('publish.failed', { topic: lockedTopic(bike), error: err }))
      return summary
    },

    async activeRides(rider) {
      return (await store.holdsOfRider(rider, now())).map(view)
    },

    activeRideCount: () => rideCount,

    async lastRide(rider, bike) {
      if (bike !== undefined) checkBike(bike)
      const ride = await store.lastRide(rider, bike)
      if (!ride) throw new BikeError('RIDE_NOT_FOUND', bike === undefined ? 'no finished ride of yours' : `no finished ride of yours on bike ${bike}`)
      return summaryOf(ride)
    },

    rideEventsAfter: (rider, afterId, limit) => store.rideEventsAfter(rider, afterId, limit),

    onRideEvent(listener) {
      eventListeners.add(listener)
      return () => void eventListeners.delete(listener)
    },

    reannounce(rider, bike) {
      if (closed || (bike !== undefined && !BIKE_ID.test(bike))) return
      const holds = bike === undefined ? store.holdsOfRider(rider, now()) : store.holdOfBike(bike, now()).then((h) => (h ? [h] : []))
      holds.then(
        (found) => {
          for (const hold of found) if (hold.rider === rider && hold.status === 'riding') announce(hold)
        },
        (err: unknown) => logger.warn('bike.reannounce_failed', { rider, bike, error: err }),
      )
    },

    async canWatch(rider, filter) {
      const topic = parseBikeTopic(filter)
      if (!topic) return false
      const hold = await store.holdOfBike(topic.bike, now())
      if (!hold || hold.rider !== rider) return false
      return topic.kind === 'unlocked' ? true : hold.status !== 'reserved'
    },

    async start() {
      // Expired reservations and refresh tokens are ignored by every query; this only keeps the tables small.
      sweeper = setInterval(() => {
        Promise.all([store.expireReservations(now()), store.expireRefreshTokens(now())]).catch((err: unknown) =>
          logger.warn('store.sweep_failed', { error: err }),
        )
      }, 60_000)
      sweeper.unref()
      rideCount = await store.activeRideCount()
      const pending = await store.unlockingHolds()
      const notBefore = now() + (config.resumeGraceMs ?? 3000)
      for (const hold of pending) scheduleOpen(hold, notBefore)
      if (pending.length > 0) logger.info('bike.unlocks_resumed', { count: pending.length })
      const every = config.takeoverSweepMs ?? 0
      if (every > 0) {
        // Not before the resumed unlocks had their grace: the sweep would otherwise open them before clients are back.
        takeover = setTimeout(function sweep() {
          void sweepOverdue().finally(() => {
            if (!closed) takeover = setTimeout(sweep, every).unref()
          })
        }, config.resumeGraceMs ?? 3000).unref()
      }
    },

    onChange(listener) {
      listeners.push(listener)
    },

    close() {
      closed = true
      clearInterval(sweeper)
      clearTimeout(takeover)
      locks.cancelAll()
    },
  }
}
