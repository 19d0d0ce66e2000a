/**
 * Proves the test-support helpers behave as documented, using real sockets on 127.0.0.1:
 * the wx/uni SocketTask simulators, the fault proxy and the WebSocket test server.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  createUniSimulator,
  createWxSimulator,
  SOCKET_STATE,
  WX_ERR_MSG,
  type CallbackResult,
  type NetworkStatus,
  type SimSocketTask,
  type SocketCloseResult,
  type SocketErrorResult,
  type SocketMessageResult,
  type SocketOpenResult,
} from './socket-task-sim'
import { startFaultProxy, type FaultProxy } from './fault-proxy'
import { startTestServer, type TestServer } from './test-server'
import { until } from './wait'

/** Everything a test started, torn down in afterEach so no socket or timer outlives a test. */
const cleanups: Array<() => unknown> = []

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.()
  vi.restoreAllMocks()
})

async function server(opts?: Parameters<typeof startTestServer>[0]): Promise<TestServer> {
  const s = await startTestServer(opts)
  cleanups.push(() => s.close())
  return s
}

async function proxy(target: TestServer): Promise<FaultProxy> {
  const p = await startFaultProxy({ target: { host: '127.0.0.1', port: target.port } })
  cleanups.push(() => p.close())
  return p
}

function wx(opts?: Parameters<typeof createWxSimulator>[0]) {
  const host = createWxSimulator(opts)
  cleanups.push(() => host.dispose())
  return host
}

function uni(opts?: Parameters<typeof createUniSimulator>[0]) {
  const host = createUniSimulator(opts)
  cleanups.push(() => host.dispose())
  return host
}

/** Resolves with the next payload of a SocketTask event, bounded by `timeoutMs`. */
function next<T>(register: (cb: (res: T) => void) => void, timeoutMs = 2000, what = 'event'): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let done = false
    const timer = setTimeout(() => {
      done = true
      reject(new Error(`timed out waiting for ${what}`))
    }, timeoutMs)
    register((res) => {
      if (done) return
      done = true
      clearTimeout(timer)
      resolve(res)
    })
  })
}

const opened = (task: SimSocketTask) => next<SocketOpenResult>((cb) => task.onOpen(cb), 2000, 'onOpen')
const closed = (task: SimSocketTask) => next<SocketCloseResult>((cb) => task.onClose(cb), 2000, 'onClose')
const errored = (task: SimSocketTask) => next<SocketErrorResult>((cb) => task.onError(cb), 2000, 'onError')
const message = (task: SimSocketTask) => next<SocketMessageResult>((cb) => task.onMessage(cb), 2000, 'onMessage')

