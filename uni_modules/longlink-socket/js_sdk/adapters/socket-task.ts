import { fail, platformError, type LongLinkError } from '../errors'
import { toWire } from '../core/bytes'
import type { Adapter, SocketHost, SocketTaskLike } from '../transport'

/** The outcome of one send as a promise, made on first request (see {@link Sent}). */
type Outcome = (n: number) => Promise<void>

/**
 * What `send` returns on SocketTask hosts: the fate of that one message, as a promise that is only made when someone
 * asks (`then`, `catch`, `finally`, `await`). A burst of fire-and-forget sends then keeps no promise per message
 * waiting for the platform's answer, which is what the garbage collector would otherwise spend its time on (see
 * bench/). The link records outcomes by send number: answers come in call order, and only failures are kept.
 */
class Sent implements Promise<void> {
  private made: Promise<void> | undefined

  constructor(
    private readonly outcome: Outcome,
    private readonly n: number,
  ) {}

  then<A = void, B = never>(
    onFulfilled?: ((value: void) => A | PromiseLike<A>) | null,
    onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return (this.made || (this.made = this.outcome(this.n))).then(onFulfilled, onRejected)
  }

  catch<B = never>(onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<void | B> {
    return this.then(undefined, onRejected)
  }

  finally(onFinally?: (() => void) | null): Promise<void> {
    return this.then().finally(onFinally)
  }

  get [Symbol.toStringTag](): string {
    return 'Promise'
  }
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
        fail: (res: unknown) => events.onError(platformError(res, 'CONNECT_FAILED', 'connectSocket failed', request.url)),
      })
      // With callbacks passed every host returns a task; anything else can never open (its `fail` may follow).
      if (!isTask(result)) {
        const error = fail('CONNECT_FAILED', `${name}.connectSocket gave no SocketTask`)
        events.onError(error)
        // A link that never existed: a send on it fails for the same reason.
        return { send: () => Promise.reject(error), close: () => {} }
      }
      const task = result
      task.onOpen(() => events.onOpen())
      task.onMessage((res) =>
        events.onMessage(
          toWire(
            // #ifdef MP-ALIPAY
            // Alipay hands a binary frame over as base64 text marked `isBuffer`: the app gets its bytes, as everywhere.
            res && res.isBuffer && typeof res.data === 'string' && host.base64ToArrayBuffer
              ? host.base64ToArrayBuffer(res.data as string)
              : // #endif
                res && res.data,
          ),
        ),
      )
      task.onClose((res) => events.onClose(res && typeof res.code === 'number' ? res.code : 1006, String((res && res.reason) || '')))
      // Some hosts (WeChat DevTools, Android) report the socket limit through onError rather than fail.
      task.onError((res) => events.onError(platformError(res, 'SOCKET_ERROR', 'socket error', request.url)))
      // A task answers sends in call order, so one pair of callbacks serves every send of the link: answer k is
      // the outcome of send k. Sends are numbered; `answered` counts the answers so far.
      let sends = 0
      let answered = 0
      /**
       * Per send number, only where there is something to keep: the settle functions of a send someone awaits before
       * its answer came, or, once answered, a refused send's rejected promise (made at once, so a refusal nobody asks
       * about is reported as an unhandled rejection, as any promise's would be).
       */
      const slots: Record<number, Promise<void> | [() => void, (error: LongLinkError) => void]> = {}
      const outcome: Outcome = (n) =>
        n < answered ? (slots[n] as Promise<void>) || Promise.resolve() : new Promise((resolve, reject) => (slots[n] = [resolve, reject]))
      const answer = (error?: LongLinkError) => {
        // Hosts answer each send once; an answer while no send waits (a host answering twice) is dropped.
        if (answered === sends) return
        const n = answered++
        const waiter = slots[n] as [() => void, (error: LongLinkError) => void] | undefined
        if (waiter) {
          delete slots[n]
          error ? waiter[1](error) : waiter[0]()
        } else if (error) slots[n] = Promise.reject(error)
      }
      const sent = () => answer()
      /** A refused send: SEND_FAILED, or SOCKET_LIMIT when the platform says so (the codes `send` documents). */
      const refused = (res: unknown) => {
        const error = platformError(res, 'SEND_FAILED', 'send failed', '')
        return error.code === 'SOCKET_LIMIT' ? error : fail('SEND_FAILED', error.message, res)
      }
      const failed = (res: unknown) => answer(refused(res))
      return {
        send(data) {
          const n = sends++
          try {
            task.send({ data: toWire(data), success: sent, fail: failed })
          } catch (error) {
            // A host that answered and then threw has given its answer; one that threw without answering never
            // will, so this send takes no answer away from the next one.
            if (n < answered) return new Sent(outcome, n)
            sends--
            return Promise.reject(refused(error))
          }
          return new Sent(outcome, n)
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
