/**
 * The admin page in a real browser: Debian's Chromium driven by playwright-core, against the built page
 * (dist/build/admin, built here once when missing) served by createAdmin on a plain HTTP server, while a generator
 * feeds it real-ish traffic (message counts, riders, log lines). Signs in through the form, waits for the live
 * charts and the riders table, and checks what a person would look at. Screenshots go to docs/screenshots/admin-*.png
 * when UPDATE_SCREENSHOTS=1 or when they do not exist yet.
 */
import { execFile } from 'node:child_process'
import crypto from 'node:crypto'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import type net from 'node:net'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import type { Browser, Page } from 'playwright-core'
import { launchChromium } from '../support/browser'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAdmin, createMetrics, type Admin, type ConnectedRider } from '../../server/admin'
import { ApiError, sendError, sendJson } from '../../server/http/respond'
import { createLogger } from '../../server/log'

const root = resolve(__dirname, '../..')
const pageDir = join(root, 'dist/build/admin')
const shotsDir = join(root, 'docs/screenshots')
const PASSWORD = 'demo-admin-password'
const updateShots = process.env.UPDATE_SCREENSHOTS === '1'

let server: http.Server
let admin: Admin
let base = ''
let browser: Browser
let generator: NodeJS.Timeout | undefined
const sockets = new Set<net.Socket>()

/** Real-ish traffic: a wave of messages, a few riders whose RTT moves, now and then a reconnect, a refusal, a log line. */
function startGenerator(
  metrics: ReturnType<typeof createMetrics>,
  logger: ReturnType<typeof createLogger>,
  riders: ConnectedRider[],
): NodeJS.Timeout {
  let step = 0
  const bikes = ['B07', 'B12', 'B19', 'B23', 'B31', 'B42']
  return setInterval(() => {
    step++
    const wave = 1 + 0.35 * Math.sin(step / 8)
    metrics.countIn(Math.round((180 + Math.random() * 40) * wave) / 10)
    metrics.countOut(Math.round((340 + Math.random() * 80) * wave) / 10)
    for (const r of riders) r.lastRttMs = Math.round(20 + Math.random() * 60 + (r.rider === 'rider-f' ? 540 : 0))
    if (step % 17 === 0) metrics.countReconnect()
    if (step % 23 === 0) metrics.countRefusal()
    if (step % 4 === 0) {
      const rider = riders[step % riders.length].rider
      const bike = bikes[step % bikes.length]
      const kind = (step / 4) % 6
      if (kind === 0) logger.info('bike.unlock.requested', { rider, bike })
      else if (kind === 1) logger.info('bike.unlocked', { rider, bike, ms: 312 })
      else if (kind === 2) logger.info('mqtt.connected', { clientId: `app-${rider}`, rider, transport: 'ws' })
      else if (kind === 3) logger.warn('mqtt.refused', { clientId: 'app-unknown', username: 'ghost', reason: 'expired' })
      else if (kind === 4) logger.info('bike.locked', { rider, bike, durationMs: 754_000, fare: 1.5 })
      else logger.error('http.error', { method: 'POST', path: `/api/bikes/${bike}/lock`, error: { name: 'Error', message: 'db timeout' } })
    }
  }, 100)
}

