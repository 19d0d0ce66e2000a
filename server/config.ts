/**
 * Backend configuration, read once from the environment (or given directly in tests). Every limit is a setting
 * with a default; README lists them all.
 *
 * | env | default | meaning |
 * |---|---|---|
 * | `HOST` | `127.0.0.1` | interface to listen on (`0.0.0.0` for a phone on the LAN: then `DEMO_PASSWORD` is required) |
 * | `PORT` | `8090` | HTTP + WebSocket port; `0` lets the OS pick (tests) |
 * | `DATA_DIR` | `<repo>/.data` | the SQLite database and generated secrets (created 0700) |
 * | `DATABASE_URL` | — | `postgres://…` to keep everything in PostgreSQL instead of SQLite (required by several processes) |
 * | `NODE_ENV` | — | `production` requires `TOKEN_SECRET` and `ADMIN_PASSWORD` from the environment |
 * | `TOKEN_SECRET` | generated once into `DATA_DIR/token-secret` | HMAC key for rider tokens |
 * | `TOKEN_TTL_MS` | `3600000` | lifetime of an access token (the MQTT link is closed when it expires) |
 * | `REFRESH_TTL_MS` | `2592000000` | lifetime of a refresh token (30 days) |
 * | `DEMO_RIDERS` | `rider1,rider2,rider3,rider4,rider5` | riders seeded on start |
 * | `DEMO_PASSWORD` | `longlink-demo` on loopback only | their password (required when `HOST` is not loopback, or `PUBLIC_ORIGIN`/`PUBLIC_MQTT_URL` is set) |
 * | `ADMIN_PASSWORD` | generated once into `DATA_DIR/admin-password` | the admin credential |
 * | `WECHAT_APPID` / `WECHAT_SECRET` | — | enable login with `uni.login` codes through WeChat's `jscode2session` |
 * | `WECHAT_DEV_LOGIN` | `1` on loopback | accept development codes `dev:<rider>` (only ever on loopback) |
 * | `ALLOWED_ORIGINS` | the backend's own origins | extra browser origins allowed on WebSockets and for CORS (comma list) |
 * | `ALLOW_NO_ORIGIN` | `1` | accept WebSocket handshakes without `Origin` (mini-programs and apps send none) |
 * | `PUBLIC_ORIGIN` | — | the backend's public origin, e.g. `https://bikes.example.com` (then the MQTT URL is built from it) |
 * | `PUBLIC_MQTT_URL` | — | what `/api/config` answers (default: `BROKER_URL` without credentials, or `<origin>/mqtt`) |
 * | `BROKER_URL` | — | when set, use that external MQTT broker instead of the embedded aedes |
 * | `BROKER_USERNAME` / `BROKER_PASSWORD` | — | credentials of the service client on the external broker |
 * | `REDIS_URL` | — | `redis://…`: several processes share one embedded broker state (routing, sessions, retained messages, client id bindings) through Redis; needs `DATABASE_URL`, excludes `BROKER_URL` |
 * | `NODE_ID` | `<hostname>:<pid>` | this process's name in the shared state (unique per running process) |
 * | `TAKEOVER_SWEEP_MS` | `1000` with `REDIS_URL` or `DATABASE_URL`, else `0` | how often a process finishes unlocks another process left overdue (it may have died); `0`: never |
 * | `TAKEOVER_GRACE_MS` | `2000` | how long past its time an unlock must be before another process finishes it |
 * | `UNLOCK_DELAY_MS` | `1500` | simulated time the lock takes to open |
 * | `RESUME_GRACE_MS` | `3000` | after a restart, unlocks that fell due while down open this long after start (clients resubscribe first) |
 * | `RESERVE_TTL_MS` | `300000` | how long a reservation holds a bike |
 * | `FARE_PER_MINUTE` | `0.5` | ride price per started minute (yuan) |
 * | `H5_DIR` | `dist/build/h5` | static H5 build served at `/` when it exists |
 * | `ADMIN_DIR` | `dist/build/admin` | the admin page's build |
 * | `LIMIT_*` | see {@link DEFAULT_LIMITS} | e.g. `LIMIT_MQTT_MAX_PACKET_BYTES=65536` |
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { isPostgresUrl } from './store/open'

/** Every bound the backend enforces. Env: `LIMIT_` + the name in upper snake case. */
export interface Limits {
  /** Largest request line + headers (bytes); over it the answer is 431. */
  httpMaxHeaderBytes: number
  /** Time for a request's headers to arrive (ms); then 408. */
  httpHeadersTimeoutMs: number
  /** Time for a whole request, body included (ms); then 408. */
  httpRequestTimeoutMs: number
  /** Largest JSON body (bytes); then 413. */
  httpMaxBodyBytes: number
  /** Idle keep-alive connections are closed after this (ms). */
  httpKeepAliveTimeoutMs: number
  /**
   * Connections the kernel may hold for the backend before it accepts them (capped by `net.core.somaxconn`). Node's
   * default, 511, overflows when thousands of riders reconnect at once: each dropped SYN costs its rider a 1 s (then
   * 3 s, 7 s) retransmission.
   */
  listenBacklog: number
  /** Largest MQTT packet (bytes, fixed header included); a client announcing more is cut off at once. */
  mqttMaxPacketBytes: number
  /** Largest WebSocket message on `/mqtt` (bytes). */
  mqttMaxWsPayloadBytes: number
  /** Time from the WebSocket upgrade to CONNECT (ms). */
  mqttConnectTimeoutMs: number
  /** Keepalive a client may ask for (seconds); 0 (none) and longer ones are refused. */
  mqttMinKeepaliveS: number
  mqttMaxKeepaliveS: number
  /** Simultaneous MQTT connections of one rider. */
  maxConnectionsPerRider: number
  /** Client ids of one rider with a persistent session (`clean: false`) the broker keeps. */
  maxPersistentSessionsPerRider: number
  /** Longest client id (characters `A-Z a-z 0-9 _ - . : @`). */
  maxClientIdLength: number
  /** Subscriptions one MQTT connection may hold. */
  maxSubscriptionsPerConnection: number
  /** How long a delivery may wait for a slow subscriber's socket to drain before that subscriber is dropped (ms). */
  mqttDrainTimeoutMs: number
  /** Simultaneous WebSocket connections and HTTP-transport sessions of `/mqtt` from one remote address (all paths). */
  maxConnectionsPerAddress: number
  /** `/mqtt` over HTTP (LongLink sessions): how long a long poll is held when there is nothing to send (ms, at most 50000). */
  longlinkHoldMs: number
  /** `/mqtt` over HTTP: an SSE stream ends after this and the client opens the next (ms, at most 50000). */
  longlinkMaxStreamMs: number
  /** `/mqtt` over HTTP: a session with no request and no carrier for this long expires (ms). */
  longlinkIdleMs: number
  /** `/mqtt` over HTTP: bytes sent to one session and not yet acknowledged; as much again may wait. */
  longlinkMaxBufferBytes: number
  /** `/mqtt` over HTTP: largest POST body (bytes); over it 413. */
  longlinkMaxRequestBytes: number
  /** `/mqtt` over HTTP: sessions in all; more get 503. */
  longlinkMaxSessions: number
  /** Refused operations (subscribe, publish) one connection may collect in `refusalWindowMs` before it is cut off. */
  maxRefusalsPerConnection: number
  refusalWindowMs: number
  /** Log lines per refusal event per `logWindowMs`; the rest are counted in one `log.suppressed` line. */
  refusalLogLines: number
  logWindowMs: number
  /** Failed logins per remote address per minute before 429. */
  loginFailuresPerMinute: number
  /** Largest WebSocket message on `/admin/live` (bytes). */
  adminMaxWsPayloadBytes: number
  /** Simultaneous viewers of `/admin/live`. */
  adminMaxViewers: number
  /** Failed admin logins per remote address per minute before 429. */
  adminLoginFailuresPerMinute: number
}

