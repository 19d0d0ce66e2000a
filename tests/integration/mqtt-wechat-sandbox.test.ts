/**
 * The MQTT entry as WeChat runs it: the host is built for mp-weixin (`node scripts/uni.mjs build -p mp-weixin`), and
 * the built files are loaded in a sandbox shaped like a phone's mini-program runtime (tests/support/wechat-sandbox.ts:
 * ECMAScript built-ins, console, timers, `wx`, `global`, and every file wrapped in WeChat's function whose `window`,
 * `self`, `navigator`… parameters are undefined). `wx` is the socket-task simulator (real sockets, WeChat semantics),
 * the broker a real aedes over WebSocket on loopback, and the other end a Node-side MQTT.js client.
 *
 * It also proves the sandbox is faithful enough to matter: the unpatched MQTT.js browser bundle throws at load in it,
 * even when `self`/`window`/`navigator` are put on the global (the wrapper's parameters shadow them, as on a phone).
 */
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import mqtt, { type MqttClient as NodeMqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient, MqttClientOptions, MqttMessage } from '../../uni_modules/longlink-socket/js_sdk/mqtt'
import { startAedes, type AedesBroker } from '../support/brokers'
import { createWxSimulator, type WxSimHost } from '../support/socket-task-sim'
import { ABSENT_GLOBALS, assertWeChatGlobals, loadMiniProgram, type MiniProgramSandbox } from '../support/wechat-sandbox'
import { until } from '../support/wait'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const DIST = path.join(ROOT, 'dist/build/mp-weixin')
/** The plugin's MQTT entry in the build output. */
const ENTRY = 'uni_modules/longlink-socket/js_sdk/mqtt.js'
/**
 * uni's mp build emits `js_sdk/mqtt.js` as a side-effect-only facade (it requires vendor.js and the patched MQTT.js
 * but exports nothing) because the pages that import `createMqttClient` from it are rewired to the implementing module
 * (see dist/build/mp-weixin/pages/index/index.js). The test takes the export from the entry when it has one, else from
 * that module, exactly what a built page requires.
 */
const IMPLEMENTATION = 'uni_modules/longlink-socket/js_sdk/mqtt/client.js'
const TOPIC_IN = 'mobike/unlocked/B42'
const TOPIC_OUT = 'mobike/cmd/B42'
const STEP_MS = 5000

type CreateMqttClient = (options: MqttClientOptions) => MqttClient

/** Rejects with a readable message when `promise` does not settle within `ms`. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)
    }),
  ])
}

/** Requires the MQTT entry inside the sandbox (the load-time check) and returns its `createMqttClient`. */
function loadCreateMqttClient(sandbox: MiniProgramSandbox): CreateMqttClient {
  const entry = sandbox.require(ENTRY) as { createMqttClient?: CreateMqttClient }
  if (typeof entry.createMqttClient === 'function') return entry.createMqttClient
  const impl = sandbox.require(IMPLEMENTATION) as { createMqttClient?: CreateMqttClient }
  if (typeof impl.createMqttClient !== 'function') throw new Error(`neither ${ENTRY} nor ${IMPLEMENTATION} exports createMqttClient`)
  return impl.createMqttClient
}

/**
 * An ESM bundle turned into a file the WeChat wrapper can run: `export default X;` (MQTT.js's dist) or
 * `export{X as default};` (esbuild's output, the vendored copy) becomes `module.exports = X;`.
 */
function asCommonJs(esmSource: string): string {
  const forms = [/\bexport default\b/g, /export\s*\{\s*([\w$]+)\s+as\s+default\s*\}\s*;?/g]
  const found = forms.map((form) => (esmSource.match(form) ?? []).length)
  expect(found[0] + found[1], 'one default export in the bundle').toBe(1)
  const out = found[0] ? esmSource.replace(forms[0], 'module.exports =') : esmSource.replace(forms[1], 'module.exports = $1;')
  expect(/^\s*(import|export)\s/m.test(out) || /(^|[;}])export\s*\{/.test(out), 'no other import/export').toBe(false)
  return out
}

