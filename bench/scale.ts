/**
 * `npm run bench -- scale`: the demo backend under many riders, on this machine's loopback. Three processes: the
 * backend (compiled as a deployment would run it, with `--expose-gc` so its memory can be read after a collection),
 * a rider fleet, and this one, which drives them. Riders connect from many source addresses in 127.0.0.0/8, so the
 * backend's per-address limit stays in force and is never what is measured. Every phase is bounded in count and time.
 *
 * 1. Ramp: minimal MQTT riders (CONNECT, SUBSCRIBE `riders/<rider>/#`) up to 1k / 5k / 10k / 19.5k: connect+subscribe
 *    rate, backend RSS and RSS per rider.
 * 2. Delivery at half load (9,750 riders; the others leave after the ramp): targeted QoS 0 messages from the backend's broker to random riders, as fast
 *    as it takes them, then paced at half of that rate, then at {@link PACED_RATE}/s: delivered per second, latency
 *    p50/p99 from the publish to the rider's socket, messages lost, and the backend's CPU time per delivered message.
 * 3. Storms: N riders of one kind (the plugin with its defaults, MQTT.js with its defaults), the backend SIGKILLed and
 *    started again at once on the same port and data: time until 50/99/100% are back with their subscription, from
 *    the kill and from the moment the new process listens, and the connection attempts made meanwhile.
 *    `SCALE_OUTAGE_MS` keeps the backend down that long first; `SCALE_PLUGIN_RECONNECT` (JSON) gives the plugin other
 *    reconnect options, e.g. `{"refusedWeight":1}` for the plain exponential ladder.
 */
import { fork, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createTokenService } from '../server/tokens'
import { freePort } from '../tests/support/ports'
import { compile } from './lib/compile'
import { round } from './lib/stats'
import { caller, wallNow } from './scale/ipc'

const SECRET = 'scale-bench-secret-scale-bench-secret'
const RAMP = (process.env.SCALE_RAMP ?? '1000,5000,10000,19500').split(',').filter(Boolean).map(Number)
const HALF_LOAD = Number(process.env.SCALE_HALF ?? 9750)
const STORM_SIZES = (process.env.SCALE_STORMS ?? '1,1000,3000,5000').split(',').filter(Boolean).map(Number)
const PACED_RATE = Number(process.env.SCALE_PACED_RATE ?? 24_000)
const PACED_SECONDS = 10
const SATURATION_MESSAGES = 150_000
/** How long the backend stays down in a storm before it is started again (ms; default: at once). */
const OUTAGE_MS = Number(process.env.SCALE_OUTAGE_MS ?? 0)
/** The plugin's reconnect options in the storms (JSON; default: the plugin's defaults), to compare policies. */
const PLUGIN_RECONNECT = process.env.SCALE_PLUGIN_RECONNECT ? (JSON.parse(process.env.SCALE_PLUGIN_RECONNECT) as object) : undefined
/** Riders per source address: under the backend's default of 1,000 connections per address. */
const PER_ADDRESS = 800

const tokens = createTokenService(SECRET)

interface Harness {
  child: ChildProcess
  call: ReturnType<typeof caller>
  listeningAt: number
  exited: Promise<unknown>
}

