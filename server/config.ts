/**
 * Backend configuration, read once from the environment (or given directly in tests).
 *
 * | env | default | meaning |
 * |---|---|---|
 * | `HOST` | `127.0.0.1` | interface to listen on |
 * | `PORT` | `8090` | HTTP + WebSocket port; `0` lets the OS pick (tests) |
 * | `BROKER_URL` | — | when set, use that external MQTT broker (as an ordinary client) instead of the embedded aedes |
 * | `BROKER_USERNAME` / `BROKER_PASSWORD` | — | credentials of the service client on the external broker |
 * | `TOKEN_SECRET` | random per process | HMAC key for rider tokens |
 * | `TOKEN_TTL_MS` | `3600000` | lifetime of a login token |
 * | `UNLOCK_DELAY_MS` | `1500` | simulated time the lock takes to open |
 * | `RESERVE_TTL_MS` | `300000` | how long a reservation holds a bike |
 * | `FARE_PER_MINUTE` | `0.5` | ride price per started minute (yuan) |
 * | `H5_DIR` | `dist/build/h5` | static H5 build served at `/` when it exists |
 */
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export interface BackendConfig {
  host: string
  port: number
  /** External broker URL, or undefined for the embedded aedes. */
  brokerUrl?: string
  brokerUsername?: string
  brokerPassword?: string
  /** HMAC-SHA256 key for tokens. */
  tokenSecret: Buffer
  tokenTtlMs: number
  unlockDelayMs: number
  reserveTtlMs: number
  farePerMinute: number
  /** Folder of the H5 build served at `/` (only when it exists). */
  h5Dir: string
  /** Repository root (used to find the plugin sources for the admin bundle). */
  rootDir: string
}

export const ROOT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

function int(env: Record<string, string | undefined>, name: string, fallback: number, min = 0): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isFinite(n) || n < min) throw new Error(`${name} must be a number ≥ ${min}, got ${JSON.stringify(raw)}`)
  return n
}

/** Builds the configuration from `env` (default `process.env`); `overrides` win over the environment. */
export function loadConfig(env: Record<string, string | undefined> = process.env, overrides: Partial<BackendConfig> = {}): BackendConfig {
  const port = int(env, 'PORT', 8090)
  if (!Number.isInteger(port) || port > 65535) throw new Error(`PORT must be an integer 0..65535, got ${env.PORT}`)
  const config: BackendConfig = {
    host: env.HOST || '127.0.0.1',
    port,
    brokerUrl: env.BROKER_URL || undefined,
    brokerUsername: env.BROKER_USERNAME || undefined,
    brokerPassword: env.BROKER_PASSWORD || undefined,
    tokenSecret: env.TOKEN_SECRET ? Buffer.from(env.TOKEN_SECRET, 'utf8') : randomBytes(32),
    tokenTtlMs: int(env, 'TOKEN_TTL_MS', 60 * 60 * 1000, 1),
    unlockDelayMs: int(env, 'UNLOCK_DELAY_MS', 1500),
    reserveTtlMs: int(env, 'RESERVE_TTL_MS', 5 * 60 * 1000, 1),
    farePerMinute: int(env, 'FARE_PER_MINUTE', 0.5),
    h5Dir: env.H5_DIR ? path.resolve(env.H5_DIR) : path.join(ROOT_DIR, 'dist', 'build', 'h5'),
    rootDir: ROOT_DIR,
  }
  return { ...config, ...overrides }
}
