import { fail, messageOf, type ErrorCode, type LongLinkError } from '../errors'
import { toWire } from '../core/bytes'
import type { Adapter, SocketHost, SocketTaskLike } from '../transport'

/** WeChat says `connectSocket:fail exceed max task count` at the limit; other hosts word it alike. */
const LIMIT_MESSAGE = /exceed|max.*(task|socket|count|connect)|limit|too many/i

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
        return { send: () => Promise.reject(failure('socket not open', 'SEND_FAILED', 'send failed')), close: () => {} }
      }
      const task = result
      task.onOpen(() => events.onOpen())
      task.onMessage((res) => events.onMessage(toWire(res && res.data)))
      task.onClose((res) => events.onClose(res && typeof res.code === 'number' ? res.code : 1006, String((res && res.reason) || '')))
      // Some hosts (WeChat DevTools, Android) report the socket limit through onError rather than fail.
      task.onError((res) => events.onError(failure(res, 'SOCKET_ERROR', 'socket error')))
      // A task reports send results in call order, so one pair of callbacks and a FIFO of the pending promises'
      // resolve/reject pairs serve every send: no closure per message, which a busy link feels (see bench/).
      const pending: ((value?: never) => void)[] = []
      let head = 0
      const settle = (error?: LongLinkError) => {
        const resolve = pending[head]
        const reject = pending[head + 1]
        pending[head] = pending[head + 1] = undefined as never
        head += 2
        if (head >= pending.length) pending.length = head = 0
        if (resolve) error ? reject(error as never) : resolve()
      }
      // One executor per link (not per send) hands each new promise's resolve/reject over without a closure.
      let resolveNext: (value?: never) => void
      let rejectNext: (value?: never) => void
      const capture = (resolve: () => void, reject: (error: LongLinkError) => void) => {
        resolveNext = resolve
        rejectNext = reject as unknown as (value?: never) => void
      }
      const sent = () => settle()
      const failed = (res: unknown) => settle(failure(res, 'SEND_FAILED', 'send failed'))
      return {
        send(data) {
          const promise = new Promise<void>(capture)
          pending.push(resolveNext, rejectNext)
          try {
            task.send({ data: toWire(data), success: sent, fail: failed })
          } catch (error) {
            // A host that throws instead of calling `fail` will not call back either: take the entry back out.
            pending.length -= 2
            rejectNext(failure(error, 'SEND_FAILED', 'send threw') as never)
          }
          return promise
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
