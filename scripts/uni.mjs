#!/usr/bin/env node
// Runs the uni CLI with the repo root as its input directory (the host files live at the root, not in ./src),
// the same way on every OS: `node scripts/uni.mjs build -p mp-weixin`.
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(import.meta.url)
const cli = require.resolve('@dcloudio/vite-plugin-uni/bin/uni.js')
const child = spawn(process.execPath, [cli, ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, UNI_INPUT_DIR: root },
})
child.on('exit', (code, signal) => process.exit(signal ? 1 : (code ?? 1)))
