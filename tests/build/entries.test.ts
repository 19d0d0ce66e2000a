/**
 * The entries stay apart: importing the core never loads MQTT.js or the event source, SSE never loads MQTT.js, and the vendored MQTT.js is exactly what
 * scripts/vendor-mqtt.mjs builds from the installed `mqtt` package.
 */
import { execFileSync } from 'node:child_process'
import { resolve } from 'node:path'
import { build } from 'esbuild'
import { describe, expect, it } from 'vitest'

const root = resolve(__dirname, '../..')

async function bundle(entry: string): Promise<string> {
  const result = await build({ entryPoints: [resolve(root, entry)], bundle: true, write: false, format: 'esm', minify: true, logLevel: 'silent' })
  return result.outputFiles[0].text
}

describe('entries', () => {
  it('the core entry carries no MQTT.js', async () => {
    const core = await bundle('uni_modules/longlink-socket/js_sdk/index.ts')
    expect(core).not.toMatch(/MqttClient|mqtt-packet|MQTTJS_VERSION|pingreq/)
    const mqtt = await bundle('uni_modules/longlink-socket/js_sdk/mqtt.ts')
    expect(mqtt).toMatch(/pingreq/)
  })

  it('the core entry carries no event source (only the stream reader its `sse` transport needs), and the SSE entry no MQTT.js', async () => {
    const core = await bundle('uni_modules/longlink-socket/js_sdk/index.ts')
    // The `sse` transport reads its session's stream with the SSE entry's parser and chunked requests; the event source
    // itself (Last-Event-ID, idle timeouts, its iterator) stays in js_sdk/sse.
    expect(core).not.toMatch(/last-event-id|idle-timeout|createEventSource/i)
    const sse = await bundle('uni_modules/longlink-socket/js_sdk/sse.ts')
    expect(sse).toMatch(/text\/event-stream/)
    expect(sse).not.toMatch(/MqttClient|mqtt-packet|MQTTJS_VERSION|pingreq/)
  })

  it('the vendored MQTT.js matches a fresh build of the installed package', () => {
    expect(() => execFileSync(process.execPath, ['scripts/vendor-mqtt.mjs', '--check'], { cwd: root, stdio: 'pipe' })).not.toThrow()
  })
})
