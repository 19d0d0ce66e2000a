/**
 * The host project builds for the other uni-app targets the plugin claims (`npm run build:mp-alipay`,
 * `build:mp-toutiao`, `build:app`; mp-weixin and H5 are in build.test.ts), and each output carries the plugin and
 * reaches the platform's own socket API:
 * - mp-alipay and mp-toutiao: the built `common/vendor.js` and the plugin's built uni adapter are loaded in a
 *   mini-program-shaped sandbox whose only host object is `my` (Alipay) or `tt` (Douyin); opening a link through the
 *   plugin's `uni` adapter must call that host's `connectSocket` (with `multiple: true`, which Alipay needs for a
 *   SocketTask) and use the task it returns. The Alipay contract itself runs in tests/integration/alipay-sandbox.test.ts.
 * - app: the App's JS (`app-service.js`) carries the plugin and calls the global `uni` the App base provides; that
 *   base's runtime is the installed `@dcloudio/uni-app-plus` at the same version, whose `connectSocket` opens sockets
 *   through the native `uni-webSocket` module. Running it needs the native App (HBuilderX or a device): not here.
 */
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { loadMiniProgram } from '../support/wechat-sandbox'

const root = resolve(__dirname, '../..')
const run = promisify(execFile)
const PIN = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).dependencies['@dcloudio/uni-app'] as string

async function build(platform: string): Promise<string> {
  await run(process.execPath, [join(root, 'scripts/uni.mjs'), 'build', '-p', platform], {
    cwd: root,
    env: { ...process.env, NODE_ENV: 'production' },
  })
  return join(root, 'dist/build', platform)
}

/** Files of the plugin every mini-program build of the demo carries (its pages use the MQTT entry and composables). */
const SDK_FILES = ['errors.js', 'mqtt/client.js', 'vue-mqtt.js', 'core/backoff.js', 'adapters/socket-task.js', 'adapters/uni.js']

/**
 * Loads the build's vendor.js and the plugin's uni adapter with `host` as the only host object, under `hostName`,
 * opens one link through the adapter and returns what the host's `connectSocket` was called with.
 */
function openThroughUni(out: string, hostName: string, systemInfo: Record<string, unknown>) {
  const calls: Record<string, unknown>[] = []
  const registered: string[] = []
  const task = Object.fromEntries(
    ['onOpen', 'onMessage', 'onClose', 'onError']
      .map((name) => [name, () => void registered.push(name)])
      .concat([
        ['send', () => {}],
        ['close', () => {}],
      ]),
  )
  const host = {
    canIUse: () => true,
    connectSocket(options: Record<string, unknown>) {
      calls.push(options)
      return task
    },
  }
  const sandbox = loadMiniProgram(out, { wx: host, hostName, hostDefaults: { getSystemInfoSync: systemInfo } })
  try {
    expect(sandbox.evaluate(`[typeof ${hostName}, typeof wx]`)).toEqual(['object', hostName === 'wx' ? 'object' : 'undefined'])
    sandbox.require('common/vendor.js')
    const { createUniAdapter } = sandbox.require('uni_modules/longlink-socket/js_sdk/adapters/uni.js') as {
      createUniAdapter(): { name: string; open(request: { url: string }, events: Record<string, (...args: unknown[]) => void>): unknown }
    }
    const errors: unknown[] = []
    const adapter = createUniAdapter()
    adapter.open({ url: 'wss://example.com/ws' }, { onOpen() {}, onMessage() {}, onClose() {}, onError: (error) => void errors.push(error) })
    return { adapter: adapter.name, calls, registered, errors }
  } finally {
    sandbox.dispose()
  }
}

