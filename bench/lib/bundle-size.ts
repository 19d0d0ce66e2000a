/**
 * Measures what an import adds to the mp-weixin bundle of a real uni-app host: the host is copied twice into
 * a temp folder, once with a page that does not use the plugin and once with a page that does, both are built
 * with the uni CLI, and the JS of the two outputs is compared (minified bytes, and gzip of all JS together).
 */
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { createHost, uniBuild } from '../../tests/support/uni-host'

/** JS size of one build output. */
export interface JsSize {
  /** Bytes of every .js file, as built (minified). */
  minified: number
  /** gzip -9 of all .js files concatenated. */
  gzip: number
  files: number
}

function jsFiles(dir: string): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) out.push(...jsFiles(path))
    else if (name.endsWith('.js')) out.push(path)
  }
  return out
}

/** Sizes the JS of a finished mp-weixin output folder. */
export function measureJs(dir: string): JsSize {
  const files = jsFiles(dir)
  const all = Buffer.concat(files.map((f) => readFileSync(f)))
  return { minified: all.length, gzip: gzipSync(all, { level: 9 }).length, files: files.length }
}

/**
 * Builds the host for mp-weixin with `pageSource` as its only page; returns the JS size of the output. `files`
 * replaces files of the host copy (paths relative to the project root) before the build, e.g. another build of a
 * vendored module to compare against.
 */
export function buildWithPage(pageSource: string, label: string, files: Record<string, string> = {}): JsSize {
  const host = createHost({ 'pages/index/index': pageSource }, `size-${label}`, files)
  try {
    const { args, options } = uniBuild(host.dir, 'mp-weixin')
    execFileSync(process.execPath, args, { ...options, stdio: 'pipe' })
    return measureJs(join(host.dir, 'dist/build/mp-weixin'))
  } finally {
    host.remove()
  }
}

/** A page whose script is `script` (TypeScript), with a trivial template. */
export function page(script: string): string {
  return `<template><view>{{ label }}</view></template>\n<script setup lang="ts">\nimport { ref } from 'vue'\n${script}\n</script>\n`
}

/** What `script` adds over a page that only sets a label. */
export function bundleDelta(script: string, label: string): { base: JsSize; with: JsSize; addedMinified: number; addedGzip: number } {
  const base = buildWithPage(page(`const label = ref('base')`), 'base')
  const withIt = buildWithPage(page(script), label)
  return { base, with: withIt, addedMinified: withIt.minified - base.minified, addedGzip: withIt.gzip - base.gzip }
}