/** Resolves with a callback-style API result, bounded. */
function callback(invoke: (cbs: { fail: (r: CallbackResult) => void; success: (r: CallbackResult) => void }) => void) {
  return new Promise<{ ok: boolean; res: CallbackResult }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('callback never called')), 2000)
    invoke({
      success: (res) => {
        clearTimeout(timer)
        resolve({ ok: true, res })
      },
      fail: (res) => {
        clearTimeout(timer)
        resolve({ ok: false, res })
      },
    })
  })
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('socket-task-sim: wx', () => {
  it('calls success (then complete) asynchronously while the task is still CONNECTING', async () => {
    const s = await server()
    const host = wx()
    const order: string[] = []
    let stateAtSuccess = -1
    let returnedBeforeSuccess = false
    const task = host.connectSocket({
      url: s.url(),
      success: (res) => {
        order.push(`success:${res.errMsg}`)
        stateAtSuccess = task.readyState
      },
      complete: () => order.push('complete'),
    })
    returnedBeforeSuccess = order.length === 0
    task.onOpen(() => order.push('open'))
    expect(task.readyState).toBe(SOCKET_STATE.CONNECTING)
    await opened(task)
    expect(returnedBeforeSuccess).toBe(true)
    expect(stateAtSuccess).toBe(SOCKET_STATE.CONNECTING)
    expect(order).toEqual([`success:${WX_ERR_MSG.connectOk}`, 'complete', 'open'])
    expect(task.readyState).toBe(SOCKET_STATE.OPEN)
    expect([task.CONNECTING, task.OPEN, task.CLOSING, task.CLOSED]).toEqual([0, 1, 2, 3])
  })

  it('refuses the 6th concurrent socket with the limit errMsg and frees a slot after a close', async () => {
    const s = await server()
    const host = wx()
    const tasks = Array.from({ length: 5 }, () => host.connectSocket({ url: s.url() }))
    await Promise.all(tasks.map(opened))
    expect(host.openTasks()).toBe(5)

    const calls: string[] = []
    const sixth = host.connectSocket({
      url: s.url(),
      success: () => calls.push('success'),
      fail: (res) => calls.push(`fail:${res.errMsg}`),
      complete: (res) => calls.push(`complete:${res.errMsg}`),
    })
    sixth.onOpen(() => calls.push('open'))
    await until(() => calls.length >= 2, 2000, 'fail/complete')
    expect(calls).toEqual([`fail:${WX_ERR_MSG.exceedMaxTaskCount}`, `complete:${WX_ERR_MSG.exceedMaxTaskCount}`])
    expect(sixth.readyState).toBe(SOCKET_STATE.CLOSED)
    expect(sixth.refusedBecause).toBe('limit')
    expect(s.handshakes).toHaveLength(5) // the refused task never reached the network
    expect(host.tasks).toHaveLength(6)

    const inertClose = await callback((cbs) => sixth.close(cbs))
    expect(inertClose).toEqual({ ok: false, res: { errMsg: WX_ERR_MSG.closeTaskNotExist } })

    const gone = closed(tasks[0])
    tasks[0].close({})
    await gone
    expect(host.openTasks()).toBe(4)
    const seventh = host.connectSocket({ url: s.url() })
    await opened(seventh)
    expect(host.openTasks()).toBe(5)
    expect(calls).not.toContain('open')
  })

  it('can report a refusal the DevTools way: success, then onError with the bare reason', async () => {
    const s = await server()
    const host = wx({ maxSockets: 1, refusalStyle: 'error' })
    await opened(host.connectSocket({ url: s.url() }))
    const calls: string[] = []
    const second = host.connectSocket({ url: s.url(), success: (r) => calls.push(r.errMsg), fail: () => calls.push('fail') })
    const err = await errored(second)
    expect(calls).toEqual([WX_ERR_MSG.connectOk])
    expect(err.errMsg).toBe(WX_ERR_MSG.exceedMaxTaskCountEvent)
  })

  it('delivers binary frames as a fresh ArrayBuffer with exactly the frame bytes, text as string', async () => {
    const s = await server()
    const host = wx()
    const task = host.connectSocket({ url: s.url() })
    await opened(task)

    const bytes = new Uint8Array([0, 1, 2, 250, 255])
    // Listen before sending: the echo may arrive before the (async) send success callback.
    const echoed = message(task)
    const sendResult = await callback((cbs) => task.send({ data: bytes.buffer, ...cbs }))
    expect(sendResult).toEqual({ ok: true, res: { errMsg: WX_ERR_MSG.sendOk } })
    const bin = await echoed
    expect(bin.data).toBeInstanceOf(ArrayBuffer)
    expect(Buffer.isBuffer(bin.data)).toBe(false)
    expect((bin.data as ArrayBuffer).byteLength).toBe(5)
    expect([...new Uint8Array(bin.data as ArrayBuffer)]).toEqual([0, 1, 2, 250, 255])
    expect(s.messages[0]).toMatchObject({ isBinary: true })

    task.send({ data: 'héllo' })
    const text = await message(task)
    expect(text.data).toBe('héllo')
    expect(s.messages[1]).toMatchObject({ isBinary: false, data: 'héllo' })
  })

  it('fails send of an ArrayBufferView (Uint8Array) and send before open, without sending anything', async () => {
    const s = await server()
    const host = wx()
    const task = host.connectSocket({ url: s.url() })
    const open = opened(task)
    const early = await callback((cbs) => task.send({ data: 'too early', ...cbs }))
    expect(early).toEqual({ ok: false, res: { errMsg: WX_ERR_MSG.sendNotConnected } })
    await open

    const view = await callback((cbs) => task.send({ data: new Uint8Array([1, 2, 3]), ...cbs }))
    expect(view).toEqual({ ok: false, res: { errMsg: WX_ERR_MSG.sendInvalidData('Uint8Array') } })
    const obj = await callback((cbs) => task.send({ data: { a: 1 }, ...cbs }))
    expect(obj.ok).toBe(false)

    task.send({ data: 'after' })
    await s.waitForMessage((m) => m.data === 'after')
    expect(s.messages.map((m) => m.data)).toEqual(['after'])
  })

  it('propagates close codes to onClose for client, server and abrupt closes', async () => {
    const s = await server()
    const host = wx()

    const a = host.connectSocket({ url: s.url() })
    await opened(a)
    const bad = await callback((cbs) => a.close({ code: 1001, ...cbs }))
    expect(bad).toEqual({ ok: false, res: { errMsg: WX_ERR_MSG.closeInvalidCode } })
    expect(a.readyState).toBe(SOCKET_STATE.OPEN)
    const aClosed = closed(a)
    const ok = await callback((cbs) => a.close({ code: 4001, reason: 'bye', ...cbs }))
    expect(ok).toEqual({ ok: true, res: { errMsg: WX_ERR_MSG.closeOk } })
    expect(await aClosed).toEqual({ code: 4001, reason: 'bye' })
    expect(a.readyState).toBe(SOCKET_STATE.CLOSED)

    const b = host.connectSocket({ url: s.url() })
    await opened(b)
    const bClosed = closed(b)
    s.dropAll(4002, 'kick')
    expect(await bClosed).toEqual({ code: 4002, reason: 'kick' })

    const c = host.connectSocket({ url: s.url() })
    await opened(c)
    const cClosed = closed(c)
    s.terminateAll()
    expect(await cClosed).toEqual({ code: 1006, reason: 'abnormal closure' })
    expect(host.openTasks()).toBe(0)
  })

  it('sends header, query and protocols in the handshake (and drops Referer)', async () => {
    const s = await server()
    const host = wx()
    const task = host.connectSocket({
      url: s.url('/mqtt?token=abc'),
      header: { 'X-Token': 'secret', Referer: 'https://evil.example' },
      protocols: ['mqtt', 'mqttv3.1'],
    })
    const open = await opened(task)
    expect(s.handshakes).toHaveLength(1)
    const hs = s.handshakes[0]
    expect(hs.url).toBe('/mqtt?token=abc')
    expect(hs.headers['x-token']).toBe('secret')
    expect(hs.headers.referer).toBeUndefined()
    expect(hs.offeredProtocols).toEqual(['mqtt', 'mqttv3.1'])
    expect(hs.protocol).toBe('mqtt')
    expect(open.header['sec-websocket-protocol']).toBe('mqtt')
    expect(typeof open.profile.cost).toBe('number')
  })

  it('reports a failed connection with onError then onClose(1006) and frees the slot', async () => {
    const s = await server({ rejectUpgrade: () => 401 })
    const host = wx()
    const task = host.connectSocket({ url: s.url() })
    const events: string[] = []
    task.onError((e) => events.push(`error:${e.errMsg}`))
    const c = await closed(task)
    expect(c.code).toBe(1006)
    expect(events).toHaveLength(1)
    expect(events[0]).toMatch(/^error:/)
    expect(s.handshakes[0].rejectedWith).toBe(401)
    expect(host.openTasks()).toBe(0)
  })

  it('keeps running when a listener throws, reporting it via console.error', async () => {
    const s = await server()
    const host = wx()
    const spy = vi.spyOn(console, 'error').mockImplementation(() => {})
    const task = host.connectSocket({ url: s.url() })
    task.onOpen(() => {
      throw new Error('listener bug')
    })
    const second = opened(task)
    await second
    expect(spy).toHaveBeenCalled()
    task.send({ data: 'still works' })
    expect((await message(task)).data).toBe('still works')
  })

  it('getNetworkType works with callbacks and returns a Promise without them', async () => {
    const host = wx({ networkType: '4g' })
    const viaCallback = await callback((cbs) => host.getNetworkType(cbs))
    expect(viaCallback.res).toMatchObject({ errMsg: WX_ERR_MSG.getNetworkTypeOk, networkType: '4g' })
    await expect(host.getNetworkType()).resolves.toMatchObject({ networkType: '4g' })
  })
})