describe('host project builds for the other uni-app targets', () => {
  it(`pins every @dcloudio package at one release (${PIN}) with the @dcloudio/types uni-app asks for`, () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
    const pins = { ...pkg.dependencies, ...pkg.devDependencies } as Record<string, string>
    for (const name of [
      'uni-app',
      'uni-components',
      'uni-h5',
      'uni-mp-weixin',
      'uni-mp-alipay',
      'uni-mp-toutiao',
      'uni-app-plus',
      'uni-cli-shared',
      'vite-plugin-uni',
    ])
      expect(pins[`@dcloudio/${name}`], name).toBe(PIN)
    const uniApp = JSON.parse(readFileSync(join(root, 'node_modules/@dcloudio/uni-app/package.json'), 'utf8'))
    expect(pins['@dcloudio/types']).toBe(uniApp.peerDependencies['@dcloudio/types'])
  })

  it.each([
    {
      platform: 'mp-alipay',
      ide: 'Alipay’s',
      host: 'my',
      projectFile: 'mini.project.json',
      template: 'pages/index/index.axml',
      systemInfo: { app: 'alipay', platform: 'Android', version: '10.5.36', language: 'zh-Hans', windowWidth: 375, pixelRatio: 2 },
      // Alipay returns a SocketTask only with `multiple: true`.
      connect: { url: 'wss://example.com/ws', multiple: true },
    },
    {
      platform: 'mp-toutiao',
      ide: 'Douyin’s',
      host: 'tt',
      projectFile: 'project.config.json',
      template: 'pages/index/index.ttml',
      systemInfo: { platform: 'android', appName: 'Douyin', SDKVersion: '3.0.0', language: 'zh_CN', windowWidth: 375, pixelRatio: 2 },
      connect: { url: 'wss://example.com/ws' },
    },
  ])(
    'builds for $platform, importable into $ide IDE; uni.connectSocket reaches connectSocket of $host',
    async (target) => {
      const out = await build(target.platform)
      expect(JSON.parse(readFileSync(join(out, 'app.json'), 'utf8')).pages).toEqual(['pages/index/index', 'pages/ride/ride'])
      expect(existsSync(join(out, target.projectFile))).toBe(true)
      expect(existsSync(join(out, target.template))).toBe(true)
      const sdk = join(out, 'uni_modules/longlink-socket/js_sdk')
      for (const file of SDK_FILES) expect(existsSync(join(sdk, file)), file).toBe(true)
      // A mini-program: conditional compilation keeps the browser adapter out.
      expect(existsSync(join(sdk, 'adapters/web.js'))).toBe(false)
      const seen = openThroughUni(out, target.host, target.systemInfo)
      expect(seen.adapter).toBe('uni')
      expect(seen.calls).toHaveLength(1)
      expect(seen.calls[0]).toMatchObject(target.connect)
      expect(seen.registered).toEqual(['onOpen', 'onMessage', 'onClose', 'onError'])
      expect(seen.errors).toEqual([])
    },
    120_000,
  )

  it('builds for app (uni build -p app), whose uni.connectSocket is the App runtime’s native uni-webSocket', async () => {
    const out = await build('app')
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'))
    expect(manifest.name).toBe('LongLink')
    expect(manifest.plus).toBeTruthy()
    const service = readFileSync(join(out, 'app-service.js'), 'utf8')
    // The plugin is in the App's JS: its adapter over the global uni, with the options it always passes.
    expect(service).toContain('connectSocket gave no SocketTask')
    expect(service).toMatch(/typeof uni\b[^;]{0,40}typeof uni\.connectSocket\)return uni\b/)
    expect(service).toContain('multiple:!0')
    // The demo's pages (MQTT entry) are in it too.
    expect(service).toContain('MqttClient')
    // uni itself is not bundled: the App base provides it, and at this version its connectSocket is the native module.
    const runtimePackage = join(root, 'node_modules/@dcloudio/uni-app-plus')
    expect(JSON.parse(readFileSync(join(runtimePackage, 'package.json'), 'utf8')).version).toBe(PIN)
    const runtime = readFileSync(join(runtimePackage, 'dist/uni.runtime.esm.js'), 'utf8')
    expect(runtime).toMatch(/const connectSocket = defineTaskApi\(API_CONNECT_SOCKET/)
    expect(runtime).toContain("requireNativePlugin('uni-webSocket')")
  }, 120_000)
})
