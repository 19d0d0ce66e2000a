/**
 * The store contract of server/store/types.ts, run unchanged against both implementations on real databases: SQLite
 * in a temp folder, and PostgreSQL started by tests/support/postgres.ts. Claim rules, fares, refresh tokens,
 * migrations and restarts, plus the races the store exists to settle: many callers on one bike or one ride at once,
 * and for PostgreSQL two store instances (two backend processes) on one database.
 *
 * Times are made up (`T` onward) and passed in, as the store takes them as arguments. Ids are unique per test, so
 * tests sharing a database do not see each other; the ones that count rows over the whole database take a new one.
 */
import { createClient } from '@libsql/client'
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openStore, SQLITE_FILE } from '../../server/store/open'
import { postgresDriver } from '../../server/store/postgres'
import { migrate, MIGRATIONS, SCHEMA_VERSION } from '../../server/store/schema'
import type { Driver } from '../../server/store/sql'
import { sqliteDriver } from '../../server/store/sqlite'
import type { ClaimResult, FinishResult, HoldRecord, RideEventRecord, Store } from '../../server/store/types'
import { startPostgres } from '../support/postgres'

type LogEntry = [event: string, fields?: Record<string, unknown>]

/** One database the suite can open stores on (each open is another "process" on it). */
interface Database {
  open(logs?: LogEntry[]): Promise<Store>
  /** The versions recorded in its `schema_migrations`. */
  versions(): Promise<number[]>
  /** Where it lives, for assertions on the logs. */
  where: string
}

interface Target {
  main: Database
  /** A database of its own, empty until opened. */
  fresh(): Promise<Database>
  dispose(): Promise<void>
}

const loggerFor = (logs?: LogEntry[]) => logs && { info: (event: string, fields?: Record<string, unknown>) => void logs.push([event, fields]) }

async function sqliteTarget(): Promise<Target> {
  const root = mkdtempSync(join(tmpdir(), 'longlink-store-'))
  let n = 0
  const database = (dataDir: string): Database => ({
    open: (logs) => openStore({ dataDir, logger: loggerFor(logs) }),
    async versions() {
      const client = createClient({ url: pathToFileURL(join(dataDir, SQLITE_FILE)).href })
      try {
        return (await client.execute('SELECT version FROM schema_migrations ORDER BY version')).rows.map((r) => Number(r.version))
      } finally {
        client.close()
      }
    },
    where: dataDir,
  })
  return {
    main: database(join(root, 'main')),
    fresh: async () => database(join(root, `db${++n}`)),
    dispose: async () => rmSync(root, { recursive: true, force: true }),
  }
}

async function postgresTarget(): Promise<Target> {
  const server = await startPostgres()
  // Never created: with a PostgreSQL URL the data folder is not used.
  const dataDir = join(tmpdir(), 'longlink-store-unused')
  let n = 0
  const database = (url: string): Database => ({
    open: (logs) => openStore({ databaseUrl: url, dataDir, logger: loggerFor(logs) }),
    async versions() {
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 })
      await client.connect()
      try {
        return (await client.query('SELECT version FROM schema_migrations ORDER BY version')).rows.map((r) => Number(r.version))
      } finally {
        await client.end()
      }
    },
    where: url,
  })
  return {
    main: database(server.url),
    fresh: async () => database(await server.createDatabase(`fresh${++n}`)),
    dispose: () => server.stop(),
  }
}

const T = 1_700_000_000_000
const MINUTE = 60_000
let seq = 0
/** A name no other test uses. */
const id = (prefix: string): string => `${prefix}-${++seq}`
/** 0.35 per started minute: 3 minutes are 1.05, which is 1.0499999999999998 in floating point. */
const fare = (durationMs: number): number => Math.ceil(durationMs / MINUTE) * 0.35

const reserved = (bike: string, rider: string, reservedUntil: number): HoldRecord => ({
  bike,
  rider,
  status: 'reserved',
  reservedUntil,
  unlockAt: null,
  startedAt: null,
})
const unlocking = (bike: string, rider: string, unlockAt: number): HoldRecord => ({
  bike,
  rider,
  status: 'unlocking',
  reservedUntil: null,
  unlockAt,
  startedAt: null,
})
const riding = (bike: string, rider: string, startedAt: number): HoldRecord => ({
  bike,
  rider,
  status: 'riding',
  reservedUntil: null,
  unlockAt: null,
  startedAt,
})
const versionsUpTo = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1)
const count = <R>(results: R[], test: (r: R) => boolean): number => results.filter(test).length

