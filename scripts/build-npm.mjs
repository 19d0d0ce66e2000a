#!/usr/bin/env node
/**
 * Builds the npm package of the plugin into dist/npm/longlink-socket/ (`npm run build:npm`), for hosts that are not
 * uni-app projects:
 * - `esm/`: every source file of js_sdk/ as an ES module (imports with `.js`), for bundlers and Node;
 * - `types/`: the TypeScript declarations;
 * - `miniprogram_dist/`: every file as CommonJS for a native WeChat mini-program. DevTools' "build npm" copies this
 *   folder (the `miniprogram` field) into `miniprogram_npm/longlink-socket/`, where `require('longlink-socket')`,
 *   `require('longlink-socket/mqtt')` and `require('longlink-socket/sse')` find index.js, mqtt.js and sse.js. Files
 *   are not bundled, so the entries share one copy of the core (one `LongLinkError` for `instanceof`), uni's
 *   `#ifndef MP` blocks are dropped as uni's own mini-program build drops them, and `process.env.NODE_ENV` (the
 *   development-build checks) is "development": WeChat has no `process`.
 */
import { build } from 'esbuild'
import { execFileSync } from 'node:child_process'
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const plugin = join(root, 'uni_modules/longlink-socket')
const sdk = join(plugin, 'js_sdk')
const out = join(root, 'dist/npm/longlink-socket')
const require = createRequire(join(root, 'package.json'))

/** Every file under `dir`, relative to it. */
function files(dir, base = dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? files(path, base) : [relative(base, path)]
  })
}

/** uni's conditional compilation for a mini-program: `#ifndef MP` … `#endif` blocks go, `#ifdef MP` ones stay. */
function forMiniProgram(source) {
  return source.replace(/^[ \t]*\/\/ #ifndef MP\n[\s\S]*?^[ \t]*\/\/ #endif\n/gm, '')
}

/** Relative import specifiers get their `.js`, as ES modules in Node and WeChat's `require` want it. */
function withExtensions(code) {
  return code.replace(
    /(from\s+|import\s*\(\s*|require\(\s*)(['"])(\.{1,2}\/[^'"]+?)(\.js)?\2/g,
    (_, head, quote, path) => `${head}${quote}${path}.js${quote}`,
  )
}

async function transpile(format, target, { miniProgram = false } = {}) {
  const sources = files(sdk).filter((f) => (f.endsWith('.ts') && !f.endsWith('.d.ts')) || f.endsWith('.esm.js'))
  for (const file of sources) {
    // The Vue composables need Vue: they are in the ES build, not in the mini-program one.
    if (miniProgram && /^vue(-\w+)?\.ts$/.test(file)) continue
    let source = readFileSync(join(sdk, file), 'utf8')
    if (miniProgram) source = forMiniProgram(source)
    const result = await build({
      stdin: { contents: source, loader: file.endsWith('.ts') ? 'ts' : 'js', sourcefile: file, resolveDir: dirname(join(sdk, file)) },
      bundle: false,
      write: false,
      format,
      target: 'es2018',
      // A native mini-program has no build step to turn this into `false` for production: its unknown-key checks stay
      // on. The ES modules keep the expression for the host's bundler, as libraries do.
      define: miniProgram ? { 'process.env.NODE_ENV': '"development"' } : {},
      // 'neutral': esbuild defines nothing of its own (for 'browser' it would fix process.env.NODE_ENV).
      platform: 'neutral',
      legalComments: 'inline',
      logLevel: 'error',
    })
    const dest = join(target, file.replace(/\.ts$/, '.js'))
    mkdirSync(dirname(dest), { recursive: true })
    writeFileSync(dest, withExtensions(result.outputFiles[0].text))
  }
}

async function main() {
  const meta = JSON.parse(readFileSync(join(plugin, 'package.json'), 'utf8'))
  rmSync(out, { recursive: true, force: true })
  mkdirSync(out, { recursive: true })
  await transpile('esm', join(out, 'esm'))
  await transpile('cjs', join(out, 'miniprogram_dist'), { miniProgram: true })
  // Declarations, from the same sources and settings the plugin is type-checked with.
  execFileSync(
    process.execPath,
    [
      require.resolve('typescript/bin/tsc'),
      '-p',
      join(root, 'tsconfig.plugin.json'),
      '--noEmit',
      'false',
      '--declaration',
      '--emitDeclarationOnly',
      '--outDir',
      join(out, 'types'),
    ],
    { cwd: root, stdio: 'inherit' },
  )
  cpSync(join(sdk, 'vendor/mqtt.esm.d.ts'), join(out, 'types/vendor/mqtt.esm.d.ts'))
  const types = (entry) => `./types/${entry}.d.ts`
  const entries = ['index', 'mqtt', 'sse', 'vue', 'vue-mqtt', 'vue-sse']
  const exports = Object.fromEntries(
    entries.map((entry) => [entry === 'index' ? '.' : `./${entry}`, { types: types(entry), import: `./esm/${entry}.js` }]),
  )
  const pkg = {
    name: 'longlink-socket',
    version: meta.version,
    description: 'LongLink: one long connection for uni-app, WeChat mini-programs and H5: heartbeat, reconnect, MQTT and SSE.',
    license: 'MIT',
    type: 'module',
    main: './esm/index.js',
    types: types('index'),
    exports,
    miniprogram: 'miniprogram_dist',
    peerDependencies: { vue: '>=3.2' },
    peerDependenciesMeta: { vue: { optional: true } },
    keywords: ['websocket', 'mqtt', 'sse', 'wechat', 'miniprogram', 'uni-app'],
    sideEffects: false,
  }
  writeFileSync(join(out, 'package.json'), JSON.stringify(pkg, null, 2) + '\n')
  // miniprogram_dist is CommonJS inside a "type: module" package: its own package.json says so (Node and tools read it).
  writeFileSync(join(out, 'miniprogram_dist/package.json'), JSON.stringify({ type: 'commonjs' }, null, 2) + '\n')
  for (const name of ['readme.md', 'changelog.md', 'LICENSE']) cpSync(join(plugin, name), join(out, name))
  cpSync(join(sdk, 'vendor/THIRD-PARTY-NOTICES.md'), join(out, 'THIRD-PARTY-NOTICES.md'))
  console.log(`wrote ${relative(root, out)} (longlink-socket ${meta.version})`)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
