/** Shared helpers for the backend tests: a backend on 127.0.0.1:0 with an in-memory log, HTTP calls, MQTT clients. */
import { WebSocket } from 'ws'
import { createWebAdapter } from '../../uni_modules/longlink-socket/js_sdk/index'
import { createMqttClient, type MqttClient, type MqttClientOptions } from '../../uni_modules/longlink-socket/js_sdk/mqtt'
import { startBackend, type Backend } from '../../server/app'
import type { BackendConfig } from '../../server/config'
import { memoryLogger } from '../../server/log'

export type TestBackend = Backend & { log: ReturnType<typeof memoryLogger> }

/** Every log line of every backend started by {@link testBackend} in this file. */
export const allLogLines: string[][] = []

export async function testBackend(config: Partial<BackendConfig> = {}): Promise<TestBackend> {
  const log = memoryLogger()
  allLogLines.push(log.lines)
  const backend = await startBackend({ env: {}, config: { port: 0, unlockDelayMs: 30, ...config }, logger: log })
  return Object.assign(backend, { log })
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

export async function login(base: string, rider: string): Promise<string> {
  const r = await api(base, 'POST', '/api/login', { body: { rider } })
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
