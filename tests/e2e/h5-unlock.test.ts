/**
 * The demo in a real browser: Debian's Chromium, driven by playwright-core, against the H5 build served by the demo
 * backend. Log in, unlock, see "unlocked", ride, restart the backend mid-ride and watch the indicator go to
 * reconnecting and back, lock, see the summary. Screenshots of each step go to
 * tests/.artifacts/ (git-ignored).
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { chromium, type Browser, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBackend, type Backend } from '../../server/app'

const root = resolve(__dirname, '../..')
const shots = join(root, 'tests/.artifacts/e2e')
const CHROMIUM = '/usr/bin/chromium'

let backend: Backend
let browser: Browser
let page: Page

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(shots, `${name}.png`) })
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error('chromium is not installed: run .ci/install-system.sh (CI does)')
  mkdirSync(shots, { recursive: true })
  await promisify(execFile)(process.execPath, [join(root, 'scripts/uni.mjs'), 'build'], {
    cwd: root,
    env: { ...process.env, NODE_ENV: 'production' },
  })
  backend = await startBackend({ env: { PORT: '0', UNLOCK_DELAY_MS: '300' } })
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  })
  page = await browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2 })
}, 120_000)

afterAll(async () => {
  await browser?.close()
  await backend?.close()
})

describe('H5 demo in Chromium', () => {
  it('unlocks, rides through a backend restart, and locks', async () => {
    await page.goto(backend.url)
    await page.locator('[data-test="unlock"]').waitFor({ timeout: 15_000 })
    await shot('1-unlock-page')
    await page.locator('[data-test="unlock"]').click()
    await page.locator('[data-test="indicator"]').waitFor({ timeout: 15_000 })
    await expect.poll(() => page.locator('[data-test="indicator"]').innerText(), { timeout: 10_000 }).toContain('Online')
    await shot('2-riding')
    // The backend restarts mid-ride: the indicator goes to reconnecting, then back online by itself.
    const indicator = page.locator('[data-test="indicator"]')
    await backend.restart()
    await expect.poll(() => indicator.innerText(), { timeout: 5_000, interval: 20 }).toContain('Reconnecting')
    await shot('3-reconnecting')
    await expect.poll(() => indicator.innerText(), { timeout: 15_000 }).toContain('Online')
    // The admin page, live over the plugin's own transport, sees this rider online and the ride active.
    const admin = await browser.newPage({ viewport: { width: 1024, height: 640 } })
    await admin.goto(`${backend.url}/admin`)
    await expect.poll(() => admin.locator('#online').innerText(), { timeout: 10_000 }).toBe('1')
    await expect.poll(() => admin.locator('#rides').innerText(), { timeout: 10_000 }).toBe('1')
    await admin.screenshot({ path: join(shots, 'admin.png') })
    await admin.close()
    await page.locator('[data-test="lock"]').click()
    await page.locator('[data-test="summary"], [data-test="problem"]').first().waitFor({ timeout: 10_000 })
    const problem = page.locator('[data-test="problem"]')
    expect(await problem.count(), (await problem.count()) ? await problem.innerText() : '').toBe(0)
    expect(await page.locator('[data-test="summary"]').innerText()).toContain('B42')
    await shot('4-summary')
  }, 60_000)
})