describe('socket-task-sim: uni', () => {
  it('returns a Promise without callbacks, yet the (unreachable) socket really connects', async () => {
    const s = await server()
    const host = uni()
    const ret = host.connectSocket({ url: s.url() })
    expect(ret).toBeInstanceOf(Promise)
    await expect(ret).resolves.toMatchObject({ errMsg: WX_ERR_MSG.connectOk })
    await s.waitForConnection(1)
    expect(host.openTasks()).toBe(1)
    await until(() => host.tasks[0].readyState === SOCKET_STATE.OPEN, 2000, 'hidden task open')

    const task = host.connectSocket({ url: s.url(), complete: () => {} })
    expect(typeof (task as SimSocketTask).onOpen).toBe('function')
    await opened(task as SimSocketTask)
  })

  it('rejects the Promise with the limit errMsg', async () => {
    const s = await server()
    const host = uni({ maxSockets: 1 })
    await host.connectSocket({ url: s.url() })
    await expect(host.connectSocket({ url: s.url() })).rejects.toEqual({ errMsg: WX_ERR_MSG.exceedMaxTaskCount })
  })

  it('promisifies getNetworkType', async () => {
    const host = uni()
    await expect(host.getNetworkType()).resolves.toMatchObject({ networkType: 'wifi', errMsg: WX_ERR_MSG.getNetworkTypeOk })
  })
})

