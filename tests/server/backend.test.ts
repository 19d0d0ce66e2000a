import mqtt from 'mqtt'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ErrorCode } from '../../uni_modules/longlink-socket/js_sdk/index'
import { createTokenService } from '../../server/tokens'
import fs from 'node:fs'
import path from 'node:path'
import { allLogLines, api, DEMO_PASSWORD, endClients, login, mqttClient, testBackend, type TestBackend } from './helpers'
import { startAedes } from '../support/brokers'
import { until } from '../support/wait'

let backend: TestBackend
const tokensSeen = new Set<string>()

async function riderToken(rider: string): Promise<string> {
  const t = await login(backend.url, rider)
  tokensSeen.add(t)
  return t
}

beforeAll(async () => {
  backend = await testBackend()
})
afterEach(endClients)
afterAll(async () => {
  await backend?.close()
})

describe('HTTP API', () => {
  it('logs in a seeded rider with its password, validates input, and refreshes once per refresh token', async () => {
    const ok = await api(backend.url, 'POST', '/api/login', { body: { rider: 'rider1', password: DEMO_PASSWORD } })
    expect(ok.status).toBe(200)
    expect(ok.body).toMatchObject({ rider: 'rider1', token: expect.any(String), refreshToken: expect.any(String) })
    expect(ok.body.expiresAt).toBeGreaterThan(Date.now())
    expect(ok.body.refreshExpiresAt).toBeGreaterThan(ok.body.expiresAt)
    tokensSeen.add(ok.body.token).add(ok.body.refreshToken)
    const wrong = await api(backend.url, 'POST', '/api/login', { body: { rider: 'rider1', password: 'not-the-password' } })
    expect(wrong).toMatchObject({ status: 401, body: { error: { code: 'UNAUTHORIZED' } } })
    const unknown = await api(backend.url, 'POST', '/api/login', { body: { rider: 'nobody', password: DEMO_PASSWORD } })
    expect(unknown.body.error).toEqual(wrong.body.error)
    const bad = await api(backend.url, 'POST', '/api/login', { body: { rider: 'no spaces!', password: 'x' } })
    expect(bad).toMatchObject({ status: 400, body: { error: { code: 'BAD_INPUT', status: 400 } } })
    expect((await api(backend.url, 'POST', '/api/login', { body: { rider: 'rider1' } })).status).toBe(400)

    const refreshed = await api(backend.url, 'POST', '/api/token', { body: { refreshToken: ok.body.refreshToken } })
    expect(refreshed.status).toBe(200)
    expect(refreshed.body.rider).toBe('rider1')
    expect(refreshed.body.refreshToken).not.toBe(ok.body.refreshToken)
    tokensSeen.add(refreshed.body.token).add(refreshed.body.refreshToken)
    const reused = await api(backend.url, 'POST', '/api/token', { body: { refreshToken: ok.body.refreshToken } })
    expect(reused).toMatchObject({ status: 401, body: { error: { code: 'UNAUTHORIZED', reason: 'expired' } } })
    expect((await api(backend.url, 'GET', '/api/rides/active', { token: refreshed.body.token })).status).toBe(200)
  })

  it('logs in with a WeChat development code on loopback only', async () => {
    const ok = await api(backend.url, 'POST', '/api/login', { body: { wechatCode: 'dev:wx_rider' } })
    expect(ok).toMatchObject({ status: 200, body: { rider: 'wx_rider' } })
    tokensSeen.add(ok.body.token).add(ok.body.refreshToken)
    const again = await api(backend.url, 'POST', '/api/login', { body: { wechatCode: 'dev:wx_rider' } })
    expect(again.body.rider).toBe('wx_rider')
    tokensSeen.add(again.body.token).add(again.body.refreshToken)
    // A development code naming a password rider does not hand that account over.
    expect((await api(backend.url, 'POST', '/api/login', { body: { wechatCode: 'dev:rider2' } })).status).toBe(401)
    expect((await api(backend.url, 'POST', '/api/login', { body: { wechatCode: 'real-code-from-wx' } })).body.error.code).toBe('FORBIDDEN')
  })

  it('refuses missing or bad tokens with 401 and a reason', async () => {
    expect((await api(backend.url, 'POST', '/api/bikes/b1/unlock')).body.error).toMatchObject({ code: 'UNAUTHORIZED', reason: 'missing' })
    const forged = createTokenService('other').issue('alice', 60_000).token
    expect((await api(backend.url, 'POST', '/api/bikes/b1/unlock', { token: forged })).body.error).toMatchObject({
      status: 401,
      reason: 'bad-signature',
    })
    const expired = createTokenService(backend.config.tokenSecret, () => Date.now() - 120_000).issue('alice', 60_000).token
    expect((await api(backend.url, 'POST', '/api/bikes/b1/unlock', { token: expired })).body.error).toMatchObject({ status: 401, reason: 'expired' })
  })

  it('409 for a bike held by another rider, 404 for an unknown ride, 400 for a bad bike id', async () => {
    const a = await riderToken('http_a')
    const b = await riderToken('http_b')
    expect((await api(backend.url, 'POST', '/api/bikes/hb1/reserve', { token: a })).body).toMatchObject({ bike: 'hb1', status: 'reserved' })
    expect((await api(backend.url, 'POST', '/api/bikes/hb1/unlock', { token: b })).status).toBe(409)
    expect((await api(backend.url, 'POST', '/api/bikes/hb1/reserve', { token: b })).body.error.code).toBe('BIKE_BUSY')
    expect((await api(backend.url, 'POST', '/api/bikes/hb1/lock', { token: b })).body.error).toMatchObject({ status: 404, code: 'RIDE_NOT_FOUND' })
    expect((await api(backend.url, 'POST', '/api/bikes/bad%20id/unlock', { token: b })).status).toBe(400)
    const active = await api(backend.url, 'GET', '/api/rides/active', { token: a })
    expect(active.body.rides).toEqual([expect.objectContaining({ bike: 'hb1', status: 'reserved' })])
    expect((await api(backend.url, 'GET', '/api/nope')).status).toBe(404)
  })
})

