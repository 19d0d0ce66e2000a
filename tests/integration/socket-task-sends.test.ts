/**
 * Send outcomes of the SocketTask adapter on real sockets (wx and uni simulators over `ws`): a large burst resolves
 * once the platform accepted it and arrives in order; sends made before a close resolve, sends after it reject.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createSocketTaskAdapter, ErrorCode, type Transport } from '../../uni_modules/longlink-socket/js_sdk/index'
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
})