describe('socket-task-sim: network and app lifecycle emitters', () => {
  it('fires network and app events to listeners, and off* removes one or all', () => {
    const host = wx()
    const seen: string[] = []
    const net1 = (r: NetworkStatus) => seen.push(`n1:${r.networkType}:${r.isConnected}`)
    const net2 = (r: NetworkStatus) => seen.push(`n2:${r.networkType}`)
    const onHide = () => seen.push('hide')
    const onShow = () => seen.push('show')
    host.onNetworkStatusChange(net1)
    host.onNetworkStatusChange(net2)
    host.onAppHide(onHide)
    host.onAppShow(onShow)
    expect(host.listenerCount()).toEqual({ network: 2, appShow: 1, appHide: 1 })

    host.setNetwork('none')
    host.hide()
    host.show()
    expect(seen).toEqual(['n1:none:false', 'n2:none', 'hide', 'show'])
    expect(host.networkType).toBe('none')

    host.offNetworkStatusChange(net1)
    host.setNetwork('wifi')
    expect(seen.slice(4)).toEqual(['n2:wifi'])

    host.offNetworkStatusChange()
    host.offAppHide(onHide)
    host.offAppShow()
    expect(host.listenerCount()).toEqual({ network: 0, appShow: 0, appHide: 0 })
    host.setNetwork('4g')
    host.hide()
    host.show()
    expect(seen).toHaveLength(5)
  })

  it('with killOnHide, interrupts open sockets after the grace period and refuses connects until show()', async () => {
    const s = await server()
    const host = wx({ killOnHide: true, backgroundKillMs: 50 })
    const task = host.connectSocket({ url: s.url() })
    await opened(task)
    await s.waitForConnection(1)

    const gone = closed(task)
    host.hide()
    expect(host.hidden).toBe(true)
    expect(await gone).toEqual({ code: 1000, reason: WX_ERR_MSG.backgroundCloseReason })
    expect(host.suspended).toBe(true)
    await until(() => s.connections.size === 0, 2000, 'server to see the kill')

    const refused = await callback((cbs) => host.connectSocket({ url: s.url(), ...cbs }))
    expect(refused).toEqual({ ok: false, res: { errMsg: WX_ERR_MSG.suspended } })

    host.show()
    expect(host.suspended).toBe(false)
    await opened(host.connectSocket({ url: s.url() }))
  })

  it('with killOnHide, a show() within the grace period keeps sockets alive', async () => {
    const s = await server()
    const host = wx({ killOnHide: true, backgroundKillMs: 100 })
    const task = host.connectSocket({ url: s.url() })
    await opened(task)
    host.hide()
    host.show()
    await sleep(150)
    expect(task.readyState).toBe(SOCKET_STATE.OPEN)
  })

  it('with killOnOffline, setNetwork("none") errors and closes sockets and refuses new ones', async () => {
    const s = await server()
    const host = wx({ killOnOffline: true })
    const task = host.connectSocket({ url: s.url() })
    await opened(task)
    const err = errored(task)
    const gone = closed(task)
    host.setNetwork('none')
    expect((await err).errMsg).toBe(WX_ERR_MSG.networkDownEvent)
    expect(await gone).toEqual({ code: 1006, reason: 'abnormal closure' })
    const refused = await callback((cbs) => host.connectSocket({ url: s.url(), ...cbs }))
    expect(refused.res.errMsg).toBe(WX_ERR_MSG.networkDown)
  })
})

