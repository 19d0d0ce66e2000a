/**
 * Builds the admin page (server/admin/page) into dist/build/admin: `npm run build:admin`.
 * The backend serves `index.html` at `/admin` and the files of `assets/` under `/admin/assets/`, hence `base: '/admin/'`.
 * Deliberately a config of its own: no uni plugin, nothing of the app's vite.config.ts; everything (the LongLink core,
 * uPlot and its CSS) is bundled, so the page works offline, with no CDN.
 */
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'

const pageDir = fileURLToPath(new URL('.', import.meta.url))
const outDir = fileURLToPath(new URL('../../../dist/build/admin', import.meta.url))

export default defineConfig({
  root: pageDir,
  base: '/admin/',
  publicDir: false,
  // An empty PostCSS config stops Vite from looking for one up the tree (the app's tooling is not the page's).
  css: { postcss: {} },
  build: {
    outDir,
    emptyOutDir: true,
    assetsDir: 'assets',
    target: 'es2020',
    sourcemap: false,
    reportCompressedSize: true,
  },
})