/** Starts the compiled backend harness and resolves once it listens. */
async function startHarness(file: string, env: Record<string, string>): Promise<Harness> {
  // Its log lines go to a file in its data dir, as a deployment's go to a file or a journal (and cost what they cost).
  const log = fs.openSync(path.join(env.DATA_DIR, 'backend.log'), 'a')
  const child = fork(file, [], {
    execArgv: [
      '--expose-gc',
      ...(process.env.SCALE_NODE_FLAGS ?? '').split(' ').filter(Boolean),
      ...(process.env.SCALE_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.SCALE_PROFILE}`] : []),
    ],
    env: { ...process.env, ...env },
    stdio: ['ignore', log, 'inherit', 'ipc'],
  })
  fs.closeSync(log)
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const listeningAt = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('backend did not listen within 30 s')), 30_000)
    child.on('message', (m: { listening?: number }) => {
      if (m.listening) {
        clearTimeout(timer)
        resolve(m.listening)
      }
    })
    child.once('exit', (code) => reject(new Error(`backend exited (${code}) before listening`)))
  })
  return { child, call: caller(child), listeningAt, exited }
}

async function stop(h: Harness | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!h || h.child.exitCode !== null || h.child.signalCode !== null) return
  h.child.kill(signal)
  await Promise.race([h.exited, new Promise((r) => setTimeout(r, 10_000))])
  if (h.child.exitCode === null && h.child.signalCode === null) h.child.kill('SIGKILL')
}

function fleet(file: string): { child: ChildProcess; call: ReturnType<typeof caller> } {
  const profile = process.env.SCALE_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.SCALE_PROFILE}/fleet`] : []
  const child = fork(path.join(__dirname, 'scale', file), [], {
    execArgv: ['--import', 'tsx', ...profile],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  return { child, call: caller(child) }
}

/** Disconnects a fleet (it exits by itself on that, writing its profile if asked), killing it if it lingers. */
async function endFleet(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const gone = new Promise((r) => child.once('exit', r))
  if (child.connected) child.disconnect()
  await Promise.race([gone, sleep(10_000)])
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
}

/** The kernel's count of connections dropped because a listen queue was full (Linux; null elsewhere). */
function listenOverflows(): number | null {
  try {
    const lines = fs
      .readFileSync('/proc/net/netstat', 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('TcpExt:'))
    const keys = lines[0].split(/\s+/)
    const values = lines[1].split(/\s+/)
    return Number(values[keys.indexOf('ListenOverflows')])
  } catch {
    return null
  }
}

const mb = (bytes: number): number => round(bytes / 2 ** 20, 1)
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

interface Deliveries {
  received: number
  firstAt: number
  lastAt: number
  p50: number
  p99: number
  max: number
}

/** Publishes through the backend and waits (bounded) until the fleet has what was sent. */
async function deliver(backend: Harness, riders: ReturnType<typeof fleet>, names: string[], count: number, rate: number) {
  await riders.call('reset')
  const cpuBefore = await backend.call<number>('cpu')
  const { sent, ms } = await backend.call<{ sent: number; ms: number }>('publish', { riders: names, count, rate }, 120_000)
  // Polled by count only: the percentiles sort every sample, which would stall the fleet while messages still arrive.
  const deadline = Date.now() + 15_000
  while ((await riders.call<number>('received')) < sent && Date.now() < deadline) await sleep(100)
  const d = await riders.call<Deliveries>('deliveries')
  const cpuMicros = (await backend.call<number>('cpu')) - cpuBefore
  const seconds = (d.lastAt - d.firstAt) / 1000
  return {
    sent,
    received: d.received,
    lost: sent - d.received,
    publishSeconds: round(ms / 1000, 2),
    deliveredPerSecond: Math.round(d.received / seconds),
    latencyP50Ms: round(d.p50, 1),
    latencyP99Ms: round(d.p99, 1),
    latencyMaxMs: round(d.max, 1),
    backendCpuMicrosPerMessage: round(cpuMicros / d.received, 1),
  }
}

async function ramp(harnessFile: string, env: Record<string, string>, url: string) {
  const total = Math.max(...RAMP)
  const names = Array.from({ length: total }, (_, i) => `sr${i}`)
  const riderTokens = names.map((n) => tokens.issue(n, 3_600_000).token)
  const backend = await startHarness(harnessFile, env)
  const riders = fleet('rider-fleet.ts')
  try {
    await sleep(1000)
    const idle = await backend.call<number>('rss')
    console.log(`idle backend: ${mb(idle)} MB`)
    if (process.env.SCALE_SNAPSHOT) console.log(`  heap snapshot: ${await backend.call<string>('snapshot', {}, 300_000)}`)
    const steps: Record<string, unknown>[] = []
    let delivery: Record<string, unknown> | undefined
    let connected = 0
    for (const target of RAMP) {
      const r = await riders.call<{ ms: number; connected: number; failed: number; errors: Record<string, number> }>(
        'connect',
        { url, names, tokens: riderTokens, from: connected, to: target, window: 200, perAddress: PER_ADDRESS },
        300_000,
      )
      connected = target
      await sleep(1000)
      const rss = await backend.call<number>('rss')
      if (process.env.SCALE_MEMORY) console.log(`  memory: ${JSON.stringify(await backend.call('memory'))}`)
      if (process.env.SCALE_SNAPSHOT) console.log(`  heap snapshot: ${await backend.call<string>('snapshot', {}, 300_000)}`)
      const online = await backend.call<number>('online')
      const step = {
        riders: target,
        online,
        connectPerSecond: Math.round(r.connected / (r.ms / 1000)),
        failed: r.failed,
        rssMB: mb(rss),
        rssPerRiderKB: round((rss - idle) / online / 1024, 1),
      }
      if (r.failed) console.log(`  failures: ${JSON.stringify(r.errors)}`)
      console.log(`ramp ${JSON.stringify(step)}`)
      steps.push(step)
    }
    // Delivery with half of the riders connected: the others leave first (the ramp's RSS figures are for idle riders).
    if (HALF_LOAD > 0) {
      await riders.call('drop', { from: HALF_LOAD, to: connected }, 120_000)
      const deadline = Date.now() + 30_000
      while ((await backend.call<number>('online')) > HALF_LOAD && Date.now() < deadline) await sleep(100)
      const atHalf = names.slice(0, HALF_LOAD)
      const saturated = await deliver(backend, riders, atHalf, SATURATION_MESSAGES, 0)
      console.log(`delivery, as fast as the broker takes it: ${JSON.stringify(saturated)}`)
      // Half of the measured maximum: the latency a backend sized with headroom gives its riders.
      const halfRate = Math.round(saturated.deliveredPerSecond / 2)
      const atHalfRate = await deliver(backend, riders, atHalf, halfRate * PACED_SECONDS, halfRate)
      console.log(`delivery, paced at half of that (${halfRate}/s): ${JSON.stringify(atHalfRate)}`)
      const paced = await deliver(backend, riders, atHalf, PACED_RATE * PACED_SECONDS, PACED_RATE)
      console.log(`delivery, paced at ${PACED_RATE}/s: ${JSON.stringify(paced)}`)
      delivery = { riders: HALF_LOAD, saturated, halfRate: { rate: halfRate, ...atHalfRate }, paced: { rate: PACED_RATE, ...paced } }
    }
    return { idleRssMB: mb(idle), steps, delivery }
  } finally {
    await riders.call('close').catch(() => {})
    await endFleet(riders.child)
    await stop(backend)
  }
}

/** One storm: N riders of `kind`, the backend SIGKILLed and started again at once. */
async function storm(harnessFile: string, env: Record<string, string>, url: string, kind: 'plugin' | 'mqttjs', n: number) {
  const names = Array.from({ length: n }, (_, i) => `st${i}`)
  const riderTokens = names.map((name) => tokens.issue(name, 3_600_000).token)
  let backend: Harness | undefined = await startHarness(harnessFile, env)
  const riders = fleet('storm-fleet.ts')
  try {
    await riders.call('connect', { kind, url, names, tokens: riderTokens, perAddress: PER_ADDRESS, reconnect: PLUGIN_RECONNECT }, 300_000)
    await sleep(1000)
    await riders.call('arm')
    const overflowsBefore = listenOverflows()
    const killedAt = wallNow()
    await stop(backend, 'SIGKILL')
    if (OUTAGE_MS) await sleep(OUTAGE_MS)
    backend = await startHarness(harnessFile, env)
    const listeningAt = backend.listeningAt
    let result = { back: [] as (number | null)[], attempts: 0 }
    const deadline = Date.now() + 60_000
    do {
      await sleep(200)
      result = await riders.call<typeof result>('backTimes')
    } while (result.back.some((t) => t === null) && Date.now() < deadline)
    const overflowsAfter = listenOverflows()
    const backTimes = result.back.filter((t): t is number => t !== null)
    const fromKill = backTimes.map((t) => t - killedAt)
    const fromListen = backTimes.map((t) => t - listeningAt)
    // The time by which p% of all N riders were back (null when fewer came back within the deadline).
    const q = (values: number[], p: number): number | null => {
      const k = Math.ceil((p / 100) * n)
      return values.length >= k ? round([...values].sort((a, b) => a - b)[k - 1] / 1000, 2) : null
    }
    return {
      kind,
      riders: n,
      back: backTimes.length,
      restartMs: Math.round(listeningAt - killedAt),
      fromKill: { t50: q(fromKill, 50), t99: q(fromKill, 99), max: q(fromKill, 100) },
      fromListening: { t50: q(fromListen, 50), t99: q(fromListen, 99), max: q(fromListen, 100) },
      attemptsPerRider: round(result.attempts / n, 2),
      listenOverflows: overflowsBefore === null || overflowsAfter === null ? null : overflowsAfter - overflowsBefore,
    }
  } finally {
    await riders.call('close', {}, 60_000).catch(() => {})
    await endFleet(riders.child)
    await stop(backend)
  }
}

export async function benchScale(): Promise<Record<string, unknown>> {
  const harnessFile = await compile('scale-harness', 'bench/scale/backend-harness.ts', true)
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'longlink-scale-'))
  const port = await freePort()
  const url = `ws://127.0.0.1:${port}/mqtt`
  const env = {
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    TOKEN_SECRET: SECRET,
    ADMIN_PASSWORD: 'scale-bench-admin',
    DEMO_RIDERS: 'rider1',
    H5_DIR: dataDir,
  }
  try {
    const load = RAMP.length ? await ramp(harnessFile, env, url) : undefined
    const storms: Record<string, unknown>[] = []
    for (const n of STORM_SIZES) {
      for (const kind of ['plugin', 'mqttjs'] as const) {
        const s = await storm(harnessFile, env, url, kind, n)
        console.log(`storm ${JSON.stringify(s)}`)
        storms.push(s)
      }
    }
    return { load, storms }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true })
  }
}
