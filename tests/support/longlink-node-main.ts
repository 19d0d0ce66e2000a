/**
 * One LongLink process for the cluster test (run with `node --import tsx`): an HTTP server on 127.0.0.1:0 with
 * attachLongLink at `/ll`, node name `LL_NODE`. Each text message is answered `<node>:<text>` so the test sees which
 * process served it. Prints `{"event":"listening","port":…,"node":…}` once it listens. Bounded: it exits by itself
 * after `LL_MAX_LIFE_MS` (default 120 000) should the test that started it never stop it.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { attachLongLink } from '../../server/longlink/index'

const node = process.env.LL_NODE ?? 'n'
const server = http.createServer((_req, res) => {
  res.writeHead(404)
  res.end()
})
const handle = attachLongLink(server, {
  path: '/ll',
  node,
  hold: Number(process.env.LL_HOLD ?? 1000),
  onConnection(conn) {
    conn.on('message', (m) => void conn.send(typeof m === 'string' ? `${node}:${m}` : m).catch(() => {}))
  },
})

server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ event: 'listening', port: (server.address() as AddressInfo).port, node }))
})

const stop = (): void => {
  void handle.close().finally(() => {
    server.closeAllConnections()
    server.close(() => process.exit(0))
  })
}
process.once('SIGTERM', stop)
setTimeout(() => process.exit(0), Number(process.env.LL_MAX_LIFE_MS ?? 120_000)).unref()
