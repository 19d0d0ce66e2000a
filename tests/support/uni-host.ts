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

/** A host copy in a temp folder, and how to remove it. */
export interface HostCopy {
  dir: string
  remove(): void
}

/** A built host: its folder, the build output for the platform, and how to remove both. */
export interface BuiltHost extends HostCopy {
  /** `dist/build/<platform>` inside {@link BuiltHost.dir}. */
  out: string
}

/**
 * Copies the host into a temp folder with `pages` as its only pages (page path such as `pages/index/index` → its .vue
 * source; the first is the home page). `files` then replaces files of the copy (paths relative to the project root).
 */
export function createHost(pages: Record<string, string>, label = 'host', files: Record<string, string> = {}): HostCopy {
  const dir = mkdtempSync(join(tmpdir(), `longlink-${label}-`))
  const remove = () => rmSync(dir, { recursive: true, force: true })
  try {
    for (const name of HOST_FILES) cpSync(join(root, name), join(dir, name), { recursive: true })
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir')
    for (const [path, source] of Object.entries(pages)) {
      mkdirSync(join(dir, dirname(path)), { recursive: true })
      writeFileSync(join(dir, `${path}.vue`), source)
    }
    writeFileSync(join(dir, 'pages.json'), JSON.stringify({ pages: Object.keys(pages).map((path) => ({ path, style: {} })) }))
    for (const [path, content] of Object.entries(files)) writeFileSync(join(dir, path), content)
    return { dir, remove }
  } catch (error) {
    remove()
    throw error
  }
}

/** The uni CLI and its arguments for a production build of the host in `dir` for `platform`. */
export function uniBuild(dir: string, platform: string): { args: string[]; options: { cwd: string; env: NodeJS.ProcessEnv } } {
  const cli = join(root, 'node_modules/@dcloudio/vite-plugin-uni/bin/uni.js')
  return {
    args: [cli, 'build', ...(platform === 'h5' ? [] : ['-p', platform])],
    options: { cwd: dir, env: { ...process.env, UNI_INPUT_DIR: dir, NODE_ENV: 'production' } },
  }
}

/** Builds the host copy in `dir` for `platform` (production); returns its `dist/build/<platform>`. */
export async function buildIn(dir: string, platform: string): Promise<string> {
  const { args, options } = uniBuild(dir, platform)
  await promisify(execFile)(process.execPath, args, options).catch((error: { stdout?: string; stderr?: string }) => {
    throw new Error(`uni build -p ${platform} failed:\n${error.stdout ?? ''}\n${error.stderr ?? ''}`)
  })
  return join(dir, 'dist/build', platform)
}

/**
 * Builds a host whose pages are `pages` (see {@link createHost}) for `platform` (`h5`, `mp-weixin`, `mp-alipay`,
 * `mp-toutiao`, `app`…), as a production build.
 */
export async function buildHost(platform: string, pages: Record<string, string>): Promise<BuiltHost> {
  const host = createHost(pages, `host-${platform}`)
  try {
    return { ...host, out: await buildIn(host.dir, platform) }
  } catch (error) {
    host.remove()
    throw error
  }
}
