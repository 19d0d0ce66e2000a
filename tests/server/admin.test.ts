/**
 * The admin (server/admin) on a real HTTP server on 127.0.0.1:0, with real metrics, a real logger feeding the log
 * source, and real WebSocket clients: sign-in, rate limit, session cookie, stats, static files, the live feed and its
 * limits. Fake timers only for the arithmetic of the counters and of the hour ring.
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import type net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { WebSocket } from 'ws'
import { createAdmin, createHistory, createMetrics, type Admin, type AdminDeps, type ConnectedRider, type Metrics } from '../../server/admin'
import type { LiveMessage } from '../../server/admin/protocol'
import { ApiError, sendError, sendJson } from '../../server/http/respond'
import { createLogger } from '../../server/log'

const PASSWORD = 'correct horse battery staple'
const SECRET = crypto.randomBytes(32)
const DASHBOARD = 'ADMIN-DASHBOARD-MARKER'
const OUTSIDE = 'OUTSIDE-THE-ASSETS-MARKER'

// A built page stand-in: index.html, one asset, and files next to assets/ that must never be served from it.
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'admin-test-'))
const pageDir = path.join(tmp, 'page')
fs.mkdirSync(path.join(pageDir, 'assets'), { recursive: true })
fs.writeFileSync(path.join(pageDir, 'index.html'), `<!doctype html><title>admin</title><p>${DASHBOARD}</p>`)
fs.writeFileSync(path.join(pageDir, 'assets', 'app-1234.js'), 'console.log("admin")\n')
fs.writeFileSync(path.join(pageDir, 'secret.txt'), OUTSIDE)
fs.writeFileSync(path.join(tmp, 'outside.txt'), OUTSIDE)

/** Every log line written by every server of this file, to check that no secret ever reaches one. */
const allLines: string[] = []
/** Every session cookie value handed out, for the same check. */
const issuedCookies: string[] = []

interface TestServer {
  base: string
  origin: string
  host: string
  admin: Admin
  metrics: Metrics
  lines: string[]
  entries(): Record<string, unknown>[]
  logger: ReturnType<typeof createLogger>
  close(): Promise<void>
}

const servers: TestServer[] = []

async function startServer(overrides: Partial<AdminDeps> = {}): Promise<TestServer> {
  const lines: string[] = []
  const recent: Record<string, unknown>[] = []
  const listeners = new Set<(entry: Record<string, unknown>) => void>()
  const logger = createLogger((line) => {
    lines.push(line)
    allLines.push(line)
    const entry = JSON.parse(line) as Record<string, unknown>
    recent.push(entry)
    if (recent.length > 500) recent.shift()
    for (const l of listeners) l(entry)
  }, 'debug')
  const metrics = createMetrics()
  const riders: ConnectedRider[] = [
    { rider: 'alice', clientId: 'mqtt-alice-1', transport: 'ws', address: '10.0.0.2', since: Date.now() - 90_000, lastRttMs: 23 },
    { rider: 'bob', clientId: 'mqtt-bob-7', transport: 'ws', address: '10.0.0.3', since: Date.now() - 5_000, lastRttMs: null },
  ]
  let origin = ''
  const admin = createAdmin({
    logger,
    metrics,
    gauges: () => ({ online: riders.length, activeRides: 1 }),
    riders: () => riders,
    logs: {
      recent: () => recent.slice(),
      subscribe: (listener) => {
        listeners.add(listener)
        return () => void listeners.delete(listener)
      },
    },
    adminPassword: PASSWORD,
    secret: SECRET,
    pageDir,
    // Scripts (no Origin) and the server's own origin.
    isAllowedOrigin: (o) => o === undefined || o === origin,
    ...overrides,
  })
  const sockets = new Set<net.Socket>()
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    admin
      .handle(req, res, url)
      .then((handled) => {
        if (!handled) sendJson(res, 404, { notAdmin: true })
      })
      .catch((err: unknown) => {
        if (res.headersSent) return void res.destroy()
        if (err instanceof ApiError) return sendError(res, err)
        sendJson(res, 500, { error: { code: 'INTERNAL', message: String(err) } })
      })
  })
  server.on('connection', (s) => {
    sockets.add(s)
    s.once('close', () => sockets.delete(s))
  })
  server.on('upgrade', (req, socket, head) => {
    if ((req.url ?? '').startsWith('/admin')) admin.upgrade(req, socket, head)
    else socket.destroy()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  origin = `http://127.0.0.1:${port}`
  const ts: TestServer = {
    base: origin,
    origin,
    host: `127.0.0.1:${port}`,
    admin,
    metrics,
    lines,
    logger,
    entries: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
    async close() {
      admin.close()
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      for (const s of sockets) s.destroy()
      await closed
    },
  }
  servers.push(ts)
  return ts
}

interface Reply {
  status: number
  headers: http.IncomingHttpHeaders
  text: string
  // The JSON bodies are read field by field as each test expects.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json(): any
}

/** A raw HTTP request: the path goes out exactly as written (no URL normalisation), headers exactly as given. */
function request(
  base: string,
  method: string,
  rawPath: string,
  opts: { headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<Reply> {
  const { hostname, port } = new URL(base)
  return new Promise((resolve, reject) => {
    const req = http.request({ host: hostname, port, method, path: rawPath, headers: opts.headers, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) })
      })
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`${method} ${rawPath}: no answer within 5 s`)))
    req.on('error', reject)
    req.end(opts.body)
  })
}