export const DEFAULT_LIMITS: Limits = {
  httpMaxHeaderBytes: 16 * 1024,
  httpHeadersTimeoutMs: 10_000,
  httpRequestTimeoutMs: 30_000,
  httpMaxBodyBytes: 16 * 1024,
  httpKeepAliveTimeoutMs: 5_000,
  listenBacklog: 4096,
  mqttMaxPacketBytes: 64 * 1024,
  mqttMaxWsPayloadBytes: 64 * 1024 + 8,
  mqttConnectTimeoutMs: 10_000,
  mqttMinKeepaliveS: 5,
  mqttMaxKeepaliveS: 600,
  maxConnectionsPerRider: 5,
  maxPersistentSessionsPerRider: 2,
  maxClientIdLength: 64,
  maxSubscriptionsPerConnection: 50,
  mqttDrainTimeoutMs: 5_000,
  maxConnectionsPerAddress: 1000,
  longlinkHoldMs: 25_000,
  longlinkMaxStreamMs: 45_000,
  longlinkIdleMs: 60_000,
  longlinkMaxBufferBytes: 256 * 1024,
  longlinkMaxRequestBytes: 256 * 1024,
  longlinkMaxSessions: 10_000,
  maxRefusalsPerConnection: 20,
  refusalWindowMs: 60_000,
  refusalLogLines: 20,
  logWindowMs: 60_000,
  loginFailuresPerMinute: 10,
  adminMaxWsPayloadBytes: 4096,
  adminMaxViewers: 64,
  adminLoginFailuresPerMinute: 5,
}

