/**
 * Admin counters and page.
 *
 * - {@link createMetrics}: messages in / out over a sliding 60 s window (per-second buckets).
 * - {@link createAdmin}: `GET /admin` (HTML), `GET /admin/stats` (JSON), `GET /admin/longlink.js` (the plugin's core
 *   entry bundled with esbuild as an IIFE, global `LongLink`), and the WebSocket `/admin/live` that pushes the stats
 *   as JSON every second and on change. It answers the plugin's heartbeat (`ping` → `pong`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import path from 'node:path'
import { build } from 'esbuild'
import { WebSocketServer, type WebSocket } from 'ws'
import { sendJson } from './http'
import type { Logger } from './log'

export interface Metrics {
  countIn(n?: number): void
  countOut(n?: number): void
  /** Messages counted in the last 60 s. */
  inPerMinute(): number
  outPerMinute(): number
  totals(): { messagesIn: number; messagesOut: number }
  onChange(listener: () => void): void
}

export function createMetrics(now: () => number = Date.now): Metrics {
  const WINDOW = 60
  const make = () => ({ buckets: new Array<number>(WINDOW).fill(0), stamps: new Array<number>(WINDOW).fill(-1), total: 0 })
  const series = { in: make(), out: make() }
  const listeners: (() => void)[] = []
  const add = (s: ReturnType<typeof make>, n: number): void => {
    const sec = Math.floor(now() / 1000)
    const i = sec % WINDOW
    if (s.stamps[i] !== sec) {
      s.stamps[i] = sec
      s.buckets[i] = 0
    }
    s.buckets[i] += n
    s.total += n
    listeners.forEach((l) => l())
  }
  const sum = (s: ReturnType<typeof make>): number => {
    const sec = Math.floor(now() / 1000)
    let total = 0
    for (let i = 0; i < WINDOW; i++) if (s.stamps[i] > sec - WINDOW && s.stamps[i] <= sec) total += s.buckets[i]
    return total
  }
  return {
    countIn: (n = 1) => add(series.in, n),
    countOut: (n = 1) => add(series.out, n),
    inPerMinute: () => sum(series.in),
    outPerMinute: () => sum(series.out),
    totals: () => ({ messagesIn: series.in.total, messagesOut: series.out.total }),
    onChange: (l) => void listeners.push(l),
  }
}

export interface AdminStats {
  /** MQTT clients connected to the embedded broker (null with an external broker: unknown). */
  online: number | null
  /** PUBLISH packets accepted by the broker (from riders and the backend) in the last 60 s. */
  messagesInPerMinute: number
  /** PUBLISH packets delivered to subscribers in the last 60 s (null with an external broker). */
  messagesOutPerMinute: number | null
  /** Rides unlocking or under way. */
  activeRides: number
  totals: { messagesIn: number; messagesOut: number | null }
  broker: 'embedded' | 'external'
  uptimeMs: number
  time: number
}

export interface Admin {
  /** Bundles the plugin for the page (once per start). */
  prepare(): Promise<void>
  handle(req: IncomingMessage, res: ServerResponse, url: URL): boolean
  /** Takes a WebSocket upgrade for `/admin/live`. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void
  /** Pushes the stats to live viewers soon (throttled). */
  changed(): void
  liveClients(): number
  close(): void
}

export async function bundlePlugin(rootDir: string): Promise<string> {
  const result = await build({
    entryPoints: [path.join(rootDir, 'uni_modules', 'longlink-socket', 'js_sdk', 'index.ts')],
    bundle: true,
    format: 'iife',
    globalName: 'LongLink',
    platform: 'browser',
    target: 'es2018',
    write: false,
    minify: true,
    logLevel: 'silent',
  })
  return result.outputFiles[0].text
}