describe('fault-proxy', () => {
  it('blackhole: a pinging client sees silence while both TCP sockets stay open', async () => {
    const s = await server()
    const p = await proxy(s)
    const host = wx()
    const task = host.connectSocket({ url: p.url('/bh') })
    await opened(task)
    task.send({ data: 'ping' })
    expect((await message(task)).data).toBe('pong')
    expect(p.connections()).toBe(1)

    p.mode('blackhole')
    const received: unknown[] = []
    task.onMessage((m) => received.push(m.data))
    let closeSeen = false
    task.onClose(() => {
      closeSeen = true
    })
    const before = s.messages.length
    task.send({ data: 'ping' })
    task.send({ data: 'ping' })
    await sleep(300)
    expect(received).toEqual([])
    expect(s.messages.length).toBe(before) // the server never got the pings either
    expect(closeSeen).toBe(false)
    expect(task.readyState).toBe(SOCKET_STATE.OPEN)
    expect(p.connections()).toBe(1)
    expect(s.connections.size).toBe(1)
    const [serverSide] = [...s.connections]
    expect(serverSide.readyState).toBe(serverSide.OPEN)

    // New connections are swallowed too: TCP connects, the handshake never completes.
    const late = host.connectSocket({ url: p.url(), timeout: 200 })
    const err = await errored(late)
    expect(err.errMsg).toBe(WX_ERR_MSG.connectTimeout)
  })

  it('sever: open links go silent for good while new connections pass', async () => {
    const s = await server()
    const p = await proxy(s)
    const host = wx()
    const old = host.connectSocket({ url: p.url('/old') })
    await opened(old)
    p.mode('sever')
    expect(p.currentMode).toBe('pass')
    const received: unknown[] = []
    old.onMessage((m) => received.push(m.data))
    let closeSeen = false
    old.onClose(() => (closeSeen = true))
    const before = s.messages.length
    old.send({ data: 'ping' })
    // A new connection gets through and is answered.
    const fresh = host.connectSocket({ url: p.url('/new') })
    await opened(fresh)
    fresh.send({ data: 'ping' })
    expect((await message(fresh)).data).toBe('pong')
    await sleep(200)
    expect(received).toEqual([])
    expect(closeSeen).toBe(false)
    expect(old.readyState).toBe(SOCKET_STATE.OPEN)
    expect(s.messages.length).toBe(before + 1) // only the fresh link's ping arrived
  })

  it('close() while CONNECTING reports the requested code; close() on a dead link holds the slot until closeTimeoutMs', async () => {
    const s = await server()
    const p = await proxy(s)
    p.mode('blackhole')
    const host = wx({ closeTimeoutMs: 100 })
    const connecting = host.connectSocket({ url: p.url() })
    const errors: string[] = []
    connecting.onError((e) => errors.push(e.errMsg))
    const abort = closed(connecting)
    connecting.close({ code: 4000, reason: 'abort' })
    expect(await abort).toEqual({ code: 4000, reason: 'abort' })
    expect(errors).toEqual([])
    expect(host.openTasks()).toBe(0)

    p.mode('pass')
    const open = host.connectSocket({ url: p.url() })
    await opened(open)
    p.mode('blackhole')
    const gone = closed(open)
    open.close({})
    expect(open.readyState).toBe(SOCKET_STATE.CLOSING)
    expect(host.openTasks()).toBe(1) // still holding its slot while the close handshake hangs
    expect((await gone).code).toBe(1006)
    expect(host.openTasks()).toBe(0)
  })

  it('dispose() tears down connecting and open tasks silently', async () => {
    const s = await server()
    const p = await proxy(s)
    const host = createWxSimulator()
    const open = host.connectSocket({ url: s.url() })
    await opened(open)
    p.mode('blackhole')
    const connecting = host.connectSocket({ url: p.url() })
    const events: string[] = []
    for (const t of [open, connecting]) {
      t.onClose(() => events.push('close'))
      t.onError(() => events.push('error'))
    }
    host.onNetworkStatusChange(() => events.push('net'))
    host.dispose()
    expect(host.openTasks()).toBe(0)
    expect(host.listenerCount()).toEqual({ network: 0, appShow: 0, appHide: 0 })
    expect(open.readyState).toBe(SOCKET_STATE.CLOSED)
    await until(() => s.connections.size === 0, 2000, 'server to see the teardown')
    host.setNetwork('none')
    await sleep(20)
    expect(events).toEqual([])
  })

  it('reset and fin kill open connections (1006) and then let reconnects through', async () => {
    const s = await server()
    const p = await proxy(s)
    const host = wx()

    const a = host.connectSocket({ url: p.url() })
    await opened(a)
    const aClosed = closed(a)
    p.mode('reset')
    expect((await aClosed).code).toBe(1006)
    expect(p.currentMode).toBe('pass')

    const b = host.connectSocket({ url: p.url() })
    await opened(b)
    const bClosed = closed(b)
    p.mode('fin')
    expect((await bClosed).code).toBe(1006)
    await until(() => s.connections.size === 0, 2000, 'server side to close')

    const c = host.connectSocket({ url: p.url() })
    await opened(c)
  })

  it('refuse makes new connections fail while open ones survive; latency still delivers', async () => {
    const s = await server()
    const p = await proxy(s)
    const host = wx()
    const a = host.connectSocket({ url: p.url() })
    await opened(a)

    p.mode('refuse')
    const b = host.connectSocket({ url: p.url() })
    const bErr = errored(b)
    const bClosed = closed(b)
    await bErr
    expect((await bClosed).code).toBe(1006)
    expect(s.handshakes).toHaveLength(1)

    p.mode('latency', { latencyMs: 30 })
    a.send({ data: 'slow' })
    expect((await message(a)).data).toBe('slow')
    expect(a.readyState).toBe(SOCKET_STATE.OPEN)
  })
})

