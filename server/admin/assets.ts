/**
 * The built page: `GET /admin` (its `index.html`, or the login form without a session, or a 503 telling to build it)
 * and `GET /admin/assets/*` (its files, for a signed-in viewer only).
 */
import fs from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import path from 'node:path'
import { ApiError } from '../http/respond'
import { htmlDocument, sendHtml } from './html'
import { loginPage } from './login-page'
import type { Refuse } from './refusal'
import type { Sessions } from './session'

/** Path prefix of the page's built files. */
export const ASSETS_PREFIX = '/admin/assets/'

const ASSET_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.txt': 'text/plain; charset=utf-8',
}

/** Served with a 503 when `index.html` is missing: the one step that fixes it. */
const NOT_BUILT_PAGE = htmlDocument(
  'LongLink 管理 · Admin not built',
  `<h1>管理页面尚未构建 · The admin page is not built</h1>
<p>请运行 · Run <code>npm run build:admin</code>，然后刷新 · then reload.</p>`,
)

export interface PageFilesDeps {
  /** Folder of the built page (`dist/build/admin`). */
  pageDir: string
  sessions: Sessions
  refuse: Refuse
}

export interface PageFiles {
  /** `GET /admin`: the built page with a session, else the login form. */
  servePage(req: IncomingMessage, res: ServerResponse): Promise<void>
  /** `GET /admin/assets/*`: a file under `<pageDir>/assets`, never outside it. Throws ApiError for 4xx. */
  serveAsset(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void>
}

/** Creates the handlers of the built page and its files. */
export function createPageFiles(deps: PageFilesDeps): PageFiles {
  const { sessions, refuse } = deps

  const servePage = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (!sessions.fromRequest(req)) return sendHtml(res, 200, loginPage())
    let html: string
    try {
      html = await fs.promises.readFile(path.join(deps.pageDir, 'index.html'), 'utf8')
    } catch {
      return sendHtml(res, 503, NOT_BUILT_PAGE)
    }
    sendHtml(res, 200, html)
  }

  const serveAsset = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    if (!sessions.fromRequest(req)) {
      refuse(undefined, {})
      throw new ApiError(401, 'UNAUTHORIZED', 'sign in at /admin first', { reason: 'missing' })
    }
    let rel: string
    try {
      rel = decodeURIComponent(url.pathname.slice(ASSETS_PREFIX.length))
    } catch {
      throw new ApiError(400, 'BAD_INPUT', 'bad path')
    }
    // Backslashes and NULs have no business in an asset name; `..` is caught by the containment check below.
    if (rel === '' || rel.includes('\0') || rel.includes('\\')) throw new ApiError(404, 'NOT_FOUND', 'no such file')
    const root = path.resolve(deps.pageDir, 'assets')
    const file = path.resolve(root, rel)
    if (!file.startsWith(root + path.sep)) throw new ApiError(404, 'NOT_FOUND', 'no such file')
    const stat = await fs.promises.stat(file).catch(() => undefined)
    if (!stat?.isFile()) throw new ApiError(404, 'NOT_FOUND', 'no such file')
    res.writeHead(200, {
      'content-type': ASSET_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
      'content-length': String(stat.size),
      // Vite puts a content hash in every asset name: a file's content never changes under the same URL.
      'cache-control': 'private, max-age=31536000, immutable',
      'x-content-type-options': 'nosniff',
    })
    if (req.method === 'HEAD') return void res.end()
    await new Promise<void>((resolve) => {
      const stream = fs.createReadStream(file)
      stream.on('error', () => {
        res.destroy()
        resolve()
      })
      res.on('close', () => {
        stream.destroy()
        resolve()
      })
      stream.pipe(res)
    })
  }

  return { servePage, serveAsset }
}