describe('MQTT login', () => {
  it('accepts a good token', async () => {
    const token = await riderToken('login_ok')
    const c = mqttClient(backend.mqttUrl, { username: 'login_ok', password: token })
    await c.connect()
    expect(c.connected).toBe(true)
  })

  it("refuses a bad, expired, or someone else's token with NOT_AUTHORIZED", async () => {
    const good = await riderToken('login_x')
    const expired = createTokenService(backend.config.tokenSecret, () => Date.now() - 120_000).issue('login_x', 60_000).token
    tokensSeen.add(expired)
    for (const [username, password] of [
      ['login_x', 'garbage'],
      ['login_x', expired],
      ['login_y', good],
      ['login_x', createTokenService('other').issue('login_x', 60_000).token],
    ]) {
      const c = mqttClient(backend.mqttUrl, { username, password })
      const err = await c.connect().then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(err).toMatchObject({ code: ErrorCode.NOT_AUTHORIZED })
    }
    const refusals = backend.log
      .entries()
      .filter((e) => e.event === 'mqtt.refused')
      .map((e) => e.reason)
    expect(refusals).toEqual(expect.arrayContaining(['malformed', 'expired', 'username-mismatch', 'bad-signature']))
  })
})

describe('ACL', () => {
  it("rider A cannot subscribe to rider B's bike; the refusal is logged", async () => {
    const a = await riderToken('acl_a')
    const b = await riderToken('acl_b')
    expect((await api(backend.url, 'POST', '/api/bikes/acl1/reserve', { token: b })).status).toBe(200)
    const ca = mqttClient(backend.mqttUrl, { username: 'acl_a', password: a })
    await ca.connect()
    for (const filter of ['mobike/unlocked/acl1', 'mobike/locked/acl1', 'mobike/#', 'mobike/unlocked/+', '#']) {
      const err = await ca
        .subscribe(filter, () => {})
        .then(
          () => undefined,
          (e: unknown) => e,
        )
      expect(err, filter).toMatchObject({ code: ErrorCode.SUBSCRIBE_REFUSED })
    }
    const refused = backend.log
      .entries()
      .filter((e) => e.event === 'acl.subscribe.refused' && e.rider === 'acl_a')
      .map((e) => e.topic)
    expect(refused).toEqual(expect.arrayContaining(['mobike/unlocked/acl1', 'mobike/locked/acl1', 'mobike/#', '#']))
    // B, who reserved it, may subscribe to the unlock topic but not yet to the lock topic
    const cb = mqttClient(backend.mqttUrl, { username: 'acl_b', password: b })
    await cb.connect()
    await expect(cb.subscribe('mobike/unlocked/acl1', () => {})).resolves.toMatchObject({ filter: 'mobike/unlocked/acl1' })
    await expect(cb.subscribe('mobike/locked/acl1', () => {})).rejects.toMatchObject({ code: ErrorCode.SUBSCRIBE_REFUSED })
  })

  it('riders may not publish to mobike/#', async () => {
    const t = await riderToken('acl_pub')
    const c = mqttClient(backend.mqttUrl, { username: 'acl_pub', password: t, reconnect: false })
    await c.connect()
    const closed = new Promise((r) => c.on('close', r))
    void c.publish('mobike/unlocked/zz', { fake: true }, { qos: 1 }).catch(() => {})
    await closed
    await until(() => backend.log.entries().some((e) => e.event === 'acl.publish.refused' && e.topic === 'mobike/unlocked/zz'), 2000)
  })
})

