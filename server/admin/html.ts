/**
 * The layout and headers shared by every HTML answer of the admin: the built page, the login form and the
 * "not built" notice.
 */
import type { ServerResponse } from 'node:http'

/** Headers of every HTML answer: the page loads only its own files and can be framed by nobody. */
const HTML_HEADERS: Record<string, string> = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; " +
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  // Not `no-referrer`: with it a browser sends `Origin: null` on the form's POST, and the CSRF check could not tell.
  'referrer-policy': 'same-origin',
}

/** Inline style of the small server-rendered pages; the built page brings its own stylesheet. */
const PAGE_STYLE = `
  :root { color-scheme: light; }
  body { margin: 0; min-height: 100vh; display: grid; place-items: center; background: #f4f6f9; color: #1b2430;
    font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "PingFang SC", "Microsoft YaHei", "WenQuanYi Micro Hei", sans-serif; }
  main { width: min(22rem, calc(100vw - 2rem)); background: #fff; border: 1px solid #e3e8ef; border-radius: 12px; padding: 1.75rem;
    box-shadow: 0 1px 2px rgba(16, 24, 40, .06); }
  h1 { font-size: 1.2rem; margin: 0 0 .25rem; }
  p { margin: .25rem 0 1rem; color: #5b6675; }
  label { display: block; font-size: .85rem; color: #5b6675; margin-bottom: .35rem; }
  input { box-sizing: border-box; width: 100%; font: inherit; padding: .6rem .75rem; border: 1px solid #cfd6df; border-radius: 8px; }
  input:focus { outline: 2px solid #2f6fed; outline-offset: 1px; border-color: #2f6fed; }
  button { margin-top: 1rem; width: 100%; font: inherit; font-weight: 600; padding: .6rem; border: 0; border-radius: 8px;
    background: #2f6fed; color: #fff; cursor: pointer; }
  .error { color: #b42318; background: #fef3f2; border: 1px solid #fecdca; border-radius: 8px; padding: .5rem .75rem; }
  code { background: #eef1f5; padding: .1rem .35rem; border-radius: 4px; }`

/** Escapes text for HTML content and attribute values (as numeric character references). */
export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

/** A complete small page: `title` is escaped here, `body` is HTML the caller has already escaped. */
export function htmlDocument(title: string, body: string): string {
  return `<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>${escapeHtml(title)}</title>
<style>${PAGE_STYLE}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`
}

/** Sends `html` with the shared HTML headers; `headers` add to them or override them. */
export function sendHtml(res: ServerResponse, status: number, html: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...HTML_HEADERS, 'content-length': String(Buffer.byteLength(html)), ...headers })
  res.end(html)
}
