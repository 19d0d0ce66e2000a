/**
 * Send results of the SocketTask adapter: every send settles with its own outcome, once the host answered that send,
 * however many were made in the same turn. The host here is scripted so each case can pick the answers (later, at once
 * from inside `send`, by throwing, twice); the same adapter runs on real sockets in
 * tests/integration/socket-task-sends.test.ts.
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
  return Promise.all(
    promises.map((p) =>
      p.then(
        () => 'ok',
        (error) => error.code as string,
      ),
    ),
  )
}

const turn = () => new Promise((resolve) => setTimeout(resolve, 0))

describe('SocketTask adapter send results', () => {
  it('gives each send of a turn its own outcome: only the refused one rejects', async () => {
    const { link, calls, answer } = scriptedHost()
    const settled = Promise.allSettled([link.send('good1'), link.send('bad'), link.send('good2')])
    await turn()
    const script: Answer[] = ['ok', 'fail', 'ok']
    calls.forEach((call, i) => answer(call, script[i]))
    const got = await settled
    expect(got.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect((got[1] as PromiseRejectedResult).reason).toMatchObject({ code: ErrorCode.SEND_FAILED, message: expect.stringContaining('boom') })
  })

  it('settles a send once the host answered that send, not before and not later', async () => {
    const { link, calls, answer } = scriptedHost()
    const settled: string[] = []
    const first = link.send('a').then(() => settled.push('a'))
    const second = link.send('b').then(() => settled.push('b'))
    await turn()
    answer(calls[0], 'ok')
    await first
    // 'b' is not answered yet: nothing may report it as accepted.
    await turn()
    expect(settled).toEqual(['a'])
    answer(calls[1], 'ok')
    await second
    expect(settled).toEqual(['a', 'b'])
  })

  it('keeps call order across turns while earlier answers are still coming', async () => {
    const { link, calls, answer } = scriptedHost()
    const early = outcomes([link.send('a'), link.send('b')])
    await Promise.resolve()
    const middle = outcomes([link.send('c')])
    await turn()
    answer(calls[0], 'fail')
    answer(calls[1], 'ok')
    answer(calls[2], 'fail')
    const late = outcomes([link.send('d')])
    await turn()
    answer(calls[3], 'ok')
    expect([...(await early), ...(await middle), ...(await late)]).toEqual([ErrorCode.SEND_FAILED, 'ok', ErrorCode.SEND_FAILED, 'ok'])
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

  it('gives each send its own result when the host answers each one at once (uni on H5)', async () => {
    const { link } = scriptedHost((call) => (call.data === 'bad' ? call.fail({ errMsg: 'sendSocketMessage:fail boom' }) : call.success()))
    expect(await outcomes([link.send('a'), link.send('bad'), link.send('c')])).toEqual(['ok', ErrorCode.SEND_FAILED, 'ok'])
  })

  it('rejects only the send the host threw on; the others keep their answers', async () => {
    const { link, calls, answer } = scriptedHost((call) => {
      if (call.data === 'bad') throw new Error('host threw')
    })
    const settled = Promise.allSettled([link.send('a'), link.send('bad'), link.send('c')])
    await turn()
    // The host never answers the send it threw on: only 'a' and 'c' get answers.
    answer(calls[0], 'ok')
    answer(calls[2], 'fail')
    const got = await settled
    expect(got.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected'])
    expect((got[1] as PromiseRejectedResult).reason).toMatchObject({ code: ErrorCode.SEND_FAILED, message: expect.stringContaining('host threw') })
    expect((got[2] as PromiseRejectedResult).reason).toMatchObject({ code: ErrorCode.SEND_FAILED, message: expect.stringContaining('boom') })
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

  it('keeps the answers the host gave to earlier sends before it threw on a later one', async () => {
    let first: SendCall | undefined
    const { link, calls, answer } = scriptedHost((call) => {
      if (call.data === 'a') first = call
      if (call.data === 'b') {
        first!.success()
        throw new Error('host threw')
      }
    })
    const both = Promise.allSettled([link.send('a'), link.send('b')])
    expect((await both).map((r) => r.status)).toEqual(['fulfilled', 'rejected'])
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

  it('sends before and after close() keep their own results', async () => {
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

  it('returns a result that behaves as a promise: then, catch, finally, awaited twice or after the answer', async () => {
    const { link, calls, answer } = scriptedHost()
    const ok = link.send('a')
    const bad = link.send('b')
    expect(Object.prototype.toString.call(ok)).toBe('[object Promise]')
    const finallyRan: string[] = []
    const chained = Promise.all([
      ok.then(() => 'first'),
      ok.then(() => 'second'),
      ok.finally(() => finallyRan.push('ok')),
      bad.catch((error: { code: string }) => error.code),
      bad.finally(() => finallyRan.push('bad')).catch(() => 'still rejected'),
      Promise.resolve(ok).then(() => 'adopted'),
    ])
    await turn()
    answer(calls[0], 'ok')
    answer(calls[1], 'fail')
    expect(await chained).toEqual(['first', 'second', undefined, ErrorCode.SEND_FAILED, 'still rejected', 'adopted'])
    expect(finallyRan.sort()).toEqual(['bad', 'ok'])
    // Asked again after the answer came: the same outcome.
    await expect(ok).resolves.toBeUndefined()
    await expect(bad).rejects.toMatchObject({ code: ErrorCode.SEND_FAILED })
    const late = link.send('c')
    await turn()
    answer(calls[2], 'ok')
    await turn()
    await expect(late).resolves.toBeUndefined()
  })

  it('reports a refused send nobody awaits as an unhandled rejection, as any promise would', async () => {
    const seen: unknown[] = []
    const listeners = process.listeners('unhandledRejection')
    process.removeAllListeners('unhandledRejection')
    process.on('unhandledRejection', (reason) => seen.push(reason))
    try {
      const { link, calls, answer } = scriptedHost()
      void link.send('ignored')
      await turn()
      answer(calls[0], 'fail')
      await turn()
      await turn()
      expect(seen).toEqual([expect.objectContaining({ code: ErrorCode.SEND_FAILED })])
    } finally {
      process.removeAllListeners('unhandledRejection')
      for (const listener of listeners) process.on('unhandledRejection', listener)
    }
  })
})
