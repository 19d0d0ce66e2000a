/**
 * Send results of the SocketTask adapter: every send's promise gets its own outcome, in call order, however the
 * host answers (later, at once from inside `send`, by throwing, twice). The host here is scripted so each case can
 * pick the answers; the same adapter runs on real sockets in the contract suite.
 */
import { describe, expect, it } from 'vitest'
import { createSocketTaskAdapter, ErrorCode, type Transport } from '../../uni_modules/longlink-socket/js_sdk/index'

type Answer = 'ok' | 'fail'
interface SendCall {
  data: unknown
  success: () => void
  fail: (res: { errMsg: string }) => void
}

/** A host whose task records every send; the test answers them when and how it likes. */
function scriptedHost(onSend: (call: SendCall, calls: SendCall[]) => void = () => {}) {
  const calls: SendCall[] = []
  const host = {
    connectSocket: () => ({
      onOpen() {},
      onClose() {},
      onError() {},
      onMessage() {},
      close() {},
      send(options: SendCall) {
        calls.push(options)
        onSend(options, calls)
      },
    }),
  }
  const link: Transport = createSocketTaskAdapter(host).open({ url: 'ws://x' }, { onOpen() {}, onMessage() {}, onClose() {}, onError() {} })
  const answer = (call: SendCall, how: Answer) => (how === 'ok' ? call.success() : call.fail({ errMsg: 'sendSocketMessage:fail boom' }))
  return { link, calls, answer }
}

/** Each promise's outcome once it settles: 'ok', or the error code. */
function outcomes(promises: Promise<void>[]) {
  return Promise.all(promises.map((p) => p.then(() => 'ok', (error) => error.code as string)))
}

const turn = () => new Promise((resolve) => setTimeout(resolve, 0))

describe('SocketTask adapter send results', () => {
  it('gives each send of a burst its own outcome, in call order', async () => {
    const { link, calls, answer } = scriptedHost()
    const sends = outcomes(['a', 'b', 'c', 'd', 'e'].map((x) => link.send(x)))
    expect(calls.map((c) => c.data)).toEqual(['a', 'b', 'c', 'd', 'e'])
    await turn()
    const script: Answer[] = ['ok', 'fail', 'ok', 'fail', 'ok']
    calls.forEach((call, i) => answer(call, script[i]))
    expect(await sends).toEqual(['ok', ErrorCode.SEND_FAILED, 'ok', ErrorCode.SEND_FAILED, 'ok'])
  })

  it('keeps a send pending until the host has answered it', async () => {
    const { link, calls, answer } = scriptedHost()
    let settled = 0
    const first = link.send('a').then(() => settled++)
    const second = link.send('b').then(() => settled++)
    await turn()
    answer(calls[0], 'ok')
    await turn()
    // 'a' is answered, 'b' is not: nothing may report 'b' as accepted yet.
    expect(settled).toBeLessThan(2)
    answer(calls[1], 'ok')
    await Promise.all([first, second])
    expect(settled).toBe(2)
  })

  it('matches answers to sends across turns while new sends keep coming', async () => {
    const { link, calls, answer } = scriptedHost()
    const early = outcomes([link.send('a'), link.send('b')])
    await turn()
    answer(calls[0], 'fail')
    const middle = outcomes([link.send('c')])
    answer(calls[1], 'ok')
    await turn()
    const late = outcomes([link.send('d')])
    answer(calls[2], 'ok')
    answer(calls[3], 'fail')
    expect([...(await early), ...(await middle), ...(await late)]).toEqual([ErrorCode.SEND_FAILED, 'ok', 'ok', ErrorCode.SEND_FAILED])
  })

  it('copes with a host that answers from inside send, even for earlier sends', async () => {
    let delayed: SendCall | undefined
    const { link } = scriptedHost((call, calls) => {
      // Answers keep call order, but come in the middle of later sends: the first during the second, the rest at once.
      if (calls.length === 1) delayed = call
      else if (calls.length === 2) {
        delayed!.success()
        call.fail({ errMsg: 'sendSocketMessage:fail boom' })
      } else call.success()
    })
    expect(await outcomes([link.send('a'), link.send('b'), link.send('c')])).toEqual(['ok', ErrorCode.SEND_FAILED, 'ok'])
  })

  it('rejects only the send a host threw on, and keeps the others in line', async () => {
    const { link, calls, answer } = scriptedHost((call) => {
      if (call.data === 'bad') throw new Error('host threw')
    })
    const settled = Promise.allSettled([link.send('a'), link.send('bad'), link.send('c')])
    await turn()
    answer(calls[0], 'fail')
    answer(calls[2], 'ok')
    const got = await settled
    expect(got.map((r) => r.status)).toEqual(['rejected', 'rejected', 'fulfilled'])
    expect((got[1] as PromiseRejectedResult).reason).toMatchObject({ code: ErrorCode.SEND_FAILED, message: expect.stringContaining('host threw') })
    expect((got[0] as PromiseRejectedResult).reason).toMatchObject({ code: ErrorCode.SEND_FAILED, message: expect.stringContaining('boom') })
  })

  it('ignores an answer nobody waits for', async () => {
    const { link, calls, answer } = scriptedHost()
    const first = link.send('a')
    await turn()
    answer(calls[0], 'ok')
    answer(calls[0], 'fail')
    await expect(first).resolves.toBeUndefined()
    const second = expect(link.send('b')).rejects.toMatchObject({ code: ErrorCode.SEND_FAILED })
    await turn()
    answer(calls[1], 'fail')
    await second
  })

  it('reports the socket limit on a send as SOCKET_LIMIT', async () => {
    const { link, calls } = scriptedHost()
    const send = expect(link.send('a')).rejects.toMatchObject({ code: ErrorCode.SOCKET_LIMIT })
    await turn()
    calls[0].fail({ errMsg: 'sendSocketMessage:fail exceed max task count' })
    await send
  })
})
