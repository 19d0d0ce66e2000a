/**
 * The store's rules, written once over a minimal SQL driver that `sqlite.ts` and `postgres.ts` provide. The SQL here
 * is the common subset of SQLite and PostgreSQL (`?` placeholders, `ON CONFLICT`, `RETURNING`), so both databases
 * obey exactly the same claim, unlock and fare rules.
 *
 * Concurrency: every method runs in one write transaction of the driver. SQLite takes the database-wide write lock
 * (`BEGIN IMMEDIATE`); PostgreSQL takes transaction-scoped advisory locks on the rider and the bike named in
 * {@link Driver.write}'s `locks`, which also serializes two backend processes sharing one database. Rows that do
 * not exist yet (a free bike) cannot be locked with `SELECT ... FOR UPDATE`, hence the named locks.
 */
import { randomUUID } from 'node:crypto'
import { RIDE_EVENT_TYPES, type HoldStatus, type RideEventType } from '../api-contract'
import type { ClaimResult, FinishResult, HoldRecord, RideEventRecord, RideRecord, RiderRecord, Store } from './types'

/** One result row, column name → value as the driver returns it. */
export type Row = Record<string, unknown>

/** Runs SQL inside an open transaction. Placeholders are `?`, bound in order. */
export interface Tx {
  query(sql: string, args?: readonly unknown[]): Promise<Row[]>
}

/** What a database must offer the shared store logic. */
export interface Driver {
  readonly kind: 'sqlite' | 'postgres'
  /**
   * Runs `fn` in one write transaction and commits it, or rolls back when `fn` throws. `locks` name what the
   * transaction claims (`rider:<id>`, `bike:<id>`, `migrations`): transactions naming the same lock never overlap,
   * in this process or another one on the same database.
   */
  write<T>(locks: readonly string[], fn: (tx: Tx) => Promise<T>): Promise<T>
  /** One statement outside an explicit transaction (reads that need no lock). */
  read(sql: string, args?: readonly unknown[]): Promise<Row[]>
  close(): Promise<void>
}

/** An integer column as a JS number: pg hands BIGINT over as a string, libsql as a number (or bigint). */
export function int(value: unknown): number {
  const n = typeof value === 'number' ? value : typeof value === 'bigint' || typeof value === 'string' ? Number(value) : NaN
  if (!Number.isSafeInteger(n)) throw new TypeError(`store: expected an integer column, got ${String(value)}`)
  return n
}

const intOrNull = (value: unknown): number | null => (value === null || value === undefined ? null : int(value))
const textOrNull = (value: unknown): string | null => (value === null || value === undefined ? null : String(value))

/** Inserts one ride event (data already JSON) and returns its id; callers hold the rider's lock (ids in order). */
async function insertRideEvent(tx: Tx, rider: string, bike: string, type: RideEventType, json: string, at: number): Promise<number> {
  const rows = await tx.query('INSERT INTO ride_events (rider, bike, type, data, at) VALUES (?, ?, ?, ?, ?) RETURNING id', [
    rider,
    bike,
    type,
    json,
    at,
  ])
  return int(rows[0].id)
}

/** A time (ms since epoch) or duration argument: both columns are 64-bit integers, so fractions are refused early. */
function ms(value: number, name: string): number {
  if (!Number.isSafeInteger(value)) throw new TypeError(`store: ${name} must be an integer number of ms, got ${value}`)
  return value
}

function toRider(row: Row): RiderRecord {
  return {
    id: String(row.id),
    passwordHash: textOrNull(row.password_hash),
    wechatOpenId: textOrNull(row.wechat_openid),
    createdAt: int(row.created_at),
  }
}

function toHold(row: Row): HoldRecord {
  return {
    bike: String(row.bike),
    rider: String(row.rider),
    status: String(row.status) as HoldStatus,
    reservedUntil: intOrNull(row.reserved_until),
    unlockAt: intOrNull(row.unlock_at),
    startedAt: intOrNull(row.started_at),
  }
}

function toRide(row: Row): RideRecord {
  return {
    id: int(row.id),
    bike: String(row.bike),
    rider: String(row.rider),
    startedAt: int(row.started_at),
    endedAt: int(row.ended_at),
    durationMs: int(row.duration_ms),
    // Stored as integer cents, so no float drift accumulates in the database.
    fare: int(row.fare_cents) / 100,
  }
}

