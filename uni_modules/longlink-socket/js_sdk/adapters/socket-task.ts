import { fail, messageOf, type ErrorCode, type LongLinkError } from '../errors'
import { toWire } from '../core/bytes'
import type { Adapter, SocketHost, SocketTaskLike } from '../transport'

/** WeChat says `connectSocket:fail exceed max task count` at the limit; other hosts word it alike. */
const LIMIT_MESSAGE = /exceed|max.*(task|socket|count|connect)|limit|too many/i

/**
 * Sends that share one settlement: those made before the platform's first answer to any of them. The platform
 * answers sends one by one in call order; the batch settles once every answer is in. Why not one `new Promise` per
 * send: in a burst every send stays pending until the platform answers, and a promise with its own resolve and
 * reject functions is four objects to keep and then collect; here a send is one `then` on its batch, and each send
 * still gets its own outcome.
 */
interface Batch {
  done: Promise<Batch>
  resolve(batch: Batch): void
  /** Failed sends' errors by their number in the batch (successes leave a hole). */
  errors: (LongLinkError | undefined)[]
  sends: number
  /** Answers in so far; once settled, counted back down as outcomes are handed out. */
  answered: number
}

/**
 * One send's reaction to its settled batch. Reactions run in the order they were added, so the n-th to run is the
 * n-th send: with `answered` counting down from `sends`, `sends - answered` is its number.
 */
function outcome(batch: Batch): void {
  const error = batch.errors[batch.sends - batch.answered--]
  if (error) throw error
}

function isTask(value: unknown): value is SocketTaskLike {
  return !!value && typeof (value as SocketTaskLike).onOpen === 'function' && typeof (value as SocketTaskLike).send === 'function'
}

/**
 * Adapter for any host whose `connectSocket(options)` returns a SocketTask: wx, uni, Alipay `my`, Douyin `tt`,
 * or a test simulator. Callbacks are always passed, so uni hands back a SocketTask rather than a Promise;
 * `success` only means the task exists, so the link counts as open on `onOpen` alone.
 */
export function createSocketTaskAdapter(host: SocketHost, name = 'socket-task'): Adapter {
  if (!host || typeof host.connectSocket !== 'function') {
    throw fail('UNSUPPORTED_PLATFORM', `${name}.connectSocket missing`)
  }
  return {
    name,
    lifecycle: host,
    open(request, events) {
      // A synchronous throw from connectSocket reaches the connection, which counts it as a failed attempt.
      const result = host.connectSocket({
        url: request.url,
        header: request.header,
        protocols: request.protocols,
        timeout: request.timeout,
        // Alipay returns a SocketTask only with `multiple: true`; other hosts ignore the flag.
        multiple: true,
        success: () => {},
        fail: (res: unknown) => events.onError(failure(res, 'CONNECT_FAILED', 'connectSocket failed')),
      })
      // With callbacks passed every host returns a task; anything else can never open (its `fail` may follow).
      if (!isTask(result)) {
        events.onError(fail('CONNECT_FAILED', `${name}.connectSocket gave no SocketTask`))
        return { send: () => Promise.reject(fail('SEND_FAILED', 'no SocketTask')), close: () => {} }
      }
      const task = result
      task.onOpen(() => events.onOpen())
      task.onMessage((res) => events.onMessage(toWire(res && res.data)))
      task.onClose((res) => events.onClose(res && typeof res.code === 'number' ? res.code : 1006, String((res && res.reason) || '')))
      // Some hosts (WeChat DevTools, Android) report the socket limit through onError rather than fail.
      task.onError((res) => events.onError(failure(res, 'SOCKET_ERROR', 'socket error')))
      // A task answers sends in call order, so one pair of callbacks serves every send of the link.
      const waiting: Batch[] = []
      let open: Batch | undefined
      const answer = (error?: LongLinkError) => {
        const oldest = waiting[0]
        // An answer no send waits for (a host answering twice) has nobody to go to.
        if (!oldest) return
        // Sends made from now on wait in a new batch, so answers keep coming to settle this one.
        if (oldest === open) open = undefined
        if (error) oldest.errors[oldest.answered] = error
        if (++oldest.answered >= oldest.sends) waiting.shift(), oldest.resolve(oldest)
      }
      const sent = () => answer()
      const failed = (res: unknown) => answer(failure(res, 'SEND_FAILED', 'send failed'))
      return {
        send(data) {
          let batch = open
          if (!batch) {
            waiting.push((batch = open = { errors: [], sends: 0, answered: 0 } as unknown as Batch))
            batch.done = new Promise((resolve) => (batch!.resolve = resolve))
          }
          // Counted before the call: some hosts (uni on H5) answer from inside task.send.
          batch.sends++
          try {
            task.send({ data: toWire(data), success: sent, fail: failed })
          } catch (error) {
            // A host that throws instead of calling `fail` will not answer this send: it leaves the batch.
            batch.sends--
            return Promise.reject(failure(error, 'SEND_FAILED', 'send threw'))
          }
          return batch.done.then(outcome)
        },
        close(code, reason) {
          try {
            task.close({ code, reason, fail: () => {} })
          } catch {
            // Closing a task that never opened may throw on some hosts; it is gone either way.
          }
        },
      }
    },
  }
}

/** A platform failure as a LongLinkError; the socket limit gets its own code whichever callback reports it. */
function failure(res: unknown, code: ErrorCode, what: string): LongLinkError {
  const message = messageOf(res)
  return fail(LIMIT_MESSAGE.test(message) ? 'SOCKET_LIMIT' : code, `${what}: ${message}`, res)
}
