/**
 * Compiles TypeScript entries the way a production build would (esbuild, minified, no `keepNames` helpers that
 * the tsx loader adds to every function) so benchmarks time the code users run, not the dev loader.
 */
import { build } from 'esbuild'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

const root = resolve(__dirname, '../..')
const outdir = join(root, 'bench', '.build')

/**
 * Bundles `entry` (relative to the repo root) to bench/.build/<name>.mjs, packages left external; returns its path.
 * With `split`, into bench/.build/<name>/ with each dynamic import in its own chunk, so what a program loads only
 * on demand (a database driver it was not configured for) stays unloaded, as when it runs from its sources.
 */
export async function compile(name: string, entry: string, split = false): Promise<string> {
  const outfile = split ? join(outdir, name, 'main.mjs') : join(outdir, `${name}.mjs`)
  await build({
    entryPoints: split ? { main: join(root, entry) } : [join(root, entry)],
    ...(split ? { outdir: join(outdir, name), splitting: true, outExtension: { '.js': '.mjs' } } : { outfile }),
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'es2020',
    minify: !process.env.BENCH_NO_MINIFY,
    packages: 'external',
    logLevel: 'error',
  })
  return outfile
}

/** Bundles each entry (relative to the repo root) to bench/.build/<name>.mjs and imports it. */
export async function compileAndImport<T>(name: string, entry: string): Promise<T> {
  return (await import(pathToFileURL(await compile(name, entry)).href)) as T
}
