/**
 * The demo in a real browser: Debian's Chromium, driven by playwright-core, against the H5 build served by the demo
 * backend. Log in with the rider's password (a wrong one first: the page says so), unlock, see "unlocked", ride,
 * restart the backend mid-ride (a new process's worth: closed, then started again on the same port and data
 * directory) and watch the indicator go to reconnecting and back, lock, see the summary. A ride the rider already
 * holds opens instead of a "bike busy": on this bike the page goes to the ride, on another bike it names that bike and
 * its button opens that ride. Where a proxy refuses WebSockets, the MQTT link falls back to an HTTP transport and the
 * ride page says which; `?transports=` forces one. Screenshots of each step go to tests/.artifacts/ (git-ignored).
 */
import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import type { Browser, Page } from 'playwright-core'
import { launchChromium } from '../support/browser'
import { apiCall } from '../support/demo-api'
import { startFaultProxy } from '../support/fault-proxy'
import { freePort } from '../support/ports'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBackend, type Backend } from '../../server/app'
import { rideSummaryText } from '../../server/assistant'

const root = resolve(__dirname, '../..')
const shots = join(root, 'tests/.artifacts/e2e')
/** The seeded riders' password here (not the loopback default the page starts with, so the test types it). */
const DEMO_PASSWORD = 'e2e-demo-password'

let dataDir: string
let backend: Backend
/** Backends of single tests, closed in afterAll whatever happened. */
const others: Backend[] = []
let browser: Browser
let page: Page

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(shots, `${name}.png`) })
}

beforeAll(async () => {
  mkdirSync(shots, { recursive: true })
  await promisify(execFile)(process.execPath, [join(root, 'scripts/uni.mjs'), 'build'], {
    cwd: root,
    env: { ...process.env, NODE_ENV: 'production' },
  })
  dataDir = mkdtempSync(join(tmpdir(), 'longlink-e2e-'))
  backend = await startBackend({ env: { PORT: '0', UNLOCK_DELAY_MS: '300' }, config: { dataDir, demoPassword: DEMO_PASSWORD } })
  browser = await launchChromium()
  page = await browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2 })
}, 120_000)

/** Starts `rider`'s ride on `bike` through the HTTP API (login, reserve, unlock) and waits until it is under way. */
async function rideThroughApi(base: Backend, rider: string, bike: string): Promise<void> {
  const { body: pair } = await apiCall(base, 'POST', '/api/login', undefined, { rider, password: DEMO_PASSWORD })
  const token = pair.token as string
  expect((await apiCall(base, 'POST', `/api/bikes/${bike}/reserve`, token, {})).status).toBe(200)
  expect((await apiCall(base, 'POST', `/api/bikes/${bike}/unlock`, token, {})).status).toBe(202)
  await expect
    .poll(async () => (await apiCall(base, 'GET', '/api/rides/active', token)).body.rides, { timeout: 10_000, interval: 50 })
    .toEqual([expect.objectContaining({ bike, status: 'riding' })])
}

/** A backend of one test on its own data directory, closed in afterAll. */
async function ownBackend(env: Record<string, string> = {}, dataDir = mkdtempSync(join(tmpdir(), 'longlink-e2e-'))): Promise<Backend> {
  const started = await startBackend({ env: { PORT: '0', UNLOCK_DELAY_MS: '300', ...env }, config: { dataDir, demoPassword: DEMO_PASSWORD } })
  others.push(started)
  return started
}

/** Fills the unlock form of `base`'s page (at `address`, default the backend's own) and presses unlock. */
async function unlockOnPage(base: Backend, rider: string, bike: string, address = base.url): Promise<void> {
  await page.goto(address)
  await page.locator('[data-test="unlock"]').waitFor({ timeout: 15_000 })
  await page.locator('[data-test="rider"] input').fill(rider)
  await page.locator('[data-test="bike"] input').fill(bike)
  await page.locator('[data-test="password"] input').fill(DEMO_PASSWORD)
  await page.locator('[data-test="unlock"]').click()
}

afterAll(async () => {
  await browser?.close()
  await backend?.close()
  for (const other of others) await other.close()
  for (const dir of [dataDir, ...others.map((b) => b.config.dataDir)]) if (dir) rmSync(dir, { recursive: true, force: true })
})