const json = (body: unknown): { headers: Record<string, string>; body: string } => ({
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
})

/** Signs in and returns the `name=value` pair of the session cookie. */
async function signIn(s: TestServer): Promise<string> {
  const r = await request(s.base, 'POST', '/admin/login', json({ password: PASSWORD }))
  expect(r.status).toBe(200)
  const pair = sessionCookie(r)
  issuedCookies.push(pair.split('=')[1])
  return pair
}

function sessionCookie(r: Reply): string {
  const header = r.headers['set-cookie']?.find((c) => c.startsWith('longlink_admin='))
  if (!header) throw new Error(`no session cookie in ${JSON.stringify(r.headers)}`)
  return header.split(';')[0]
}

interface Live {
  ws: WebSocket
  messages: (LiveMessage | string)[]
  closed: Promise<{ code: number; reason: string }>
  /** The first message (already received or to come) that passes `match`, or a rejection after `timeoutMs`. */
  next<T extends LiveMessage | string>(match: (m: LiveMessage | string) => boolean, timeoutMs?: number, from?: number): Promise<T>
}

const lives: WebSocket[] = []

/** Opens /admin/live; resolves once open, or rejects with the HTTP status of a refused upgrade. */
function openLive(s: TestServer, headers: Record<string, string>): Promise<Live> {
  const ws = new WebSocket(`ws://${s.host}/admin/live`, { headers, handshakeTimeout: 5000 })
  lives.push(ws)
  const messages: (LiveMessage | string)[] = []
  const waiters = new Set<() => void>()
  ws.on('message', (data, isBinary) => {
    const text = isBinary ? '' : data.toString()
    messages.push(text.startsWith('{') ? (JSON.parse(text) as LiveMessage) : text)
    for (const w of waiters) w()
  })
  ws.on('error', () => {})
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  )
  const live: Live = {
    ws,
    messages,
    closed,
    next: (match, timeoutMs = 5000, from = 0) =>
      new Promise((resolve, reject) => {
        const check = (): boolean => {
          const found = messages.slice(from).find(match)
          if (found === undefined) return false
          waiters.delete(check)
          clearTimeout(timer)
          resolve(found as never)
          return true
        }
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(
            new Error(`no matching live message within ${timeoutMs} ms; got ${messages.map((m) => (typeof m === 'string' ? m : m.type)).join(',')}`),
          )
        }, timeoutMs)
        if (!check()) waiters.add(check)
      }),
  }
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(live))
    ws.once('unexpected-response', (_req, res) => {
      reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode }))
      res.resume()
    })
    ws.once('error', reject)
  })
}

const isType =
  <T extends LiveMessage['type']>(type: T) =>
  (m: LiveMessage | string): boolean =>
    typeof m !== 'string' && m.type === type

afterEach(() => {
  vi.useRealTimers()
})

