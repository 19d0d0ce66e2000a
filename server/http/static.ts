/** The H5 build served at `/` (GET/HEAD only; no path leaves the folder). */
import fs from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import type { Target } from './request'
import { ApiError } from './respond'

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.txt': 'text/plain; charset=utf-8',
}

export function contentType(file: string): string {
  return CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream'
}

const NO_BUILD_HTML = `<!doctype html><meta charset="utf-8"><title>LongLink backend</title>
<p>H5 build not found (dist/build/h5). Run <code>npm run build:h5</code> or <code>npm run demo</code>.</p>
<p><a href="/admin">Admin / 管理</a></p>`

export async function serveStatic(root: string, req: IncomingMessage, res: ServerResponse, target: Target): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD')
    throw new ApiError(405, 'METHOD_NOT_ALLOWED', 'static files are GET only', undefined, { allow: 'GET, HEAD' })
  let rel: string
  try {
    rel = decodeURIComponent(target.pathname)
  } catch {
    throw new ApiError(400, 'BAD_INPUT', 'bad path')
  }
  if (rel.includes('\0')) throw new ApiError(400, 'BAD_INPUT', 'bad path')
  const rootResolved = path.resolve(root)
  let file = path.resolve(rootResolved, '.' + (rel.endsWith('/') ? rel + 'index.html' : rel))
  if (file !== rootResolved && !file.startsWith(rootResolved + path.sep)) throw new ApiError(404, 'NOT_FOUND', 'not found')
  let stat = await fs.promises.stat(file).catch(() => undefined)
  if (stat?.isDirectory()) {
    file = path.join(file, 'index.html')
    stat = await fs.promises.stat(file).catch(() => undefined)
  }
  if (!stat || !stat.isFile()) {
    if (target.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
      res.end(NO_BUILD_HTML)
      return
    }
    throw new ApiError(404, 'NOT_FOUND', 'no such file')
  }
  res.writeHead(200, {
    'content-type': contentType(file),
    'content-length': stat.size,
    'cache-control': path.basename(file) === 'index.html' ? 'no-cache' : 'public, max-age=3600',
    'x-content-type-options': 'nosniff',
  })
  if (req.method === 'HEAD') return void res.end()
  // pipeline closes the file when the client goes away mid-download (a bare pipe would keep its descriptor open).
  await pipeline(fs.createReadStream(file), res).catch(() => res.destroy())
}
