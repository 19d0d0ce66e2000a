#!/usr/bin/env node
/**
 * Writes uni_modules/longlink-socket/js_sdk/vendor/mqtt.esm.js: MQTT.js's own browser ESM bundle
 * (node_modules/mqtt/dist/mqtt.esm.js) with the few reads of browser globals made safe for the WeChat runtime.
 *
 * Why a patched copy: WeChat wraps every JS file in a function whose parameters `window`, `self`, `navigator`, …
 * are bound to undefined, so no global polyfill can reach code that reads those bare names, and the unpatched
 * bundle throws at load (it destructures AbortController from `self`/`window`, and reads `navigator.language`).
 * The plugin ships the fixed copy so a host project needs neither `npm i mqtt` nor any build configuration.
 *
 * `node scripts/vendor-mqtt.mjs` regenerates it; `--check` exits 1 when the committed copy is stale.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(join(root, 'package.json'))
const mqttDir = dirname(require.resolve('mqtt/package.json'))
const version = JSON.parse(readFileSync(join(mqttDir, 'package.json'), 'utf8')).version
const target = join(root, 'uni_modules/longlink-socket/js_sdk/vendor/mqtt.esm.js')

/** The global object without naming `self`/`window`: WeChat shadows those, `globalThis`/`global` it does not. */
const GLOBAL = '(typeof globalThis<"u"?globalThis:typeof global<"u"?global:{})'

/** [what the upstream bundle says, what the copy says instead, why] — each must match exactly once. */
const PATCHES = [
  [
    '{AbortController:kc,AbortSignal:Vy}=typeof self<"u"?self:typeof window<"u"?window:void 0;',
    `{AbortController:kc,AbortSignal:Vy}=${GLOBAL};`,
    'readable-stream takes AbortController from self/window; undefined there, so the destructuring threw at load',
  ],
  [
    'LANG:navigator.language+".UTF-8"',
    'LANG:(typeof navigator<"u"&&navigator&&navigator.language||"en-US")+".UTF-8"',
    'the process polyfill read navigator.language unguarded at load',
  ],
]

export function patch(source) {
  let out = source
  for (const [from, to, why] of PATCHES) {
    const count = out.split(from).length - 1
    if (count !== 1) throw new Error(`mqtt ${version}: expected exactly one "${from.slice(0, 60)}…" (${why}), found ${count}`)
    out = out.replace(from, () => to)
  }
  const header = [
    `/* MQTT.js ${version} (MIT, https://github.com/mqttjs/MQTT.js), dist/mqtt.esm.js, patched by scripts/vendor-mqtt.mjs:`,
    ...PATCHES.map(([, , why]) => ` * - ${why}`),
    ' * Do not edit by hand: regenerate with `node scripts/vendor-mqtt.mjs`. */',
  ].join('\n')
  return `${header}\n${out}`
}

const expected = patch(readFileSync(join(mqttDir, 'dist/mqtt.esm.js'), 'utf8'))
if (process.argv.includes('--check')) {
  let current = ''
  try {
    current = readFileSync(target, 'utf8')
  } catch {}
  if (current !== expected) {
    console.error(`${target} is stale for mqtt ${version}: run node scripts/vendor-mqtt.mjs`)
    process.exit(1)
  }
  console.log(`vendored MQTT.js ${version} is up to date`)
} else {
  writeFileSync(target, expected)
  console.log(`wrote ${target} (MQTT.js ${version})`)
}