afterAll(async () => {
  for (const ws of lives) ws.terminate()
  await Promise.all(servers.map((s) => s.close()))
  fs.rmSync(tmp, { recursive: true, force: true })
  // No secret in any log line of the whole file: neither the password, a wrong one tried, nor a session cookie.
  const all = allLines.join('\n')
  expect(all).not.toContain(PASSWORD)
  expect(all).not.toContain('wrong-password-123')
  for (const c of issuedCookies) expect(all).not.toContain(c)
})

describe('metrics', () => {
  it('counts messages, reconnects and refusals; ignores bad counts', () => {
    const m = createMetrics()
    m.countIn()
    m.countIn(5)
    m.countIn(NaN)
    m.countIn(-3)
    m.countOut(2)
    m.countOut(0)
    m.countReconnect()
    m.countRefusal()
    m.countRefusal()
    expect(m.totals()).toEqual({ messagesIn: 6, messagesOut: 2, reconnects: 1, refusals: 2 })
  })

  it('averages the rates over the last 60 complete seconds (or since start when younger)', () => {
    let t = 1_000_000_000_000
    const m = createMetrics(() => t)
    m.countIn(50)
    expect(m.rates()).toEqual({ inPerSecond: 0, outPerSecond: 0 }) // no complete second yet
    t += 1000
    expect(m.rates().inPerSecond).toBe(50) // one second lived: 50 in it
    // 100 in and 10 out every second for 70 s.
    for (let i = 0; i < 70; i++) {
      m.countIn(100)
      m.countOut(10)
      t += 1000
    }
    expect(m.rates()).toEqual({ inPerSecond: 100, outPerSecond: 10 })
    // Silence for 30 s: half of the window is empty.
    t += 30_000
    expect(m.rates()).toEqual({ inPerSecond: 50, outPerSecond: 5 })
    // A long gap clears the whole window, whatever the bucket positions.
    t += 3_600_500
    expect(m.rates()).toEqual({ inPerSecond: 0, outPerSecond: 0 })
    m.countIn(60)
    t += 1000
    expect(m.rates().inPerSecond).toBe(1)
    expect(m.totals().messagesIn).toBe(50 + 7000 + 60)
  })

  it('keeps an hour of per-second points in a fixed ring (fake clock)', () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 })
    const start = Date.now()
    const m = createMetrics()
    let online = 0
    const h = createHistory({ metrics: m, gauges: () => ({ online, activeRides: online % 5 }) })
    const ticks: number[] = []
    h.onSample((p) => ticks.push(p.time))
    h.start() // takes the first point at once
    expect(h.size()).toBe(1)
    expect(h.capacity).toBe(3600)
    for (let s = 1; s <= 3700; s++) {
      online = s
      m.countIn(s % 7)
      m.countOut(2 * (s % 7))
      if (s % 10 === 0) m.countReconnect()
      if (s % 25 === 0) m.countRefusal()
      vi.advanceTimersByTime(1000)
    }
    h.stop()
    vi.advanceTimersByTime(5000) // stopped: no more points
    expect(ticks).toHaveLength(3701)
    expect(h.size()).toBe(3600)
    const points = h.points()
    expect(points).toHaveLength(3600)
    // Oldest first, one second apart, the newest being the 3700th second.
    expect(points[0].time).toBe(start + 101 * 1000)
    expect(points[3599].time).toBe(start + 3700 * 1000)
    for (let i = 1; i < points.length; i++) expect(points[i].time - points[i - 1].time).toBe(1000)
    const last = points[3599]
    expect(last).toEqual({
      time: start + 3700_000,
      online: 3700,
      inPerSecond: 3700 % 7,
      outPerSecond: 2 * (3700 % 7),
      activeRides: 0,
      reconnects: 1,
      refusals: 1,
    })
    expect(h.last()).toEqual(last)
    expect(points[3598]).toMatchObject({ online: 3699, inPerSecond: 3699 % 7, reconnects: 0, refusals: 0 })
  })

  it('keeps the last gauge values when the gauges throw, and says so', () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 })
    let fail = false
    const errors: unknown[] = []
    const h = createHistory({
      metrics: createMetrics(),
      gauges: () => {
        if (fail) throw new Error('db down')
        return { online: null, activeRides: 4 }
      },
      onGaugeError: (e) => errors.push(e),
    })
    expect(h.sample()).toMatchObject({ online: null, activeRides: 4 })
    fail = true
    expect(h.sample()).toMatchObject({ online: null, activeRides: 4 })
    expect(errors).toHaveLength(1)
  })
})

