/**
 * Client id bindings in Redis (server/broker/redis-bindings.ts) against Debian's redis-server: one rider per id across
 * processes, the persistent session bound, a binding released with its last connection on any process, and what a
 * dead process leaves behind.
 */
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRedisBindings } from '../../server/broker/redis-bindings'
import { startRedis, type RedisServer } from '../support/redis'

let server: RedisServer
let conn: Redis

beforeAll(async () => {
  server = await startRedis()
  conn = new Redis(server.url)
})
afterAll(async () => {
  conn?.disconnect()
  await server?.stop()
})

describe('Redis client id bindings', () => {
  it('binds an id to one rider across processes, until its last connection anywhere is gone', async () => {
    const a = createRedisBindings(conn, 'A', 60_000, 600_000)
    const b = createRedisBindings(conn, 'B', 60_000, 600_000)
    expect(await a.claim('id1', 'r1', false, 2)).toBeUndefined()
    expect(await b.claim('id1', 'r2', false, 2)).toBe('taken')
    // The same rider, on the other process (a reconnect that landed there).
    expect(await b.claim('id1', 'r1', false, 2)).toBeUndefined()
    await a.release('id1', 'r1')
    expect(await a.claim('id1', 'r2', false, 2)).toBe('taken')
    // A release by the wrong rider changes nothing.
    await b.release('id1', 'r2')
    expect(await a.claim('id1', 'r2', false, 2)).toBe('taken')
    await b.release('id1', 'r1')
    expect(await a.claim('id1', 'r2', false, 2)).toBeUndefined()
    await a.release('id1', 'r2')
    expect(await conn.exists('longlink:client:id1')).toBe(0)
  })

  it('keeps a persistent session bound with no connection, and counts sessions per rider across processes', async () => {
    const a = createRedisBindings(conn, 'A', 60_000, 600_000)
    const b = createRedisBindings(conn, 'B', 60_000, 600_000)
    expect(await a.claim('p1', 'r3', true, 2)).toBeUndefined()
    await a.release('p1', 'r3')
    expect(await b.claim('p1', 'r4', false, 2)).toBe('taken')
    expect(await b.claim('p2', 'r3', true, 2)).toBeUndefined()
    expect(await a.claim('p3', 'r3', true, 2)).toBe('too-many-sessions')
    // Its own sessions again, and clean ids, are not counted against it.
    expect(await a.claim('p1', 'r3', true, 2)).toBeUndefined()
    expect(await a.claim('c1', 'r3', false, 2)).toBeUndefined()
    // Kept for the session's lifetime (the refresh token's), renewed by each claim.
    expect(await conn.pttl('longlink:client:p1')).toBeGreaterThan(60_000)
  })

  it('a clean connection ends the persistent session it reuses: the rider may then open another one elsewhere', async () => {
    const a = createRedisBindings(conn, 'A', 60_000, 600_000)
    const b = createRedisBindings(conn, 'B', 60_000, 600_000)
    expect(await a.claim('q1', 'r7', true, 2)).toBeUndefined()
    expect(await b.claim('q2', 'r7', true, 2)).toBeUndefined()
    expect(await a.claim('q3', 'r7', true, 2)).toBe('too-many-sessions')
    // The app reinstalled with clean sessions on q1: that session is gone, and no longer counts.
    expect(await a.claim('q1', 'r7', false, 2)).toBeUndefined()
    expect(await a.claim('q3', 'r7', true, 2)).toBeUndefined()
    // Both connections on q1 (the persistent one it replaced, then the clean one) gone: nothing keeps the id.
    await a.release('q1', 'r7')
    await a.release('q1', 'r7')
    expect(await conn.exists('longlink:client:q1')).toBe(0)
  })

  it('a persistent session not claimed for its lifetime stops counting against its rider', async () => {
    const a = createRedisBindings(conn, 'A', 300, 300)
    expect(await a.claim('e1', 'r8', true, 1)).toBeUndefined()
    await a.release('e1', 'r8')
    expect(await a.claim('e2', 'r8', true, 1)).toBe('too-many-sessions')
    await new Promise((r) => setTimeout(r, 400))
    expect(await a.claim('e2', 'r8', true, 1)).toBeUndefined()
  })

  it("leaves a dead process's clean binding to its own rider only, and lets it expire", async () => {
    const dead = createRedisBindings(conn, 'dead', 300, 600_000)
    const live = createRedisBindings(conn, 'live', 300, 600_000)
    expect(await dead.claim('d1', 'r5', false, 2)).toBeUndefined()
    expect(await live.claim('d1', 'r6', false, 2)).toBe('taken')
    expect(await live.claim('d1', 'r5', false, 2)).toBeUndefined()
    await live.release('d1', 'r5')
    expect(await live.claim('d1', 'r6', false, 2)).toBe('taken')
    await new Promise((r) => setTimeout(r, 400))
    expect(await live.claim('d1', 'r6', false, 2)).toBeUndefined()
  })
})
