/**
 * Wires the backend together on one HTTP server:
 * `/api/*` bike service, `/mqtt` embedded broker (WebSocket), `/admin*` admin page/stats/live, `/` the H5 build.
 */
import fs from 'node:fs'
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import type net from 'node:net'
import path from 'node:path'
import { createAdmin, createMetrics, type Admin, type AdminStats } from './admin'
import { createBikeService, type BikeService, type Bus, type Hold } from './bikes'
import { connectExternalBus, createEmbeddedBroker, type EmbeddedBroker } from './broker'
import { loadConfig, type BackendConfig } from './config'
import { ApiError, sendError, sendJson } from './http'
import { createLogger, type Logger } from './log'
import { createTokenService, type TokenService } from './tokens'

export interface BackendOptions {
  /** Overrides on top of the environment (e.g. `{ port: 0, unlockDelayMs: 50 }`). */
  config?: Partial<BackendConfig>
  /** Environment to read (default `process.env`). */
  env?: Record<string, string | undefined>
  logger?: Logger
}

export interface Backend {
  /** `http://host:port` (no trailing slash). */
  readonly url: string
  /** `ws://host:port/mqtt` (embedded) or the external `BROKER_URL`. */
  readonly mqttUrl: string
  readonly port: number
  readonly config: BackendConfig
  readonly tokens: TokenService
  /** The current bike service (replaced by restart()). */
  readonly bikes: BikeService
  /** The current embedded broker, undefined with `BROKER_URL`. */
  readonly broker: EmbeddedBroker | undefined
  stats(): AdminStats
  /** Closes everything and listens again on the same port with fresh state (only the config is kept). */
  restart(): Promise<void>
  close(): Promise<void>
}

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

async function serveStatic(root: string, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') throw new ApiError(405, 'METHOD_NOT_ALLOWED', 'static files are GET only')
  let rel: string
  try {
    rel = decodeURIComponent(url.pathname)
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
    if (url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
      res.end(NO_BUILD_HTML)
      return
    }
    throw new ApiError(404, 'NOT_FOUND', `no file ${url.pathname}`)
  }
  res.writeHead(200, {
    'content-type': contentType(file),
    'content-length': stat.size,
    'cache-control': path.basename(file) === 'index.html' ? 'no-cache' : 'public, max-age=3600',
  })
  if (req.method === 'HEAD') return void res.end()
  await new Promise<void>((resolve) => {
    const stream = fs.createReadStream(file)
    stream.on('error', () => {
      res.destroy()
      resolve()
    })
    stream.on('end', resolve)
    stream.pipe(res)
  })
}

interface Instance {
  server: http.Server
  port: number
  bikes: BikeService
  broker?: EmbeddedBroker
  stats(): AdminStats
  close(): Promise<void>
}