describe('admin over HTTP', () => {
  let s: TestServer
  beforeAll(async () => {
    s = await startServer()
  })

  it('shows a login form, not the page, without a session', async () => {
    const r = await request(s.base, 'GET', '/admin')
    expect(r.status).toBe(200)
    expect(r.headers['content-type']).toContain('text/html')
    expect(r.text).toContain('<form method="post" action="/admin/login"')
    expect(r.text).toContain('name="password"')
    expect(r.text).not.toContain(DASHBOARD)
    expect(r.headers['content-security-policy']).toContain("frame-ancestors 'none'")
    const stats = await request(s.base, 'GET', '/admin/stats')
    expect(stats.status).toBe(401)
    expect(stats.json().error.code).toBe('UNAUTHORIZED')
  })

  it('refuses a wrong password with 401 and a warn line that does not hold it', async () => {
    const before = s.metrics.totals().refusals
    const r = await request(s.base, 'POST', '/admin/login', json({ password: 'wrong-password-123' }))
    expect(r.status).toBe(401)
    expect(r.json().error).toMatchObject({ code: 'UNAUTHORIZED', reason: 'wrong-password' })
    expect(r.headers['set-cookie']).toBeUndefined()
    const line = s.entries().find((e) => e.event === 'admin.login.refused')
    expect(line).toMatchObject({ level: 'warn', reason: 'wrong-password', address: '127.0.0.1' })
    expect(s.lines.join('\n')).not.toContain('wrong-password-123')
    expect(s.metrics.totals().refusals).toBe(before + 1)
    // The form gets the form back, with the message, and the same status.
    const form = await request(s.base, 'POST', '/admin/login', {
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' },
      body: 'password=wrong-password-123',
    })
    expect(form.status).toBe(401)
    expect(form.text).toContain('data-test="login-error"')
    expect(form.text).toContain('Wrong password')
  })

  it('bounds and checks the login body, and the origin (CSRF)', async () => {
    const big = await request(s.base, 'POST', '/admin/login', json({ password: 'x'.repeat(10_000) }))
    expect(big.status).toBe(413)
    expect(big.json().error.code).toBe('BODY_TOO_LARGE')
    const type = await request(s.base, 'POST', '/admin/login', { headers: { 'content-type': 'text/plain' }, body: PASSWORD })
    expect(type.status).toBe(415)
    const bad = await request(s.base, 'POST', '/admin/login', { headers: { 'content-type': 'application/json' }, body: '{"password":' })
    expect(bad.status).toBe(400)
    const notString = await request(s.base, 'POST', '/admin/login', json({ password: 42 }))
    expect(notString.status).toBe(400)
    const evil = await request(s.base, 'POST', '/admin/login', {
      headers: { 'content-type': 'application/json', origin: 'https://evil.example' },
      body: JSON.stringify({ password: PASSWORD }),
    })
    expect(evil.status).toBe(403)
    expect(evil.json().error.code).toBe('FORBIDDEN')
    expect(evil.headers['set-cookie']).toBeUndefined()
  })

  it('signs in: an HttpOnly, SameSite=Strict cookie on /admin, then the page and the stats', async () => {
    const r = await request(s.base, 'POST', '/admin/login', { ...json({ password: PASSWORD }), headers: { ...json({}).headers, origin: s.origin } })
    expect(r.status).toBe(200)
    expect(r.json().expiresAt).toBeGreaterThan(Date.now() + 11 * 3600_000)
    const header = r.headers['set-cookie']?.[0] ?? ''
    expect(header).toMatch(/^longlink_admin=v1\.\d+\.[\w-]+\.[\w-]+; /)
    expect(header).toContain('HttpOnly')
    expect(header).toContain('SameSite=Strict')
    expect(header).toContain('Path=/admin')
    expect(header).toContain('Max-Age=43200')
    const cookie = sessionCookie(r)
    issuedCookies.push(cookie.split('=')[1])
    const page = await request(s.base, 'GET', '/admin', { headers: { cookie } })
    expect(page.status).toBe(200)
    expect(page.text).toContain(DASHBOARD)
    const head = await request(s.base, 'HEAD', '/admin', { headers: { cookie } })
    expect(head.status).toBe(200)
    expect(head.text).toBe('')
    s.metrics.countIn(3)
    const stats = await request(s.base, 'GET', '/admin/stats', { headers: { cookie: `other=1; ${cookie}` } })
    expect(stats.status).toBe(200)
    expect(stats.json()).toMatchObject({
      online: 2,
      activeRides: 1,
      connectedRiders: 2,
      liveViewers: 0,
      totals: { messagesIn: 3 },
      rates: { inPerSecond: expect.any(Number) },
    })
  })

  it('signs in from the form with a redirect to the page', async () => {
    const r = await request(s.base, 'POST', '/admin/login', {
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: s.origin },
      body: new URLSearchParams({ password: PASSWORD }).toString(),
    })
    expect(r.status).toBe(303)
    expect(r.headers.location).toBe('/admin')
    const cookie = sessionCookie(r)
    issuedCookies.push(cookie.split('=')[1])
    expect((await request(s.base, 'GET', '/admin', { headers: { cookie } })).text).toContain(DASHBOARD)
  })

  it('takes the admin password as a bearer token on /admin/stats only', async () => {
    const good = await request(s.base, 'GET', '/admin/stats', { headers: { authorization: `Bearer ${PASSWORD}` } })
    expect(good.status).toBe(200)
    expect(good.json().connectedRiders).toBe(2)
    const wrong = await request(s.base, 'GET', '/admin/stats', { headers: { authorization: 'Bearer wrong-password-123' } })
    expect(wrong.status).toBe(401)
    expect(wrong.json().error.reason).toBe('wrong-credential')
    expect(s.entries().find((e) => e.event === 'admin.stats.refused')).toMatchObject({ level: 'warn', reason: 'wrong-credential' })
    // The page and its files want the session, not the bearer.
    const page = await request(s.base, 'GET', '/admin', { headers: { authorization: `Bearer ${PASSWORD}` } })
    expect(page.text).not.toContain(DASHBOARD)
    const asset = await request(s.base, 'GET', '/admin/assets/app-1234.js', { headers: { authorization: `Bearer ${PASSWORD}` } })
    expect(asset.status).toBe(401)
  })

  it('refuses forged, tampered and logged-out sessions', async () => {
    const cookie = await signIn(s)
    const [, value] = cookie.split('=')
    const [v, exp, id, sig] = value.split('.')
    const forgedSig = `longlink_admin=${v}.${exp}.${id}.${crypto.createHmac('sha256', 'not-the-secret').update('x').digest('base64url')}`
    const longer = `longlink_admin=${v}.${Number(exp) + 1000 * 3600 * 24 * 365}.${id}.${sig}`
    const garbage = 'longlink_admin=%%%.;;'
    for (const bad of [forgedSig, longer, garbage, 'longlink_admin=']) {
      const r = await request(s.base, 'GET', '/admin/stats', { headers: { cookie: bad } })
      expect(r.status, bad).toBe(401)
    }
    // Logout: needs the right origin, clears the cookie, and the old value stops working.
    const evil = await request(s.base, 'POST', '/admin/logout', { headers: { cookie, origin: 'https://evil.example' } })
    expect(evil.status).toBe(403)
    expect((await request(s.base, 'GET', '/admin/stats', { headers: { cookie } })).status).toBe(200)
    const out = await request(s.base, 'POST', '/admin/logout', {
      headers: { cookie, origin: s.origin, 'content-type': 'application/x-www-form-urlencoded' },
    })
    expect(out.status).toBe(303)
    expect(out.headers['set-cookie']?.[0]).toMatch(/^longlink_admin=; Max-Age=0; Path=\/admin/)
    expect((await request(s.base, 'GET', '/admin/stats', { headers: { cookie } })).status).toBe(401)
    expect((await request(s.base, 'GET', '/admin', { headers: { cookie } })).text).not.toContain(DASHBOARD)
  })

  it('rate-limits failed logins per address: 5 a minute, then 429 even for the right password', async () => {
    const own = await startServer()
    for (let i = 0; i < 5; i++) {
      const r = await request(own.base, 'POST', '/admin/login', json({ password: 'wrong-password-123' }))
      expect(r.status).toBe(401)
    }
    const limited = await request(own.base, 'POST', '/admin/login', json({ password: PASSWORD }))
    expect(limited.status).toBe(429)
    expect(limited.json().error).toMatchObject({ code: 'RATE_LIMITED', retryAfterMs: expect.any(Number) })
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0)
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(60)
    expect(limited.headers['set-cookie']).toBeUndefined()
    // The bearer check shares the limit: no brute force through /admin/stats either.
    const viaStats = await request(own.base, 'GET', '/admin/stats', { headers: { authorization: `Bearer x` } })
    expect(viaStats.status).toBe(429)
    expect(own.entries().filter((e) => e.event === 'admin.login.rate_limited')).toHaveLength(1)
    expect(own.metrics.totals().refusals).toBe(7)
  })

  it('serves the built assets, with a session, and nothing outside them', async () => {
    const cookie = await signIn(s)
    const ok = await request(s.base, 'GET', '/admin/assets/app-1234.js', { headers: { cookie } })
    expect(ok.status).toBe(200)
    expect(ok.headers['content-type']).toBe('text/javascript; charset=utf-8')
    expect(ok.text).toContain('console.log')
    expect((await request(s.base, 'GET', '/admin/assets/app-1234.js')).status).toBe(401)
    const attempts = [
      '/admin/assets/..%2fsecret.txt',
      '/admin/assets/..%2f..%2foutside.txt',
      '/admin/assets/%2e%2e/secret.txt',
      '/admin/assets/%2e%2e%2f%2e%2e%2foutside.txt',
      '/admin/assets/..%5csecret.txt',
      '/admin/assets/%252e%252e%252fsecret.txt',
      '/admin/assets/app-1234.js%00.png',
      '/admin/assets/%E0%A4%A',
      `/admin/assets/${encodeURIComponent(path.join(tmp, 'outside.txt'))}`,
      '/admin/assets/',
      '/admin/assets/nope.js',
    ]
    for (const p of attempts) {
      const r = await request(s.base, 'GET', p, { headers: { cookie } })
      expect([400, 404], p).toContain(r.status)
      expect(r.text, p).not.toContain(OUTSIDE)
    }
    // `..` that the URL parser resolves leaves /admin altogether: not the admin's.
    const resolved = await request(s.base, 'GET', '/admin/assets/../../outside.txt', { headers: { cookie } })
    expect(resolved.json()).toEqual({ notAdmin: true })
  })

  it('answers 405 with allow for other methods, 404 for other paths, and leaves other paths alone', async () => {
    const cases: [string, string, string][] = [
      ['PUT', '/admin', 'GET, HEAD'],
      ['POST', '/admin', 'GET, HEAD'],
      ['DELETE', '/admin/', 'GET, HEAD'],
      ['GET', '/admin/login', 'POST'],
      ['GET', '/admin/logout', 'POST'],
      ['POST', '/admin/stats', 'GET, HEAD'],
      ['PATCH', '/admin/assets/app-1234.js', 'GET, HEAD'],
      ['POST', '/admin/live', 'GET'],
      ['DELETE', '/admin/nope', 'GET, HEAD, POST'],
    ]
    for (const [method, p, allowHeader] of cases) {
      const r = await request(s.base, method, p)
      expect(r.status, `${method} ${p}`).toBe(405)
      expect(r.headers.allow, `${method} ${p}`).toBe(allowHeader)
      expect(r.json().error.code).toBe('METHOD_NOT_ALLOWED')
    }
    expect((await request(s.base, 'GET', '/admin/nope')).status).toBe(404)
    expect((await request(s.base, 'GET', '/admin/live')).status).toBe(400) // a WebSocket, not a page
    expect((await request(s.base, 'GET', '/administrator')).json()).toEqual({ notAdmin: true })
    expect((await request(s.base, 'GET', '/api/x')).json()).toEqual({ notAdmin: true })
  })

  it('tells to build the page when it is missing (503)', async () => {
    const own = await startServer({ pageDir: path.join(tmp, 'not-built') })
    const cookie = await signIn(own)
    const r = await request(own.base, 'GET', '/admin', { headers: { cookie } })
    expect(r.status).toBe(503)
    expect(r.text).toContain('npm run build:admin')
  })

  it('refuses to start with a short secret, and nobody signs in with an empty password', async () => {
    expect(() => createAdmin({ ...({} as AdminDeps), secret: Buffer.from('short') })).toThrow(/16 bytes/)
    const own = await startServer({ adminPassword: '' })
    const r = await request(own.base, 'POST', '/admin/login', json({ password: '' }))
    expect(r.status).toBe(403)
    expect((await request(own.base, 'GET', '/admin/stats', { headers: { authorization: 'Bearer ' } })).status).toBe(401)
  })
})