export interface BackendConfig {
  host: string
  port: number
  dataDir: string
  /** PostgreSQL URL, or undefined for the SQLite file in `dataDir`. */
  databaseUrl?: string
  production: boolean
  /** External broker URL, or undefined for the embedded aedes. */
  brokerUrl?: string
  brokerUsername?: string
  brokerPassword?: string
  /** Redis URL shared by several backend processes (embedded broker only), or undefined for one process. */
  redisUrl?: string
  /** This process's name in the shared state. */
  nodeId: string
  /** How often overdue unlocks of other processes are finished (ms); 0: never. */
  takeoverSweepMs: number
  /** How far past its `unlockAt` an unlock must be before the sweep finishes it (ms). */
  takeoverGraceMs: number
  /** HMAC-SHA256 key for tokens. */
  tokenSecret: Buffer
  tokenTtlMs: number
  refreshTtlMs: number
  demoRiders: string[]
  /** Password of the seeded riders, or undefined (then they cannot log in with a password). */
  demoPassword?: string
  adminPassword: string
  /** Where the generated admin password lives (undefined when it comes from `ADMIN_PASSWORD`). */
  adminPasswordFile?: string
  wechat?: { appId: string; secret: string; apiBase: string }
  /** Accept `dev:<rider>` login codes (loopback only). */
  wechatDevLogin: boolean
  /** Browser origins allowed on WebSockets and for CORS, besides the backend's own. */
  allowedOrigins: string[]
  allowNoOrigin: boolean
  publicOrigin?: string
  publicMqttUrl?: string
  unlockDelayMs: number
  resumeGraceMs: number
  reserveTtlMs: number
  farePerMinute: number
  /** Folder of the H5 build served at `/` (only when it exists). */
  h5Dir: string
  /** Folder of the admin page's build. */
  adminDir: string
  rootDir: string
  limits: Limits
}

export const ROOT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

type Env = Record<string, string | undefined>

function num(env: Env, name: string, fallback: number, min = 0): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isFinite(n) || n < min) throw new Error(`${name} must be a number ≥ ${min}, got ${JSON.stringify(raw)}`)
  return n
}

const flag = (env: Env, name: string, fallback: boolean): boolean => {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  return !/^(0|false|no|off)$/i.test(raw)
}

const list = (raw: string | undefined): string[] | undefined =>
  raw === undefined || raw.trim() === ''
    ? undefined
    : raw
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)

/** True for addresses only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

const snake = (name: string): string => name.replace(/[A-Z]/g, (c) => '_' + c).toUpperCase()

/**
 * A secret from the environment, else one generated once into `dataDir/<file>` (mode 0600) and read back on every
 * later start, so tokens and the admin login survive restarts.
 */