/** Subscribes (resolves after SUBACK) and returns the first message on `filter`, bounded by 5 s. */
async function firstMessage(
  c: ReturnType<typeof mqttClient>,
  filter: string,
): Promise<() => Promise<import('../../uni_modules/longlink-socket/js_sdk/mqtt').MqttMessage>> {
  let resolve!: (m: import('../../uni_modules/longlink-socket/js_sdk/mqtt').MqttMessage) => void
  const p = new Promise<import('../../uni_modules/longlink-socket/js_sdk/mqtt').MqttMessage>((r) => (resolve = r))
  const sub = await c.subscribe(filter, (m) => resolve(m), { qos: 1 })
  return async () => {
    let timer: NodeJS.Timeout | undefined
    try {
      return await Promise.race([p, new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`no message on ${filter}`)), 5000)))])
    } finally {
      clearTimeout(timer)
      await sub.unsubscribe().catch(() => {})
    }
  }
}

async function rideFlow(base: string, mqttUrl: string, rider: string, bike: string, client?: ReturnType<typeof mqttClient>) {
  const token = await login(base, rider)
  tokensSeen.add(token)
  const c = client ?? mqttClient(mqttUrl, { username: rider, password: token })
  if (!client) await c.connect()
  expect((await api(base, 'POST', `/api/bikes/${bike}/reserve`, { token })).status).toBe(200)
  const unlocked = await firstMessage(c, `mobike/unlocked/${bike}`)
  const res = await api(base, 'POST', `/api/bikes/${bike}/unlock`, { token })
  expect(res).toEqual({ status: 202, body: { bike, status: 'unlocking' } })
  const msg = await unlocked()
  expect(msg.qos).toBe(1)
  const u = msg.json() as Record<string, unknown>
  expect(u).toMatchObject({ bike, rider })
  expect(typeof u.time).toBe('number')
  const locked = await firstMessage(c, `mobike/locked/${bike}`)
  const lockRes = await api(base, 'POST', `/api/bikes/${bike}/lock`, { token })
  expect(lockRes.status).toBe(200)
  const summary = (await locked()).json() as Record<string, number | string>
  expect(summary).toMatchObject({ bike, rider, startedAt: u.time })
  expect(summary.endedAt).toBeGreaterThanOrEqual(summary.startedAt as number)
  expect(summary.durationMs).toBe((summary.endedAt as number) - (summary.startedAt as number))
  expect(summary.fare).toBe(0.5)
  expect(lockRes.body).toEqual(summary)
  expect((await api(base, 'GET', '/api/rides/active', { token })).body.rides).toEqual([])
  return { client: c, token }
}

describe('a ride whose announcement was missed', () => {
  it('unlock again is idempotent for the holder, and subscribing again while riding hears the unlock again', async () => {
    const token = await login(backend.url, 'missed_r')
    tokensSeen.add(token)
    expect((await api(backend.url, 'POST', '/api/bikes/miss1/unlock', { token })).status).toBe(202)
    for (const deadline = Date.now() + 3000; (await api(backend.url, 'GET', '/api/rides/active', { token })).body.rides[0]?.status !== 'riding';) {
      if (Date.now() > deadline) throw new Error('the ride did not start')
      await new Promise((r) => setTimeout(r, 20))
    }
    // Nobody was listening when it was announced. A retry of the unlock is answered 202 and announced again.
    const c = mqttClient(backend.mqttUrl, { username: 'missed_r', password: token })
    await c.connect()
    const heard: Record<string, unknown>[] = []
    await c.subscribe('mobike/unlocked/miss1', (m) => heard.push(m.json() as Record<string, unknown>), { qos: 1 })
    await until(() => heard.length === 1, 3000, 're-announced on subscribe')
    expect(heard[0]).toMatchObject({ bike: 'miss1', rider: 'missed_r' })
    expect(await api(backend.url, 'POST', '/api/bikes/miss1/unlock', { token })).toEqual({
      status: 202,
      body: { bike: 'miss1', status: 'unlocking' },
    })
    await until(() => heard.length === 2, 3000, 're-announced on unlock')
    expect(heard[1]).toEqual(heard[0])
    // Another rider asking is still refused.
    const other = await login(backend.url, 'missed_other')
    expect((await api(backend.url, 'POST', '/api/bikes/miss1/unlock', { token: other })).body.error.code).toBe('BIKE_BUSY')
    expect((await api(backend.url, 'POST', '/api/bikes/miss1/lock', { token })).status).toBe(200)
  })
})

