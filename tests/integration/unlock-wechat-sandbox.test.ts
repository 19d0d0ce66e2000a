/**
 * The demo's unlock flow, as the mp-weixin build ships it, runs to "unlocked" inside the WeChat-shaped sandbox
 * (every file wrapped as WeChat wraps it, no window/self/navigator/Buffer/process) against the demo backend: its
 * HTTP calls go through `wx.request`, its MQTT client through `wx.connectSocket`, both on real sockets. Then the
 * same against Debian's mosquitto as an external broker (`BROKER_URL`).
 */
import { execFile } from 'node:child_process'
import http from 'node:http'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBackend, type Backend } from '../../server/app'
import { startMosquitto, type MosquittoBroker } from '../support/brokers'
import { createWxSimulator } from '../support/socket-task-sim'
import { loadMiniProgram } from '../support/wechat-sandbox'

const root = resolve(__dirname, '../..')
const DIST = join(root, 'dist/build/mp-weixin')

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

beforeAll(async () => {
  await promisify(execFile)(process.execPath, [join(root, 'scripts/uni.mjs'), 'build', '-p', 'mp-weixin'], {
    cwd: root,
    env: { ...process.env, NODE_ENV: 'production' },
  })
}, 120_000)

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
})

async function runFlowInSandbox(backend: Backend, rider: string, bike: string) {
  const sim = createWxSimulator()
  const storage: Record<string, string> = { 'longlink:backend': backend.url }
  Object.assign(sim, { request: wxRequest, getStorageSync: (key: string) => storage[key] ?? '' })
  const sandbox = loadMiniProgram(DIST, { wx: sim })
  cleanups.push(
    () => sandbox.dispose(),
    () => sim.dispose(),
  )
  const { runUnlockFlow } = sandbox.require('src/unlock-flow.js') as {
    runUnlockFlow: (rider: string, bike: string, onStep: (step: string) => void) => Promise<{ message: { json(): unknown }; mqttUrl: string }>
  }
  const steps: string[] = []
  const result = await runUnlockFlow(rider, bike, (step) => steps.push(step))
  return { steps, result, sim }
}

describe('unlock flow of the mp-weixin build in the WeChat-shaped sandbox', () => {
  it('runs to "unlocked" against the demo backend (embedded broker)', async () => {
    const backend = await startBackend({ env: { PORT: '0', UNLOCK_DELAY_MS: '200' } })
    cleanups.push(() => backend.close())
    const { steps, result, sim } = await runFlowInSandbox(backend, 'rider7', 'B7')
    expect(steps).toEqual(['login', 'connecting', 'subscribed', 'requested', 'unlocked'])
    expect(result.message.json()).toMatchObject({ bike: 'B7', rider: 'rider7' })
    // The flow ends its client: no socket left open.
    expect(sim.openTasks()).toBe(0)
  }, 30_000)

  it('runs to "unlocked" with an external mosquitto through BROKER_URL', async () => {
    const mosquitto: MosquittoBroker = await startMosquitto()
    cleanups.push(() => mosquitto.close())
    const backend = await startBackend({ env: { PORT: '0', UNLOCK_DELAY_MS: '200', BROKER_URL: mosquitto.url } })
    cleanups.push(() => backend.close())
    const { steps, result } = await runFlowInSandbox(backend, 'rider8', 'B8')
    expect(result.mqttUrl).toBe(mosquitto.url)
    expect(steps.at(-1)).toBe('unlocked')
    expect(result.message.json()).toMatchObject({ bike: 'B8', rider: 'rider8' })
  }, 30_000)
})