function persistedSecret(dataDir: string, file: string, bytes: number): { value: string; file: string } {
  const full = path.join(dataDir, file)
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  try {
    return { value: fs.readFileSync(full, 'utf8').trim(), file: full }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const value = randomBytes(bytes).toString('base64url')
  try {
    // `wx`: when two processes start at once, the first file wins and the other reads it.
    fs.writeFileSync(full, value + '\n', { mode: 0o600, flag: 'wx' })
    return { value, file: full }
  } catch {
    return { value: fs.readFileSync(full, 'utf8').trim(), file: full }
  }
}

/** Builds the configuration from `env` (default `process.env`); `overrides` win over the environment. */
export function loadConfig(env: Env = process.env, overrides: Partial<BackendConfig> = {}): BackendConfig {
  const port = overrides.port ?? num(env, 'PORT', 8090)
  if (!Number.isInteger(port) || port > 65535) throw new Error(`PORT must be an integer 0..65535, got ${port}`)
  const host = overrides.host ?? (env.HOST || '127.0.0.1')
  // Behind a reverse proxy the backend listens on loopback yet is public: a public origin or URL says so.
  const loopback = isLoopbackHost(host) && !env.PUBLIC_ORIGIN && !env.PUBLIC_MQTT_URL && !overrides.publicOrigin && !overrides.publicMqttUrl
  const production = overrides.production ?? env.NODE_ENV === 'production'
  const dataDir = overrides.dataDir ?? path.resolve(env.DATA_DIR || path.join(ROOT_DIR, '.data'))

  const limits = { ...DEFAULT_LIMITS }
  for (const key of Object.keys(limits) as (keyof Limits)[]) limits[key] = num(env, 'LIMIT_' + snake(key), limits[key], 0)
  Object.assign(limits, overrides.limits)

  let tokenSecret = overrides.tokenSecret
  if (!tokenSecret) {
    if (env.TOKEN_SECRET) tokenSecret = Buffer.from(env.TOKEN_SECRET, 'utf8')
    else if (production) throw new Error('TOKEN_SECRET is required when NODE_ENV=production')
    else tokenSecret = Buffer.from(persistedSecret(dataDir, 'token-secret', 32).value, 'utf8')
  }
  let adminPassword = overrides.adminPassword
  let adminPasswordFile = overrides.adminPasswordFile
  if (!adminPassword) {
    if (env.ADMIN_PASSWORD) adminPassword = env.ADMIN_PASSWORD
    else if (production) throw new Error('ADMIN_PASSWORD is required when NODE_ENV=production')
    else ({ value: adminPassword, file: adminPasswordFile } = persistedSecret(dataDir, 'admin-password', 18))
  }

  // The well-known demo password only where nobody else can reach the backend.
  const demoPassword =
    'demoPassword' in overrides ? overrides.demoPassword : env.DEMO_PASSWORD || (loopback && !production ? 'longlink-demo' : undefined)
  const wechat =
    env.WECHAT_APPID && env.WECHAT_SECRET
      ? { appId: env.WECHAT_APPID, secret: env.WECHAT_SECRET, apiBase: env.WECHAT_API_BASE || 'https://api.weixin.qq.com' }
      : undefined

  const config: BackendConfig = {
    host,
    port,
    dataDir,
    databaseUrl: env.DATABASE_URL || undefined,
    production,
    brokerUrl: env.BROKER_URL || undefined,
    brokerUsername: env.BROKER_USERNAME || undefined,
    brokerPassword: env.BROKER_PASSWORD || undefined,
    redisUrl: env.REDIS_URL || undefined,
    nodeId: env.NODE_ID || `${os.hostname()}:${process.pid}`,
    takeoverSweepMs: num(env, 'TAKEOVER_SWEEP_MS', 0),
    takeoverGraceMs: num(env, 'TAKEOVER_GRACE_MS', 2000),
    tokenSecret,
    tokenTtlMs: num(env, 'TOKEN_TTL_MS', 60 * 60 * 1000, 1),
    refreshTtlMs: num(env, 'REFRESH_TTL_MS', 30 * 24 * 60 * 60 * 1000, 1),
    demoRiders: list(env.DEMO_RIDERS) ?? ['rider1', 'rider2', 'rider3', 'rider4', 'rider5'],
    demoPassword,
    adminPassword,
    adminPasswordFile,
    wechat,
    wechatDevLogin: flag(env, 'WECHAT_DEV_LOGIN', !production) && loopback,
    allowedOrigins: list(env.ALLOWED_ORIGINS) ?? [],
    allowNoOrigin: flag(env, 'ALLOW_NO_ORIGIN', true),
    publicOrigin: env.PUBLIC_ORIGIN?.replace(/\/+$/, '') || undefined,
    publicMqttUrl: env.PUBLIC_MQTT_URL || undefined,
    unlockDelayMs: num(env, 'UNLOCK_DELAY_MS', 1500),
    resumeGraceMs: num(env, 'RESUME_GRACE_MS', 3000),
    reserveTtlMs: num(env, 'RESERVE_TTL_MS', 5 * 60 * 1000, 1),
    farePerMinute: num(env, 'FARE_PER_MINUTE', 0.5),
    h5Dir: env.H5_DIR ? path.resolve(env.H5_DIR) : path.join(ROOT_DIR, 'dist', 'build', 'h5'),
    adminDir: env.ADMIN_DIR ? path.resolve(env.ADMIN_DIR) : path.join(ROOT_DIR, 'dist', 'build', 'admin'),
    rootDir: ROOT_DIR,
    limits,
  }
  const merged = { ...config, ...overrides, limits, tokenSecret, adminPassword, adminPasswordFile, demoPassword }
  if (merged.wechatDevLogin && !loopback) merged.wechatDevLogin = false
  if (merged.demoPassword !== undefined && merged.demoPassword.length < 8) throw new Error('DEMO_PASSWORD must have at least 8 characters')
  // Only a shared store can hold another process's unlocks (one SQLite file has one process): the default follows
  // the store actually used, overrides included.
  if (overrides.takeoverSweepMs === undefined && !env.TAKEOVER_SWEEP_MS)
    merged.takeoverSweepMs = merged.redisUrl || isPostgresUrl(merged.databaseUrl) ? 1000 : 0
  checkCluster(merged)
  return merged
}

/**
 * Refuses settings that cannot make one cluster. `REDIS_URL` shares the embedded broker, so with `BROKER_URL` it
 * would share nothing. Without `DATABASE_URL` every process would keep its rides in its own SQLite file, and a
 * balancer sending a rider's requests to two processes would see its bike reserved on one and unknown on the other;
 * a warning would let that run and fail at random, and one process alone gains nothing from Redis, so the start
 * is refused.
 */
function checkCluster(config: BackendConfig): void {
  if (!config.redisUrl) return
  if (config.brokerUrl)
    throw new Error('REDIS_URL and BROKER_URL exclude each other: REDIS_URL clusters the embedded broker, BROKER_URL replaces it; set one')
  if (!isPostgresUrl(config.databaseUrl))
    throw new Error(
      'REDIS_URL needs DATABASE_URL (postgres://…): processes sharing one broker must share one PostgreSQL database (SQLite is one file per process)',
    )
}

/** The addresses of this machine (for recognising its own origins and Host headers). */
export function ownAddresses(): string[] {
  const out = new Set(['localhost', '127.0.0.1', '::1'])
  for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) out.add(a.address)
  return [...out]
}

