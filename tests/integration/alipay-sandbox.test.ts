/**
 * The core's connection contract as an Alipay mini-program runs it: a page that uses `createConnection` is built with
 * `uni build -p mp-alipay`, the output is loaded in an Alipay-shaped sandbox (tests/support/alipay-sandbox.ts: the
 * built files in WeChat-style wrappers with no browser globals, and `my` as the only host, no `wx`), and the plugin's
 * default platform (`uni`) goes through uni's mp-alipay runtime to `my.connectSocket`, whose SocketTask follows
 * Alipay's documented semantics over real sockets to a server on loopback.
 *
 * First the simulator itself is held to those semantics (no build needed), then the contract: open, text and binary
 * round trips, a server close and the reconnect after it, a refused connect and a `fail` reported as typed errors
 * that carry Alipay's `errorMessage`, and `close()`.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { Connection, ConnectionOptions } from '../../uni_modules/longlink-socket/js_sdk/index'
import { createMySimulator, loadAlipayMiniProgram, MY_ERROR, type MyMessageEvent, type MySimHost, type MySocketTask } from '../support/alipay-sandbox'
import { freePort } from '../support/ports'
import { startTestServer, type TestServer } from '../support/test-server'
import { buildHost, type BuiltHost } from '../support/uni-host'
import { nextEvent, until } from '../support/wait'

const PAGE = `<template><view>{{ label }}</view></template>
<script setup lang="ts">
import { ref } from 'vue'
import { createConnection } from '@/uni_modules/longlink-socket/js_sdk/index'

const label = ref('idle')
// The page hands the factory to whoever mounts it; the test requires the built module itself.
defineExpose({ createConnection })
</script>
`

type CreateConnection = (options: ConnectionOptions) => Connection

let server: TestServer
const cleanups: (() => unknown)[] = []

beforeAll(async () => {
  server = await startTestServer()
})

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

afterAll(async () => {
  await server.close()
})

/** A `my` simulator disposed after the test. */
function mySim(options?: Parameters<typeof createMySimulator>[0]): MySimHost {
  const sim = createMySimulator(options)
  cleanups.push(() => sim.dispose())
  return sim
}

/** A `{ success, fail }` pair whose answer is awaited as a promise (rejecting with the `fail` argument). */
function settle(): { callbacks: { success: (res: unknown) => void; fail: (res: unknown) => void }; done: Promise<unknown> } {
  let callbacks!: { success: (res: unknown) => void; fail: (res: unknown) => void }
  const done = new Promise<unknown>((resolve, reject) => (callbacks = { success: resolve, fail: reject }))
  return { callbacks, done }
}

/** Resolves with the next event the task reports on `on<Event>`. */
function taskEvent<T>(task: MySocketTask, event: 'onOpen' | 'onMessage' | 'onClose' | 'onError'): Promise<T> {
  return new Promise((resolve) => (task[event] as (l: (res: T) => void) => void)((res) => resolve(res)))
}

describe('the Alipay-shaped my (as documented)', () => {
  it('returns a SocketTask only with multiple: true; success comes first, then onOpen', async () => {
    const sim = mySim()
    const order: string[] = []
    const task = sim.connectSocket({ url: server.url('/ws'), multiple: true, success: () => order.push('success') })!
    expect(typeof task.onOpen).toBe('function')
    await taskEvent(task, 'onOpen')
    order.push('open')
    expect(order).toEqual(['success', 'open'])
    // Without multiple there is one single instance, driven by my.onSocket*: nothing is returned, a second one fails.
    expect(sim.connectSocket({ url: server.url('/ws') })).toBeUndefined()
    const second = settle()
    sim.connectSocket({ url: server.url('/ws'), ...second.callbacks })
    await expect(second.done).rejects.toEqual(MY_ERROR.singleInstanceExists)
  })

  it('hands text over as text and binary frames as base64 with isBuffer: true; sends ArrayBuffers and base64 exactly', async () => {
    const sim = mySim()
    const task = sim.connectSocket({ url: server.url('/ws'), multiple: true })!
    await taskEvent(task, 'onOpen')
    let echoed = taskEvent<MyMessageEvent>(task, 'onMessage')
    task.send({ data: 'héllo' })
    expect(await echoed).toEqual({ data: 'héllo', isBuffer: false })
    task.offMessage()
    echoed = taskEvent<MyMessageEvent>(task, 'onMessage')
    task.send({ data: Uint8Array.from([0, 1, 254, 255]).buffer })
    expect(await echoed).toEqual({ data: Buffer.from([0, 1, 254, 255]).toString('base64'), isBuffer: true })
    const since = server.messages.length
    const sent = settle()
    task.send({ data: Buffer.from([9, 8, 7]).toString('base64'), isBuffer: true, ...sent.callbacks })
    await sent.done
    const seen = await server.waitForMessage(() => true, 2000, since)
    expect(seen.isBinary).toBe(true)
    expect([...(seen.data as Buffer)]).toEqual([9, 8, 7])
  })

  it('fails with { error, errorMessage }: send before open, a bad close code, a bad url, the 6th socket', async () => {
    const sim = mySim()
    const task = sim.connectSocket({ url: server.url('/ws'), multiple: true })!
    const early = settle()
    task.send({ data: 'too early', ...early.callbacks })
    await expect(early.done).rejects.toEqual(MY_ERROR.notOpen)
    await taskEvent(task, 'onOpen')
    const badClose = settle()
    task.close({ code: 1001, ...badClose.callbacks })
    await expect(badClose.done).rejects.toEqual(MY_ERROR.invalidParameter)
    const badUrl = settle()
    sim.connectSocket({ url: 'http://127.0.0.1/ws', multiple: true, ...badUrl.callbacks })
    await expect(badUrl.done).rejects.toEqual(MY_ERROR.urlScheme)
    for (let i = 0; i < 4; i++) sim.connectSocket({ url: server.url('/ws'), multiple: true })
    expect(sim.openTasks()).toBe(5)
    const sixth = settle()
    const inert = sim.connectSocket({ url: server.url('/ws'), multiple: true, ...sixth.callbacks })!
    expect(inert.readyState).toBe(3)
    await expect(sixth.done).rejects.toEqual(MY_ERROR.socketLimit)
  })

  it('reports a refused connection on onError with { error, errorMessage }, then onClose', async () => {
    const sim = mySim()
    const task = sim.connectSocket({ url: `ws://127.0.0.1:${await freePort()}/ws`, multiple: true })!
    const error = taskEvent(task, 'onError')
    const closed = taskEvent<{ code: number }>(task, 'onClose')
    expect(await error).toEqual(MY_ERROR.network)
    expect((await closed).code).toBe(1006)
    expect(sim.openTasks()).toBe(0)
  })
})