beforeAll(async () => {
  if (!existsSync(join(pageDir, 'index.html'))) {
    await promisify(execFile)('npx', ['vite', 'build', '--config', 'server/admin/page/vite.config.mts'], { cwd: root, timeout: 180_000 })
  }

  const recent: Record<string, unknown>[] = []
  const listeners = new Set<(entry: Record<string, unknown>) => void>()
  const logger = createLogger((line) => {
    const entry = JSON.parse(line) as Record<string, unknown>
    recent.push(entry)
    if (recent.length > 200) recent.shift()
    for (const l of listeners) l(entry)
  }, 'info')
  const metrics = createMetrics()
  const now = Date.now()
  const riders: ConnectedRider[] = ['a', 'b', 'c', 'd', 'e', 'f'].map((x, i) => ({
    rider: `rider-${x}`,
    clientId: `app-rider-${x}-${(0x3a7 * (i + 1)).toString(16)}`,
    transport: i === 4 ? 'tcp' : 'ws',
    address: `10.0.0.${10 + i}`,
    since: now - [42, 380, 1_250, 3_900, 95, 7_300][i] * 1000,
    lastRttMs: i === 1 ? null : 30,
  }))
  let origin = ''
  admin = createAdmin({
    logger,
    metrics,
    gauges: () => ({ online: riders.length + 2, activeRides: 3 + (Math.floor(Date.now() / 3000) % 2) }),
    riders: () => riders,
    logs: {
      recent: () => recent.slice(),
      subscribe: (listener) => {
        listeners.add(listener)
        return () => void listeners.delete(listener)
      },
    },
    adminPassword: PASSWORD,
    secret: crypto.randomBytes(32),
    pageDir,
    isAllowedOrigin: (o) => o === undefined || o === origin,
  })
  server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    admin
      .handle(req, res, url)
      .then((handled) => {
        if (!handled) sendJson(res, 404, { error: { code: 'NOT_FOUND' } })
      })
      .catch((err: unknown) => {
        if (res.headersSent) return void res.destroy()
        if (err instanceof ApiError) return sendError(res, err)
        sendJson(res, 500, { error: { code: 'INTERNAL' } })
      })
  })
  server.on('connection', (s) => {
    sockets.add(s)
    s.once('close', () => sockets.delete(s))
  })
  server.on('upgrade', (req, socket, head) => {
    if ((req.url ?? '').startsWith('/admin/live')) admin.upgrade(req, socket, head)
    else socket.destroy()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  base = origin = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`
  logger.info('backend.listening', { port: (server.address() as net.AddressInfo).port, broker: 'embedded' })
  generator = startGenerator(metrics, logger, riders)

  browser = await launchChromium()
}, 240_000)

afterAll(async () => {
  if (generator) clearInterval(generator)
  await browser?.close()
  admin?.close()
  if (server) {
    const closed = new Promise<void>((r) => server.close(() => r()))
    for (const s of sockets) s.destroy()
    await closed
  }
})

/** Opens a page, signs in through the form, and collects what the browser reports as broken (CSP included). */
async function signedInPage(viewport: { width: number; height: number }, deviceScaleFactor: number): Promise<{ page: Page; problems: string[] }> {
  const context = await browser.newContext({ viewport, deviceScaleFactor })
  const page = await context.newPage()
  const problems: string[] = []
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`))
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`)
  })
  await page.goto(`${base}/admin`, { timeout: 10_000 })
  await page.locator('[data-test="login-form"]').waitFor({ timeout: 10_000 })
  await page.fill('#password', PASSWORD)
  await Promise.all([page.waitForURL(`${base}/admin`, { timeout: 10_000 }), page.click('button[type="submit"]')])
  await page.locator('[data-test="live-state"][data-state="open"]').waitFor({ timeout: 10_000 })
  return { page, problems }
}

/** Waits until every chart holds at least `n` points. */
async function chartsHave(page: Page, n: number, timeout = 15_000): Promise<void> {
  await expect
    .poll(
      async () => Math.min(...(await page.locator('[data-chart]').evaluateAll((els) => els.map((el) => Number((el as HTMLElement).dataset.points))))),
      { timeout, interval: 200 },
    )
    .toBeGreaterThanOrEqual(n)
}

async function saveShot(page: Page, name: string): Promise<void> {
  const file = join(shotsDir, name)
  const png = await page.screenshot({ animations: 'disabled' })
  expect(png.subarray(1, 4).toString('latin1')).toBe('PNG')
  if (updateShots || !existsSync(file)) {
    mkdirSync(shotsDir, { recursive: true })
    writeFileSync(file, png)
  }
}

describe('admin page in Chromium', () => {
  it('signs in, shows the live numbers, charts, riders and log; desktop screenshot', async () => {
    const { page, problems } = await signedInPage({ width: 1280, height: 900 }, 1)
    expect(await page.locator('[data-test="live-state"]').innerText()).toContain('open')

    await chartsHave(page, 6)
    expect(await page.locator('.chart canvas').count()).toBe(4)
    await expect.poll(() => page.locator('[data-test="riders"] tbody tr[data-rider]').count(), { timeout: 10_000 }).toBe(6)
    const firstRow = page.locator('[data-test="riders"] tbody tr[data-rider="rider-a"] td')
    expect(await firstRow.nth(0).innerText()).toBe('rider-a')
    expect(await firstRow.nth(1).innerText()).toMatch(/^app-rider-a-/)
    expect(await firstRow.nth(2).innerText()).toBe('ws')
    expect(await firstRow.nth(3).innerText()).toMatch(/^(\d+s|\d+m \d\ds)$/)
    expect(await firstRow.nth(4).innerText()).toMatch(/^\d+$/)
    expect(await page.locator('[data-test="riders"] tbody tr[data-rider="rider-d"] td').nth(3).innerText()).toMatch(/^1h 0\dm$/)

    expect(await page.locator('#v-online').innerText()).toBe('8')
    expect(await page.locator('#v-rides').innerText()).toMatch(/^[34]$/)
    await expect.poll(async () => Number((await page.locator('#v-in').innerText()).replace(/,/g, '')), { timeout: 5000 }).toBeGreaterThan(50)
    await expect.poll(async () => Number((await page.locator('#v-out').innerText()).replace(/,/g, '')), { timeout: 5000 }).toBeGreaterThan(100)
    expect(await page.locator('#h-in').innerText()).toMatch(/avg \d/)

    await expect.poll(() => page.locator('[data-test="logs"] li[data-level]').count(), { timeout: 10_000 }).toBeGreaterThanOrEqual(5)
    expect(await page.locator('[data-test="logs"] li[data-level="warn"]').count()).toBeGreaterThan(0)
    const warn = page.locator('[data-test="logs"] li[data-level="warn"]', { hasText: 'mqtt.refused' }).first()
    expect(await warn.locator('.ev').innerText()).toBe('mqtt.refused')
    expect(await warn.locator('.f').innerText()).toContain('reason=expired')
    // warn and error lines are coloured, info lines are not.
    const background = (sel: string) =>
      page
        .locator(sel)
        .first()
        .evaluate((el) => getComputedStyle(el).backgroundColor)
    expect(await background('[data-test="logs"] li[data-level="warn"]')).not.toBe(await background('[data-test="logs"] li[data-level="info"]'))

    // Let the charts fill a little more for the picture.
    await chartsHave(page, 9)
    await saveShot(page, 'admin-desktop.png')
    expect(problems).toEqual([])
    await page.context().close()
  }, 60_000)

  it('reads on a phone: mobile screenshot', async () => {
    const { page, problems } = await signedInPage({ width: 390, height: 844 }, 2)
    await chartsHave(page, 3)
    await expect.poll(() => page.locator('[data-test="riders"] tbody tr[data-rider]').count(), { timeout: 10_000 }).toBe(6)
    // Nothing wider than the screen: the page does not scroll sideways.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390)
    const chartWidth = await page.locator('[data-chart="online"] canvas').evaluate((el) => el.getBoundingClientRect().width)
    expect(chartWidth).toBeGreaterThan(300)
    expect(chartWidth).toBeLessThanOrEqual(390)
    await saveShot(page, 'admin-mobile.png')
    expect(problems).toEqual([])
    await page.context().close()
  }, 60_000)

  it('signs out to the form, and a wrong password shows the message', async () => {
    const { page } = await signedInPage({ width: 1024, height: 700 }, 1)
    await Promise.all([page.waitForURL(`${base}/admin`, { timeout: 10_000 }), page.click('form.logout button')])
    await page.locator('[data-test="login-form"]').waitFor({ timeout: 10_000 })
    await page.fill('#password', 'not-the-password')
    await page.click('button[type="submit"]')
    await page.locator('[data-test="login-error"]').waitFor({ timeout: 10_000 })
    expect(await page.locator('[data-test="login-error"]').innerText()).toContain('Wrong password')
    await page.context().close()
  }, 60_000)
})
