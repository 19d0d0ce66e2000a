/**
 * The SSE entry as WeChat runs it: the host is built for mp-weixin, the built files are loaded in the WeChat-shaped
 * sandbox (tests/support/wechat-sandbox.ts: no window/self/navigator/TextDecoder, every file in WeChat's wrapper), and
 * `wx.request` is the chunked request simulator (tests/support/request-sim.ts: real HTTP on loopback, chunks cut at
 * random bytes, inside UTF-8 characters and between CR and LF). Against the demo backend: the ride page's module
 * streams a ride's events and the assistant's summary; a source resumes across a backend restart and rotates its
 * stream before the platform's cap, with no event lost or repeated.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBackend, type Backend } from '../../server/app'
import { rideSummaryText } from '../../server/assistant'
import { createRequestSimulator } from '../support/request-sim'
import { createWxSimulator } from '../support/socket-task-sim'
import { loadMiniProgram } from '../support/wechat-sandbox'
import { apiCall, buildMpWeixin } from '../support/demo-api'
import { until } from '../support/wait'

const root = resolve(__dirname, '../..')
const DIST = join(root, 'dist/build/mp-weixin')
const DEMO_PASSWORD = 'sandbox-demo-password'

const cleanups: (() => unknown)[] = []

beforeAll(buildMpWeixin, 120_000)

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
})

async function demoBackend(dataDir?: string, port = 0): Promise<Backend> {
  if (!dataDir) {
    const dir = (dataDir = mkdtempSync(join(tmpdir(), 'longlink-sse-sandbox-')))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  }
  const backend = await startBackend({ env: { PORT: String(port), UNLOCK_DELAY_MS: '100' }, config: { dataDir, demoPassword: DEMO_PASSWORD } })
  cleanups.push(() => backend.close())
  return backend
}

async function tokenOf(backend: Backend, rider: string): Promise<string> {
  return (await apiCall(backend, 'POST', '/api/login', undefined, { rider, password: DEMO_PASSWORD })).body.token as string
}

/** `rider` rides `bike` through the HTTP API (another device): reserve, unlock, wait until riding. Returns startedAt. */
async function ride(backend: Backend, token: string, bike: string): Promise<number> {
  expect((await apiCall(backend, 'POST', `/api/bikes/${bike}/reserve`, token, {})).status).toBe(200)
  expect((await apiCall(backend, 'POST', `/api/bikes/${bike}/unlock`, token, {})).status).toBe(202)
  const deadline = Date.now() + 10_000
  for (;;) {
    const { rides } = (await apiCall(backend, 'GET', '/api/rides/active', token)).body as {
      rides: { bike: string; status: string; startedAt?: number }[]
    }
    const startedAt = rides.find((r) => r.bike === bike && r.status === 'riding')?.startedAt
    if (startedAt !== undefined) return startedAt
    if (Date.now() > deadline) throw new Error(`the ride on ${bike} did not start: ${JSON.stringify(rides)}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** The mp-weixin build in a fresh sandbox whose `wx.request` is the chunked request simulator, pointed at `backend`. */
function miniProgram(backend: Backend, seed: number) {
  const sim = createWxSimulator()
  const requests = createRequestSimulator({ split: { mode: 'random', seed, maxBytes: 16 } })
  const storage: Record<string, string> = { 'longlink:backend': backend.url }
  Object.assign(sim, { request: (options: never) => requests.wx.request(options), getStorageSync: (key: string) => storage[key] ?? '' })
  const sandbox = loadMiniProgram(DIST, { wx: sim })
  cleanups.push(
    () => sandbox.dispose(),
    () => requests.close(),
    () => sim.dispose(),
  )
  return { sandbox, requests, storage }
}

interface SourceView {
  state: string
  readyState: number
  platform: string
  lastEventId: string
  stats: { events: number; bytes: number; reconnects: number }
  on(type: string, handler: (payload: never) => void): () => void
  close(): Promise<void>
}
type Session = { rider: string }

describe('SSE entry of the mp-weixin build in the WeChat-shaped sandbox', () => {
  it('streams a ride with the ride page module, then the assistant summary token by token, over wx.request', async () => {
    const backend = await demoBackend()
    const { sandbox, requests } = miniProgram(backend, 7)
    // The phone-shaped runtime has no TextDecoder: the plugin decodes UTF-8 itself.
    expect(sandbox.evaluate('typeof TextDecoder')).toBe('undefined')
    // The SSE entry file loads in the wrapper.
    sandbox.require('uni_modules/longlink-socket/js_sdk/sse.js')
    const { login } = sandbox.require('src/bike-api.js') as { login(credential: { rider: string; password: string }): Promise<Session> }
    const { watchRide, streamSummary } = sandbox.require('src/ride-events.js') as {
      watchRide(current: () => Session, ride: { bike: string; startedAt: number }, on: Record<string, (value: never) => void>): SourceView
      streamSummary(current: () => Session, bike: string, on: Record<string, (text: string) => void>): SourceView
    }
    const session = await login({ rider: 'rider1', password: DEMO_PASSWORD })
    const token = await tokenOf(backend, 'rider1')
    const startedAt = await ride(backend, token, 'B42')

    const statuses: { type: string; id: string }[] = []
    let summary: { fare: number } | undefined
    const source = watchRide(() => session, { bike: 'B42', startedAt }, { status: (s) => statuses.push(s), ended: (s) => (summary = s) })
    cleanups.push(() => source.close())
    const errors: string[] = []
    source.on('error', (error: Error) => errors.push(error.message))
    await until(() => statuses.length === 1, 10_000, 'the ride page module to see the riding event')
    expect(errors).toEqual([])
    expect(source.platform).toBe('wx')
    expect(source.readyState).toBe(1)
    expect(statuses[0].type).toBe('riding')
    // Over wx.request with the chunks WeChat hands over (enableChunked, arraybuffer).
    const streamTask = requests.tasks.find((task) => task.url.includes('/api/rides/events') && task.options.enableChunked === true)
    expect(streamTask, 'a request to /api/rides/events').toBeDefined()

    expect((await apiCall(backend, 'POST', '/api/bikes/B42/lock', token, {})).status).toBe(200)
    await until(() => statuses.length === 2 && summary !== undefined, 10_000, 'the locked event')
    expect(statuses[1]).toEqual({ type: 'locked', id: String(Number(statuses[0].id) + 1) })
    await source.close()
    expect(source.readyState).toBe(2)

    const texts: string[] = []
    let done: string | undefined
    const answer = streamSummary(() => session, 'B42', { text: (text) => texts.push(text), done: (text) => (done = text) })
    cleanups.push(() => answer.close())
    await until(() => done !== undefined, 15_000, 'the assistant to finish')
    const expected = rideSummaryText((await backend.bikes.lastRide('rider1', 'B42'))!)
    expect(done).toBe(expected)
    // Token by token: the text grew in many steps, and what the tokens made is exactly the whole text.
    expect(texts.length).toBeGreaterThan(10)
    expect(texts.at(-1)).toBe(expected)
    await until(() => answer.readyState === 2, 5000, 'the answer to close after done')
  }, 60_000)

  it('resumes across a backend restart and rotates before the cap, with no event lost or repeated', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'longlink-sse-sandbox-'))
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }))
    let backend = await demoBackend(dataDir)
    const port = backend.port
    const { sandbox } = miniProgram(backend, 11)
    const { createEventSource } = sandbox.require('uni_modules/longlink-socket/js_sdk/sse/source.js') as {
      createEventSource(url: string, options: unknown): SourceView
    }
    let token = await tokenOf(backend, 'rider2')
    // Options made inside the sandbox (the plugin checks for plain objects of its own realm).
    const options = sandbox.evaluate('(auth) => ({ platform: "wx", auth, maxStreamMs: 1500, reconnect: { min: 100, max: 1000 } })') as (
      auth: unknown,
    ) => unknown
    const source = createEventSource(
      `${backend.url}/api/rides/events`,
      options(() => sandbox.evaluate(`({ header: { Authorization: 'Bearer ${token}' } })`)),
    )
    cleanups.push(() => source.close())
    const ids: number[] = []
    const types: string[] = []
    const reasons: string[] = []
    for (const type of ['reserved', 'unlocking', 'riding', 'locked']) {
      source.on(type, (event: { id?: string; type: string }) => {
        ids.push(Number(event.id))
        types.push(event.type)
      })
    }
    source.on('state', (change: { to: string; reason: string }) => reasons.push(`${change.to}:${change.reason}`))

    await ride(backend, token, 'B43')
    await until(() => types.length === 3, 10_000, 'reserved, unlocking, riding')
    // The backend goes away and comes back on the same port and data: the source resumes after the last id it saw.
    await backend.close()
    await until(() => source.readyState === 0, 10_000, 'the source to notice')
    backend = await demoBackend(dataDir, port)
    token = await tokenOf(backend, 'rider2')
    expect((await apiCall(backend, 'POST', '/api/bikes/B43/lock', token, {})).status).toBe(200)
    await ride(backend, token, 'B44')
    expect((await apiCall(backend, 'POST', '/api/bikes/B44/lock', token, {})).status).toBe(200)
    await until(() => types.length === 8, 15_000, 'the second ride and both locks')
    // Streams last 1.5 s here: some ended before the cap and resumed, each time from the last id.
    await until(() => reasons.filter((r) => r === 'connecting:rotate').length >= 2, 10_000, 'two rotations')

    expect(types).toEqual(['reserved', 'unlocking', 'riding', 'locked', 'reserved', 'unlocking', 'riding', 'locked'])
    expect(ids).toEqual(ids.map((_, i) => ids[0] + i))
    expect(source.lastEventId).toBe(String(ids.at(-1)))
    expect(source.stats.events).toBe(8)
    // The restart was a reconnect; the rotations were not.
    expect(source.stats.reconnects).toBeGreaterThanOrEqual(1)
    expect(source.stats.reconnects).toBeLessThan(reasons.filter((r) => r === 'open:reconnect').length)
    await source.close()
  }, 90_000)
})
