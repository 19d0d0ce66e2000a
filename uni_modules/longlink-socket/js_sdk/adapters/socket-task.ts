import { fail, messageOf, type ErrorCode, type LongLinkError } from '../errors'
import { toWire } from '../core/bytes'
import type { Adapter, SocketHost, SocketTaskLike } from '../transport'

/** WeChat says `connectSocket:fail exceed max task count` at the limit; other hosts word it alike. */
const LIMIT_MESSAGE = /exceed|max.*(task|socket|count|connect)|limit|too many/i

/**
 * Sends that share one promise: those made in the same turn of the event loop, with no answer from the platform
 * in between (a close() also starts a new batch). Within one turn the task's state, as the script sees it, cannot
 * change, so these sends meet one fate. The platform answers them one by one in call order; the batch settles once
 * every answer is in, rejected with the first failure if any send failed. Why not one promise per send: in a burst
 * every send stays pending until the platform answers, and thousands of pending promises are what the garbage
 * collector then spends its time on (see bench/). A send made after the previous one settled is alone in its
 * batch, so awaiting each send gives each message its own result.
 */
interface Batch {
  /** Settles once every send is answered: fulfilled, or rejected with the first failure. */
  done: Promise<void>
  /** Settles `done` with the batch's first failure, if any. */
  settle(error: LongLinkError | undefined): void
  /** The first failure among the batch's sends (added on failure only: the common path keeps one shape). */
  error?: LongLinkError
  /** Sends of the batch not answered yet. */
  pending: number
}

/**
 * A new, empty batch. The fields every send touches are set in one literal: objects that gain fields later change
 * shape on the way, and those short-lived shapes, once collected, throw away the optimised code that met them.
 */
function newBatch(): Batch {
  let settle!: Batch['settle']
  const done = new Promise<LongLinkError | undefined>((resolve) => (settle = resolve)).then(rethrow)
  return { done, settle, pending: 0 }
}

function rethrow(error: LongLinkError | undefined): void {
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
        const error = fail('CONNECT_FAILED', `${name}.connectSocket gave no SocketTask`)
        events.onError(error)
        // A link that never existed: a send on it fails for the same reason.
        return { send: () => Promise.reject(error), close: () => {} }
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
      /** Counts one answer for `batch`; the last one takes the batch out of `waiting` and settles it. */
      const count = (batch: Batch, error?: LongLinkError) => {
        if (error) batch.error = batch.error || error
        if (!--batch.pending) waiting.splice(waiting.indexOf(batch), 1), batch.settle(batch.error)
      }
      const answer = (error?: LongLinkError) => {
        const oldest = waiting[0]
        // Hosts answer each send once; an answer while no send waits (a host answering twice) is dropped.
        if (!oldest) return
        // Sends made from now on wait in a new batch, so answers keep coming to settle the ones waiting.
        open = undefined
        count(oldest, error)
      }
      const sent = () => answer()
      const failed = (res: unknown) => answer(failure(res, 'SEND_FAILED', 'send failed'))
      return {
        send(data) {
          let batch = open
          if (!batch) {
            waiting.push((batch = open = newBatch()))
            // The batch closes when the current turn's code is done (a resolved promise's reaction runs then).
            Promise.resolve().then(() => (open = undefined))
          }
          // Counted before the call: some hosts (uni on H5) answer from inside task.send.
          batch.pending++
          try {
            task.send({ data: toWire(data), success: sent, fail: failed })
          } catch (error) {
            // The host will not answer a send it threw on: the failure is that send's answer. (A host that answered
            // and then threw has settled the batch already, and the count goes below zero.)
            count(batch, failure(error, 'SEND_FAILED', 'send failed'))
          }
          return batch.done
        },
        close(code, reason) {
          // Sends after a close cannot share the fate of sends before it.
          open = undefined
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