describe('H5 demo in Chromium', () => {
  it('unlocks, rides through a backend restart, and locks', async () => {
    await page.goto(backend.url)
    await page.locator('[data-test="unlock"]').waitFor({ timeout: 15_000 })
    // uni's H5 <input> is a wrapper around the real input element.
    const password = page.locator('[data-test="password"] input')
    await password.fill('not-the-password')
    await shot('1-unlock-page')
    await page.locator('[data-test="unlock"]').click()
    await expect.poll(() => page.locator('[data-test="error"]').innerText(), { timeout: 10_000 }).toContain('Wrong rider or password')
    await password.fill(DEMO_PASSWORD)
    await page.locator('[data-test="unlock"]').click()
    await page.locator('[data-test="indicator"]').waitFor({ timeout: 15_000 })
    await expect.poll(() => page.locator('[data-test="indicator"]').innerText(), { timeout: 10_000 }).toContain('Online')
    // The live status comes over SSE (GET /api/rides/events through fetch): this ride's `riding` event.
    const live = page.locator('[data-test="live"]')
    await expect.poll(() => live.innerText(), { timeout: 10_000 }).toMatch(/Riding #\d+ \(SSE 在线 · online\)/)
    await shot('2-riding')
    // The backend restarts mid-ride: the indicator goes to reconnecting, then back online by itself (the tokens and
    // the ride live in the data directory, so the same session and ride carry on).
    const indicator = page.locator('[data-test="indicator"]')
    const port = backend.port
    await backend.close()
    await expect.poll(() => indicator.innerText(), { timeout: 5_000, interval: 20 }).toContain('Reconnecting')
    await shot('3-reconnecting')
    backend = await startBackend({ env: { PORT: String(port), UNLOCK_DELAY_MS: '300' }, config: { dataDir, demoPassword: DEMO_PASSWORD } })
    await expect.poll(() => indicator.innerText(), { timeout: 15_000 }).toContain('Online')
    // The SSE stream resumed too (from its last event id, against the restarted backend).
    await expect.poll(() => live.innerText(), { timeout: 15_000 }).toContain('SSE 在线 · online')
    await page.locator('[data-test="lock"]').click()
    await page.locator('[data-test="summary"], [data-test="problem"]').first().waitFor({ timeout: 10_000 })
    const problem = page.locator('[data-test="problem"]')
    expect(await problem.count(), (await problem.count()) ? await problem.innerText() : '').toBe(0)
    expect(await page.locator('[data-test="summary"]').innerText()).toContain('B42')
    // The `locked` event over SSE, one id after `riding`'s (no other event of the rider came between).
    await expect.poll(() => live.innerText(), { timeout: 10_000 }).toMatch(/Locked #\d+/)
    // The assistant streams the ride's summary token by token (POST /api/assistant/summary over fetch): the text
    // put together from the tokens is exactly the whole text the stream ends with.
    const answer = page.locator('[data-test="assistant"][data-done="true"]')
    await answer.waitFor({ timeout: 15_000 })
    const ride = await backend.bikes.lastRide('rider1', 'B42')
    expect(await answer.innerText()).toBe(rideSummaryText(ride))
    expect(await answer.getAttribute('data-repaired')).toBe('false')
    await shot('4-summary')
  }, 60_000)

  it('asks for the password again mid-ride when the session expired for good, and the ride goes on', async () => {
    // Access tokens outlive refresh tokens here: when the broker drops the link at the token's expiry, the refresh is
    // refused and only a new login helps.
    const expiring = await startBackend({
      env: { PORT: '0', UNLOCK_DELAY_MS: '300', TOKEN_TTL_MS: '5000', REFRESH_TTL_MS: '1000' },
      config: { dataDir: mkdtempSync(join(tmpdir(), 'longlink-e2e-')), demoPassword: DEMO_PASSWORD },
    })
    others.push(expiring)
    await page.goto(expiring.url)
    await page.locator('[data-test="unlock"]').waitFor({ timeout: 15_000 })
    await page.locator('[data-test="rider"] input').fill('rider2')
    await page.locator('[data-test="bike"] input').fill('B43')
    await page.locator('[data-test="password"] input').fill(DEMO_PASSWORD)
    await page.locator('[data-test="unlock"]').click()
    const indicator = page.locator('[data-test="indicator"]')
    await indicator.waitFor({ timeout: 15_000 })
    await expect.poll(() => indicator.innerText(), { timeout: 10_000 }).toContain('Online')
    const relogin = page.locator('[data-test="login"]')
    await relogin.waitFor({ timeout: 15_000 })
    expect(await relogin.innerText()).toContain('Session expired')
    expect(await indicator.innerText()).toContain('Disconnected')
    await shot('5-session-expired')
    await relogin.locator('[data-test="password"] input').fill(DEMO_PASSWORD)
    await page.locator('[data-test="relogin"]').click()
    await expect.poll(() => indicator.innerText(), { timeout: 10_000 }).toContain('Online')
    expect(await relogin.count()).toBe(0)
    await page.locator('[data-test="lock"]').click()
    await page.locator('[data-test="summary"]').waitFor({ timeout: 10_000 })
    expect(await page.locator('[data-test="summary"]').innerText()).toContain('B43')
  }, 60_000)

  it('opens the ride the rider already rides on the bike, and leaves its topic once the summary is in', async () => {
    let riding = await ownBackend()
    await rideThroughApi(riding, 'rider3', 'B44')
    // Reserve answers BIKE_BUSY (the rider's own bike is riding): the page goes to the ride, not to an error.
    await unlockOnPage(riding, 'rider3', 'B44')
    const indicator = page.locator('[data-test="indicator"]')
    await indicator.waitFor({ timeout: 15_000 })
    expect(await page.locator('[data-test="error"]').count()).toBe(0)
    await expect.poll(() => indicator.innerText(), { timeout: 10_000 }).toContain('Online')
    expect(await page.locator('[data-test="ride-title"]').innerText()).toContain('B44')
    await shot('6-ride-already-under-way')
    await page.locator('[data-test="lock"]').click()
    await page.locator('[data-test="summary"]').waitFor({ timeout: 10_000 })
    expect(await page.locator('[data-test="summary"]').innerText()).toContain('B44')
    // The backend restarts after the ride: the page's client comes back without subscribing to B44's topic again (the
    // rider no longer holds it), so the new backend refuses nothing.
    const { port, config } = riding
    await riding.close()
    await expect.poll(() => indicator.innerText(), { timeout: 5_000, interval: 20 }).not.toContain('Online')
    riding = await ownBackend({ PORT: String(port) }, config.dataDir)
    await expect.poll(() => indicator.innerText(), { timeout: 15_000 }).toContain('Online')
    expect(riding.stats().totals.refusals).toBe(0)
  }, 60_000)

  it('names the other bike the rider rides, and its button opens that ride', async () => {
    const riding = await ownBackend()
    await rideThroughApi(riding, 'rider4', 'B45')
    await unlockOnPage(riding, 'rider4', 'B46')
    const error = page.locator('[data-test="error"]')
    await error.waitFor({ timeout: 15_000 })
    expect(await error.innerText()).toContain('你正在骑行车辆 B45')
    expect(await error.innerText()).toContain('You already ride bike B45')
    const open = page.locator('[data-test="open-ride"]')
    expect(await open.innerText()).toContain('Open the ride on B45')
    await shot('7-riding-another-bike')
    await open.click()
    const indicator = page.locator('[data-test="indicator"]')
    await indicator.waitFor({ timeout: 15_000 })
    await expect.poll(() => indicator.innerText(), { timeout: 10_000 }).toContain('Online')
    expect(await page.locator('[data-test="ride-title"]').innerText()).toContain('B45')
    await shot('8-other-ride-opened')
  }, 60_000)

  it('rides with WebSockets refused on the way: the MQTT link falls back to HTTP, and the ride page says which', async () => {
    // The page is served through a proxy that answers 403 to every WebSocket upgrade and passes HTTP; the backend
    // names the proxy as its public origin, so the app's MQTT URL (from /api/config) goes through it too.
    const port = await freePort()
    const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port } })
    try {
      proxy.blockUpgrades(true)
      const origin = `http://127.0.0.1:${proxy.port}`
      const behind = await ownBackend({ PORT: String(port), PUBLIC_ORIGIN: origin })
      await unlockOnPage(behind, 'rider5', 'B47', origin + '/')
      const indicator = page.locator('[data-test="indicator"]')
      await indicator.waitFor({ timeout: 20_000 })
      await expect.poll(() => indicator.innerText(), { timeout: 15_000 }).toContain('Online')
      expect(await page.locator('[data-test="ride-title"]').innerText()).toContain('B47')
      // The default list is websocket, sse, long-polling: Chromium streams, so SSE wins.
      const transport = page.locator('[data-test="transport"]')
      await expect.poll(() => transport.innerText(), { timeout: 10_000 }).toContain('SSE')
      expect(proxy.upgradesRefused()).toBeGreaterThan(0)
      expect(behind.broker!.connections()).toEqual([expect.objectContaining({ rider: 'rider5', transport: 'mqtt/sse' })])
      await shot('9-ride-over-sse')
      await page.locator('[data-test="lock"]').click()
      await page.locator('[data-test="summary"]').waitFor({ timeout: 10_000 })
      expect(await page.locator('[data-test="summary"]').innerText()).toContain('B47')
    } finally {
      await proxy.close()
    }
  }, 60_000)

  it('?transports=long-polling forces long-polling, WebSocket or not', async () => {
    const plain = await ownBackend()
    await unlockOnPage(plain, 'rider1', 'B48', `${plain.url}/?transports=long-polling`)
    const indicator = page.locator('[data-test="indicator"]')
    await indicator.waitFor({ timeout: 20_000 })
    await expect.poll(() => indicator.innerText(), { timeout: 15_000 }).toContain('Online')
    const transport = page.locator('[data-test="transport"]')
    expect(await transport.innerText()).toContain('long-polling')
    expect(plain.broker!.connections()).toEqual([expect.objectContaining({ rider: 'rider1', transport: 'mqtt/long-polling' })])
    await shot('10-ride-over-long-polling')
  }, 60_000)
})
