/**
 * What the tests of the demo app share: the host built for mp-weixin (as WeChat DevTools imports it), and calls to the
 * demo backend's API from outside the app (another device of the rider).
 */
import { execFile } from 'node:child_process'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'

const root = resolve(__dirname, '../..')

/** Builds the host for mp-weixin into dist/build/mp-weixin. */
export async function buildMpWeixin(): Promise<void> {
  await promisify(execFile)(process.execPath, [join(root, 'scripts/uni.mjs'), 'build', '-p', 'mp-weixin'], {
    cwd: root,
    env: { ...process.env, NODE_ENV: 'production' },
  })
}

/** One call to the backend at `base.url`: status and JSON body (every answer of the API is JSON). */
export async function apiCall(base: { url: string }, method: string, path: string, token?: string, body?: unknown) {
  const res = await fetch(base.url + path, {
    method,
    headers: { ...(body !== undefined && { 'content-type': 'application/json' }), ...(token && { authorization: `Bearer ${token}` }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  })
  // Each caller reads the fields it expects.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return { status: res.status, body: (await res.json()) as Record<string, any> }
}