function toRideEvent(row: Row): RideEventRecord {
  return {
    id: int(row.id),
    rider: String(row.rider),
    bike: String(row.bike),
    type: String(row.type) as RideEventType,
    data: JSON.parse(String(row.data)) as unknown,
    at: int(row.at),
  }
}

/** A count or id argument: a safe integer ≥ `min`. */
function count(value: number, name: string, min: number): number {
  if (!Number.isSafeInteger(value) || value < min) throw new RangeError(`store: ${name} must be an integer ≥ ${min}, got ${value}`)
  return value
}

/** A fare in yuan → whole cents (`fareFor` may return 1.1500000000000001). */
function toCents(fare: number): number {
  const cents = Math.round(fare * 100)
  if (!Number.isSafeInteger(cents) || cents < 0) throw new RangeError(`store: a fare must be a finite amount ≥ 0, got ${fare}`)
  return cents
}

/** A hold that still counts: anything but a reservation whose time has run out. */
const isLive = (hold: HoldRecord, now: number): boolean => hold.status !== 'reserved' || (hold.reservedUntil ?? 0) > now

/** The same test in SQL, for reads that must not see expired reservations. */
const LIVE = `(status <> 'reserved' OR reserved_until > ?)`

const RIDE_COLUMNS = 'id, bike, rider, started_at, ended_at, duration_ms, fare_cents'

