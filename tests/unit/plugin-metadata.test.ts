/**
 * The plugin's package.json says what DCloud's plugin market shows: the platform matrix in DCloud's current scheme,
 * with "√" only where the repository builds the platform and a test checks it, the license and its file, the version
 * the changelog describes.
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

const root = join(__dirname, '../..')
const plugin = join(root, 'uni_modules/longlink-socket')
const pkg = JSON.parse(readFileSync(join(plugin, 'package.json'), 'utf8'))
const scripts: Record<string, string> = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).scripts
const client = pkg.uni_modules.platforms.client

/** Every leaf of the matrix as [path, value]. */
function leaves(node: Record<string, unknown>, path: string[] = []): [string, unknown][] {
  return Object.entries(node).flatMap(([key, value]) =>
    value && typeof value === 'object'
      ? leaves(value as Record<string, unknown>, [...path, key])
      : [[[...path, key].join('.'), value] as [string, unknown]],
  )
}

/** What each "√" rests on: the build script and the test that checks the platform. */
const CHECKED: Record<string, { build: string; test: string }> = {
  'uni-app.vue.vue3': { build: 'build:mp-weixin', test: 'tests/build/readme-pages.test.ts' },
  'uni-app.web.chrome': { build: 'build:h5', test: 'tests/e2e/h5-unlock.test.ts' },
  'uni-app.mp.weixin': { build: 'build:mp-weixin', test: 'tests/integration/unlock-wechat-sandbox.test.ts' },
  'uni-app.mp.alipay': { build: 'build:mp-alipay', test: 'tests/integration/alipay-sandbox.test.ts' },
}

/** Built by the repository but not run: marked "-" (not tested), never "√". */
const BUILT_ONLY: Record<string, string> = { 'uni-app.app.vue': 'build:app', 'uni-app.mp.toutiao': 'build:mp-toutiao' }

describe('plugin package.json', () => {
  it("uses DCloud's current platform scheme only, with its three values", () => {
    expect(Object.keys(client)).toEqual(['uni-app', 'uni-app-x'])
    expect(Object.keys(client['uni-app'])).toEqual(['vue', 'web', 'app', 'mp', 'quickapp'])
    expect(Object.keys(pkg.uni_modules.platforms.cloud)).toEqual(['tcb', 'aliyun', 'alipay'])
    for (const [path, value] of leaves(pkg.uni_modules.platforms)) expect(['√', 'x', '-'], path).toContain(value)
  })

  it('marks "√" exactly where a platform is built and checked, and each claim rests on a script and a test', () => {
    const supported = leaves(client)
      .filter(([, value]) => value === '√')
      .map(([path]) => path)
    expect(supported.sort()).toEqual(Object.keys(CHECKED).sort())
    for (const { build, test } of Object.values(CHECKED)) {
      expect(scripts[build], build).toBeTruthy()
      expect(existsSync(join(root, test)), test).toBe(true)
    }
  })

  it('marks what is built but not run as "-", and names it so in the readme', () => {
    const readme = readFileSync(join(plugin, 'readme.md'), 'utf8')
    for (const [path, build] of Object.entries(BUILT_ONLY)) {
      expect(leaves(client).find(([p]) => p === path)?.[1], path).toBe('-')
      expect(scripts[build], build).toBeTruthy()
      expect(readme).toContain(`npm run ${build}`)
    }
  })

  it('has the MIT license, its file, and the notice of what the MQTT entry bundles', () => {
    expect(pkg.license).toBe('MIT')
    const license = readFileSync(join(plugin, 'LICENSE'), 'utf8')
    expect(license).toMatch(/^MIT License/)
    expect(license).toContain('js_sdk/vendor/THIRD-PARTY-NOTICES.md')
    expect(readFileSync(join(plugin, 'js_sdk/vendor/THIRD-PARTY-NOTICES.md'), 'utf8')).toContain('## mqtt ')
  })

  it('is the version the changelog describes first, with engines and keywords', () => {
    const changelog = readFileSync(join(plugin, 'changelog.md'), 'utf8')
    expect(changelog.match(/^## (\d+\.\d+\.\d+)/)?.[1]).toBe(pkg.version)
    expect(pkg.engines.HBuilderX).toMatch(/^\^\d/)
    expect(pkg.keywords.length).toBeGreaterThan(0)
  })
})
