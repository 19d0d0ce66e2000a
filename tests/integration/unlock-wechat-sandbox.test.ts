/**
 * The demo's unlock flow, as the mp-weixin build ships it, runs to "unlocked" inside the WeChat-shaped sandbox
 * (every file wrapped as WeChat wraps it, no window/self/navigator/Buffer/process) against the demo backend: its
 * HTTP calls go through `wx.request`, its MQTT client through `wx.connectSocket`, both on real sockets. It logs in
 * with a demo rider's password (or a WeChat login code, when the backend takes one), and keeps its session through
 * token expiry: the broker closes the link when the token expires and the client comes back with a fresh one. A ride
 * the rider already holds is no dead end: under way on this bike it opens, still unlocking it goes on, on another
 * bike it is named and opens on request. Where WebSockets are refused on the way and `wx.request` cannot stream (no
 * `enableChunked`), the flow's MQTT client falls back to long-polling by itself. Then the same flow against Debian's
 * mosquitto as an external broker (`BROKER_URL`).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBackend, type Backend } from '../../server/app'
import { startMosquitto, type MosquittoBroker } from '../support/brokers'
import { startFaultProxy } from '../support/fault-proxy'
import { freePort } from '../support/ports'
import { createWxSimulator } from '../support/socket-task-sim'
import { loadMiniProgram } from '../support/wechat-sandbox'
import { apiCall, buildMpWeixin } from '../support/demo-api'

const root = resolve(__dirname, '../..')
const DIST = join(root, 'dist/build/mp-weixin')
/** The seeded riders' password in these backends (not the loopback default, so the flow must send what it is given). */
const DEMO_PASSWORD = 'sandbox-demo-password'

type Options = {
  url: string
  method?: string
  data?: unknown
  header?: Record<string, string>
  success?: (res: unknown) => void
  fail?: (err: unknown) => void
  complete?: () => void
}

/** `wx.request` on a real HTTP socket: JSON bodies out, JSON parsed back (WeChat's default dataType). */
function wxRequest(options: Options): { abort(): void } {
  const body = options.data === undefined ? undefined : typeof options.data === 'string' ? options.data : JSON.stringify(options.data)
  const request = http.request(
    options.url,
    { method: options.method ?? 'GET', headers: { ...options.header, ...(body ? { 'content-length': Buffer.byteLength(body) } : {}) } },
    (response) => {
      let text = ''
      response.setEncoding('utf8')
      response.on('data', (chunk) => (text += chunk))
      response.on('end', () => {
        let data: unknown = text
        try {
          data = JSON.parse(text)
        } catch {
          // not JSON: handed over as text
        }
        options.success?.({ statusCode: response.statusCode, data, header: response.headers, errMsg: 'request:ok' })
        options.complete?.()
      })
    },
  )
  request.on('error', (error) => {
    options.fail?.({ errMsg: `request:fail ${error.message}` })
    options.complete?.()
  })
  if (body) request.write(body)
  request.end()
  return { abort: () => request.destroy() }
}

const cleanups: (() => unknown)[] = []

beforeAll(buildMpWeixin, 120_000)

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
})

/**
 * A backend on 127.0.0.1:0 with {@link DEMO_PASSWORD} and its own data directory (or `dataDir`, to start one again on
 * the same data); `env` replaces the process's.
 */
async function demoBackend(env: Record<string, string> = {}, dataDir = ''): Promise<Backend> {
  if (!dataDir) {
    const dir = (dataDir = mkdtempSync(join(tmpdir(), 'longlink-sandbox-')))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  }
  const backend = await startBackend({ env: { PORT: '0', UNLOCK_DELAY_MS: '200', ...env }, config: { dataDir, demoPassword: DEMO_PASSWORD } })
  cleanups.push(() => backend.close())
  return backend
}

interface Credential {
  rider: string
  password: string
  wechat?: boolean
}

interface UnlockResult {
  session: { rider: string }
  bike: string
  startedAt: number
  message?: { json(): unknown }
  mqttUrl: string
}