const cleanups: (() => unknown)[] = []
let broker: AedesBroker
let node: NodeMqttClient
const fromSandbox: { topic: string; payload: Buffer; qos: number }[] = []
let tmpDir: string

beforeAll(async () => {
  const built = new Promise<void>((resolve, reject) => {
    execFile(
      process.execPath,
      ['scripts/uni.mjs', 'build', '-p', 'mp-weixin'],
      { cwd: ROOT, env: { ...process.env, NODE_ENV: 'production' }, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => (error ? reject(new Error(`mp-weixin build failed: ${error.message}\n${stdout}\n${stderr}`)) : resolve()),
    )
  })
  const brokerStarted = startAedes()
  broker = await brokerStarted
  cleanups.push(() => broker.close())
  node = await within(mqtt.connectAsync(broker.url, { reconnectPeriod: 0, connectTimeout: STEP_MS }), STEP_MS, 'Node-side MQTT.js connect')
  cleanups.push(() => node.endAsync(true))
  node.on('message', (topic, payload, packet) => fromSandbox.push({ topic, payload, qos: packet.qos }))
  await within(node.subscribeAsync(TOPIC_OUT, { qos: 1 }), STEP_MS, 'Node-side subscribe')
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wechat-sandbox-'))
  cleanups.push(() => fs.rmSync(tmpDir, { recursive: true, force: true }))
  await built
  expect(fs.existsSync(path.join(DIST, ENTRY)), `${ENTRY} in the build output`).toBe(true)
}, 120_000)

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) {
    try {
      await within(Promise.resolve().then(cleanup), STEP_MS, 'cleanup')
    } catch (error) {
      console.warn('cleanup failed:', error)
    }
  }
})

/** A fresh simulator + sandbox, torn down in afterAll (clients first: cleanups run in reverse). */
function newSandbox(extraGlobals?: Record<string, unknown>): { sim: WxSimHost; sandbox: MiniProgramSandbox } {
  const sim = createWxSimulator()
  const sandbox = loadMiniProgram(DIST, { wx: sim, extraGlobals })
  cleanups.push(
    () => sim.dispose(),
    () => sandbox.dispose(),
  )
  return { sim, sandbox }
}

/**
 * Connect, subscribe with a per-topic handler, receive a JSON message published by Node, publish QoS 1 JSON and a
 * binary view from inside the sandbox, end.
 */