async function startInstance(config: BackendConfig, logger: Logger, tokens: TokenService, holds: Map<string, Hold>): Promise<Instance> {
  const startedAt = Date.now()
  const metrics = createMetrics()
  let admin: Admin | undefined
  const external = config.brokerUrl
  let broker: EmbeddedBroker | undefined
  let bus: Bus & { close?(): Promise<void> }
  let bikes: BikeService | undefined

  const notify = (): void => admin?.changed()
  if (external) {
    bus = await connectExternalBus({ url: external, username: config.brokerUsername, password: config.brokerPassword, logger, metrics })
  } else {
    broker = await createEmbeddedBroker({
      tokens,
      logger,
      metrics,
      acl: (rider, filter) => bikes?.canSubscribe(rider, filter) ?? false,
      onChange: notify,
    })
    bus = broker.bus
  }
  const mqttUrlFor = (req: IncomingMessage): string => external ?? `ws://${req.headers.host ?? `${config.host}:${config.port}`}/mqtt`
  bikes = createBikeService({ config, tokens, bus, logger, mqttUrl: mqttUrlFor, holds })
  const service = bikes

  const stats = (): AdminStats => ({
    online: broker ? broker.online() : null,
    messagesInPerMinute: metrics.inPerMinute(),
    messagesOutPerMinute: broker ? metrics.outPerMinute() : null,
    activeRides: service.activeRideCount(),
    totals: { messagesIn: metrics.totals().messagesIn, messagesOut: broker ? metrics.totals().messagesOut : null },
    broker: broker ? 'embedded' : 'external',
    uptimeMs: Date.now() - startedAt,
    time: Date.now(),
  })
  admin = createAdmin({ stats, logger, rootDir: config.rootDir })
  const adminRef = admin
  metrics.onChange(notify)
  service.onChange(notify)
  await adminRef.prepare()

  const sockets = new Set<net.Socket>()
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    res.setHeader('access-control-allow-origin', '*')
    if (req.method === 'OPTIONS') {
      res.writeHead(204, {
        'access-control-allow-methods': 'GET, POST, OPTIONS',
        'access-control-allow-headers': 'authorization, content-type',
        'access-control-max-age': '600',
      })
      return void res.end()
    }
    void (async () => {
      if (await service.handle(req, res, url)) return
      if (url.pathname === '/admin' || url.pathname.startsWith('/admin/')) {
        if (adminRef.handle(req, res, url)) return
        throw new ApiError(404, 'NOT_FOUND', `no route ${url.pathname}`)
      }
      await serveStatic(config.h5Dir, req, res, url)
    })().catch((err: unknown) => {
      if (res.headersSent) return void res.destroy()
      if (err instanceof ApiError) return sendError(res, err)
      logger.error('http.error', { method: req.method, path: url.pathname, error: err })
      sendJson(res, 500, { error: { code: 'INTERNAL', status: 500, message: 'internal error' } })
    })
  })
  server.on('connection', (sock) => {
    sockets.add(sock)
    sock.once('close', () => sockets.delete(sock))
  })
  server.on('upgrade', (req, socket, head) => {
    const pathname = new URL(req.url ?? '/', 'http://localhost').pathname
    socket.on('error', () => {})
    if (pathname === '/mqtt' && broker) return broker.upgrade(req, socket, head)
    if (pathname === '/admin/live') return adminRef.upgrade(req, socket, head)
    socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n')
  })
  server.on('clientError', (_err, socket) => socket.destroy())

  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject)
    server.listen(config.port, config.host, () => {
      server.off('error', reject)
      resolve((server.address() as net.AddressInfo).port)
    })
  })
  server.on('error', (err) => logger.error('http.server_error', { error: err }))
  logger.info('backend.listening', { host: config.host, port, broker: external ? 'external' : 'embedded' })

  let closed = false
  return {
    server,
    port,
    bikes: service,
    broker,
    stats,
    async close() {
      if (closed) return
      closed = true
      service.close()
      adminRef.close()
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()))
      if (broker) await broker.close()
      else await bus.close?.()
      for (const s of sockets) s.destroy()
      await serverClosed
      logger.info('backend.closed', { port })
    },
  }
}

/** Starts the backend; see {@link Backend}. */
export async function startBackend(options: BackendOptions = {}): Promise<Backend> {
  const config = loadConfig(options.env ?? process.env, options.config)
  const logger = options.logger ?? createLogger()
  const tokens = createTokenService(config.tokenSecret)
  const holds = new Map<string, Hold>()
  let instance = await startInstance(config, logger, tokens, holds)
  const fixedPort = instance.port
  let closed = false
  const hostForUrl = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host

  return {
    get url() {
      return `http://${hostForUrl}:${fixedPort}`
    },
    get mqttUrl() {
      return config.brokerUrl ?? `ws://${hostForUrl}:${fixedPort}/mqtt`
    },
    port: fixedPort,
    config,
    tokens,
    get bikes() {
      return instance.bikes
    },
    get broker() {
      return instance.broker
    },
    stats: () => instance.stats(),
    async restart() {
      if (closed) throw new Error('backend is closed')
      await instance.close()
      instance = await startInstance({ ...config, port: fixedPort }, logger, tokens, holds)
    },
    async close() {
      if (closed) return
      closed = true
      await instance.close()
    },
  }
}
