import { ErrorCode, LongLinkError } from '../errors'
import { fromWire, toWire } from '../core/bytes'
import type { Adapter, SocketHost, SocketTaskLike } from '../transport'

/** WeChat says `connectSocket:fail exceed max task count` at the limit; other hosts word it alike. */
const LIMIT_MESSAGE = /exceed|max.*(task|socket|count|connect)|limit|too many/i

function isTask(value: unknown): value is SocketTaskLike {
  return !!value && typeof (value as SocketTaskLike).onOpen === 'function' && typeof (value as SocketTaskLike).send === 'function'
}

function errMsg(res: unknown): string {
  if (res && typeof res === 'object' && 'errMsg' in res) return String((res as { errMsg: unknown }).errMsg)
  if (res instanceof Error) return res.message
  return String(res)
}

/**
 * Adapter for any host whose `connectSocket(options)` returns a SocketTask: wx, uni, Alipay `my`, Douyin `tt`,
 * or a test simulator. Callbacks are always passed, so uni hands back a SocketTask rather than a Promise;
 * `success` only means the task exists, so the link counts as open on `onOpen` alone.
 */
export function createSocketTaskAdapter(host: SocketHost, name = 'socket-task'): Adapter {
  if (!host || typeof host.connectSocket !== 'function') {
    throw new LongLinkError(ErrorCode.UNSUPPORTED_PLATFORM, `The ${name} host has no connectSocket()`)
  }
  return {
    name,
    lifecycle: host,
    open(request, events) {
      let task: SocketTaskLike | undefined
      let result: unknown
      try {
        result = host.connectSocket({
          url: request.url,
          header: request.header,
          protocols: request.protocols,
          timeout: request.timeout,
          // Alipay returns a SocketTask only with `multiple: true`; other hosts ignore the flag.
          multiple: true,
          success: () => {},
          fail: (res: unknown) => events.onError(failure(res, ErrorCode.CONNECT_FAILED, 'connectSocket failed')),
        })
      } catch (error) {
        events.onError(new LongLinkError(ErrorCode.CONNECT_FAILED, `connectSocket threw: ${errMsg(error)}`, error))
        return { send: () => Promise.reject(notOpen()), close: () => {} }
      }
      if (isTask(result)) {
        task = result
        task.onOpen(() => events.onOpen())
        task.onMessage((res) => events.onMessage(fromWire(res?.data)))
        task.onClose((res) => events.onClose(typeof res?.code === 'number' ? res.code : 1006, String(res?.reason ?? '')))
        // Some hosts (WeChat DevTools among them) report the socket limit through onError rather than fail.
        task.onError((res) => events.onError(failure(res, ErrorCode.SOCKET_ERROR, 'socket error')))
      } else if (!result || typeof (result as PromiseLike<unknown>).then !== 'function') {
        // A host that returned neither a task nor a pending call can never open.
        events.onError(new LongLinkError(ErrorCode.CONNECT_FAILED, `${name}.connectSocket returned no SocketTask`))
      }
      // With callbacks passed, a Promise result means a `fail` is on its way (uni reports failures that way).
      return {
        send(data) {
          if (!task) return Promise.reject(notOpen())
          const socket = task
          return new Promise<void>((resolve, reject) => {
            socket.send({
              data: toWire(data),
              success: () => resolve(),
              fail: (res) => reject(new LongLinkError(ErrorCode.SEND_FAILED, `send failed: ${errMsg(res)}`, res)),
            })
          })
        },
        close(code, reason) {
          try {
            task?.close({ code, reason, fail: () => {} })
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
  const message = errMsg(res)
  return new LongLinkError(LIMIT_MESSAGE.test(message) ? ErrorCode.SOCKET_LIMIT : code, `${what}: ${message}`, res)
}

function notOpen(): LongLinkError {
  return new LongLinkError(ErrorCode.SEND_FAILED, 'The socket is not open')
}
