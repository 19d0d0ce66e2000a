/**
 * WebSocket upgrades at the path: without `sid` a plain WebSocket (authenticated, counted), with `sid` a WebSocket
 * joining that session (authorized by the sid). An unknown session is accepted and closed at once with 4410, since a
 * refused upgrade's status is hidden from mini-program code.
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { remoteAddressOf, type Core } from './core'
import { badRequest, HttpError, rejectUpgrade } from './errors'
import { acceptPlainWebSocket } from './plain-ws'
import { queryCounter, lastParam } from './query'
import { SID_PATTERN } from './session'
import { SessionSocket } from './session-ws'

async function plain(core: Core, req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
  const address = remoteAddressOf(req)
  const key = await core.authorize(req, address)
  core.admit(key)
  if (socket.destroyed) return
  core.wss.handleUpgrade(req, socket, head, (ws) => {
    // Counted when the handshake is done: one that fails (bad headers, answered 400 by `ws`) holds nothing.
    const uncount = core.registry.count(key)
    core.liveness.track(ws)
    const control = acceptPlainWebSocket(ws, address, core.options, () => {
      uncount()
      core.plain.delete(control)
    })
    core.plain.add(control)
    core.announce(control.conn)
  })
}

function joining(core: Core, req: IncomingMessage, socket: Duplex, head: Buffer, query: URLSearchParams): void {
  const transport = lastParam(query, 'transport')
  if (transport !== null && transport !== 'websocket') throw badRequest('"transport" must be websocket')
  const sid = lastParam(query, 'sid')!
  if (!SID_PATTERN.test(sid)) throw badRequest('"sid" is malformed')
  const c = queryCounter(query, 'c', 1)
  const ack = queryCounter(query, 'ack', 0, 0)
  const session = core.session(sid)
  if (session && ack > session.lastSent) throw badRequest('"ack" is beyond the messages sent')
  core.wss.handleUpgrade(req, socket, head, (ws) => {
    ws.on('error', () => {})
    const live = core.session(sid)
    if (!live) return ws.close(4410, 'session gone')
    core.liveness.track(ws)
    new SessionSocket(ws, live, c).start(ack)
  })
}

/** Takes an upgrade at the path; every refusal is an answer on the socket, never an exception. */
export function handleUpgradeAt(core: Core, req: IncomingMessage, socket: Duplex, head: Buffer, query: URLSearchParams): void {
  socket.on('error', () => {})
  const refuse = (err: unknown): void => {
    if (err instanceof HttpError) return rejectUpgrade(socket, err)
    core.options.logger.error('longlink.upgrade_error', { error: err, stack: (err as Error)?.stack })
    rejectUpgrade(socket, new HttpError(500, 'INTERNAL', 'internal error'))
  }
  try {
    if (core.closing) throw new HttpError(503, 'CLOSING', 'the server is closing')
    if (!query.has('sid')) plain(core, req, socket, head).catch(refuse)
    else joining(core, req, socket, head, query)
  } catch (err) {
    refuse(err)
  }
}