describe.each([
  { kind: 'sqlite' as const, target: sqliteTarget },
  { kind: 'postgres' as const, target: postgresTarget },
])('store: $kind', ({ kind, target }) => {
  let t: Target
  let store: Store

  beforeAll(async () => {
    t = await target()
    store = await t.main.open()
  })
  afterAll(async () => {
    await store?.close()
    await t?.dispose()
  })

  /** Puts `rider` on `bike` in status riding since `startedAt`. */
  async function startRide(s: Store, rider: string, bike: string, startedAt: number): Promise<void> {
    expect((await s.startUnlock(rider, bike, startedAt - 100, startedAt)).ok).toBe(true)
    expect(await s.completeUnlock(bike, rider, startedAt)).toMatchObject(riding(bike, rider, startedAt))
  }

  it('applies the migrations once; opening the database again changes nothing', async () => {
    expect(store.kind).toBe(kind)
    const logs: LogEntry[] = []
    const again = await t.main.open(logs)
    await again.close()
    expect(await t.main.versions()).toEqual(versionsUpTo(SCHEMA_VERSION))
    expect(logs).toEqual([['store.opened', expect.objectContaining({ kind, migrationsApplied: [] })]])

    const fresh = await t.fresh()
    const first: LogEntry[] = []
    await (await fresh.open(first)).close()
    expect(first).toEqual([['store.opened', expect.objectContaining({ migrationsApplied: versionsUpTo(SCHEMA_VERSION) })]])
  })

  it('adds a rider once and finds it by id and by WeChat openid', async () => {
    const [alice, bob, openId] = [id('alice'), id('bob'), id('openid')]
    const record = { id: alice, passwordHash: 'scrypt$16384$8$1$c2FsdA$aGFzaA', wechatOpenId: null, createdAt: T }
    await store.addRider(record)
    await store.addRider({ ...record, passwordHash: null, createdAt: T + 1 })
    expect(await store.getRider(alice)).toEqual(record)

    await store.addRider({ id: bob, passwordHash: null, wechatOpenId: openId, createdAt: T + 2 })
    expect(await store.riderByWechat(openId)).toEqual({ id: bob, passwordHash: null, wechatOpenId: openId, createdAt: T + 2 })
    expect(await store.riderByWechat(id('openid'))).toBeUndefined()
    expect(await store.getRider(id('nobody'))).toBeUndefined()
    // One openid, one rider: binding it to a second rider is skipped too, so a racing first login reads back the winner.
    const carol = id('carol')
    await store.addRider({ id: carol, passwordHash: null, wechatOpenId: openId, createdAt: T })
    expect(await store.getRider(carol)).toBeUndefined()
    expect((await store.riderByWechat(openId))?.id).toBe(bob)
  })

  it('reserve: takes a free bike, renews its own reservation, and reports another rider’s as bike-busy', async () => {
    const [a, b, bike] = [id('rider'), id('rider'), id('bike')]
    expect(await store.reserve(a, bike, T, T + 1000)).toEqual({ ok: true, hold: reserved(bike, a, T + 1000) })
    expect(await store.reserve(a, bike, T + 500, T + 2000)).toEqual({ ok: true, hold: reserved(bike, a, T + 2000) })
    expect(await store.reserve(b, bike, T + 600, T + 3000)).toEqual({ ok: false, reason: 'bike-busy', status: 'reserved' })
    expect(await store.startUnlock(b, bike, T + 600, T + 700)).toEqual({ ok: false, reason: 'bike-busy', status: 'reserved' })
    expect(await store.holdOfBike(bike, T + 600)).toEqual(reserved(bike, a, T + 2000))
    expect(await store.holdsOfRider(b, T + 600)).toEqual([])
  })

  it('a new reservation replaces the rider’s old one', async () => {
    const [a, b, bike1, bike2] = [id('rider'), id('rider'), id('bike'), id('bike')]
    expect((await store.reserve(a, bike1, T, T + 1000)).ok).toBe(true)
    expect(await store.reserve(a, bike2, T + 10, T + 1010)).toEqual({ ok: true, hold: reserved(bike2, a, T + 1010) })
    expect(await store.holdOfBike(bike1, T + 10)).toBeUndefined()
    expect(await store.holdsOfRider(a, T + 10)).toEqual([reserved(bike2, a, T + 1010)])
    expect((await store.reserve(b, bike1, T + 20, T + 1020)).ok).toBe(true)
  })

  it('expired reservations count as absent everywhere', async () => {
    const [a, b, bike, other] = [id('rider'), id('rider'), id('bike'), id('bike')]
    expect((await store.reserve(a, bike, T, T + 100)).ok).toBe(true)
    expect(await store.holdOfBike(bike, T + 99)).toEqual(reserved(bike, a, T + 100))
    // reserved_until <= now is expired
    expect(await store.holdOfBike(bike, T + 100)).toBeUndefined()
    expect(await store.holdsOfRider(a, T + 100)).toEqual([])
    expect(await store.finishRide(a, bike, T + 100, fare)).toEqual({ ok: false, reason: 'not-found' })
    // Another rider takes the bike over without anyone cleaning up first.
    expect(await store.startUnlock(b, bike, T + 100, T + 200)).toEqual({ ok: true, hold: unlocking(bike, b, T + 200) })

    // The rider's own expired reservation elsewhere does not stand in the way of a new claim (one hold per rider).
    expect((await store.reserve(a, other, T, T + 100)).ok).toBe(true)
    const third = id('bike')
    expect(await store.startUnlock(a, third, T + 150, T + 250)).toEqual({ ok: true, hold: unlocking(third, a, T + 250) })
    expect(await store.holdsOfRider(a, T)).toEqual([unlocking(third, a, T + 250)])
  })

  it('while a rider unlocks or rides a bike: rider-busy for other bikes, bike-busy for that one', async () => {
    const [a, c, bike, other] = [id('rider'), id('rider'), id('bike'), id('bike')]
    // Unlocking needs no reservation first.
    expect(await store.startUnlock(a, bike, T, T + 50)).toEqual({ ok: true, hold: unlocking(bike, a, T + 50) })
    const check = async (status: 'unlocking' | 'riding', now: number) => {
      expect(await store.reserve(a, other, now, now + 1000)).toEqual({ ok: false, reason: 'rider-busy', bike })
      expect(await store.startUnlock(a, other, now, now + 50)).toEqual({ ok: false, reason: 'rider-busy', bike })
      expect(await store.reserve(a, bike, now, now + 1000)).toEqual({ ok: false, reason: 'bike-busy', status })
      expect(await store.startUnlock(a, bike, now, now + 50)).toEqual({ ok: false, reason: 'bike-busy', status })
      expect(await store.reserve(c, bike, now, now + 1000)).toEqual({ ok: false, reason: 'bike-busy', status })
      expect(await store.startUnlock(c, bike, now, now + 50)).toEqual({ ok: false, reason: 'bike-busy', status })
      expect(await store.holdOfBike(other, now)).toBeUndefined()
    }
    await check('unlocking', T + 10)
    expect(await store.completeUnlock(bike, a, T + 50)).toMatchObject(riding(bike, a, T + 50))
    await check('riding', T + 60)
    expect(await store.holdsOfRider(a, T + 60)).toEqual([riding(bike, a, T + 50)])
  })

  it('startUnlock turns the rider’s reservation into an unlock, or drops it when unlocking another bike', async () => {
    const [a, bike1, bike2, bike3] = [id('rider'), id('bike'), id('bike'), id('bike')]
    expect((await store.reserve(a, bike1, T, T + 1000)).ok).toBe(true)
    expect(await store.startUnlock(a, bike1, T + 10, T + 60)).toEqual({ ok: true, hold: unlocking(bike1, a, T + 60) })

    const b = id('rider')
    expect((await store.reserve(b, bike2, T, T + 1000)).ok).toBe(true)
    expect(await store.startUnlock(b, bike3, T + 10, T + 60)).toEqual({ ok: true, hold: unlocking(bike3, b, T + 60) })
    expect(await store.holdOfBike(bike2, T + 10)).toBeUndefined()
    expect(await store.holdsOfRider(b, T + 10)).toEqual([unlocking(bike3, b, T + 60)])
  })

  it('completeUnlock: only the unlocking rider, only once; unlockingHolds and activeRideCount follow', async () => {
    const [a, c, bike, spare] = [id('rider'), id('rider'), id('bike'), id('bike')]
    const active = await store.activeRideCount()
    expect(await store.completeUnlock(bike, a, T)).toBeUndefined()
    expect((await store.startUnlock(a, bike, T, T + 50)).ok).toBe(true)
    expect(await store.unlockingHolds()).toContainEqual(unlocking(bike, a, T + 50))
    expect(await store.activeRideCount()).toBe(active + 1)

    expect(await store.completeUnlock(bike, c, T + 50)).toBeUndefined()
    const done = await store.completeUnlock(bike, a, T + 50)
    expect(done).toMatchObject(riding(bike, a, T + 50))
    // The ride's `riding` event is kept with the change, once: a later `locked` can never take an earlier id.
    const events = (await store.rideEventsAfter(a, 0, 100)).filter((e) => e.type === 'riding')
    expect(events).toEqual([{ id: done!.rideEventId, rider: a, bike, type: 'riding', data: { bike, rider: a, time: T + 50 }, at: T + 50 }])
    expect(await store.completeUnlock(bike, a, T + 51)).toBeUndefined()
    expect((await store.rideEventsAfter(a, 0, 100)).filter((e) => e.type === 'riding')).toHaveLength(1)
    expect((await store.unlockingHolds()).some((h) => h.bike === bike)).toBe(false)
    expect(await store.activeRideCount()).toBe(active + 1)

    // Reservations are not rides.
    expect((await store.reserve(c, spare, T, T + 1000)).ok).toBe(true)
    expect(await store.activeRideCount()).toBe(active + 1)
    expect((await store.finishRide(a, bike, T + MINUTE, fare)).ok).toBe(true)
    expect(await store.activeRideCount()).toBe(active)
  })

  it('overdueUnlocks: unlocks due by a time and not finished or not announced, oldest first, at most the limit; markAnnounced', async () => {
    const [a, c, bike, bike2] = [id('rider'), id('rider'), id('bike'), id('bike')]
    // Far after T, so the holds other tests leave unlocking come before these two.
    const due = T + 100 * MINUTE
    expect((await store.startUnlock(a, bike, T, due)).ok).toBe(true)
    expect((await store.startUnlock(c, bike2, T, due + 1)).ok).toBe(true)
    const mine = (holds: HoldRecord[]) => holds.filter((h) => h.bike === bike || h.bike === bike2)
    expect(mine(await store.overdueUnlocks(due - 1, 1000))).toEqual([])
    expect(mine(await store.overdueUnlocks(due, 1000))).toEqual([unlocking(bike, a, due)])
    expect(mine(await store.overdueUnlocks(due + 1, 1000))).toEqual([unlocking(bike, a, due), unlocking(bike2, c, due + 1)])
    expect(await store.overdueUnlocks(due + 1, 1)).toHaveLength(1)
    // Completed yet not announced: still owed, as riding, until it is marked announced.
    expect(await store.completeUnlock(bike, a, due)).toBeDefined()
    expect(mine(await store.overdueUnlocks(due + 1, 1000))).toEqual([riding(bike, a, due), unlocking(bike2, c, due + 1)])
    expect(mine(await store.overdueUnlocks(due - 1, 1000))).toEqual([])
    await store.markAnnounced(bike, a, due - 1)
    expect(mine(await store.overdueUnlocks(due + 1, 1000))).toHaveLength(2)
    await store.markAnnounced(bike, a, due)
    expect(mine(await store.overdueUnlocks(due + 1, 1000))).toEqual([unlocking(bike2, c, due + 1)])
    await expect(store.overdueUnlocks(due, -1)).rejects.toThrow(RangeError)
  })

  it('finishRide: records the ride and its fare once, deletes the hold; ridesOf lists newest first', async () => {
    const [a, c, bike, bike2] = [id('rider'), id('rider'), id('bike'), id('bike')]
    expect(await store.finishRide(a, bike, T, fare)).toEqual({ ok: false, reason: 'not-found' })
    expect((await store.reserve(a, bike, T, T + 1000)).ok).toBe(true)
    expect(await store.finishRide(a, bike, T, fare)).toEqual({ ok: false, reason: 'not-found' })
    expect((await store.startUnlock(a, bike, T, T + 100)).ok).toBe(true)
    expect(await store.finishRide(a, bike, T + 50, fare)).toEqual({ ok: false, reason: 'unlocking' })
    expect(await store.completeUnlock(bike, a, T + 100)).toBeDefined()
    expect(await store.finishRide(c, bike, T + 200, fare)).toEqual({ ok: false, reason: 'not-found' })

    const durations: number[] = []
    const first = await store.finishRide(a, bike, T + 100 + 2 * MINUTE + 1, (d) => (durations.push(d), fare(d)))
    expect(durations).toEqual([2 * MINUTE + 1])
    expect(first).toEqual({
      ok: true,
      ride: { id: expect.any(Number), bike, rider: a, startedAt: T + 100, endedAt: T + 100 + 2 * MINUTE + 1, durationMs: 2 * MINUTE + 1, fare: 1.05 },
    })
    expect(await store.holdOfBike(bike, T)).toBeUndefined()
    expect(await store.finishRide(a, bike, T + 10 * MINUTE, fare)).toEqual({ ok: false, reason: 'not-found' })

    await startRide(store, a, bike2, T + 10 * MINUTE)
    const second = await store.finishRide(a, bike2, T + 10 * MINUTE + 30_000, fare)
    expect(second).toMatchObject({ ok: true, ride: { durationMs: 30_000, fare: 0.35 } })
    const [r1, r2] = [first, second].map((r) => (r as Extract<FinishResult, { ok: true }>).ride)
    expect(r2.id).toBeGreaterThan(r1.id)
    expect(await store.ridesOf(a)).toEqual([r2, r1])
    expect(await store.ridesOf(a, 1)).toEqual([r2])
    expect(await store.ridesOf(c)).toEqual([])
  })

  it('records a fare exactly once when finishRide is called 20 times at once', async () => {
    const [a, bike] = [id('rider'), id('bike')]
    await startRide(store, a, bike, T)
    let fares = 0
    const results = await Promise.all(Array.from({ length: 20 }, () => store.finishRide(a, bike, T + 5 * MINUTE, (d) => (fares++, fare(d)))))
    expect(count(results, (r) => r.ok)).toBe(1)
    expect(count(results, (r) => !r.ok && r.reason === 'not-found')).toBe(19)
    expect(fares).toBe(1)
    expect(await store.ridesOf(a)).toEqual([expect.objectContaining({ bike, durationMs: 5 * MINUTE, fare: 1.75 })])
  })

  it('20 riders racing for one bike: exactly one wins, for unlock and for reserve', async () => {
    for (const claim of ['startUnlock', 'reserve'] as const) {
      const bike = id('bike')
      const riders = Array.from({ length: 20 }, () => id('rider'))
      const results = await Promise.all(riders.map((r) => store[claim](r, bike, T, T + 1000)))
      const winners = results.filter((r): r is Extract<ClaimResult, { ok: true }> => r.ok)
      expect(winners).toHaveLength(1)
      const status = claim === 'reserve' ? 'reserved' : 'unlocking'
      expect(count(results, (r) => !r.ok && r.reason === 'bike-busy' && r.status === status)).toBe(19)
      expect((await store.holdOfBike(bike, T))?.rider).toBe(winners[0].hold.rider)
    }
  })

  it('one rider racing to unlock five bikes ends up with exactly one', async () => {
    const a = id('rider')
    const bikes = Array.from({ length: 5 }, () => id('bike'))
    const results = await Promise.all(bikes.map((b) => store.startUnlock(a, b, T, T + 50)))
    const won = results.filter((r): r is Extract<ClaimResult, { ok: true }> => r.ok)
    expect(won).toHaveLength(1)
    expect(count(results, (r) => !r.ok && r.reason === 'rider-busy' && r.bike === won[0].hold.bike)).toBe(4)
    expect(await store.holdsOfRider(a, T)).toEqual([won[0].hold])
  })

  it('expireReservations deletes expired reservations only, and says how many', async () => {
    const db = await t.fresh()
    const s = await db.open()
    try {
      expect((await s.reserve('r1', 'b1', T, T + 100)).ok).toBe(true)
      expect((await s.reserve('r2', 'b2', T, T + 200)).ok).toBe(true)
      expect((await s.startUnlock('r3', 'b3', T, T + 50)).ok).toBe(true)
      expect(await s.expireReservations(T + 99)).toBe(0)
      expect(await s.expireReservations(T + 100)).toBe(1)
      expect(await s.holdOfBike('b1', T)).toBeUndefined()
      expect(await s.holdOfBike('b2', T)).toEqual(reserved('b2', 'r2', T + 200))
      expect(await s.expireReservations(T + 10 * MINUTE)).toBe(1)
      expect(await s.unlockingHolds()).toEqual([unlocking('b3', 'r3', T + 50)])
      expect(await s.activeRideCount()).toBe(1)
    } finally {
      await s.close()
    }
  })

  it('refresh tokens: one use each, and worthless once expired', async () => {
    const [a, h1, h2, h3] = [id('rider'), id('hash'), id('hash'), id('hash')]
    await store.saveRefreshToken(h1, a, T + 1000)
    expect(await store.takeRefreshToken(h1, T + 999)).toBe(a)
    expect(await store.takeRefreshToken(h1, T + 999)).toBeUndefined()

    await store.saveRefreshToken(h2, a, T + 1000)
    expect(await store.takeRefreshToken(h2, T + 1000)).toBeUndefined()
    expect(await store.takeRefreshToken(h2, T)).toBeUndefined()
    expect(await store.takeRefreshToken(id('hash'), T)).toBeUndefined()

    await store.saveRefreshToken(h3, a, T + 1000)
    const taken = await Promise.all(Array.from({ length: 10 }, () => store.takeRefreshToken(h3, T)))
    expect(taken.filter((r) => r === a)).toHaveLength(1)
    expect(count(taken, (r) => r === undefined)).toBe(9)

    // The sweep removes expired ones only.
    const [h4, h5] = [id('hash'), id('hash')]
    await store.saveRefreshToken(h4, a, T + 1000)
    await store.saveRefreshToken(h5, a, T + 5000)
    expect(await store.expireRefreshTokens(T + 1000)).toBeGreaterThanOrEqual(1)
    expect(await store.takeRefreshToken(h4, T)).toBeUndefined()
    expect(await store.takeRefreshToken(h5, T)).toBe(a)
  })

  it('keeps riders, holds, rides and tokens across a restart', async () => {
    const db = await t.fresh()
    const before = await db.open()
    const rider = { id: 'alice', passwordHash: null, wechatOpenId: 'wx-alice', createdAt: T }
    await before.addRider(rider)
    expect((await before.reserve('alice', 'b1', T, T + 10 * MINUTE)).ok).toBe(true)
    expect((await before.startUnlock('bob', 'b2', T, T + 50)).ok).toBe(true)
    await startRide(before, 'carol', 'b3', T)
    await startRide(before, 'dave', 'b4', T)
    const ride = (await before.finishRide('dave', 'b4', T + MINUTE, fare)) as Extract<FinishResult, { ok: true }>
    await before.saveRefreshToken('hash-1', 'alice', T + MINUTE)
    await before.close()

    const after = await db.open()
    try {
      expect(await db.versions()).toEqual(versionsUpTo(SCHEMA_VERSION))
      expect(await after.getRider('alice')).toEqual(rider)
      expect(await after.riderByWechat('wx-alice')).toEqual(rider)
      expect(await after.holdOfBike('b1', T)).toEqual(reserved('b1', 'alice', T + 10 * MINUTE))
      // An unlock cut short by the restart is there to be finished.
      expect(await after.unlockingHolds()).toEqual([unlocking('b2', 'bob', T + 50)])
      expect(await after.holdsOfRider('carol', T)).toEqual([riding('b3', 'carol', T)])
      expect(await after.activeRideCount()).toBe(2)
      expect(await after.ridesOf('dave')).toEqual([ride.ride])
      expect(await after.takeRefreshToken('hash-1', T)).toBe('alice')
      const next = await after.finishRide('carol', 'b3', T + 2 * MINUTE, fare)
      expect(next.ok && next.ride.id).toBeGreaterThan(ride.ride.id)
    } finally {
      await after.close()
    }
  })

  it('two stores on one database (two processes for PostgreSQL) racing for one bike and one ride: one wins each', async () => {
    const other = await t.main.open()
    try {
      const bike = id('bike')
      const riders = Array.from({ length: 20 }, () => id('rider'))
      const results = await Promise.all(riders.map((r, i) => (i % 2 ? other : store).startUnlock(r, bike, T, T + 50)))
      const won = results.filter((r): r is Extract<ClaimResult, { ok: true }> => r.ok)
      expect(won).toHaveLength(1)
      expect(await other.holdOfBike(bike, T)).toEqual(won[0].hold)

      const rider = won[0].hold.rider
      expect(await (riders.indexOf(rider) % 2 ? store : other).completeUnlock(bike, rider, T + 50)).toMatchObject(riding(bike, rider, T + 50))
      const finished = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? other : store).finishRide(rider, bike, T + MINUTE, fare)))
      expect(count(finished, (r) => r.ok)).toBe(1)
      expect(await store.ridesOf(rider)).toHaveLength(1)
    } finally {
      await other.close()
    }
  })

  it('ride events: ids grow; a rider reads only its own, after an id, oldest first, at most limit; data comes back as given', async () => {
    const [a, b, bike] = [id('rider'), id('rider'), id('bike')]
    const data = { bike, rider: a, nested: { list: [1, 2.5, null], text: '中文 "quoted"\nline' } }
    const ids: number[] = []
    for (const [i, type] of (['reserved', 'unlocking', 'riding', 'locked'] as const).entries()) {
      ids.push(await store.appendRideEvent(a, bike, type, { ...data, i }, T + i))
      await store.appendRideEvent(b, bike, type, { i }, T + i)
    }
    expect(ids).toEqual([...ids].sort((x, y) => x - y))
    expect(new Set(ids).size).toBe(4)

    const all = await store.rideEventsAfter(a, 0, 100)
    expect(all).toEqual(
      (['reserved', 'unlocking', 'riding', 'locked'] as const).map((type, i): RideEventRecord => ({
        id: ids[i],
        rider: a,
        bike,
        type,
        data: { ...data, i },
        at: T + i,
      })),
    )
    expect(await store.rideEventsAfter(a, ids[1], 100)).toEqual(all.slice(2))
    expect(await store.rideEventsAfter(a, ids[0], 2)).toEqual(all.slice(1, 3))
    expect(await store.rideEventsAfter(a, ids[3], 100)).toEqual([])
    expect((await store.rideEventsAfter(b, 0, 100)).map((e) => e.rider)).toEqual([b, b, b, b])
    expect(await store.rideEventsAfter(id('rider'), 0, 100)).toEqual([])
  })

  it('ride events: one rider’s events appended at once from two stores are all read back, each once, in id order', async () => {
    const other = await t.main.open()
    try {
      const [a, bike] = [id('rider'), id('bike')]
      const ids = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? other : store).appendRideEvent(a, bike, 'reserved', { i }, T + i)))
      expect(new Set(ids).size).toBe(30)
      const read = await other.rideEventsAfter(a, 0, 100)
      expect(read.map((e) => e.id)).toEqual([...ids].sort((x, y) => x - y))
      expect(read.map((e) => (e.data as { i: number }).i).sort((x, y) => x - y)).toEqual(Array.from({ length: 30 }, (_, i) => i))
      // Read in pages after the last id seen, nothing is skipped or repeated.
      const paged: number[] = []
      for (let after = 0, page; (page = await store.rideEventsAfter(a, after, 7)).length; after = page[page.length - 1].id)
        paged.push(...page.map((e) => e.id))
      expect(paged).toEqual(read.map((e) => e.id))
    } finally {
      await other.close()
    }
  })

  it('ride events: refuses an unknown type, data that is not JSON, and bad times, ids or limits', async () => {
    const [a, bike] = [id('rider'), id('bike')]
    await expect(store.appendRideEvent(a, bike, 'exploded' as never, {}, T)).rejects.toThrow(TypeError)
    await expect(store.appendRideEvent(a, bike, 'reserved', undefined, T)).rejects.toThrow(TypeError)
    await expect(store.appendRideEvent(a, bike, 'reserved', {}, T + 0.5)).rejects.toThrow(TypeError)
    await expect(store.rideEventsAfter(a, -1, 10)).rejects.toThrow(RangeError)
    await expect(store.rideEventsAfter(a, 1.5, 10)).rejects.toThrow(RangeError)
    await expect(store.rideEventsAfter(a, 0, 0)).rejects.toThrow(RangeError)
    expect(await store.rideEventsAfter(a, 0, 10)).toEqual([])
  })

  it('ride events: kept across a restart, and ids go on growing after it', async () => {
    const db = await t.fresh()
    const before = await db.open()
    const first = await before.appendRideEvent('alice', 'b1', 'reserved', { n: 1 }, T)
    const second = await before.appendRideEvent('alice', 'b1', 'unlocking', { n: 2 }, T + 1)
    await before.close()
    const after = await db.open()
    try {
      expect((await after.rideEventsAfter('alice', 0, 10)).map((e) => [e.id, e.type, e.data])).toEqual([
        [first, 'reserved', { n: 1 }],
        [second, 'unlocking', { n: 2 }],
      ])
      const third = await after.appendRideEvent('alice', 'b1', 'riding', { n: 3 }, T + 2)
      expect(third).toBeGreaterThan(second)
      expect((await after.rideEventsAfter('alice', second, 10)).map((e) => e.id)).toEqual([third])
    } finally {
      await after.close()
    }
  })

  it('lastRide: the rider’s latest finished ride, on the named bike when there is one', async () => {
    const [a, c, bike1, bike2] = [id('rider'), id('rider'), id('bike'), id('bike')]
    expect(await store.lastRide(a)).toBeUndefined()
    await startRide(store, a, bike1, T)
    expect(await store.lastRide(a)).toBeUndefined()
    const r1 = (await store.finishRide(a, bike1, T + MINUTE, fare)) as Extract<FinishResult, { ok: true }>
    await startRide(store, a, bike2, T + 2 * MINUTE)
    const r2 = (await store.finishRide(a, bike2, T + 3 * MINUTE, fare)) as Extract<FinishResult, { ok: true }>
    expect(await store.lastRide(a)).toEqual(r2.ride)
    expect(await store.lastRide(a, bike1)).toEqual(r1.ride)
    expect(await store.lastRide(a, id('bike'))).toBeUndefined()
    expect(await store.lastRide(c)).toBeUndefined()
  })

  it('upgrades a database made by the first migration only, keeping its rows', async () => {
    const db = await t.fresh()
    let driver: Driver
    if (kind === 'sqlite') {
      mkdirSync(db.where, { recursive: true })
      const file = join(db.where, SQLITE_FILE)
      driver = sqliteDriver(createClient({ url: pathToFileURL(file).href, intMode: 'number' }), file)
    } else driver = postgresDriver(new pg.Pool({ connectionString: db.where, max: 2 }))
    try {
      expect(await migrate(driver, MIGRATIONS.slice(0, 1))).toEqual([1])
      await driver.write([], (tx) =>
        tx.query('INSERT INTO riders (id, password_hash, wechat_openid, created_at) VALUES (?, NULL, NULL, ?)', ['alice', T]),
      )
    } finally {
      await driver.close()
    }
    const logs: LogEntry[] = []
    const s = await db.open(logs)
    try {
      expect(logs).toEqual([['store.opened', expect.objectContaining({ migrationsApplied: versionsUpTo(SCHEMA_VERSION).slice(1) })]])
      expect(await db.versions()).toEqual(versionsUpTo(SCHEMA_VERSION))
      expect(await s.getRider('alice')).toEqual({ id: 'alice', passwordHash: null, wechatOpenId: null, createdAt: T })
      await startRide(s, 'alice', 'b1', T)
      expect((await s.finishRide('alice', 'b1', T + MINUTE, fare)).ok).toBe(true)
      const eventId = await s.appendRideEvent('alice', 'b1', 'locked', { fare: 0.35 }, T + MINUTE)
      // The ride's start kept its `riding` event (completeUnlock), then the `locked` one.
      expect(await s.rideEventsAfter('alice', 0, 10)).toEqual([
        expect.objectContaining({ rider: 'alice', bike: 'b1', type: 'riding' }),
        { id: eventId, rider: 'alice', bike: 'b1', type: 'locked', data: { fare: 0.35 }, at: T + MINUTE },
      ])
    } finally {
      await s.close()
    }
  })

  it('answers ping', async () => {
    await expect(store.ping()).resolves.toBeUndefined()
  })

  // Defined only for their kind, so the other kind's run lists no skipped tests.
  if (kind === 'sqlite') {
    it('sqlite: creates the data folder, private to its owner, with the database file in it', async () => {
      const db = await t.fresh()
      const logs: LogEntry[] = []
      await (await db.open(logs)).close()
      expect(statSync(db.where).mode & 0o777).toBe(0o700)
      expect(existsSync(join(db.where, SQLITE_FILE))).toBe(true)
      expect(logs[0][1]).toMatchObject({ kind: 'sqlite', file: join(db.where, SQLITE_FILE) })
    })

    it('sqlite: a DATABASE_URL that is not PostgreSQL selects SQLite, and says so without the URL', async () => {
      const db = await t.fresh()
      const logs: LogEntry[] = []
      const s = await openStore({ databaseUrl: 'mysql://app:db-s3cret@localhost/app', dataDir: db.where, logger: loggerFor(logs) })
      await s.close()
      expect(s.kind).toBe('sqlite')
      expect(logs.map(([event]) => event)).toEqual(['store.database-url-ignored', 'store.opened'])
      expect(logs[0][1]).toEqual({ scheme: 'mysql:', using: 'sqlite' })
      expect(JSON.stringify(logs)).not.toContain('s3cret')
    })
  }

  if (kind === 'postgres') {
    it('postgres: logs host, port and database, never the password', async () => {
      const db = await t.fresh()
      const url = new URL(db.where)
      url.password = 'pg-s3cret' // trust authentication: accepted and never checked
      const logs: LogEntry[] = []
      await (await openStore({ databaseUrl: url.href, dataDir: '/nonexistent', logger: loggerFor(logs) })).close()
      expect(logs).toEqual([
        [
          'store.opened',
          {
            kind: 'postgres',
            host: '127.0.0.1',
            port: Number(url.port),
            database: url.pathname.slice(1),
            migrationsApplied: versionsUpTo(SCHEMA_VERSION),
          },
        ],
      ])
      expect(JSON.stringify(logs)).not.toContain('pg-s3cret')
      expect(existsSync('/nonexistent')).toBe(false)
    })

    it('postgres: three processes starting at once on a new database migrate it once', async () => {
      const db = await t.fresh()
      const logs: LogEntry[][] = [[], [], []]
      const stores = await Promise.all(logs.map((l) => db.open(l)))
      await Promise.all(stores.map((s) => s.close()))
      expect(await db.versions()).toEqual(versionsUpTo(SCHEMA_VERSION))
      // Each step was applied by exactly one of them; the others waited and found it done.
      const applied = logs.flatMap((l) => l[0][1]?.migrationsApplied as number[])
      expect(applied.sort((x, y) => x - y)).toEqual(versionsUpTo(SCHEMA_VERSION))
    })
  }
})