describe('the core through uni.connectSocket → my.connectSocket (mp-alipay build)', () => {
  let host: BuiltHost

  beforeAll(async () => {
    host = await buildHost('mp-alipay', { 'pages/index/index': PAGE })
  }, 120_000)

  afterAll(() => host?.remove())

  /** The build loaded in a fresh sandbox over `sim`, its app and page run as Alipay would, and its createConnection. */
  function loadBuild(sim: MySimHost) {
    const sandbox = loadAlipayMiniProgram(host.out, { my: sim })
    cleanups.push(() => sandbox.dispose())
    expect(sandbox.evaluate('typeof wx')).toBe('undefined')
    sandbox.require('app.js')
    sandbox.require('pages/index/index.js')
    const { createConnection } = sandbox.require('uni_modules/longlink-socket/js_sdk/index.js') as { createConnection: CreateConnection }
    // Options made inside the sandbox: the plugin checks for plain objects of its own realm.
    const options = sandbox.evaluate('(url) => ({ url, reconnect: { min: 50, max: 400 }, heartbeat: false })') as (url: string) => ConnectionOptions
    const connect = (url = server.url('/ws')) => {
      const connection = createConnection(options(url))
      cleanups.push(() => connection.close().catch(() => {}))
      return connection
    }
    return { sandbox, connect }
  }

  it('opens through my.connectSocket with multiple: true and round-trips text', async () => {
    const sim = mySim()
    const { connect } = loadBuild(sim)
    const connection = connect()
    await connection.open()
    expect(connection.state).toBe('open')
    expect(sim.connectCalls).toHaveLength(1)
    expect(sim.connectCalls[0]).toMatchObject({ url: server.url('/ws'), multiple: true })
    const echoed = nextEvent(connection, 'message')
    await connection.send('héllo, 支付宝')
    expect(await echoed).toBe('héllo, 支付宝')
    expect(server.messages.at(-1)).toMatchObject({ data: 'héllo, 支付宝', isBinary: false })
  })

  it('sends exactly the bytes of a view as one binary frame', async () => {
    const sim = mySim()
    const { connect } = loadBuild(sim)
    const connection = connect()
    await connection.open()
    const since = server.messages.length
    const whole = Uint8Array.from({ length: 64 }, (_, i) => i)
    await connection.send(whole.subarray(10, 20))
    const seen = await server.waitForMessage((m) => m.isBinary, 2000, since)
    expect([...(seen.data as Buffer)]).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19])
  })

  // Alipay hands a binary frame over as base64 text with `isBuffer: true` (my.onSocketMessage); the app gets the bytes.
  it('receives a binary frame as an ArrayBuffer of exactly its bytes', async () => {
    const sim = mySim()
    const { connect } = loadBuild(sim)
    const connection = connect()
    await connection.open()
    const received = nextEvent(connection, 'message')
    server.broadcast(Buffer.from([0, 1, 2, 253, 254, 255]))
    const data = await received
    expect(Object.prototype.toString.call(data)).toBe('[object ArrayBuffer]')
    expect([...new Uint8Array(data as ArrayBuffer)]).toEqual([0, 1, 2, 253, 254, 255])
  })

  it('receives a binary frame that already is an ArrayBuffer (isBuffer, newer clients) as exactly its bytes', async () => {
    const sim = mySim({ binaryMessages: 'arraybuffer' })
    const { connect } = loadBuild(sim)
    const connection = connect()
    await connection.open()
    const received = nextEvent(connection, 'message')
    server.broadcast(Buffer.from([9, 8, 7, 0, 255]))
    const data = await received
    expect(Object.prototype.toString.call(data)).toBe('[object ArrayBuffer]')
    expect([...new Uint8Array(data as ArrayBuffer)]).toEqual([9, 8, 7, 0, 255])
  })

  it('reconnects after the server closes the link, and the new link carries messages', async () => {
    const sim = mySim()
    const { connect } = loadBuild(sim)
    const connection = connect()
    await connection.open()
    const accepted = server.acceptedCount
    const reconnecting = nextEvent(connection, 'reconnecting')
    const reopened = nextEvent(connection, 'open', 5000, () => true)
    server.dropAll(1001, 'going away')
    await reconnecting
    await reopened
    expect(server.acceptedCount).toBe(accepted + 1)
    expect(sim.connectCalls.length).toBe(2)
    const echoed = nextEvent(connection, 'message')
    await connection.send('again')
    expect(await echoed).toBe('again')
  })

  it('reports a connectSocket fail as a typed error carrying Alipay’s errorMessage (uni turns it into errMsg)', async () => {
    const sim = mySim()
    const { connect } = loadBuild(sim)
    // Fill Alipay's 5 slots from outside the app, so the app's own connectSocket is refused on `fail`.
    for (let i = 0; i < 5; i++) sim.connectSocket({ url: server.url('/ws'), multiple: true })
    const connection = connect()
    const error = nextEvent(connection, 'error')
    connection.open().catch(() => {})
    expect((await error).code).toMatch(/^(CONNECT_FAILED|SOCKET_LIMIT)$/)
    expect((await error).message).toContain(MY_ERROR.socketLimit.errorMessage)
    expect((await error).message).not.toContain('[object Object]')
  })

  // A refused connection is reported on the task's onError as `{ error, errorMessage }` (uni does not wrap SocketTask
  // events): the message carries Alipay's words, never "[object Object]".
  it('reports a refused connect as CONNECT_FAILED whose message carries Alipay’s errorMessage', async () => {
    const sim = mySim()
    const { connect } = loadBuild(sim)
    const connection = connect(`ws://127.0.0.1:${await freePort()}/ws`)
    const failed = nextEvent(connection, 'error')
    connection.open().catch(() => {})
    const error = await failed
    expect(error.code).toBe('CONNECT_FAILED')
    expect(sim.tasks[0].errors[0]).toEqual(MY_ERROR.network)
    expect(error.message).toContain(MY_ERROR.network.errorMessage)
    expect(error.message).not.toContain('[object Object]')
  })

  it('close() ends it: the socket is closed on both sides and no attempt follows', async () => {
    const sim = mySim()
    const { connect } = loadBuild(sim)
    const connection = connect()
    await connection.open()
    const serverSide = [...server.connections].at(-1)!
    const serverClosed = new Promise<number>((resolve) => serverSide.once('close', (code: number) => resolve(code)))
    await connection.close()
    expect(connection.state).toBe('closed')
    expect(await serverClosed).toBe(1000)
    await until(() => sim.openTasks() === 0, 2000, 'the task to release its slot')
    expect(sim.connectCalls).toHaveLength(1)
    await expect(connection.send('after close')).rejects.toMatchObject({ code: 'CLOSED' })
  })

  it("follows Alipay's network changes (NOTREACHABLE is offline) through the listeners it puts on my", async () => {
    const sim = mySim()
    const { connect } = loadBuild(sim)
    const connection = connect()
    await connection.open()
    const states: string[] = []
    connection.on('state', (change) => states.push(`${change.to} ${change.reason}`))
    sim.setNetwork('NOTREACHABLE')
    await until(() => connection.state === 'offline', 2000, 'offline')
    const reopened = nextEvent(connection, 'open', 5000, () => true)
    sim.setNetwork('4G')
    await reopened
    expect(states).toEqual(['offline network-lost', 'connecting network-restored', 'open reconnect'])
    expect(sim.connectCalls).toHaveLength(2)
  })

  // uni's mp-alipay runtime wraps every callback it forwards to `my` in a fresh function, `uni.on*` and `uni.off*`
  // alike, so `uni.offNetworkStatusChange(fn)` would remove nothing: the plugin registers its lifecycle listeners on
  // `my` itself there.
  it('close() removes the network and app-lifecycle listeners it added to my', async () => {
    const sim = mySim()
    const { connect } = loadBuild(sim)
    const before = sim.listenerCount()
    const connection = connect()
    await connection.open()
    expect(sim.listenerCount().network).toBeGreaterThan(before.network)
    await connection.close()
    expect(sim.listenerCount()).toEqual(before)
  })
})
