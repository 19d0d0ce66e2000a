/** Shared helpers for the backend tests: a backend on 127.0.0.1:0 with an in-memory log and its own data dir, HTTP calls, MQTT clients. */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import mqtt, { type IClientOptions, type MqttClient as MqttJsClient } from 'mqtt'
import { WebSocket } from 'ws'
import { createWebAdapter } from '../../uni_modules/longlink-socket/js_sdk/index'
import { createMqttClient, type MqttClient, type MqttClientOptions } from '../../uni_modules/longlink-socket/js_sdk/mqtt'
import { startBackend, type Backend } from '../../server/app'
import type { BackendConfig } from '../../server/config'
import { memoryLogger } from '../../server/log'
import { hashPassword } from '../../server/passwords'
import { within } from '../support/wait'

export type TestBackend = Backend & { log: ReturnType<typeof memoryLogger> }

/** Every log line of every backend started by {@link testBackend} in this file. */
export const allLogLines: string[][] = []

/** The seeded riders' password in every test backend. */
export const DEMO_PASSWORD = 'longlink-demo'

/** A fresh data dir (SQLite file, generated secrets) under the OS temp dir. */
export function tempDataDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'longlink-data-'))
}

export async function testBackend(config: Partial<BackendConfig> = {}, env: Record<string, string | undefined> = {}): Promise<TestBackend> {
  const log = memoryLogger()
  allLogLines.push(log.lines)
  const backend = await startBackend({
    env,
    config: { port: 0, unlockDelayMs: 30, dataDir: tempDataDir(), demoPassword: DEMO_PASSWORD, adminPassword: 'admin-secret-pw', ...config },
    logger: log,
  })
  backends.set(backend.url, backend)
  return Object.assign(backend, { log })
}

const backends = new Map<string, Backend>()
let sharedHash: Promise<string> | undefined

/**
 * Adds riders to a test backend's database with the demo password (one hash shared by all, so a thousand riders
 * cost one scrypt). The backend seeds only DEMO_RIDERS itself; tests name their own riders.
 */
export async function addRiders(backend: Backend, riders: string[], password = DEMO_PASSWORD): Promise<void> {
  const hash = await (password === DEMO_PASSWORD ? (sharedHash ??= hashPassword(DEMO_PASSWORD)) : hashPassword(password))
  for (const id of riders) await backend.store.addRider({ id: id.toLowerCase(), passwordHash: hash, wechatOpenId: null, createdAt: Date.now() })
}

// The body is JSON that each test reads as it expects; a test names the shape when it wants one checked.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type JsonBody = Record<string, any>

export interface ApiResult<T = JsonBody> {
  status: number
  body: T
}

export async function api<T = JsonBody>(
  base: string,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown } = {},
): Promise<ApiResult<T>> {
  const res = await fetch(base + path, {
    method,
    headers: {
      ...(opts.body !== undefined && { 'content-type': 'application/json' }),
      ...(opts.token && { authorization: `Bearer ${opts.token}` }),
    },
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    signal: AbortSignal.timeout(5000),
  })
  return { status: res.status, body: (await res.json()) as T }
}

/** Logs `rider` in (adding it to the test backend's database first when the backend was made by testBackend). */
export async function login(base: string, rider: string, password = DEMO_PASSWORD): Promise<string> {
  const backend = backends.get(base)
  if (backend && !(await backend.store.getRider(rider.toLowerCase()))) await addRiders(backend, [rider])
  const r = await api(base, 'POST', '/api/login', { body: { rider, password } })
  if (r.status !== 200) throw new Error(`login failed: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body.token as string
}

const clients: MqttClient[] = []

export function mqttClient(url: string, options: Partial<MqttClientOptions> = {}): MqttClient {
  const c = createMqttClient({
    url,
    platform: createWebAdapter(WebSocket as never),
    keepalive: 10,
    connectTimeout: 3000,
    reconnect: { min: 50, max: 300 },
    ...options,
  })
  clients.push(c)
  return c
}

/** Ends every client made by {@link mqttClient} (afterEach). */
export async function endClients(): Promise<void> {
  await Promise.all(clients.splice(0).map((c) => c.end(true).catch(() => {})))
}

const jsClients = new Set<MqttJsClient>()

/** A plain MQTT.js client without reconnect (errors are left to the caller's checks), ended by {@link endJsClients}. */
export function jsClient(url: string, opts: IClientOptions = {}): MqttJsClient {
  const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 3000, ...opts })
  c.on('error', () => {})
  return trackJsClient(c)
}

/** Has {@link endJsClients} end a client made elsewhere. */
export function trackJsClient(c: MqttJsClient): MqttJsClient {
  jsClients.add(c)
  return c
}

/** The CONNACK return code the backend answers an MQTT.js CONNECT with (0 = accepted; the client is left open then). */
export function connackCode(url: string, opts: IClientOptions = {}): Promise<{ code: number; client: MqttJsClient }> {
  const client = jsClient(url, opts)
  return within(
    new Promise((resolve, reject) => {
      client.on('packetreceive', (p) => {
        if (p.cmd === 'connack') resolve({ code: (p as { returnCode?: number }).returnCode ?? 0, client })
      })
      client.once('close', () => setTimeout(() => reject(new Error('closed without a CONNACK')), 50))
    }),
    4000,
    'CONNACK',
  )
}

/** Ends every MQTT.js client made by {@link jsClient} or tracked. */
export async function endJsClients(): Promise<void> {
  await Promise.all([...jsClients].map((c) => within(c.endAsync(true), 2000, 'MQTT.js end').catch(() => {})))
  jsClients.clear()
}
