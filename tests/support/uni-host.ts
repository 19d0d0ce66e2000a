/**
 * A small uni-app host for one test: a fresh copy of this project's host files (App.vue, main.ts, manifest, vite and
 * TypeScript config, the plugin) in a temp folder with only the pages a test gives, built with the uni CLI for one
 * platform. Faster than building the demo, and independent of whatever other tests left in dist/.
 */
import { execFile } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { promisify } from 'node:util'

const root = resolve(__dirname, '../..')
const HOST_FILES = [
  'App.vue',
  'main.ts',
  'index.html',
  'manifest.json',
  'vite.config.ts',
  'tsconfig.json',
  'shims.d.ts',
  'package.json',
  'uni_modules',
]

/** A built host: its folder, the build output for the platform, and how to remove both. */
export interface BuiltHost {
  dir: string
  /** `dist/build/<platform>` inside {@link BuiltHost.dir}. */
  out: string
  remove(): void
}

/**
 * Builds a host whose pages are `pages` (page path such as `pages/index/index` → its .vue source; the first is the
 * home page) for `platform` (`h5`, `mp-weixin`, `mp-alipay`, `mp-toutiao`, `app`…), as a production build.
 */
export async function buildHost(platform: string, pages: Record<string, string>): Promise<BuiltHost> {
  const dir = mkdtempSync(join(tmpdir(), `longlink-host-${platform}-`))
  const remove = () => rmSync(dir, { recursive: true, force: true })
  try {
    for (const name of HOST_FILES) cpSync(join(root, name), join(dir, name), { recursive: true })
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir')
    for (const [path, source] of Object.entries(pages)) {
      mkdirSync(join(dir, dirname(path)), { recursive: true })
      writeFileSync(join(dir, `${path}.vue`), source)
    }
    writeFileSync(join(dir, 'pages.json'), JSON.stringify({ pages: Object.keys(pages).map((path) => ({ path, style: {} })) }))
    const cli = join(root, 'node_modules/@dcloudio/vite-plugin-uni/bin/uni.js')
    await promisify(execFile)(process.execPath, [cli, 'build', ...(platform === 'h5' ? [] : ['-p', platform])], {
      cwd: dir,
      env: { ...process.env, UNI_INPUT_DIR: dir, NODE_ENV: 'production' },
    }).catch((error: { stdout?: string; stderr?: string }) => {
      throw new Error(`uni build -p ${platform} failed:\n${error.stdout ?? ''}\n${error.stderr ?? ''}`)
    })
    return { dir, out: join(dir, 'dist/build', platform), remove }
  } catch (error) {
    remove()
    throw error
  }
}