async function roundTrip({ sim, sandbox }: { sim: WxSimHost; sandbox: MiniProgramSandbox }): Promise<void> {
  const createMqttClient = loadCreateMqttClient(sandbox)
  const clientId = `sandbox_${Math.random().toString(36).slice(2, 10)}`
  const client = createMqttClient({ url: broker.url, platform: 'wx', clientId, reconnect: false, connectTimeout: STEP_MS })
  cleanups.push(() => client.end(true))
  // platform 'wx' must find the sandbox's wx (through uni's `wx$1` export of common/vendor.js, built from it at load).
  expect(client.platform).toBe('wx')

  await within(client.connect(), STEP_MS, 'sandbox client connect')
  expect(client.connected).toBe(true)
  expect(sim.tasks.length).toBe(1)
  expect(sim.tasks[0].url).toBe(broker.url)

  const received: MqttMessage[] = []
  const subscription = await within(
    client.subscribe(TOPIC_IN, (message) => received.push(message), { qos: 1 }),
    STEP_MS,
    'sandbox subscribe',
  )
  expect(subscription.qos).toBe(1)

  const sent = { bike: 'B42', unlocked: true, at: 1_717_171_717, rider: '骑手-7', tags: ['a', 'b'] }
  const sentBytes = Buffer.from(JSON.stringify(sent), 'utf8')
  await within(node.publishAsync(TOPIC_IN, sentBytes, { qos: 1 }), STEP_MS, 'Node-side publish')
  await until(() => received.length > 0, STEP_MS, 'the sandbox handler to receive the message')
  const message = received[0]
  expect(message.topic).toBe(TOPIC_IN)
  expect(message.qos).toBe(1)
  expect(message.json()).toEqual(sent)
  expect(Object.prototype.toString.call(message.payload)).toBe('[object Uint8Array]')
  expect(Buffer.from(message.payload.buffer, message.payload.byteOffset, message.payload.byteLength).equals(sentBytes)).toBe(true)

  const command = { cmd: 'unlock', bike: 'B42', seq: 1 }
  await within(client.publish(TOPIC_OUT, command, { qos: 1 }), STEP_MS, 'sandbox QoS 1 publish (JSON)')
  // A view into a larger buffer, made in the sandbox's realm: only its own bytes may go out.
  const view = sandbox.evaluate('new Uint8Array([9, 0, 1, 2, 3, 255, 254, 7]).subarray(1, 7)') as Uint8Array
  await within(client.publish(TOPIC_OUT, view, { qos: 1 }), STEP_MS, 'sandbox QoS 1 publish (bytes)')
  await until(() => fromSandbox.length >= 2, STEP_MS, 'the Node-side client to receive both publishes')
  const [json, bytes] = fromSandbox.splice(0, 2)
  expect(json.topic).toBe(TOPIC_OUT)
  expect(json.qos).toBe(1)
  expect(JSON.parse(json.payload.toString('utf8'))).toEqual(command)
  expect([...bytes.payload]).toEqual([0, 1, 2, 3, 255, 254])

  await within(client.end(), STEP_MS, 'sandbox client end')
  expect(client.state).toBe('closed')
  await until(() => sim.openTasks() === 0, STEP_MS, 'the SocketTask to close')
  await until(() => broker.clients() === 1, STEP_MS, 'the broker to see the sandbox client leave')
}

describe('WeChat-shaped sandbox', () => {
  it('offers only ECMAScript built-ins, console, timers, wx, global and the framework functions', () => {
    const { sandbox } = newSandbox()
    const seen = sandbox.evaluate('[typeof window, typeof self, typeof navigator, typeof Buffer, typeof process]')
    expect([...(seen as string[])]).toEqual(['undefined', 'undefined', 'undefined', 'undefined', 'undefined'])
    expect(assertWeChatGlobals(sandbox)).toEqual(Object.fromEntries(ABSENT_GLOBALS.map((name) => [name, 'undefined'])))
    const present = sandbox.evaluate(
      '[typeof console, typeof setTimeout, typeof clearInterval, typeof wx, typeof global, global === globalThis, typeof App, typeof Page, typeof Component, typeof Behavior, typeof getApp, typeof getCurrentPages, typeof Promise, typeof Uint8Array]',
    )
    expect([...(present as unknown[])]).toEqual([
      'object',
      'function',
      'function',
      'object',
      'object',
      false,
      'function',
      'function',
      'function',
      'function',
      'function',
      'function',
      'function',
      'function',
    ])
  })

  it('runs each file inside the WeChat wrapper: browser names stay undefined even when set on the global', () => {
    fs.writeFileSync(
      path.join(tmpDir, 'probe.js'),
      'module.exports = { self: typeof self, window: typeof window, navigator: typeof navigator, globalSelf: typeof globalThis.self, dep: require("./dep").value }',
    )
    fs.writeFileSync(path.join(tmpDir, 'dep.js'), 'exports.value = 42')
    const sandbox = loadMiniProgram(tmpDir, { wx: {}, extraGlobals: { self: {}, window: {}, navigator: { language: 'en' } } })
    expect({ ...(sandbox.require('probe') as object) }).toEqual({
      self: 'undefined',
      window: 'undefined',
      navigator: 'undefined',
      globalSelf: 'object',
      dep: 42,
    })
    expect(() => sandbox.require('../outside.js')).toThrow(/outside the mini-program package/)
  })

  it('throws at load on the unpatched MQTT.js bundle, the failure the vendored copy exists to fix', () => {
    const unpatched = fs.readFileSync(path.join(ROOT, 'node_modules/mqtt/dist/mqtt.esm.js'), 'utf8')
    fs.writeFileSync(path.join(tmpDir, 'mqtt-unpatched.js'), asCommonJs(unpatched))
    const sim = createWxSimulator()
    cleanups.push(() => sim.dispose())
    const bare = loadMiniProgram(tmpDir, { wx: sim })
    expect(() => bare.require('mqtt-unpatched.js')).toThrow(/AbortController/)
    // A global polyfill cannot help: the wrapper's `self`/`window`/`navigator` parameters shadow the global ones.
    const polyfilled = loadMiniProgram(tmpDir, { wx: sim, extraGlobals: { self: {}, window: {}, navigator: { language: 'en-US' } } })
    expect(() => polyfilled.require('mqtt-unpatched.js')).toThrow(/AbortController/)
  })

  it('loads the vendored (patched) MQTT.js source the same way', () => {
    const patched = fs.readFileSync(path.join(ROOT, 'uni_modules/longlink-socket/js_sdk/vendor/mqtt.esm.js'), 'utf8')
    fs.writeFileSync(path.join(tmpDir, 'mqtt-patched.js'), asCommonJs(patched))
    const sim = createWxSimulator()
    cleanups.push(() => sim.dispose())
    const sandbox = loadMiniProgram(tmpDir, { wx: sim })
    const lib = sandbox.require('mqtt-patched.js') as { MqttClient?: unknown }
    expect(typeof lib.MqttClient).toBe('function')
  })
})

