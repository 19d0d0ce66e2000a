/**
 * Send results of the SocketTask adapter: sends made in one turn settle together, once the host answered them all,
 * and fail together if it refused any; sends of other turns, or after a close, keep their own fate. The host here is
 * scripted so each case can pick the answers (later, at once from inside `send`, by throwing, twice); the same
 * adapter runs on real sockets in tests/integration/socket-task-sends.test.ts.
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
  it('resolves the sends of one turn once the host accepted them all', async () => {
    const { link, calls, answer } = scriptedHost()
    const sends = outcomes(['a', 'b', 'c'].map((x) => link.send(x)))
    expect(calls.map((c) => c.data)).toEqual(['a', 'b', 'c'])
    await turn()
    calls.forEach((call) => answer(call, 'ok'))
    expect(await sends).toEqual(['ok', 'ok', 'ok'])
  })

  it('rejects every send of a turn with SEND_FAILED when the host refused one', async () => {
    const { link, calls, answer } = scriptedHost()
    const sends = Promise.allSettled(['a', 'b', 'c'].map((x) => link.send(x)))
    await turn()
    const script: Answer[] = ['ok', 'fail', 'ok']
    calls.forEach((call, i) => answer(call, script[i]))
    const got = await sends
    expect(got.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected'])
    for (const result of got) expect((result as PromiseRejectedResult).reason).toMatchObject({ code: ErrorCode.SEND_FAILED, message: expect.stringContaining('boom') })
  })

  it('keeps the sends of a turn pending until the host has answered every one of them', async () => {
    const { link, calls, answer } = scriptedHost()
    let settled = 0
    const first = link.send('a').then(() => settled++)
    const second = link.send('b').then(() => settled++)
    await turn()
    answer(calls[0], 'ok')
    await turn()
    // 'b' is not answered yet: nothing may report it as accepted.
    expect(settled).toBe(0)
    answer(calls[1], 'ok')
    await Promise.all([first, second])
    expect(settled).toBe(2)
  })

  it('gives sends of different turns their own fate, while answers for earlier turns are still coming', async () => {
    const { link, calls, answer } = scriptedHost()
    const early = outcomes([link.send('a'), link.send('b')])
    await Promise.resolve()
    // A later turn (here: the next microtask), no answer yet.
    const middle = outcomes([link.send('c')])
    await turn()
    answer(calls[0], 'ok')
    answer(calls[1], 'ok')
    answer(calls[2], 'fail')
    const late = outcomes([link.send('d')])
    await turn()
    answer(calls[3], 'ok')
    expect([...(await early), ...(await middle), ...(await late)]).toEqual(['ok', 'ok', ErrorCode.SEND_FAILED, 'ok'])
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
    // 'a' and 'b' were made together and one failed; 'c' came after their answers, so it is on its own.
    expect(await outcomes([link.send('a'), link.send('b'), link.send('c')])).toEqual([ErrorCode.SEND_FAILED, ErrorCode.SEND_FAILED, 'ok'])
  })

  it('gives each send its own result when the host answers each one at once (uni on H5)', async () => {
    const { link } = scriptedHost((call) => (call.data === 'bad' ? call.fail({ errMsg: 'sendSocketMessage:fail boom' }) : call.success()))
    expect(await outcomes([link.send('a'), link.send('bad'), link.send('c')])).toEqual(['ok', ErrorCode.SEND_FAILED, 'ok'])
  })

  it('counts a send the host threw on as refused, sharing its fate with the rest of its turn', async () => {
    const { link, calls, answer } = scriptedHost((call) => {
      if (call.data === 'bad') throw new Error('host threw')
    })
    const settled = Promise.allSettled([link.send('a'), link.send('bad'), link.send('c')])
    await turn()
    // The host never answers the send it threw on: only 'a' and 'c' get answers.
    answer(calls[0], 'ok')
    answer(calls[2], 'ok')
    const got = await settled
    expect(got.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected'])
    for (const result of got) expect((result as PromiseRejectedResult).reason).toMatchObject({ code: ErrorCode.SEND_FAILED, message: expect.stringContaining('host threw') })
    // Nothing is left waiting: the next send gets the next answer.
    const later = outcomes([link.send('d')])
    await turn()
    answer(calls[3], 'ok')
    expect(await later).toEqual(['ok'])
  })

  it('leaves nothing behind when a lone send throws, so later answers reach later sends', async () => {
    const { link, calls, answer } = scriptedHost((call) => {
      if (call.data === 'bad') throw new Error('host threw')
    })
    await expect(link.send('bad')).rejects.toMatchObject({ code: ErrorCode.SEND_FAILED })
    const later = outcomes([link.send('b')])
    await turn()
    answer(calls[1], 'fail')
    expect(await later).toEqual([ErrorCode.SEND_FAILED])
  })

  it('settles a batch whose other sends were answered before the host threw on its last one', async () => {
    let first: SendCall | undefined
    const { link, calls, answer } = scriptedHost((call) => {
      if (call.data === 'a') first = call
      if (call.data === 'b') {
        first!.success()
        throw new Error('host threw')
      }
    })
    const both = Promise.allSettled([link.send('a'), link.send('b')])
    expect((await both).map((r) => r.status)).toEqual(['rejected', 'rejected'])
    const later = outcomes([link.send('c')])
    await turn()
    answer(calls[2], 'ok')
    expect(await later).toEqual(['ok'])
  })

  it('keeps the answer of a host that answered a send and then threw', async () => {
    const { link } = scriptedHost((call) => {
      if (call.data === 'refused') call.fail({ errMsg: 'sendSocketMessage:fail boom' })
      else call.success()
      throw new Error('host threw')
    })
    await expect(link.send('refused')).rejects.toMatchObject({ code: ErrorCode.SEND_FAILED, message: expect.stringContaining('boom') })
    await expect(link.send('accepted')).resolves.toBeUndefined()
  })

  it('starts a new batch at close(): sends before it keep their own result', async () => {
    const { link, calls, answer } = scriptedHost()
    const before = outcomes([link.send('a')])
    link.close(1000, 'bye')
    const after = outcomes([link.send('b')])
    await turn()
    answer(calls[0], 'ok')
    answer(calls[1], 'fail')
    expect([...(await before), ...(await after)]).toEqual(['ok', ErrorCode.SEND_FAILED])
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