/** Settings of the event streams. */
export interface StreamSettings {
  /** Default length of one ride events stream (ms), when the request names none. */
  maxStreamMs: number
  heartbeatMs: number
  /** The `retry:` sent on ride events streams (ms). */
  retryMs: number
  /** Open ride events streams per rider; a new one closes the oldest. */
  streamsPerRider: number
  /** Pace of the assistant's tokens (ms between two). */
  assistantTokenMs: number
  /**
   * A ride events stream also reads the store this often (ms; 0: never). Events are announced within one process;
   * backends sharing a PostgreSQL database hear each other's only this way.
   */
  pollMs: number
}

/**
 * Settings of the event streams (`GET /api/rides/events`, `POST /api/assistant/summary`):
 *
 * | env | default | meaning |
 * |---|---|---|
 * | `SSE_MAX_STREAM_MS` | `50000` | length of a ride events stream whose request names no `maxStreamMs` (kept within 1000..55000) |
 * | `SSE_HEARTBEAT_MS` | `15000` | a `: hb` comment this often on every stream (0: none) |
 * | `SSE_RETRY_MS` | `2000` | the `retry:` of ride events streams: the client's wait before it reconnects |
 * | `SSE_STREAMS_PER_RIDER` | `3` | open streams per rider and endpoint; a new one closes the rider's oldest |
 * | `SSE_STREAMS_PER_ADDRESS` | `LIMIT_MAX_CONNECTIONS_PER_ADDRESS` | open streams per remote address; more are refused (429) |
 * | `SSE_POLL_MS` | `2000` with PostgreSQL, else `0` | a ride events stream also reads the store this often: how it hears the events of other backends on the same database (0: never) |
 * | `ASSISTANT_TOKEN_MS` | `30` | pace of the assistant's tokens |
 */
export interface SseSettings extends StreamSettings {
  streamsPerAddress: number
}

/** Reads {@link SseSettings} from `env`; `overrides` win. `database` picks the default of `pollMs`. */
export function loadSseSettings(
  env: Record<string, string | undefined>,
  limits: Limits,
  database: 'sqlite' | 'postgres',
  overrides: Partial<SseSettings> = {},
): SseSettings {
  const int = (name: string, fallback: number, min: number): number => {
    const raw = env[name]
    if (raw === undefined || raw === '') return fallback
    const n = Number(raw)
    if (!Number.isSafeInteger(n) || n < min) throw new Error(`${name} must be an integer ≥ ${min}, got ${JSON.stringify(raw)}`)
    return n
  }
  return {
    maxStreamMs: int('SSE_MAX_STREAM_MS', 50_000, 1),
    heartbeatMs: int('SSE_HEARTBEAT_MS', 15_000, 0),
    retryMs: int('SSE_RETRY_MS', 2_000, 0),
    streamsPerRider: int('SSE_STREAMS_PER_RIDER', 3, 1),
    streamsPerAddress: int('SSE_STREAMS_PER_ADDRESS', limits.maxConnectionsPerAddress, 1),
    assistantTokenMs: int('ASSISTANT_TOKEN_MS', 30, 0),
    // One SQLite file has one backend; a PostgreSQL database may have several.
    pollMs: int('SSE_POLL_MS', database === 'postgres' ? 2_000 : 0, 0),
    ...overrides,
  }
}