type UnlockFlow = (credential: Credential, bike: string, onStep: (step: string) => void) => Promise<UnlockResult>

/** The flow's other entry: opens a ride the session's rider holds on `bike`. */
type ResumeRide = (session: unknown, bike: string, onStep: (step: string) => void) => Promise<UnlockResult>

/**
 * Starts `rider`'s ride on `bike` through the HTTP API (login, reserve, unlock) and, unless `wait` is false, waits
 * until it is under way. Returns the rider's token and the ride as `GET /api/rides/active` shows it.
 */
async function rideThroughApi(backend: Backend, rider: string, bike: string, { wait = true } = {}) {
  const { body: pair } = await apiCall(backend, 'POST', '/api/login', undefined, { rider, password: DEMO_PASSWORD })
  const token = pair.token as string
  expect((await apiCall(backend, 'POST', `/api/bikes/${bike}/reserve`, token, {})).status).toBe(200)
  expect((await apiCall(backend, 'POST', `/api/bikes/${bike}/unlock`, token, {})).status).toBe(202)
  const started = Date.now()
  for (;;) {
    const { rides } = (await apiCall(backend, 'GET', '/api/rides/active', token)).body as {
      rides: { bike: string; status: string; startedAt?: number }[]
    }
    const ride = rides.find((r) => r.bike === bike)
    if (!wait || ride?.status === 'riding') return { token, ride: ride! }
    if (Date.now() - started > 10_000) throw new Error(`the ride on ${bike} did not start: ${JSON.stringify(rides)}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/**
 * The mp-weixin build loaded in a fresh sandbox pointed at `backend` (`storage` holds where it points); `wechatCode`
 * is what `wx.login` answers.
 */
function miniProgram(backend: Backend, { wechatCode }: { wechatCode?: string } = {}) {
  const sim = createWxSimulator()
  const storage: Record<string, string> = { 'longlink:backend': backend.url }
  Object.assign(sim, { request: wxRequest, getStorageSync: (key: string) => storage[key] ?? '' })
  if (wechatCode)
    Object.assign(sim, { login: (options: { success?: (res: unknown) => void }) => options.success?.({ code: wechatCode, errMsg: 'login:ok' }) })
  const sandbox = loadMiniProgram(DIST, { wx: sim })
  cleanups.push(
    () => sandbox.dispose(),
    () => sim.dispose(),
  )
  return { sim, sandbox, storage }
}

type Session = { rider: string; expired: boolean }

interface MqttClientView {
  state: string
  on(event: string, handler: (payload: { code?: string }) => void): () => void
  end(force?: boolean): Promise<void>
}

/** The app's session and MQTT modules of the build, and an MQTT client logged in through the session's auth hook. */
function sessionModules(sandbox: ReturnType<typeof miniProgram>['sandbox']) {
  const api = sandbox.require('src/bike-api.js') as {
    login(credential: Credential): Promise<Session>
    reserve(session: Session, bike: string): Promise<{ status: string }>
  }
  const { sessionAuth, connectWithSession } = sandbox.require('src/mqtt-session.js') as {
    sessionAuth(current: () => Session): unknown
    connectWithSession(client: MqttClientView, current: () => Session): Promise<void>
  }
  const { createMqttClient } = sandbox.require('uni_modules/longlink-socket/js_sdk/mqtt/client.js') as {
    createMqttClient(options: Record<string, unknown>): MqttClientView
  }
  // Options made inside the sandbox: the plugin checks for plain objects of its own realm.
  const options = sandbox.evaluate('(url, auth) => ({ url, auth, keepalive: 30, reconnect: { min: 100, max: 500 } })') as (
    url: string,
    auth: unknown,
  ) => Record<string, unknown>
  const client = (url: string, session: Session) => {
    const created = createMqttClient(
      options(
        url,
        sessionAuth(() => session),
      ),
    )
    cleanups.push(() => created.end(true).catch(() => {}))
    const opens: number[] = []
    const errors: string[] = []
    created.on('open', () => opens.push(Date.now()))
    created.on('error', (error) => errors.push(String(error.code)))
    return { client: created, opens, errors, connect: () => connectWithSession(created, () => session) }
  }
  return { api, client }
}

async function runFlowInSandbox(backend: Backend, credential: Credential, bike: string, options: { wechatCode?: string } = {}) {
  const { sim, sandbox } = miniProgram(backend, options)
  const { runUnlockFlow } = sandbox.require('src/unlock-flow.js') as { runUnlockFlow: UnlockFlow }
  const steps: string[] = []
  const result = await runUnlockFlow(credential, bike, (step) => steps.push(step))
  return { steps, result, sim, sandbox }
}

describe('unlock flow of the mp-weixin build in the WeChat-shaped sandbox', () => {
  it('runs to "unlocked" against the demo backend (embedded broker)', async () => {
    const backend = await demoBackend()
    const { steps, result, sim } = await runFlowInSandbox(backend, { rider: 'rider3', password: DEMO_PASSWORD }, 'B7')
    expect(steps).toEqual(['login', 'connecting', 'subscribed', 'requested', 'unlocked'])
    expect(result.session.rider).toBe('rider3')
    expect(result.message?.json()).toMatchObject({ bike: 'B7', rider: 'rider3' })
    // The flow ends its client: no socket left open.
    expect(sim.openTasks()).toBe(0)
  }, 30_000)

  it('refuses a wrong password at the login step, before any socket', async () => {
    const backend = await demoBackend()
    const steps: string[] = []
    const { sim, sandbox } = miniProgram(backend)
    const { runUnlockFlow } = sandbox.require('src/unlock-flow.js') as { runUnlockFlow: UnlockFlow }
    await expect(runUnlockFlow({ rider: 'rider3', password: 'not-the-password' }, 'B7', (step) => steps.push(step))).rejects.toMatchObject({
      code: 'LOGIN_REFUSED',
    })
    expect(steps).toEqual(['login'])
    expect(sim.openTasks()).toBe(0)
  }, 30_000)

  it('logs in with a WeChat code when the backend takes one, else with the password', async () => {
    // On loopback the backend takes development codes `dev:<rider>`: the code decides who logs in, not the password.
    const withCodes = await demoBackend()
    const byCode = await runFlowInSandbox(withCodes, { rider: 'rider3', password: 'not-the-password', wechat: true }, 'B11', {
      wechatCode: 'dev:wxrider',
    })
    expect(byCode.result.message?.json()).toMatchObject({ bike: 'B11', rider: 'wxrider' })
    // Without WeChat login the code is answered FORBIDDEN and the flow falls back to the password form.
    const withoutCodes = await demoBackend({ WECHAT_DEV_LOGIN: '0' })
    const byPassword = await runFlowInSandbox(withoutCodes, { rider: 'rider2', password: DEMO_PASSWORD, wechat: true }, 'B12', {
      wechatCode: 'dev:wxrider',
    })
    expect(byPassword.result.message?.json()).toMatchObject({ bike: 'B12', rider: 'rider2' })
  }, 30_000)

  it('keeps the rider logged in through token expiry: the broker drops the link, the auth hook brings a fresh token', async () => {
    const TTL_MS = 2000
    const backend = await demoBackend({ TOKEN_TTL_MS: String(TTL_MS) })
    const { sim, sandbox } = miniProgram(backend)
    const { api, client } = sessionModules(sandbox)
    const session = await api.login({ rider: 'rider4', password: DEMO_PASSWORD })
    const link = client(backend.mqttUrl, session)
    await link.connect()
    const started = Date.now()
    // The broker closes the link when the first token expires; the client reconnects by itself, with a new token.
    while (link.opens.length < 2 && Date.now() - started < TTL_MS + 5000) await new Promise((r) => setTimeout(r, 50))
    expect(link.opens.length).toBeGreaterThanOrEqual(2)
    expect(link.client.state).toBe('open')
    expect(link.errors).toEqual([])
    // The HTTP side too: a call after the first token's expiry goes through with a refreshed one.
    expect(await api.reserve(session, 'B13')).toMatchObject({ status: 'reserved' })
    await link.client.end()
    expect(sim.openTasks()).toBe(0)
  }, 30_000)

  it('replaces a token the broker refuses although it looks valid (a new signing key), through the refresh token', async () => {
    const first = await demoBackend({ TOKEN_SECRET: 'the-first-signing-key-of-this-test' })
    const dataDir = first.config.dataDir
    const { sandbox, storage } = miniProgram(first)
    const { api, client } = sessionModules(sandbox)
    const session = await api.login({ rider: 'rider5', password: DEMO_PASSWORD })
    await first.close()
    // Same data (riders, refresh tokens), another key: every access token signed before is refused now.
    const second = await demoBackend({ TOKEN_SECRET: 'the-second-signing-key-of-this-test' }, dataDir)
    storage['longlink:backend'] = second.url
    const link = client(second.mqttUrl, session)
    await link.connect()
    expect(link.client.state).toBe('open')
    // The broker refused the old token once; the hook's retry brought a refreshed one.
    expect(link.errors).toEqual(['NOT_AUTHORIZED'])
    expect(session.expired).toBe(false)
    expect(await api.reserve(session, 'B14')).toMatchObject({ status: 'reserved' })
    await link.client.end()
  }, 30_000)

  it('ends the session with SESSION_EXPIRED when the refresh token has expired too, and stops the client', async () => {
    const backend = await demoBackend({ TOKEN_TTL_MS: '1000', REFRESH_TTL_MS: '1500' })
    const { sim, sandbox } = miniProgram(backend)
    const { api, client } = sessionModules(sandbox)
    const session = await api.login({ rider: 'rider1', password: DEMO_PASSWORD })
    await new Promise((r) => setTimeout(r, 2000))
    const link = client(backend.mqttUrl, session)
    await expect(link.connect()).rejects.toMatchObject({ code: 'SESSION_EXPIRED' })
    expect(session.expired).toBe(true)
    // No retry loop on a hook that cannot produce a token: the client is ended at once.
    expect(link.client.state).toBe('closed')
    expect(sim.openTasks()).toBe(0)
    await expect(api.reserve(session, 'B15')).rejects.toMatchObject({ code: 'SESSION_EXPIRED' })
  }, 30_000)

  it('opens the ride already under way on the bike (reserve answers BIKE_BUSY) instead of an error', async () => {
    const backend = await demoBackend()
    const { token, ride } = await rideThroughApi(backend, 'rider2', 'B30')
    expect((await apiCall(backend, 'POST', '/api/bikes/B30/reserve', token, {})).body.error).toMatchObject({ code: 'BIKE_BUSY' })
    const { steps, result, sim } = await runFlowInSandbox(backend, { rider: 'rider2', password: DEMO_PASSWORD }, 'B30')
    expect(steps).toEqual(['login', 'unlocked'])
    expect(result).toMatchObject({ bike: 'B30', startedAt: ride.startedAt, mqttUrl: backend.mqttUrl })
    expect(result.session.rider).toBe('rider2')
    // Nothing to wait for: no socket was opened.
    expect(sim.openTasks()).toBe(0)
  }, 30_000)

  it('goes on with an unlock still under way on the bike: subscribes, asks again, hears "unlocked"', async () => {
    const backend = await demoBackend({ UNLOCK_DELAY_MS: '2500' })
    await rideThroughApi(backend, 'rider3', 'B32', { wait: false })
    const { steps, result, sim } = await runFlowInSandbox(backend, { rider: 'rider3', password: DEMO_PASSWORD }, 'B32')
    expect(steps).toEqual(['login', 'connecting', 'subscribed', 'requested', 'unlocked'])
    expect(result.message?.json()).toMatchObject({ bike: 'B32', rider: 'rider3', time: result.startedAt })
    expect(sim.openTasks()).toBe(0)
  }, 30_000)

  it('names the other bike the rider rides (RIDER_BUSY), and opens that ride on request', async () => {
    const backend = await demoBackend()
    const { token, ride } = await rideThroughApi(backend, 'rider4', 'B31')
    expect((await apiCall(backend, 'POST', '/api/bikes/B33/reserve', token, {})).body.error).toMatchObject({ code: 'RIDER_BUSY', bike: 'B31' })
    const { sim, sandbox } = miniProgram(backend)
    const { runUnlockFlow, resumeRide } = sandbox.require('src/unlock-flow.js') as { runUnlockFlow: UnlockFlow; resumeRide: ResumeRide }
    const { describeError } = sandbox.require('src/messages.js') as { describeError(error: unknown): { title: string; detail: string } }
    const steps: string[] = []
    const error = (await runUnlockFlow({ rider: 'rider4', password: DEMO_PASSWORD }, 'B33', (step) => steps.push(step)).catch((e: unknown) => e)) as {
      code?: string
      details?: unknown
      session?: unknown
    }
    expect(error).toMatchObject({ code: 'RIDING_ELSEWHERE', details: { bike: 'B31', status: 'riding' } })
    expect(steps).toEqual(['login'])
    const { title, detail } = describeError(error)
    expect(title).toContain('你正在骑行车辆 B31')
    expect(title).toContain('You already ride bike B31')
    expect(detail).toContain('open that ride')
    // The button: the ride on B31 opens with the session the flow logged in with.
    const opened: string[] = []
    const result = await resumeRide(error.session, 'B31', (step) => opened.push(step))
    expect(opened).toEqual(['unlocked'])
    expect(result).toMatchObject({ bike: 'B31', startedAt: ride.startedAt })
    expect(result.session).toBe(error.session)
    expect(sim.openTasks()).toBe(0)
  }, 30_000)

  it('falls back to long-polling when WebSockets are refused on the way and wx.request cannot stream', async () => {
    // The broker's URL (what /api/config answers) goes through a proxy that answers 403 to every WebSocket upgrade.
    // This file's `wx.request` buffers whole answers and has no chunks (no `enableChunked`), so SSE cannot run either.
    const port = await freePort()
    const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port } })
    cleanups.push(() => proxy.close())
    proxy.blockUpgrades(true)
    const backend = await demoBackend({ PORT: String(port), PUBLIC_MQTT_URL: proxy.url('/mqtt') })
    const { steps, result, sim, sandbox } = await runFlowInSandbox(backend, { rider: 'rider5', password: DEMO_PASSWORD }, 'B60')
    expect(result.mqttUrl).toBe(proxy.url('/mqtt'))
    expect(steps).toEqual(['login', 'connecting', 'subscribed', 'requested', 'unlocked'])
    expect(result.message?.json()).toMatchObject({ bike: 'B60', rider: 'rider5' })
    expect(proxy.upgradesRefused()).toBeGreaterThan(0)
    // The plugin remembers the transport that worked for the broker's host: the next client starts there.
    const { recall } = sandbox.require('uni_modules/longlink-socket/js_sdk/transports/memory.js') as { recall(host: string): string | undefined }
    expect(recall(`127.0.0.1:${proxy.port}`)).toBe('long-polling')
    expect(sim.openTasks()).toBe(0)
  }, 60_000)

  it('runs to "unlocked" with an external mosquitto through BROKER_URL', async () => {
    const mosquitto: MosquittoBroker = await startMosquitto()
    cleanups.push(() => mosquitto.close())
    const backend = await demoBackend({ BROKER_URL: mosquitto.url })
    const { steps, result } = await runFlowInSandbox(backend, { rider: 'rider4', password: DEMO_PASSWORD }, 'B8')
    expect(result.mqttUrl).toBe(mosquitto.url)
    expect(steps.at(-1)).toBe('unlocked')
    expect(result.message?.json()).toMatchObject({ bike: 'B8', rider: 'rider4' })
  }, 30_000)
})
