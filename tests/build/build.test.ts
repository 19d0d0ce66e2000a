/**
 * The host project builds for both targets with the plain uni plugin, and the plugin lands in the output the way
 * a user would get it: the mini-program bundle carries the core without the browser WebSocket adapter. (The other
 * uni-app targets are in platforms.test.ts.)
 */
import { execFile } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const root = resolve(__dirname, '../..')
const run = promisify(execFile)

async function build(...args: string[]): Promise<void> {
  await run(process.execPath, [join(root, 'scripts/uni.mjs'), 'build', ...args], { cwd: root, env: { ...process.env, NODE_ENV: 'production' } })
}

describe('host project builds', () => {
  it('builds for mp-weixin, importable into WeChat DevTools', async () => {
    await build('-p', 'mp-weixin')
    const out = join(root, 'dist/build/mp-weixin')
    const app = JSON.parse(readFileSync(join(out, 'app.json'), 'utf8'))
    expect(app.pages).toContain('pages/index/index')
    expect(JSON.parse(readFileSync(join(out, 'project.config.json'), 'utf8')).appid).toBeTruthy()
    const sdk = join(out, 'uni_modules/longlink-socket/js_sdk')
    // The demo pages use the MQTT entry and its composables, which bring the shared core pieces along.
    for (const file of ['mqtt/client.js', 'vue-mqtt.js', 'core/backoff.js', 'adapters/socket-task.js'])
      expect(existsSync(join(sdk, file)), file).toBe(true)
    expect(app.pages).toContain('pages/ride/ride')
    expect(readFileSync(join(sdk, 'errors.js'), 'utf8')).toContain('LongLinkError')
    // Conditional compilation keeps the browser adapter out of the mini-program bundle.
    expect(existsSync(join(sdk, 'adapters/web.js'))).toBe(false)
    expect(readFileSync(join(sdk, 'adapters/resolve.js'), 'utf8')).not.toContain('createWebAdapter')
    // The unknown-key checks are for development builds: a production bundle carries none of them.
    for (const file of ['core/options.js', 'mqtt/options.js'])
      expect(readFileSync(join(sdk, file), 'utf8'), file).not.toMatch(/did you mean|maxRetries",/)
    // So are the fixes the diagnostics spell out; the codes they carry are in every build.
    const errors = readFileSync(join(sdk, 'errors.js'), 'utf8')
    expect(errors).toMatch(/DOMAIN_NOT_ALLOWED[\s\S]*TLS_FAILED[\s\S]*INSECURE_URL/)
    expect(errors).not.toMatch(/admin console|self-signed|use wss/)
  }, 120_000)

  it('builds for h5', async () => {
    await build()
    const out = join(root, 'dist/build/h5')
    expect(readFileSync(join(out, 'index.html'), 'utf8')).toContain('<div id="app">')
    // The plugin is in the page bundle, over uni-h5, whose connectSocket is the browser's WebSocket.
    const js = readdirSync(join(out, 'assets'))
      .filter((name) => name.endsWith('.js'))
      .map((name) => readFileSync(join(out, 'assets', name), 'utf8'))
      .join('\n')
    expect(js).toContain('connectSocket gave no SocketTask')
    expect(js).toMatch(/new WebSocket\(/)
  }, 120_000)
})
