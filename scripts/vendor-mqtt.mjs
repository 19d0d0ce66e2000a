#!/usr/bin/env node
/**
 * Builds uni_modules/longlink-socket/js_sdk/vendor/mqtt.esm.js: MQTT.js's MqttClient (from the installed `mqtt`
 * package) and what it needs, bundled for mini-programs and H5.
 *
 * Why the plugin ships its own build instead of importing `mqtt`:
 * - WeChat wraps every JS file in a function whose parameters `window`, `self`, `navigator`, … are undefined, so no
 *   global polyfill reaches code that reads those names, and MQTT.js's own browser bundle throws at load (it takes
 *   AbortController from self/window). Here every such read is replaced at build time (scripts/mqtt-bundle/).
 * - `Buffer` and `process` come in as module-scoped imports: the host sets no global and changes no config.
 * - Only the client is bundled (no transports, URL parser, Web Worker timers or `debug`), one copy of `buffer`:
 *   smaller than MQTT.js's own dist.
 *
 * `node scripts/vendor-mqtt.mjs` rebuilds it; `--check` exits 1 when the committed copy differs from a fresh build.
 */
import { build } from 'esbuild'
import { readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const shims = join(root, 'scripts/mqtt-bundle')
const require = createRequire(join(root, 'package.json'))
const version = JSON.parse(readFileSync(join(dirname(require.resolve('mqtt/package.json')), 'package.json'), 'utf8')).version
const target = join(root, 'uni_modules/longlink-socket/js_sdk/vendor/mqtt.esm.js')

export async function bundle() {
  const result = await build({
    absWorkingDir: root,
    entryPoints: [join(shims, 'entry.js')],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2018',
    minify: true,
    legalComments: 'none',
    inject: [join(shims, 'globals.js')],
    alias: {
      debug: join(shims, 'debug.js'),
      'worker-timers': join(shims, 'timers.js'),
      'abort-controller': join(shims, 'abort-controller.js'),
      // bl and readable-stream each nest their own copy of `buffer`: one is enough.
      buffer: require.resolve('buffer/'),
      // readable-stream's shim requires the `process` package, whose nextTick waits for a timer (setTimeout 0) per
      // stream callback: every packet would wait a timer tick, and timers captured at load escape fake clocks too.
      process: join(shims, 'process.js'),
    },
    logLevel: 'error',
  })
  const header = `/* MQTT.js ${version} client (MIT, https://github.com/mqttjs/MQTT.js) with its dependencies (buffer, events, process, readable-stream, mqtt-packet, bl, rfdc, lru-cache: MIT/ISC), bundled for mini-programs by scripts/vendor-mqtt.mjs. Do not edit: rebuild with \`node scripts/vendor-mqtt.mjs\`. */\n`
  return header + result.outputFiles[0].text
}

const isMain = process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)
if (isMain) {
  const fresh = await bundle()
  if (process.argv.includes('--check')) {
    let current = ''
    try {
      current = readFileSync(target, 'utf8')
    } catch {
      // No copy yet: it differs from a fresh build.
    }
    if (current !== fresh) {
      console.error(`${target} differs from a fresh build of mqtt ${version}: run node scripts/vendor-mqtt.mjs`)
      process.exit(1)
    }
    console.log(`vendored MQTT.js ${version} is up to date`)
  } else {
    writeFileSync(target, fresh)
    console.log(`wrote ${target} (MQTT.js ${version}, ${fresh.length} bytes)`)
  }
}