describe('MQTT entry in the mp-weixin build, inside the WeChat sandbox', () => {
  it('loads app.js and the demo page (which uses the MQTT entry) like WeChat does', () => {
    const { sandbox } = newSandbox()
    sandbox.require('app.js')
    expect(sandbox.framework.app, 'App() called by app.js').toBeDefined()
    expect(typeof sandbox.global.createApp).toBe('function')
    sandbox.require('pages/index/index.js')
    expect(sandbox.framework.components.length, 'the page registered through wx.createPage → Component()').toBe(1)
  })

  it('loads js_sdk/mqtt.js with common/vendor.js and the patched MQTT.js', () => {
    const { sandbox } = newSandbox()
    // Called bare (not inside expect().not.toThrow()) so a failure reports the sandboxed error and its built-file frame.
    sandbox.require(ENTRY)
    expect(typeof loadCreateMqttClient(sandbox)).toBe('function')
  })

  it('connects over wx.connectSocket, receives and publishes QoS 1, ends', async () => {
    await roundTrip(newSandbox())
  }, 30_000)
})

/**
 * Diagnostic: the same round trip in a sandbox that also offers `AbortController`/`AbortSignal` globals (minimal
 * stand-ins). It isolates what the phone-shaped runtime above trips on from the rest of the path (uni's vendor.js,
 * `wx$1`, the SocketTask stream, MQTT.js framing), which must keep working either way.
 */
describe('same round trip with AbortController/AbortSignal globals (diagnostic)', () => {
  class AbortSignal {
    aborted = false
    reason: unknown = undefined
    onabort: ((event: unknown) => void) | null = null
    addEventListener(): void {}
    removeEventListener(): void {}
  }
  class AbortController {
    signal = new AbortSignal()
    abort(reason?: unknown): void {
      this.signal.aborted = true
      this.signal.reason = reason
    }
  }

  it('connects over wx.connectSocket, receives and publishes QoS 1, ends', async () => {
    const fixture = newSandbox({ AbortController, AbortSignal })
    expect(assertWeChatGlobals(fixture.sandbox, ['AbortController']).AbortController).toBe('function')
    await roundTrip(fixture)
  }, 30_000)
})