/** The {@link Store} over `driver`; `close()` closes the driver. */
export function createSqlStore(driver: Driver): Store {
  /**
   * reserve and startUnlock: the claim rules of types.ts, then the bike's hold becomes `next`. Locks the rider and the
   * bike, so neither can change under the checks; the rider's other reservation is on a bike not locked here, which is
   * why its deletion re-checks `rider` (another rider may have taken that bike over since it expired).
   */
  function claim(rider: string, bike: string, now: number, next: 'reserved' | 'unlocking', time: number): Promise<ClaimResult> {
    ms(now, 'now')
    ms(time, next === 'reserved' ? 'until' : 'unlockAt')
    return driver.write([`rider:${rider}`, `bike:${bike}`], async (tx) => {
      const holds = (await tx.query('SELECT * FROM holds WHERE bike = ? OR rider = ?', [bike, rider])).map(toHold).filter((h) => isLive(h, now))
      const onBike = holds.find((h) => h.bike === bike)
      if (onBike && onBike.rider !== rider) return { ok: false, reason: 'bike-busy', status: onBike.status }
      const elsewhere = holds.find((h) => h.rider === rider && h.bike !== bike && h.status !== 'reserved')
      if (elsewhere) return { ok: false, reason: 'rider-busy', bike: elsewhere.bike }
      if (onBike && onBike.status !== 'reserved') return { ok: false, reason: 'bike-busy', status: onBike.status }

      // What this claim replaces: every reservation of the rider (live or expired, here or on another bike: a new
      // reservation replaces an old one) and an expired reservation of someone else on this bike.
      await tx.query(`DELETE FROM holds WHERE status = 'reserved' AND (rider = ? OR (bike = ? AND reserved_until <= ?))`, [rider, bike, now])
      const reserved = next === 'reserved'
      const rows = await tx.query(
        'INSERT INTO holds (bike, rider, status, reserved_until, unlock_at, started_at, ride_key) VALUES (?, ?, ?, ?, ?, NULL, ?) RETURNING *',
        // The ride key is minted when the ride begins (the unlock) and moves with the hold into `rides`, where it is
        // unique: the database itself refuses a second fare for one ride.
        [bike, rider, next, reserved ? time : null, reserved ? null : time, reserved ? null : randomUUID()],
      )
      return { ok: true, hold: toHold(rows[0]) }
    })
  }

  return {
    kind: driver.kind,

    async addRider(rider) {
      ms(rider.createdAt, 'createdAt')
      // Any conflict leaves the table as it is: the id taken, or the WeChat openid already bound to another rider (two
      // first logins racing). The caller reads the rider back to learn which one exists.
      await driver.write([], (tx) =>
        tx.query('INSERT INTO riders (id, password_hash, wechat_openid, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING', [
          rider.id,
          rider.passwordHash,
          rider.wechatOpenId,
          rider.createdAt,
        ]),
      )
    },

    async getRider(id) {
      const rows = await driver.read('SELECT * FROM riders WHERE id = ?', [id])
      return rows.length ? toRider(rows[0]) : undefined
    },

    async riderByWechat(openId) {
      const rows = await driver.read('SELECT * FROM riders WHERE wechat_openid = ?', [openId])
      return rows.length ? toRider(rows[0]) : undefined
    },

    reserve: (rider, bike, now, until) => claim(rider, bike, now, 'reserved', until),

    startUnlock: (rider, bike, now, unlockAt) => claim(rider, bike, now, 'unlocking', unlockAt),

    async completeUnlock(bike, rider, startedAt) {
      ms(startedAt, 'startedAt')
      // One conditional statement: whichever caller gets here first flips it, any other finds it no longer unlocking.
      // The ride event joins it under the rider's lock (ids reach readers in order: see appendRideEvent).
      return driver.write([`rider:${rider}`], async (tx) => {
        const rows = await tx.query(
          `UPDATE holds SET status = 'riding', started_at = ?, unlock_at = NULL, announce_pending = 1 WHERE bike = ? AND rider = ? AND status = 'unlocking' RETURNING *`,
          [startedAt, bike, rider],
        )
        if (!rows.length) return undefined
        const hold = toHold(rows[0])
        const time = hold.startedAt ?? startedAt
        return { ...hold, rideEventId: await insertRideEvent(tx, rider, bike, 'riding', JSON.stringify({ bike, rider, time }), time) }
      })
    },

    finishRide(rider, bike, endedAt, fareFor) {
      ms(endedAt, 'endedAt')
      return driver.write([`rider:${rider}`, `bike:${bike}`], async (tx): Promise<FinishResult> => {
        const [row] = await tx.query('SELECT * FROM holds WHERE bike = ? AND rider = ?', [bike, rider])
        if (!row || row.status === 'reserved') return { ok: false, reason: 'not-found' }
        if (row.status === 'unlocking') return { ok: false, reason: 'unlocking' }
        // Deleting with the status in the condition makes the hold the one-time ticket for the ride, even without locks.
        const gone = await tx.query(`DELETE FROM holds WHERE bike = ? AND rider = ? AND status = 'riding' RETURNING started_at, ride_key`, [
          bike,
          rider,
        ])
        if (!gone.length) return { ok: false, reason: 'not-found' }
        const startedAt = int(gone[0].started_at)
        const durationMs = Math.max(0, endedAt - startedAt)
        const fareCents = toCents(fareFor(durationMs))
        const rides = await tx.query(
          `INSERT INTO rides (ride_key, bike, rider, started_at, ended_at, duration_ms, fare_cents) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING ${RIDE_COLUMNS}`,
          [gone[0].ride_key, bike, rider, startedAt, endedAt, durationMs, fareCents],
        )
        return { ok: true, ride: toRide(rides[0]) }
      })
    },

    async holdOfBike(bike, now) {
      const rows = await driver.read(`SELECT * FROM holds WHERE bike = ? AND ${LIVE}`, [bike, ms(now, 'now')])
      return rows.length ? toHold(rows[0]) : undefined
    },

    async holdsOfRider(rider, now) {
      const rows = await driver.read(`SELECT * FROM holds WHERE rider = ? AND ${LIVE} ORDER BY bike`, [rider, ms(now, 'now')])
      return rows.map(toHold)
    },

    async unlockingHolds() {
      const rows = await driver.read(`SELECT * FROM holds WHERE status = 'unlocking' ORDER BY unlock_at, bike`)
      return rows.map(toHold)
    },

    async markAnnounced(bike, rider, startedAt) {
      ms(startedAt, 'startedAt')
      await driver.write([], (tx) =>
        tx.query(`UPDATE holds SET announce_pending = 0 WHERE bike = ? AND rider = ? AND status = 'riding' AND started_at = ?`, [
          bike,
          rider,
          startedAt,
        ]),
      )
    },

    async overdueUnlocks(dueBy, limit) {
      if (!(Number.isSafeInteger(limit) && limit >= 0)) throw new RangeError(`store: limit must be an integer ≥ 0, got ${limit}`)
      ms(dueBy, 'dueBy')
      const rows = await driver.read(
        `SELECT * FROM holds WHERE (status = 'unlocking' AND unlock_at <= ?) OR (status = 'riding' AND announce_pending = 1 AND started_at <= ?)
         ORDER BY COALESCE(unlock_at, started_at), bike LIMIT ?`,
        [dueBy, dueBy, limit],
      )
      return rows.map(toHold)
    },

    async activeRideCount() {
      const rows = await driver.read(`SELECT COUNT(*) AS n FROM holds WHERE status <> 'reserved'`)
      return int(rows[0].n)
    },

    async expireReservations(now) {
      ms(now, 'now')
      const rows = await driver.write([], (tx) =>
        tx.query(`DELETE FROM holds WHERE status = 'reserved' AND reserved_until <= ? RETURNING bike`, [now]),
      )
      return rows.length
    },

    async ridesOf(rider, limit) {
      if (limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 0))
        throw new RangeError(`store: limit must be an integer ≥ 0, got ${limit}`)
      const sql = `SELECT ${RIDE_COLUMNS} FROM rides WHERE rider = ? ORDER BY ended_at DESC, id DESC`
      const rows = await driver.read(limit === undefined ? sql : `${sql} LIMIT ?`, limit === undefined ? [rider] : [rider, limit])
      return rows.map(toRide)
    },

    async lastRide(rider, bike) {
      const rows =
        bike === undefined
          ? await driver.read(`SELECT ${RIDE_COLUMNS} FROM rides WHERE rider = ? ORDER BY ended_at DESC, id DESC LIMIT 1`, [rider])
          : await driver.read(`SELECT ${RIDE_COLUMNS} FROM rides WHERE rider = ? AND bike = ? ORDER BY ended_at DESC, id DESC LIMIT 1`, [rider, bike])
      return rows.length ? toRide(rows[0]) : undefined
    },

    async appendRideEvent(rider, bike, type, data, at) {
      ms(at, 'at')
      if (!RIDE_EVENT_TYPES.includes(type)) throw new TypeError(`store: unknown ride event type ${String(type)}`)
      const json = JSON.stringify(data)
      if (json === undefined) throw new TypeError('store: ride event data must be JSON')
      // Under the rider's lock, the id is drawn and committed before the next event of this rider can draw one: ids
      // reach readers in order, which is what lets a stream resume after the last id it saw (PostgreSQL hands out
      // identity values outside transactions, so without the lock two writers could commit 11 before 10).
      return driver.write([`rider:${rider}`], (tx) => insertRideEvent(tx, rider, bike, type, json, at))
    },

    async rideEventsAfter(rider, afterId, limit) {
      const rows = await driver.read('SELECT id, rider, bike, type, data, at FROM ride_events WHERE rider = ? AND id > ? ORDER BY id LIMIT ?', [
        rider,
        count(afterId, 'afterId', 0),
        count(limit, 'limit', 1),
      ])
      return rows.map(toRideEvent)
    },

    async saveRefreshToken(hash, rider, expiresAt) {
      ms(expiresAt, 'expiresAt')
      await driver.write([], (tx) =>
        tx.query(
          'INSERT INTO refresh_tokens (hash, rider, expires_at) VALUES (?, ?, ?) ON CONFLICT (hash) DO UPDATE SET rider = excluded.rider, expires_at = excluded.expires_at',
          [hash, rider, expiresAt],
        ),
      )
    },

    async takeRefreshToken(hash, now) {
      ms(now, 'now')
      // Deleted whether or not it has expired: an expired token is useless, and the delete is what makes it one-use
      // (of two racing callers, only one gets the row back).
      const rows = await driver.write([], (tx) => tx.query('DELETE FROM refresh_tokens WHERE hash = ? RETURNING rider, expires_at', [hash]))
      return rows.length > 0 && int(rows[0].expires_at) > now ? String(rows[0].rider) : undefined
    },

    async expireRefreshTokens(now) {
      ms(now, 'now')
      const rows = await driver.write([], (tx) => tx.query('DELETE FROM refresh_tokens WHERE expires_at <= ? RETURNING hash', [now]))
      return rows.length
    },

    async ping() {
      await driver.read('SELECT 1 AS ok')
    },

    close: () => driver.close(),
  }
}