export function createAdmin(opts: { stats: () => AdminStats; logger: Logger; rootDir: string }): Admin {
  const { logger } = opts
  let script = ''
  let scriptError: string | undefined
  const wss = new WebSocketServer({ noServer: true })
  let pending: NodeJS.Timeout | undefined
  let lastSent = 0

  const push = (): void => {
    pending = undefined
    if (wss.clients.size === 0) return
    lastSent = Date.now()
    const text = JSON.stringify(opts.stats())
    for (const ws of wss.clients) if (ws.readyState === ws.OPEN) ws.send(text)
  }
  const ticker = setInterval(push, 1000)
  ticker.unref()

  wss.on('connection', (ws: WebSocket) => {
    ws.on('error', () => {})
    ws.on('message', (data, isBinary) => {
      if (!isBinary && data.toString() === 'ping') ws.send('pong')
    })
    ws.send(JSON.stringify(opts.stats()))
  })

  return {
    async prepare() {
      try {
        script = await bundlePlugin(opts.rootDir)
      } catch (err) {
        scriptError = err instanceof Error ? err.message : String(err)
        logger.error('admin.bundle.failed', { error: err })
      }
    },
    handle(_req, res, url) {
      const p = url.pathname
      if (p === '/admin' || p === '/admin/') {
        const body = ADMIN_HTML
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' })
        res.end(body)
        return true
      }
      if (p === '/admin/stats') {
        sendJson(res, 200, opts.stats())
        return true
      }
      if (p === '/admin/longlink.js') {
        const body = script || `console.error(${JSON.stringify('LongLink bundle unavailable: ' + (scriptError ?? 'not built'))})`
        res.writeHead(script ? 200 : 500, { 'content-type': 'text/javascript; charset=utf-8', 'content-length': Buffer.byteLength(body) })
        res.end(body)
        return true
      }
      return false
    },
    upgrade(req, socket, head) {
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req))
    },
    changed() {
      if (pending || wss.clients.size === 0) return
      pending = setTimeout(push, Math.max(0, 100 - (Date.now() - lastSent)))
    },
    liveClients: () => wss.clients.size,
    close() {
      clearInterval(ticker)
      if (pending) clearTimeout(pending)
      for (const ws of wss.clients) ws.terminate()
      wss.close()
    },
  }
}

const ADMIN_HTML = `<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>LongLink admin</title>
<style>
  body { font: 15px/1.5 system-ui, sans-serif; margin: 2rem; color: #222; }
  h1 { font-size: 1.3rem; }
  .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(11rem, 1fr)); gap: 1rem; max-width: 52rem; }
  .card { border: 1px solid #ddd; border-radius: 8px; padding: 1rem; }
  .card b { display: block; font-size: 2rem; font-variant-numeric: tabular-nums; }
  #state { font-size: .9rem; color: #666; }
</style>
</head>
<body>
<h1>LongLink 管理 · admin</h1>
<p id="state">connecting…</p>
<div class="grid">
  <div class="card">在线 MQTT 连接 · online<b id="online">–</b></div>
  <div class="card">入站消息/分钟 · in/min<b id="in">–</b></div>
  <div class="card">出站消息/分钟 · out/min<b id="out">–</b></div>
  <div class="card">进行中的骑行 · active rides<b id="rides">–</b></div>
</div>
<script src="/admin/longlink.js"></script>
<script>
  (function () {
    var show = function (id, v) { document.getElementById(id).textContent = v === null || v === undefined ? 'n/a' : String(v) }
    var scheme = location.protocol === 'https:' ? 'wss://' : 'ws://'
    var conn = LongLink.createConnection({ url: scheme + location.host + '/admin/live', platform: 'web', reconnect: { min: 500, max: 5000 } })
    conn.on('state', function (e) { document.getElementById('state').textContent = e.to + (e.reason ? ' (' + e.reason + ')' : '') })
    conn.on('message', function (data) {
      if (typeof data !== 'string') return
      var s = JSON.parse(data)
      show('online', s.online); show('in', s.messagesInPerMinute); show('out', s.messagesOutPerMinute); show('rides', s.activeRides)
    })
    conn.open().catch(function (e) { document.getElementById('state').textContent = 'stopped: ' + e.code })
  })()
</script>
</body>
</html>
`
