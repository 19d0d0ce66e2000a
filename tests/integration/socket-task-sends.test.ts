/**
 * Send outcomes of the SocketTask adapter on real sockets (wx and uni simulators over `ws`): a large burst resolves
 * once the platform accepted it and arrives in order; sends made before a close resolve, sends after it reject; a send
 * the platform refuses in the middle of a burst rejects alone.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createConnection, createSocketTaskAdapter, ErrorCode, type Transport } from '../../uni_modules/longlink-socket/js_sdk/index'
import { createUniSimulator, createWxSimulator } from '../support/socket-task-sim'
import { startTestServer, type TestServer } from '../support/test-server'
import { until } from '../support/wait'

const simulators = [
  { name: 'wx', create: createWxSimulator },
  { name: 'uni', create: createUniSimulator },
]

describe.each(simulators)('SocketTask sends over $name', ({ create }) => {
  let server: TestServer
  let sim: ReturnType<typeof createWxSimulator>

  beforeEach(async () => {
    server = await startTestServer({ echo: false })
    sim = create() as ReturnType<typeof createWxSimulator>
  })
  afterEach(async () => {
    sim.dispose()
    await server.close()
  })

  async function openLink(): Promise<Transport> {
    let opened!: () => void
    const open = new Promise<void>((resolve) => (opened = resolve))
    const link = createSocketTaskAdapter(sim).open(
      { url: server.url('/sends') },
      { onOpen: () => opened(), onMessage() {}, onClose() {}, onError() {} },
    )
    await open
    return link
  }

  it('resolves every send of a large burst once the platform accepted it, and all of it arrives in order', async () => {
    const link = await openLink()
    const count = 2000
    const results = await Promise.allSettled(Array.from({ length: count }, (_, i) => link.send(`m${i}`)))
    expect(results.every((r) => r.status === 'fulfilled')).toBe(true)
    await until(() => server.messages.length === count, 5000)
    expect(server.messages.map((m) => m.data)).toEqual(Array.from({ length: count }, (_, i) => `m${i}`))
  })

  it('a burst cut off by close: sends before it resolve, sends after it reject with SEND_FAILED', async () => {
    const link = await openLink()
    const before = [link.send('a'), link.send('b')]
    link.close(1000, 'bye')
    const after = [link.send('c'), link.send('d')]
    const outcomes = await Promise.all(
      [...before, ...after].map((p) =>
        p.then(
          () => 'ok',
          (error) => error.code,
        ),
      ),
    )
    expect(outcomes).toEqual(['ok', 'ok', ErrorCode.SEND_FAILED, ErrorCode.SEND_FAILED])
    await until(() => server.messages.length === 2, 2000)
    expect(server.messages.map((m) => m.data)).toEqual(['a', 'b'])
  })

  it('a Connection gives each send of a turn its own outcome: only the message the platform refused rejects', async () => {
    // The platform refuses what it cannot send: here the message 'bad' reaches the task as a number, which WeChat's
    // parameter check rejects (`sendSocketMessage:fail parameter error ...`); everything else goes out as usual.
    const host = {
      ...sim,
      connectSocket(options: Parameters<typeof sim.connectSocket>[0]) {
        const task = sim.connectSocket(options)
        const send = task.send.bind(task)
        task.send = (opts) => send(opts.data === 'bad' ? { ...opts, data: 42 } : opts)
        return task
      },
    }
    const connection = createConnection({ url: server.url('/sends'), platform: host as never, heartbeat: false })
    await connection.open()
    const settled = await Promise.allSettled([connection.send('good1'), connection.send('bad'), connection.send('good2')])
    expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect((settled[1] as PromiseRejectedResult).reason).toMatchObject({
      code: ErrorCode.SEND_FAILED,
      message: expect.stringContaining('parameter error'),
    })
    await until(() => server.messages.length === 2, 2000)
    expect(server.messages.map((m) => m.data)).toEqual(['good1', 'good2'])
    await connection.close()
  })
})
