/**
 * `npm run bench -- backend`: the demo backend as its own process on loopback.
 * - RSS per connected rider: server RSS (from /healthz) with 0 and with N plugin MQTT clients connected and subscribed.
 * - Back after a SIGKILL: N riders holding a bike each, subscribed to its unlock topic; the backend is SIGKILLed and
 *   started again on the same port and data dir; time until every client is open again (CONNACK + resubscription),
 *   and how many resubscriptions were refused.
 * - Log lines for 50,000 refused operations: 2,500 connections each sending one SUBSCRIBE with 20 forbidden filters.
 * Tokens are issued here with the backend's TOKEN_SECRET (the logins' scrypt is not what is measured).
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import mqtt from 'mqtt'
import { WebSocket } from 'ws'
import { createWebAdapter } from '../uni_modules/longlink-socket/js_sdk/index'
import { createMqttClient, type MqttClient } from '../uni_modules/longlink-socket/js_sdk/mqtt'
import { createTokenService } from '../server/tokens'
import { freePort, startBackendProcess } from '../tests/support/backend-process'
import { pool, sleep, until } from '../tests/support/wait'
import { round } from './lib/stats'

const SECRET = 'bench-secret-bench-secret-bench-secret'
const tokens = createTokenService(SECRET)

async function rss(base: string): Promise<number> {
  const body = (await (await fetch(base + '/healthz')).json()) as { process: { rssBytes: number } }
  return body.process.rssBytes
}

export async function benchBackend(): Promise<Record<string, unknown>> {
  const N = Number(process.env.BENCH_RIDERS ?? 1000)
  const riders = Array.from({ length: N }, (_, i) => `br${i}`)
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'longlink-bench-'))
  const port = await freePort()
  const env = {
    PORT: String(port),
    DATA_DIR: dataDir,
    TOKEN_SECRET: SECRET,
    DEMO_RIDERS: 'rider1',
    H5_DIR: dataDir,
    LIMIT_MAX_CONNECTIONS_PER_ADDRESS: '100000',
  }
  let server = await startBackendProcess(env)
  const clients: MqttClient[] = []
  try {
    const base = server.url
    await sleep(1000)
    const idle = await rss(base)
    const reopened = new Set<number>()
    const errors: string[] = []
    const t0 = performance.now()
    await pool(riders, 50, async (rider, i) => {
      const token = tokens.issue(rider, 3_600_000).token
      const res = await fetch(`${base}/api/bikes/bb${i}/reserve`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })
      if (res.status !== 200) throw new Error(`reserve ${res.status}`)
      const c = createMqttClient({
        url: `ws://127.0.0.1:${port}/mqtt`,
        platform: createWebAdapter(WebSocket as never),
        username: rider,
        password: token,
      })
      clients[i] = c
      c.on('error', (e) => errors.push(e.code))
      c.on('open', (e) => e.reconnected && reopened.add(i))
      await c.connect()
      await c.subscribe(`mobike/unlocked/bb${i}`, () => {}, { qos: 1 })
    })
    const connectMs = performance.now() - t0
    await sleep(2000)
    const loaded = await rss(base)
    const perClientKb = round((loaded - idle) / N / 1024, 1)
    console.log(`rss: idle ${round(idle / 2 ** 20, 1)} MB, ${N} riders ${round(loaded / 2 ** 20, 1)} MB → ${perClientKb} KB per rider`)

    await server.kill('SIGKILL')
    const killedAt = performance.now()
    server = await startBackendProcess(env)
    const startedMs = performance.now() - killedAt
    const allBack = await until(() => reopened.size === N, 60_000).then(
      () => true,
      () => false,
    )
    const backMs = performance.now() - killedAt
    const refusedResubscriptions = server.events('acl.subscribe.refused').length + errors.filter((e) => e === 'SUBSCRIBE_REFUSED').length
    console.log(
      `restart: process listening after ${round(startedMs, 0)} ms; ${reopened.size}/${N} back after ${round(backMs, 0)} ms; refused resubscriptions ${refusedResubscriptions}`,
    )
    await Promise.all(clients.map((c) => c.end(true).catch(() => {})))

    // 50,000 refused subscriptions: 2,500 connections × one SUBSCRIBE of 20 forbidden filters.
    const linesBefore = server.lines.length
    const filters = Array.from({ length: 20 }, (_, k) => `mobike/unlocked/nope${k}`)
    let refusedOps = 0
    const t1 = performance.now()
    await pool(
      Array.from({ length: 2500 }, (_, i) => i),
      25,
      async (i) => {
        const rider = riders[i % 100]
        const c = await mqtt.connectAsync(`ws://127.0.0.1:${port}/mqtt`, {
          username: rider,
          password: tokens.issue(rider, 600_000).token,
          reconnectPeriod: 0,
          keepalive: 30,
        })
        // MQTT.js rejects a SUBACK that refuses every filter; the refusals are in the packet either way.
        const granted = await c.subscribeAsync(filters).then(
          (g) => g.map((x) => x.qos),
          (err: { packet?: { granted?: number[] } }) => err.packet?.granted ?? [],
        )
        refusedOps += granted.filter((q) => q === 128).length
        await c.endAsync()
      },
    )
    // A clean stop flushes the bounded log's summary (`log.suppressed`) of the window still open.
    await server.kill('SIGTERM')
    const written = server.lines.slice(linesBefore)
    const logLines = written.length
    const refusalLines = written.filter((l) => l.includes('"event":"acl.subscribe.refused"')).length
    const suppressedLines = written.filter((l) => l.includes('"event":"log.suppressed"')).length
    const connectionLines = written.filter((l) => l.includes('"mqtt.connect"') || l.includes('"mqtt.disconnect"')).length
    console.log(
      `refusals: ${refusedOps} refused subscriptions in ${round((performance.now() - t1) / 1000, 1)} s → ${refusalLines} refusal lines + ${suppressedLines} log.suppressed ` +
        `(${logLines} lines in all, of which ${connectionLines} connect/disconnect lines of the ${N} + 2,500 connections)`,
    )
    return {
      riders: N,
      connectAndSubscribeSeconds: round(connectMs / 1000, 1),
      rssIdleMB: round(idle / 2 ** 20, 1),
      rssLoadedMB: round(loaded / 2 ** 20, 1),
      rssPerRiderKB: perClientKb,
      restartListeningMs: round(startedMs, 0),
      allBack,
      backAfterKillMs: round(backMs, 0),
      refusedResubscriptions,
      refusedOps,
      logLinesForRefusals: logLines,
      refusalLogLines: refusalLines,
      suppressedSummaryLines: suppressedLines,
    }
  } finally {
    await Promise.all(clients.map((c) => c.end(true).catch(() => {})))
    await server.kill('SIGTERM')
    fs.rmSync(dataDir, { recursive: true, force: true })
  }
}
