/**
 * The npm package in a native WeChat mini-program, as DevTools would run it: `npm run build:npm` builds the package,
 * its `miniprogram_dist` is copied to `miniprogram_npm/longlink-socket` as "Tools → Build npm" does, and
 * examples/wechat-native is loaded in the WeChat-shaped sandbox (every file in WeChat's wrapper, `require` of a
 * package name resolved from miniprogram_npm). Its page unlocks a bike against the demo backend over MQTT
 * (`require('longlink-socket/mqtt')`), and the core entry (`require('longlink-socket')`) makes a round trip on a
 * loopback WebSocket server. `wx` is the socket-task simulator with the chunked request simulator's `request`.
 */
import { execFile } from 'node:child_process'
import { cpSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBackend, type Backend } from '../../server/app'
import { createRequestSimulator, type RequestOptions } from '../support/request-sim'
import { createWxSimulator } from '../support/socket-task-sim'
import { startTestServer } from '../support/test-server'
import { until, within } from '../support/wait'
import { loadMiniProgram } from '../support/wechat-sandbox'

const root = resolve(__dirname, '../..')
const DEMO_PASSWORD = 'native-example-password'
const cleanups: (() => unknown)[] = []
let app: string
let backend: Backend

beforeAll(async () => {
  await promisify(execFile)(process.execPath, [join(root, 'scripts/build-npm.mjs')], { cwd: root })
  // The example as DevTools sees it after "Build npm".
  app = mkdtempSync(join(tmpdir(), 'longlink-native-'))
  cleanups.push(() => rmSync(app, { recursive: true, force: true }))
  cpSync(join(root, 'examples/wechat-native'), app, { recursive: true })
  cpSync(join(root, 'dist/npm/longlink-socket/miniprogram_dist'), join(app, 'miniprogram_npm/longlink-socket'), { recursive: true })
  const dataDir = mkdtempSync(join(tmpdir(), 'longlink-native-data-'))
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }))
  backend = await startBackend({ env: { PORT: '0', UNLOCK_DELAY_MS: '100' }, config: { dataDir, demoPassword: DEMO_PASSWORD } })
  cleanups.push(() => backend.close())
}, 120_000)

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
})

function miniProgram() {
  const sim = createWxSimulator()
  const requests = createRequestSimulator({ split: { mode: 'none' } })
  const storage: Record<string, string> = { 'longlink:backend': backend.url }
  Object.assign(sim, {
    request: (options: RequestOptions) => requests.wx.request(options),
    getStorageSync: (key: string) => storage[key] ?? '',
  })
  const sandbox = loadMiniProgram(app, { wx: sim })
  cleanups.push(
    () => sandbox.dispose(),
    () => requests.close(),
    () => sim.dispose(),
  )
  return { sim, sandbox }
}

interface PageInstance {
  data: Record<string, unknown>
  setData(patch: Record<string, unknown>): void
  unlock(): Promise<void>
  onUnload(): void
}

describe('the npm package in a native WeChat mini-program (examples/wechat-native)', () => {
  it('unlocks a bike from the page with require("longlink-socket/mqtt"), and ends its client on unload', async () => {
    const { sim, sandbox } = miniProgram()
    sandbox.require('app.js')
    expect(sandbox.framework.app).toBeDefined()
    sandbox.require('pages/index/index.js')
    const options = sandbox.framework.pages[0] as PageInstance
    // A page instance as WeChat makes one: the options' methods, its own data, setData merging into it.
    const page = Object.assign(Object.create(options) as PageInstance, {
      data: { ...options.data, password: DEMO_PASSWORD },
      setData(this: PageInstance, patch: Record<string, unknown>) {
        Object.assign(this.data, patch)
      },
    })
    await within(page.unlock(), 20_000, 'the unlock flow')
    expect(page.data.step).toBe('已开锁 · Unlocked')
    expect(JSON.parse(String(page.data.result))).toMatchObject({ bike: 'B42', rider: 'rider1' })
    expect(sim.openTasks()).toBe(1)
    page.onUnload()
    await until(() => sim.openTasks() === 0, 5000, 'the MQTT socket to close on unload')
  }, 30_000)

  it('shows the backend code on a refused login, and never opens a socket', async () => {
    const { sim, sandbox } = miniProgram()
    sandbox.require('pages/index/index.js')
    const options = sandbox.framework.pages[0] as PageInstance
    const page = Object.assign(Object.create(options) as PageInstance, {
      data: { ...options.data, password: 'wrong' },
      setData(this: PageInstance, patch: Record<string, unknown>) {
        Object.assign(this.data, patch)
      },
    })
    await within(page.unlock(), 10_000, 'the refused flow')
    expect(page.data.result).toBe('UNAUTHORIZED: wrong rider or password')
    expect(sim.tasks.length).toBe(0)
  })

  it('runs the core entry from miniprogram_npm: a WebSocket round trip, one LongLinkError for every entry', async () => {
    const server = await startTestServer()
    cleanups.push(() => server.close())
    const { sandbox } = miniProgram()
    type Core = typeof import('../../uni_modules/longlink-socket/js_sdk/index')
    const core = sandbox.require('miniprogram_npm/longlink-socket/index.js') as Core
    const mqtt = sandbox.require('miniprogram_npm/longlink-socket/mqtt.js') as { LongLinkError: unknown }
    const sse = sandbox.require('miniprogram_npm/longlink-socket/sse.js') as { LongLinkError: unknown }
    expect(mqtt.LongLinkError).toBe(core.LongLinkError)
    expect(sse.LongLinkError).toBe(core.LongLinkError)
    // Options made inside the sandbox: the plugin checks for plain objects of its own realm.
    const connection = core.createConnection(sandbox.evaluate(`({ url: '${server.url('/ws')}', platform: 'wx' })`) as never)
    const got: unknown[] = []
    connection.on('message', (data) => got.push(data))
    await within(connection.open(), 5000, 'open')
    expect(connection.platform).toBe('wx')
    await connection.send('hello from miniprogram_npm')
    await until(() => got.length === 1, 5000, 'the echo')
    expect(got).toEqual(['hello from miniprogram_npm'])
    await connection.close()
    expect(connection.state).toBe('closed')
  })
})
