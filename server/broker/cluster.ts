/**
 * The shared state of several backend processes running one embedded broker (`REDIS_URL`): aedes' own clustering
 * packages, `mqemitter-redis` (every publish reaches the subscribers of every process) and `aedes-persistence-redis`
 * (sessions, subscriptions, offline and retained messages), plus the client id bindings of ./redis-bindings. One
 * Redis server (not Redis Cluster: a binding's keys may live in different slots).
 *
 * Four connections: the persistence's, the routing's two (a subscribed connection can send nothing else) and one for
 * the bindings. The start waits until all four are ready, within a deadline, so a Redis that is away fails the start
 * instead of hanging it; later outages are logged and ioredis reconnects.
 */
import aedesPersistenceRedis from 'aedes-persistence-redis'
import { Redis, type RedisOptions } from 'ioredis'
import MQEmitterRedis from 'mqemitter-redis'
import { publicBrokerUrl } from '../bus'
import type { Logger } from '../log'
import type { ClusterBindings } from './bindings'
import { createRedisBindings } from './redis-bindings'

/** What the embedded broker takes to join the cluster. */
export interface ClusterState {
  /** aedes' `persistence` option. */
  readonly persistence: unknown
  /** aedes' `mq` option (aedes closes it itself when it closes). */
  readonly mq: unknown
  readonly bindings: ClusterBindings
  /** True while every connection to Redis is up. */
  ok(): boolean
  /** Closes the persistence and every connection; call after aedes has closed (idempotent). */
  close(): Promise<void>
}

export interface ClusterOptions {
  /** `redis://[user:password@]host:port[/db]` (or `rediss://`). */
  url: string
  /** This process's name in the bindings. */
  nodeId: string
  /** How long a binding of clean sessions outlives its last claim (ms; above the token lifetime). */
  bindingTtlMs: number
  /** How long a persistent session's binding outlives its last claim (ms; the refresh token's life). */
  sessionTtlMs: number
  logger: Logger
  /** Deadline for the first connection (ms). */
  timeoutMs?: number
}

/** Offline messages kept for a persistent session that does not come back (s): a day, then Redis drops them. */
const OFFLINE_TTL_S = 24 * 60 * 60
/** A Redis call on the bindings' connection fails after this (ms): a CONNECT is never held longer. */
const COMMAND_TIMEOUT_MS = 2000

/** Connects to Redis and builds the cluster state; rejects when Redis is not ready within the deadline. */
export async function connectCluster(opts: ClusterOptions): Promise<ClusterState> {
  const { logger } = opts
  const shown = publicBrokerUrl(opts.url)
  const timeoutMs = opts.timeoutMs ?? 10_000
  const open = (role: string, extra: RedisOptions = {}): Redis => {
    const redis = new Redis(opts.url, { connectTimeout: timeoutMs, connectionName: `longlink:${opts.nodeId}:${role}`, ...extra })
    // Without a listener ioredis prints every failed reconnect; the message may not quote the URL's password.
    redis.on('error', (err: Error & { code?: unknown }) =>
      logger.warn('redis.error', { redis: shown, role, code: err.code, message: err.message.split(opts.url).join(shown) }),
    )
    return redis
  }
  const db = open('persistence')
  const sub = open('routing-sub')
  const pub = open('routing-pub')
  const cmd = open('bindings', { enableOfflineQueue: false, commandTimeout: COMMAND_TIMEOUT_MS })
  const all = [db, sub, pub, cmd]
  const disconnectAll = (): void => {
    for (const r of all) r.disconnect()
  }

  try {
    await Promise.all(
      all.map(
        (r) =>
          new Promise<void>((resolve, reject) => {
            if (r.status === 'ready') return resolve()
            const timer = setTimeout(() => reject(new Error(`Redis ${shown} not ready within ${timeoutMs} ms`)), timeoutMs)
            r.once('ready', () => {
              clearTimeout(timer)
              resolve()
            })
          }),
      ),
    )
  } catch (err) {
    disconnectAll()
    throw err
  }

  const persistence = aedesPersistenceRedis({ conn: db, packetTTL: () => OFFLINE_TTL_S })
  // matchEmptyLevels as aedes' own default emitter: `a/#` also matches `a` [MQTT-4.7.1-3].
  const mq = MQEmitterRedis({ subConn: sub, pubConn: pub, matchEmptyLevels: true })
  // The emitter re-emits its connections' errors (logged above) on `state`: an 'error' there without a listener
  // would throw out of ioredis' handler. Missing from its typings.
  ;(mq as unknown as { state: NodeJS.EventEmitter }).state.on('error', () => {})
  logger.info('redis.connected', { redis: shown, node: opts.nodeId })

  let closing: Promise<void> | undefined
  return {
    persistence,
    mq,
    bindings: createRedisBindings(cmd, opts.nodeId, opts.bindingTtlMs, opts.sessionTtlMs),
    ok: () => all.every((r) => r.status === 'ready'),
    close: () =>
      (closing ??= (async () => {
        // Unsubscribes its broadcast topic, then disconnects its own connection; bounded, as Redis may be away.
        await Promise.race([persistence.destroy().catch(() => {}), new Promise((r) => setTimeout(r, 1000).unref())])
        disconnectAll()
      })()),
  }
}
