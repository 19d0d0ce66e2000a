/**
 * The plugin readme's page examples (every ```vue block, in both languages) work when pasted: each becomes a page of a
 * fresh copy of this host (the plain uni plugin, the host's own tsconfig), which is type-checked with vue-tsc and built
 * for mp-weixin and H5. A snippet that uses an undefined name, a top-level await or a wrong option fails here.
 */
import { execFile } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildIn, createHost, type HostCopy } from '../support/uni-host'

const root = resolve(__dirname, '../..')
const run = promisify(execFile)

/** Every ```vue block of the readme, in order. */
function pageBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```vue\n([\s\S]*?)^```$/gm)].map((m) => m[1])
}

const readme = readFileSync(join(root, 'uni_modules/longlink-socket/readme.md'), 'utf8')
const pages = pageBlocks(readme)
let copy: HostCopy
let host: string

beforeAll(() => {
  copy = createHost(Object.fromEntries(pages.map((source, i) => [`pages/readme${i}/readme${i}`, source])), 'readme')
  host = copy.dir
})

afterAll(() => copy?.remove())

describe('the plugin readme’s pages, pasted into a host', () => {
  it('has page examples in both languages: the core with onLoad/onUnload, MQTT, SSE and the composables', () => {
    const half = readme.indexOf('\n## English')
    const zh = pageBlocks(readme.slice(0, half))
    const en = pageBlocks(readme.slice(half))
    for (const blocks of [zh, en]) {
      expect(blocks.some((b) => b.includes('js_sdk/index') && b.includes('onUnload'))).toBe(true)
      expect(blocks.some((b) => b.includes('js_sdk/mqtt') && b.includes('onUnload'))).toBe(true)
      expect(blocks.some((b) => b.includes('js_sdk/sse') && b.includes('onUnload'))).toBe(true)
      expect(blocks.some((b) => b.includes('js_sdk/vue-mqtt'))).toBe(true)
    }
    // Top-level await makes setup async: a blank page on H5, unsupported in mini-programs.
    for (const block of pages) expect(block).not.toMatch(/^await /m)
  })

  it('type-checks them with vue-tsc under the host tsconfig', async () => {
    const vueTsc = join(root, 'node_modules/vue-tsc/bin/vue-tsc.js')
    // Only the pasted pages and what they import: the host's own tests and server are not copied.
    const config = { extends: './tsconfig.json', include: ['pages/**/*.vue', 'shims.d.ts', 'uni_modules/**/*.ts'] }
    writeFileSync(join(host, 'tsconfig.readme.json'), JSON.stringify(config))
    await run(process.execPath, [vueTsc, '--noEmit', '-p', 'tsconfig.readme.json'], { cwd: host }).catch((error: { stdout?: string }) => {
      throw new Error(`vue-tsc failed:\n${error.stdout}`)
    })
  }, 120_000)

  it.each(['mp-weixin', 'h5'])(
    'builds them for %s',
    async (platform) => {
      const out = await buildIn(host, platform)
      if (platform === 'mp-weixin') for (let i = 0; i < pages.length; i++) expect(existsSync(join(out, `pages/readme${i}/readme${i}.js`))).toBe(true)
      else expect(existsSync(join(out, 'index.html'))).toBe(true)
    },
    180_000,
  )
})