describe('live feed /admin/live', () => {
  let s: TestServer
  let cookie: string
  beforeAll(async () => {
    s = await startServer()
    cookie = await signIn(s)
  })

  it('refuses a bad origin (403), no cookie (401), a forged cookie (401) and other paths (404)', async () => {
    await expect(openLive(s, { cookie, origin: 'https://evil.example' })).rejects.toMatchObject({ status: 403 })
    await expect(openLive(s, { origin: s.origin })).rejects.toMatchObject({ status: 401 })
    await expect(openLive(s, { origin: s.origin, cookie: `${cookie.slice(0, -3)}abc` })).rejects.toMatchObject({ status: 401 })
    const ws = new WebSocket(`ws://${s.host}/admin/other`, { headers: { cookie, origin: s.origin } })
    lives.push(ws)
    const status = await new Promise<number>((resolve, reject) => {
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
      ws.once('open', () => reject(new Error('opened')))
      ws.on('error', () => {})
    })
    expect(status).toBe(404)
    expect(s.admin.liveClients()).toBe(0)
    expect(
      s
        .entries()
        .filter((e) => e.event === 'admin.live.refused')
        .map((e) => e.reason),
    ).toEqual(['origin', 'no-session', 'no-session'])
  })

  it('sends hello with the history, riders and logs, then a tick every second and riders every 2 s', async () => {
    s.logger.info('test.before_hello', { n: 1 })
    const live = await openLive(s, { cookie, origin: s.origin })
    expect(s.admin.liveClients()).toBe(1)
    const hello = await live.next<Extract<LiveMessage, { type: 'hello' }>>(isType('hello'))
    expect(live.messages[0]).toBe(hello) // hello comes first
    expect(hello.history.length).toBeGreaterThanOrEqual(1)
    expect(hello.history[0]).toMatchObject({ online: 2, activeRides: 1, time: expect.any(Number) })
    expect(hello.capacity).toBe(3600)
    expect(hello.riders.map((r) => r.rider)).toEqual(['alice', 'bob'])
    expect(hello.ridersTotal).toBe(2)
    expect(hello.logs.length).toBeLessThanOrEqual(100)
    expect(hello.logs.some((e) => e.event === 'test.before_hello')).toBe(true)
    expect(hello.logs.some((e) => e.event === 'admin.live.opened')).toBe(true)
    // Traffic now shows in the next tick.
    s.metrics.countIn(500)
    s.metrics.countOut(900)
    const tick = await live.next<Extract<LiveMessage, { type: 'tick' }>>(
      (m) => typeof m !== 'string' && m.type === 'tick' && m.point.inPerSecond > 0,
      3000,
    )
    expect(tick.point.outPerSecond).toBeGreaterThan(tick.point.inPerSecond)
    expect(tick.totals.messagesIn).toBeGreaterThanOrEqual(500)
    expect(tick.point.online).toBe(2)
    const riders = await live.next<Extract<LiveMessage, { type: 'riders' }>>(isType('riders'), 3000)
    expect(riders.total).toBe(2)
    expect(riders.riders[0]).toMatchObject({ rider: 'alice', clientId: 'mqtt-alice-1', lastRttMs: 23 })
    // New log lines follow as they come.
    s.logger.warn('test.live_line', { bike: 'B42' })
    const log = await live.next<Extract<LiveMessage, { type: 'log' }>>(
      (m) => typeof m !== 'string' && m.type === 'log' && m.entry.event === 'test.live_line',
    )
    expect(log.entry).toMatchObject({ level: 'warn', bike: 'B42' })
    live.ws.close()
    await live.closed
    await expect.poll(() => s.admin.liveClients(), { timeout: 2000 }).toBe(0)
  })

  it('answers ping with pong and ignores everything else a viewer sends', async () => {
    const live = await openLive(s, { cookie, origin: s.origin })
    await live.next(isType('hello'))
    live.ws.send('ping')
    await live.next((m) => m === 'pong', 2000)
    const garbage: (string | Buffer)[] = [
      '{"type":"hello"}',
      'not json at all',
      '{"type":',
      'PING',
      'pingpong',
      '',
      '\u0000\u0001',
      Buffer.from([0xff, 0xfe, 0x00]),
      crypto.randomBytes(4000),
      'x'.repeat(4000),
    ]
    for (const g of garbage) live.ws.send(g)
    const from = live.messages.length
    live.ws.send('ping')
    await live.next((m) => m === 'pong', 2000, from)
    await live.next(isType('tick'), 3000, from)
    expect(live.messages.filter((m) => m === 'pong')).toHaveLength(2) // one pong per ping, none for the rest
    expect(live.ws.readyState).toBe(WebSocket.OPEN)
    expect(s.admin.liveClients()).toBe(1)
    live.ws.close()
    await live.closed
  })

  it('closes a viewer that sends a 50 MB frame with 1009 and carries on', async () => {
    const live = await openLive(s, { cookie, origin: s.origin })
    await live.next(isType('hello'))
    const rssBefore = process.memoryUsage().rss
    live.ws.send(Buffer.alloc(50 * 1024 * 1024, 0x61), { binary: false })
    const closed = await Promise.race([
      live.closed,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('not closed within 5 s')), 5000)),
    ])
    expect(closed.code).toBe(1009)
    await expect.poll(() => s.admin.liveClients(), { timeout: 2000 }).toBe(0)
    // The server neither buffered the frame nor fell over: it still answers, and a new viewer gets its hello.
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(200 * 1024 * 1024)
    expect((await request(s.base, 'GET', '/admin/stats', { headers: { cookie } })).status).toBe(200)
    const again = await openLive(s, { cookie, origin: s.origin })
    await again.next(isType('hello'))
    again.ws.close()
    await again.closed
  })

  it('sends at most 20 log lines a second per viewer, then one log-dropped with the count', async () => {
    const live = await openLive(s, { cookie, origin: s.origin })
    await live.next(isType('hello'))
    // Right after a tick, so the whole flood lands in one second's budget.
    const from = live.messages.length
    await live.next(isType('tick'), 3000, from)
    const start = live.messages.length
    for (let i = 0; i < 100; i++) s.logger.info('test.flood', { i })
    const dropped = await live.next<Extract<LiveMessage, { type: 'log-dropped' }>>(isType('log-dropped'), 3000, start)
    const flood = live.messages.slice(start).filter((m) => typeof m !== 'string' && m.type === 'log' && m.entry.event === 'test.flood')
    expect(flood.length).toBeLessThanOrEqual(20)
    expect(flood.length).toBeGreaterThan(0)
    expect(dropped.count).toBeGreaterThanOrEqual(100 - flood.length)
    live.ws.close()
    await live.closed
  })

  it('closes the feeds of a session that logs out (4001)', async () => {
    const own = await signIn(s)
    const live = await openLive(s, { cookie: own, origin: s.origin })
    await live.next(isType('hello'))
    const other = await openLive(s, { cookie, origin: s.origin })
    await other.next(isType('hello'))
    const r = await request(s.base, 'POST', '/admin/logout', { headers: { cookie: own, origin: s.origin } })
    expect(r.status).toBe(200)
    const closed = await live.closed
    expect(closed).toEqual({ code: 4001, reason: 'logged out' })
    expect(other.ws.readyState).toBe(WebSocket.OPEN)
    other.ws.close()
    await other.closed
  })

  it('drops every viewer on close and refuses new ones', async () => {
    const own = await startServer()
    const ownCookie = await signIn(own)
    const live = await openLive(own, { cookie: ownCookie, origin: own.origin })
    await live.next(isType('hello'))
    own.admin.close()
    const closed = await live.closed
    expect(closed.code).toBe(1006)
    expect(own.admin.liveClients()).toBe(0)
    await expect(openLive(own, { cookie: ownCookie, origin: own.origin })).rejects.toMatchObject({ status: 503 })
  })
})
