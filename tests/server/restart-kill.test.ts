/**
 * A SIGKILL mid-ride: 200 riders (180 riding, 20 still unlocking) on a backend process that is killed and started
 * again on the same port and data dir. Nothing may be lost: every client comes back and resubscribes with no
 * refusal, the 20 unlocks finish and are heard, every ride locks once with its fare recorded once, and no bike can be
 * taken by another rider in between.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { createWebAdapter } from '../../uni_modules/longlink-socket/js_sdk/index'
import { createMqttClient, type MqttClient } from '../../uni_modules/longlink-socket/js_sdk/mqtt'
import { openStore } from '../../server/store/open'
import { freePort, startBackendProcess, type BackendProcess } from '../support/backend-process'
import { pool, until } from '../support/wait'

const RIDERS = 200
const UNLOCKING = 20
const PASSWORD = 'longlink-demo'

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'longlink-kill-'))
const riders = Array.from({ length: RIDERS }, (_, i) => `kr${i}`)
const processes: BackendProcess[] = []
const clients: MqttClient[] = []

afterAll(async () => {
  await Promise.all(clients.map((c) => c.end(true).catch(() => {})))
  for (const p of processes) await p.kill()
  fs.rmSync(dataDir, { recursive: true, force: true })
})

async function call(
  base: string,
  method: string,
  p: string,
  token?: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(base + p, {
    method,
    headers: { 'content-type': 'application/json', ...(token && { authorization: `Bearer ${token}` }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  })
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

describe('SIGKILL mid-ride', () => {
  it(`${RIDERS} riders: all back and resubscribed, 0 refused, 0 lost rides, each fare once`, { timeout: 120_000 }, async () => {
    const port = await freePort()
    const env = {
      PORT: String(port),
      DATA_DIR: dataDir,
      DEMO_RIDERS: riders.join(','),
      DEMO_PASSWORD: PASSWORD,
      UNLOCK_DELAY_MS: '200',
      RESUME_GRACE_MS: '3000',
      H5_DIR: dataDir,
    }
    const first = await startBackendProcess(env)
    processes.push(first)
    const base = first.url

    const tokens: string[] = []
    const unlocked = new Set<string>()
    const locked = new Map<string, Record<string, unknown>>()
    const errors: string[] = []
    await pool(riders, 20, async (rider, i) => {
      const login = await call(base, 'POST', '/api/login', undefined, { rider, password: PASSWORD })
      expect(login.status).toBe(200)
      tokens[i] = login.body.token as string
      const c = createMqttClient({
        url: `ws://127.0.0.1:${port}/mqtt`,
        platform: createWebAdapter(WebSocket as never),
        username: rider,
        password: tokens[i],
      })
      clients[i] = c
      c.on('error', (e) => errors.push(`${rider}: ${e.code}`))
      await c.connect()
      expect((await call(base, 'POST', `/api/bikes/kb${i}/reserve`, tokens[i])).status).toBe(200)
      await c.subscribe(`mobike/unlocked/kb${i}`, () => void unlocked.add(rider), { qos: 1 })
    })
    // 180 rides under way (and subscribed to their lock topic), 20 unlocks still in flight at the kill.
    await pool(riders.slice(UNLOCKING), 20, async (rider, j) => {
      const i = j + UNLOCKING
      expect((await call(base, 'POST', `/api/bikes/kb${i}/unlock`, tokens[i])).status).toBe(202)
    })
    await until(() => unlocked.size === RIDERS - UNLOCKING, 20_000, 'rides started')
    await pool(riders.slice(UNLOCKING), 20, async (rider, j) => {
      const i = j + UNLOCKING
      await clients[i].subscribe(`mobike/locked/kb${i}`, (m) => void locked.set(rider, m.json() as Record<string, unknown>), { qos: 1 })
    })
    const slow = { ...env, UNLOCK_DELAY_MS: '200' }
    await pool(riders.slice(0, UNLOCKING), 20, async (rider, i) => {
      expect((await call(base, 'POST', `/api/bikes/kb${i}/unlock`, tokens[i])).status).toBe(202)
    })

    const reopened = new Set<string>()
    clients.forEach((c, i) => c.on('open', (e) => e.reconnected && reopened.add(riders[i])))
    await first.kill('SIGKILL')
    const killedAt = Date.now()
    const second = await startBackendProcess(slow)
    processes.push(second)
    await until(() => reopened.size === RIDERS, 30_000, `${RIDERS} clients back (${reopened.size})`)
    const backMs = Date.now() - killedAt
    console.log(`[measure] ${RIDERS} clients back and resubscribed ${backMs} ms after the SIGKILL (restart included)`)

    // Resubscriptions: none refused, on either side.
    expect(second.events('acl.subscribe.refused')).toEqual([])
    expect(errors.filter((e) => e.includes('SUBSCRIBE_REFUSED'))).toEqual([])
    // The interrupted unlocks finish after the restart, and their riders hear them.
    await until(() => unlocked.size === RIDERS, 15_000, `all unlocks heard (${unlocked.size})`)
    // Nobody else can take a bike in the meantime.
    const intruder = await call(second.url, 'POST', '/api/login', undefined, { rider: riders[0], password: PASSWORD })
    const other = await call(second.url, 'POST', '/api/bikes/kb5/reserve', intruder.body.token as string)
    expect(other).toMatchObject({ status: 409, body: { error: { code: 'BIKE_BUSY' } } })

    await pool(riders, 20, async (rider, i) => {
      const r = await call(second.url, 'POST', `/api/bikes/kb${i}/lock`, tokens[i])
      expect(r.status, rider).toBe(200)
      expect((await call(second.url, 'POST', `/api/bikes/kb${i}/lock`, tokens[i])).status).toBe(404)
    })
    await until(() => locked.size === RIDERS - UNLOCKING, 10_000, 'lock summaries heard')
    await second.kill('SIGTERM')

    const store = await openStore({ dataDir })
    try {
      let rides = 0
      for (const rider of riders) {
        const mine = await store.ridesOf(rider)
        expect(mine, rider).toHaveLength(1)
        rides += mine.length
      }
      expect(rides).toBe(RIDERS)
      expect(await store.activeRideCount()).toBe(0)
    } finally {
      await store.close()
    }
  })
})