describe('test-server', () => {
  it('restart keeps the port; clients see 1006 and can reconnect; stop refuses meanwhile', async () => {
    const s = await server()
    const port = s.port
    const host = wx()
    const a = host.connectSocket({ url: s.url() })
    await opened(a)
    const aClosed = closed(a)
    await s.restart()
    expect(s.port).toBe(port)
    expect(s.listening).toBe(true)
    expect((await aClosed).code).toBe(1006)

    const b = host.connectSocket({ url: s.url() })
    await opened(b)
    expect(s.acceptedCount).toBe(2)
    expect(await s.waitForConnection(2)).toBe([...s.connections][0])

    await s.stop()
    const c = host.connectSocket({ url: `ws://127.0.0.1:${port}/` })
    const cErr = errored(c)
    const cClosed = closed(c)
    expect((await cErr).errMsg).toMatch(/ECONNREFUSED/)
    expect((await cClosed).code).toBe(1006)
    await s.start()
    expect(s.port).toBe(port)
    await opened(host.connectSocket({ url: s.url() }))
  })

  it('echoes with the same frame type, answers configurable pings, broadcasts, and can go quiet', async () => {
    const s = await server({ pong: { ping: 'hb?', pong: 'hb!' } })
    const host = wx()
    const task = host.connectSocket({ url: s.url() })
    await opened(task)
    task.send({ data: 'hb?' })
    expect((await message(task)).data).toBe('hb!')
    task.send({ data: 'ping' })
    expect((await message(task)).data).toBe('ping') // not the configured ping: plain echo

    s.broadcast(new Uint8Array([9, 8]))
    const bin = await message(task)
    expect([...new Uint8Array(bin.data as ArrayBuffer)]).toEqual([9, 8])

    s.configure({ echo: false, pong: false })
    const got: unknown[] = []
    task.onMessage((m) => got.push(m.data))
    task.send({ data: 'hb?' })
    await s.waitForMessage((m) => m.data === 'hb?', 2000, 2)
    await sleep(50)
    expect(got).toEqual([])
  })

  it('waitForConnection and waitForMessage time out with a clear error', async () => {
    const s = await server()
    await expect(s.waitForConnection(1, 50)).rejects.toThrow(/timed out/)
    await expect(s.waitForMessage(() => true, 50)).rejects.toThrow(/timed out/)
  })
})