describe('the bike flow', () => {
  it('login → subscribe unlocked → unlock → unlocked JSON → subscribe locked → lock → summary', async () => {
    await rideFlow(backend.url, backend.mqttUrl, 'flow_rider', 'bike_42')
  })
})

describe('admin counters', () => {
  it('count online connections, messages in and out, refusals and active rides', async () => {
    const b = await testBackend({ unlockDelayMs: 60_000 })
    try {
      expect(b.stats()).toMatchObject({
        online: 0,
        activeRides: 0,
        broker: 'embedded',
        database: 'sqlite',
        totals: { messagesIn: 0, messagesOut: 0 },
      })
      const t1 = await login(b.url, 'adm_a')
      const t2 = await login(b.url, 'adm_b')
      tokensSeen.add(t1).add(t2)
      const pub = mqttClient(b.mqttUrl, { username: 'adm_a', password: t1 })
      const sub1 = mqttClient(b.mqttUrl, { username: 'adm_b', password: t2 })
      const sub2 = mqttClient(b.mqttUrl, { username: 'adm_b', password: t2 })
      await Promise.all([pub.connect(), sub1.connect(), sub2.connect()])
      await until(() => b.stats().online === 3, 2000, 'online 3')
      // Messages in: what the backend publishes (riders publish nothing); one to a rider's own inbox nobody else hears.
      const N = 7
      const inbox: unknown[] = []
      await pub.subscribe('riders/adm_a/inbox', (m) => inbox.push(m))
      for (let i = 0; i < N; i++) await b.broker!.bus.publish('riders/adm_a/inbox', { i }, 1)
      await until(() => inbox.length === N, 2000, 'inbox')
      expect((await api(b.url, 'POST', '/api/bikes/adm1/reserve', { token: t2 })).status).toBe(200)
      const got: unknown[] = []
      await sub1.subscribe('mobike/unlocked/adm1', (m) => got.push(m))
      await sub2.subscribe('mobike/unlocked/adm1', (m) => got.push(m))
      await expect(pub.subscribe('mobike/unlocked/adm1', () => {})).rejects.toMatchObject({ code: ErrorCode.SUBSCRIBE_REFUSED })
      expect((await api(b.url, 'POST', '/api/bikes/adm1/unlock', { token: t2 })).status).toBe(202)
      await until(() => b.stats().activeRides === 1, 2000, 'one active ride')
      // The unlock's announcement, sent now through the backend's bus (the lock would take a minute here).
      await b.broker!.bus.publish('mobike/unlocked/adm1', { bike: 'adm1', rider: 'adm_b', time: Date.now() }, 1)
      await until(() => got.length === 2, 2000, 'two deliveries')
      const s = b.stats()
      expect(s.totals).toMatchObject({ messagesIn: N + 1, messagesOut: N + 2 })
      expect(s.totals.refusals).toBeGreaterThanOrEqual(1)
      expect(s.online).toBe(3)
      await sub2.end()
      await until(() => b.stats().online === 2, 2000, 'online 2')
      expect(b.log.entries().some((e) => e.event === 'mqtt.disconnect' && e.reason === 'client-disconnect')).toBe(true)
    } finally {
      await endClients()
      await b.close()
    }
  })
})

