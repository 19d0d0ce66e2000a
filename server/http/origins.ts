/**
 * Which browser origins may open a WebSocket here or read the API cross-origin, and which Host names are this
 * backend's own (for the MQTT URL `/api/config` answers).
 *
 * What each platform sends in the WebSocket handshake: H5 (a browser) always sends the page's origin; a WeChat
 * mini-program sends no `Origin` or `https://servicewechat.com` (its requests carry that as Referer); uni-app's App
 * (Android/iOS) and native apps send none. A handshake without `Origin` is therefore allowed by default
 * (`ALLOW_NO_ORIGIN`); `null` (sandboxed frames, `file:` pages) and every other foreign origin are refused.
 */
import type { BackendConfig } from '../config'
import { ownAddresses } from '../config'

export const WECHAT_ORIGIN = 'https://servicewechat.com'

export interface OriginPolicy {
  /** May a WebSocket handshake with this `Origin` header (undefined: none) go on? */
  allowSocket(origin: string | undefined): boolean
  /** CORS headers for a request with this origin (none for origins not configured). */
  cors(origin: string | undefined): Record<string, string>
  /** Is `host` (a Host header) one of this backend's own names? */
  ownHost(host: string | undefined): boolean
}

const hostPart = (address: string): string => (address.includes(':') ? `[${address}]` : address)

export function createOriginPolicy(
  config: Pick<BackendConfig, 'host' | 'allowedOrigins' | 'allowNoOrigin' | 'publicOrigin'>,
  port: number,
): OriginPolicy {
  const wildcard = config.host === '0.0.0.0' || config.host === '::'
  const names = wildcard ? ownAddresses() : [...new Set([config.host, 'localhost', '127.0.0.1'])]
  const hosts = new Set(names.map((n) => `${hostPart(n)}:${port}`.toLowerCase()))
  const own = new Set<string>()
  for (const h of hosts) own.add(`http://${h}`).add(`https://${h}`)
  const configured = new Set(config.allowedOrigins.map((o) => o.replace(/\/+$/, '').toLowerCase()))
  if (config.publicOrigin) {
    own.add(config.publicOrigin.toLowerCase())
    hosts.add(new URL(config.publicOrigin).host.toLowerCase())
  }

  return {
    allowSocket(origin) {
      if (origin === undefined || origin === '') return config.allowNoOrigin
      const o = origin.toLowerCase()
      return own.has(o) || configured.has(o) || o === WECHAT_ORIGIN
    },
    cors(origin): Record<string, string> {
      if (!origin || !configured.has(origin.toLowerCase())) return {}
      return { 'access-control-allow-origin': origin, vary: 'origin' }
    },
    ownHost: (host) => host !== undefined && hosts.has(host.toLowerCase()),
  }
}
