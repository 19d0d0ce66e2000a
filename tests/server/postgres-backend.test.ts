/**
 * The backend on PostgreSQL (`DATABASE_URL`): Debian's PostgreSQL started on loopback with its own data dir. The
 * whole ride goes through it, and a second backend process sharing the database sees the same rides and refuses the
 * same bike to another rider.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startPostgres, type PostgresServer } from '../support/postgres'
import { api, endClients, login, mqttClient, testBackend, type TestBackend } from './helpers'
import { until } from '../support/wait'

let pg: PostgresServer
const backends: TestBackend[] = []

beforeAll(async () => {
  pg = await startPostgres('longlink_backend')
}, 60_000)
afterAll(async () => {
  await endClients()
  for (const b of backends) await b.close()
  await pg?.stop()
})

describe('DATABASE_URL (PostgreSQL)', () => {
  it('runs the ride on PostgreSQL; a second backend on the same database sees it and keeps the bike', async () => {
    const a = await testBackend({ databaseUrl: pg.url })
    backends.push(a)
    expect(a.stats().database).toBe('postgres')
    expect((await api(a.url, 'GET', '/healthz')).body).toMatchObject({ status: 'ok', database: { kind: 'postgres', ok: true } })

    const token = await login(a.url, 'pg_rider')
    const c = mqttClient(a.mqttUrl, { username: 'pg_rider', password: token })
    await c.connect()
    expect((await api(a.url, 'POST', '/api/bikes/pg1/reserve', { token })).status).toBe(200)
    const heard: unknown[] = []
    await c.subscribe('mobike/unlocked/pg1', (m) => heard.push(m.json()), { qos: 1 })
    expect((await api(a.url, 'POST', '/api/bikes/pg1/unlock', { token })).status).toBe(202)
    await until(() => heard.length === 1, 5000, 'unlocked')

    // A second process on the same database (same secret: tokens are valid on both).
    const b = await testBackend({ databaseUrl: pg.url, tokenSecret: a.config.tokenSecret })
    backends.push(b)
    expect((await api(b.url, 'GET', '/api/rides/active', { token })).body.rides).toEqual([expect.objectContaining({ bike: 'pg1', status: 'riding' })])
    const other = await login(b.url, 'pg_other')
    expect((await api(b.url, 'POST', '/api/bikes/pg1/reserve', { token: other })).body.error.code).toBe('BIKE_BUSY')
    const lock = await api(b.url, 'POST', '/api/bikes/pg1/lock', { token })
    expect(lock).toMatchObject({ status: 200, body: { bike: 'pg1', rider: 'pg_rider', fare: 0.5 } })
    expect((await api(a.url, 'POST', '/api/bikes/pg1/lock', { token })).status).toBe(404)
    expect(await a.store.ridesOf('pg_rider')).toHaveLength(1)
  })

  it('answers 503 UNAVAILABLE (and /healthz 503) while PostgreSQL is down, and keeps running', async () => {
    const b = await testBackend({ databaseUrl: pg.url })
    backends.push(b)
    const token = await login(b.url, 'pg_down')
    await pg.stop()
    const down = await api(b.url, 'GET', '/api/rides/active', { token })
    expect(down).toMatchObject({ status: 503, body: { error: { code: 'UNAVAILABLE' } } })
    const health = await api(b.url, 'GET', '/healthz')
    expect(health).toMatchObject({ status: 503, body: { status: 'degraded', database: { kind: 'postgres', ok: false }, broker: { ok: true } } })
    expect(b.log.entries().some((e) => e.event === 'http.error')).toBe(false)
  })
})
