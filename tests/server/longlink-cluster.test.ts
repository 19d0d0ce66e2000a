/**
 * LongLink in several processes: two child processes (tests/support/longlink-node-main.ts, nodes `alpha` and `beta`)
 * behind the sticky proxy of tests/support/sticky-proxy.ts. Sessions opened through the proxy land on both, and each
 * keeps working because every request bearing its sid reaches its owner; plain WebSockets need no stickiness.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { llGet, RawSession, RawWs } from '../support/longlink-raw'
import { startStickyProxy, type StickyProxy } from '../support/sticky-proxy'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

interface NodeProcess {
  node: string
  port: number
  child: ChildProcess
}

/** Starts one LongLink process and resolves once it listens (bounded). */
async function startNode(node: string, timeoutMs = 20_000): Promise<NodeProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'tests/support/longlink-node-main.ts')], {
    cwd: ROOT,
    env: { ...process.env, LL_NODE: node, LL_HOLD: '500', LL_MAX_LIFE_MS: '120000' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-2000)))
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${node} did not listen within ${timeoutMs} ms: ${err}`))
    }, timeoutMs)
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d
      const line = out.split('\n').find((l) => l.includes('"listening"'))
      if (!line) return
      clearTimeout(timer)
      resolve((JSON.parse(line) as { port: number }).port)
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${node} exited (${code}) before listening: ${err}`))
    })
  })
  return { node, port, child }
}

async function stopNode(p: NodeProcess): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return
  const exited = new Promise((resolve) => p.child.once('exit', resolve))
  p.child.kill('SIGTERM')
  const timer = setTimeout(() => p.child.kill('SIGKILL'), 3000)
  await exited
  clearTimeout(timer)
}

let nodes: NodeProcess[] = []
let proxy: StickyProxy
let base: string

beforeAll(async () => {
  nodes = await Promise.all([startNode('alpha'), startNode('beta')])
  proxy = await startStickyProxy(Object.fromEntries(nodes.map((n) => [n.node, n.port])))
  base = `${proxy.origin}/ll`
}, 60_000)

afterAll(async () => {
  await proxy?.close()
  await Promise.all(nodes.map(stopNode))
})

const nodeOf = (sid: string): string => sid.slice(0, sid.indexOf('.'))

describe('LongLink behind a sticky proxy', () => {
  it('sessions land on both processes and each keeps working: POSTs and polls reach the owner', async () => {
    const sessions = await Promise.all(Array.from({ length: 6 }, () => RawSession.open(base, 'long-polling')))
    const owners = sessions.map((s) => nodeOf(s.sid))
    expect(new Set(owners)).toEqual(new Set(['alpha', 'beta']))
    for (const s of sessions) expect(s.info.node).toBe(nodeOf(s.sid))

    for (let round = 1; round <= 3; round++) {
      await Promise.all(
        sessions.map(async (s, i) => {
          expect((await s.post([`r${round}-s${i}`])).status).toBe(200)
          await s.pollUntil(round, 5000)
        }),
      )
    }
    sessions.forEach((s, i) => expect(s.received).toEqual([1, 2, 3].map((r) => `${owners[i]}:r${r}-s${i}`)))
    expect(proxy.routed().get('alpha')).toBeGreaterThan(3)
    expect(proxy.routed().get('beta')).toBeGreaterThan(3)
  })

  it('an SSE stream and a joining WebSocket go to the owner as well', async () => {
    const s = await RawSession.open(base, 'sse')
    const owner = nodeOf(s.sid)
    await s.post(['over sse'])
    const stream = s.stream()
    await stream.until(() => stream.messages().length >= 1, 5000, 'the echo')
    expect(JSON.parse(stream.messages()[0].data)).toBe(`${owner}:over sse`)
    stream.close()

    const ws = new RawWs(s.joinUrl({ c: 2, ack: 1 }))
    expect(await ws.nextJson()).toEqual({ hello: 1, ack: 1 })
    ws.send({ upgrade: 1, ack: 1 })
    ws.send({ seq: 2, m: ['over ws'], ack: 1 })
    const deadline = Date.now() + 5000
    let echoed: unknown
    while (echoed === undefined && Date.now() < deadline) {
      const packet = await ws.nextJson()
      if (packet.m) echoed = packet.m[0]
    }
    expect(echoed).toBe(`${owner}:over ws`)
    ws.close()
  })

  it('plain WebSockets are spread and served anywhere', async () => {
    const seen = new Set<string>()
    for (let i = 0; i < 4; i++) {
      const ws = new RawWs(base.replace('http', 'ws'))
      await ws.opened
      ws.send('hey')
      seen.add(String((await ws.next()).data).split(':')[0])
      ws.close()
    }
    expect(seen).toEqual(new Set(['alpha', 'beta']))
  })

  it('a sid naming an unknown node gets a clean 502 UNKNOWN_NODE from the proxy; a known node with a made-up sid gets 410', async () => {
    const unknown = await llGet(base, { transport: 'long-polling', sid: 'gamma.AAAAAAAAAAAAAAAAAAAAAA', c: 1, ack: 0 })
    expect(unknown.status).toBe(502)
    expect(unknown.body.error).toBe('UNKNOWN_NODE')
    await expect(new RawWs(`${base.replace('http', 'ws')}?transport=websocket&sid=gamma.AAAAAAAAAAAAAAAAAAAAAA&c=1`).opened).rejects.toThrow(
      'upgrade refused: 502',
    )
    const madeUp = await llGet(base, { transport: 'long-polling', sid: 'alpha.AAAAAAAAAAAAAAAAAAAAAA', c: 1, ack: 0 })
    expect(madeUp.status).toBe(410)
    // The proxy and both processes carry on.
    expect((await llGet(base, { transport: 'polling', open: 1 })).status).toBe(200)
  })
})