describe('static H5', () => {
  it('serves index.html at / and assets with their content types; no traversal', async () => {
    const root = await fetch(backend.url + '/')
    expect(root.status).toBe(200)
    expect(root.headers.get('content-type')).toMatch(/text\/html/)
    const html = await root.text()
    const asset = /src="\.?(\/assets\/[^"]+\.js)"/.exec(html)
    if (fs.existsSync(path.join(backend.config.h5Dir, 'index.html'))) {
      expect(asset, 'an asset script in index.html').toBeTruthy()
      const js = await fetch(backend.url + asset![1])
      expect(js.status).toBe(200)
      expect(js.headers.get('content-type')).toMatch(/text\/javascript/)
      const css = /href="\.?(\/assets\/[^"]+\.css)"/.exec(html)
      if (css) expect((await fetch(backend.url + css[1])).headers.get('content-type')).toMatch(/text\/css/)
    } else {
      expect(html).toContain('H5 build not found')
    }
    const traversal = await fetch(backend.url + '/%2e%2e/package.json')
    expect(traversal.status).toBe(404)
    expect((await fetch(backend.url + '/missing.css')).status).toBe(404)
  })
})

describe('restart', () => {
  it('a backend started again on the same data dir keeps the ride; the client reconnects by itself and locks it', async () => {
    const first = await testBackend({ unlockDelayMs: 30 })
    const { dataDir } = first.config
    let second: TestBackend | undefined
    try {
      const token = await login(first.url, 'restart_r')
      tokensSeen.add(token)
      const c = mqttClient(first.mqttUrl, { username: 'restart_r', password: token })
      await c.connect()
      expect((await api(first.url, 'POST', '/api/bikes/rb1/reserve', { token })).status).toBe(200)
      const unlocked = await firstMessage(c, 'mobike/unlocked/rb1')
      expect((await api(first.url, 'POST', '/api/bikes/rb1/unlock', { token })).status).toBe(202)
      await unlocked()
      let reopened = false
      c.on('open', (e) => {
        if (e.reconnected) reopened = true
      })
      const port = first.port
      await first.close()
      expect(first.log.entries().some((e) => e.event === 'mqtt.disconnect' && e.reason === 'server-shutdown')).toBe(true)
      second = await testBackend({ port, dataDir })
      await until(() => reopened && c.connected, 5000, 'client reconnected')
      // Same secret from the data dir: the old token still works; the ride is still there.
      const active = await api(second.url, 'GET', '/api/rides/active', { token })
      expect(active.body.rides).toEqual([expect.objectContaining({ bike: 'rb1', status: 'riding' })])
      const locked = await firstMessage(c, 'mobike/locked/rb1')
      const lock = await api(second.url, 'POST', '/api/bikes/rb1/lock', { token })
      expect(lock.status).toBe(200)
      expect((await locked()).json()).toEqual(lock.body)
      expect(await second.store.ridesOf('restart_r')).toHaveLength(1)
    } finally {
      await endClients()
      await second?.close()
    }
  })
})

describe('external broker (BROKER_URL)', () => {
  it('publishes the unlock through an ordinary MQTT client', async () => {
    const ext = await startAedes()
    const b = await testBackend({ brokerUrl: ext.url })
    const watcher = await mqtt.connectAsync(ext.url, { reconnectPeriod: 0 })
    try {
      await watcher.subscribeAsync('mobike/#', { qos: 1 })
      const got = new Promise<string>((r) => watcher.on('message', (topic, p) => r(`${topic} ${p.toString()}`)))
      const token = await login(b.url, 'ext_r')
      tokensSeen.add(token)
      expect((await api(b.url, 'POST', '/api/bikes/e1/unlock', { token })).status).toBe(202)
      expect(await got).toMatch(/^mobike\/unlocked\/e1 \{"bike":"e1","rider":"ext_r"/)
      expect(b.stats()).toMatchObject({ broker: 'external', online: null, totals: { messagesIn: 1 } })
      expect((await api(b.url, 'GET', '/api/config')).body).toEqual({ mqttUrl: ext.url })
    } finally {
      await watcher.endAsync(true)
      await b.close()
      await ext.close()
    }
  })
})

describe('logs', () => {
  it('carry connects, disconnects and refusals, and never a token', () => {
    const events = new Set(backend.log.entries().map((e) => e.event))
    for (const e of ['mqtt.connect', 'mqtt.disconnect', 'mqtt.refused', 'acl.subscribe.refused', 'acl.publish.refused', 'http.refused'])
      expect(events, e).toContain(e)
    expect(tokensSeen.size).toBeGreaterThan(5)
    const all = allLogLines.flat().join('\n')
    expect(allLogLines.length).toBeGreaterThanOrEqual(4)
    for (const t of tokensSeen) {
      expect(all).not.toContain(t)
      expect(all).not.toContain(t.split('.')[1])
    }
  })
})
