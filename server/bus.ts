/**
 * A {@link Bus} over an external broker (`BROKER_URL`): an ordinary MQTT.js client that reconnects every second while
 * the broker is down. The URL's credentials never reach a log line: only its host and port are named.
 *
 * **Several backend processes on one external broker** (mosquitto here; EMQX or another clustered broker in
 * production) need no setting of their own: this client only publishes and subscribes to nothing, so no message is
 * handled twice. What the cluster needs is on the broker's side: every process and every rider on the same broker
 * (or broker cluster), the riders' persistent sessions kept by it, the riders' ACL and authentication enforced by it
 * (the embedded broker's rider policy does not run there), and `DATABASE_URL` shared by the processes. Should a
 * backend consumer ever subscribe here, it must use a shared subscription (`$share/<group>/<filter>`, MQTT 5, also
 * accepted from 3.1.1 clients by mosquitto 2 and EMQX) so each message reaches one process of the group, not all.
 */
import mqtt from 'mqtt'
import type { Metrics } from './metrics'
import type { Logger } from './log'

/** Where the backend publishes (the embedded broker directly, or an MQTT client of an external broker). */
export interface Bus {
  publish(topic: string, payload: object, qos: 0 | 1): Promise<void>
}

/** `mqtt://user:pass@host:1883/x` → `mqtt://host:1883` (for logs and for what the app is told). */
export function publicBrokerUrl(url: string): string {
  try {
    const u = new URL(url)
    u.username = ''
    u.password = ''
    return u.toString().replace(/\/$/, '')
  } catch {
    return '(unparsable broker URL)'
  }
}

export async function connectExternalBus(opts: {
  url: string
  username?: string
  password?: string
  logger: Logger
  metrics: Metrics
  timeoutMs?: number
}): Promise<Bus & { close(): Promise<void>; connected(): boolean }> {
  const { logger } = opts
  const shown = publicBrokerUrl(opts.url)
  const client = mqtt.connect(opts.url, {
    username: opts.username,
    password: opts.password,
    clientId: `longlink-backend-${Math.random().toString(36).slice(2, 10)}`,
    reconnectPeriod: 1000,
    connectTimeout: opts.timeoutMs ?? 10_000,
  })
  // MQTT.js error messages can quote the URL it was given: log the code and a redacted message only.
  client.on('error', (err: Error & { code?: unknown }) =>
    logger.error('bus.error', { broker: shown, code: err.code, message: err.message.split(opts.url).join(shown) }),
  )
  client.on('close', () => logger.warn('bus.disconnect', { broker: shown }))
  client.on('connect', () => logger.info('bus.connect', { broker: shown }))
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      client.end(true)
      reject(new Error(`external broker ${shown} not reachable within ${opts.timeoutMs ?? 10_000} ms`))
    }, opts.timeoutMs ?? 10_000)
    client.once('connect', () => {
      clearTimeout(timer)
      resolve()
    })
    // A refused service login will not get better by retrying: fail the start at once (3.1.1 codes 4/5, 5.0 0x86/0x87).
    client.on('error', (err: Error & { code?: unknown }) => {
      if (client.connected || ![4, 5, 134, 135].includes(Number(err.code))) return
      clearTimeout(timer)
      client.end(true)
      reject(new Error(`external broker ${shown} refused the service login (code ${String(err.code)})`))
    })
  })
  return {
    async publish(topic, payload, qos) {
      await client.publishAsync(topic, JSON.stringify(payload), { qos })
      opts.metrics.countIn()
    },
    connected: () => client.connected,
    close: async () => {
      await client.endAsync(true)
    },
  }
}
