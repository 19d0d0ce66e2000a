/**
 * The bike API as a table: method + path → handler. Validation of the transport (auth header, body size and type)
 * happens here at the edge; the handlers call the domain (bikes, accounts) and return `{status, body}`.
 *
 * | method | path | auth | answer |
 * |---|---|---|---|
 * | POST | `/api/login` | — | 200 LoginResponse (`{rider, password}` or `{wechatCode}`) |
 * | POST | `/api/token` | — | 200 LoginResponse (`{refreshToken}`; one use) |
 * | GET | `/api/config` | — | 200 `{mqttUrl}` |
 * | GET | `/api/rides/active` | rider | 200 `{rides}` |
 * | POST | `/api/bikes/:id/reserve` | rider | 200 ReserveResponse |
 * | POST | `/api/bikes/:id/unlock` | rider | 202 UnlockResponse; then `mobike/unlocked/<id>` |
 * | POST | `/api/bikes/:id/lock` | rider | 200 RideSummary; also on `mobike/locked/<id>` |
 */
import type { IncomingMessage } from 'node:http'
import { API_ERROR_STATUS } from '../api-contract'
import type { Accounts } from '../accounts'
import { BikeError, type BikeService } from '../bikes'
import type { Logger } from '../log'
import type { TokenService } from '../tokens'
import { readJson, remoteAddress, type Target } from './request'
import { ApiError } from './respond'

export interface RouteContext {
  req: IncomingMessage
  target: Target
  /** Path parameters, in order. */
  params: string[]
  /** The authenticated rider (routes with `auth: true`). */
  rider: string
  /** The JSON body (POST routes). */
  body: Record<string, unknown>
}

export interface Route {
  method: 'GET' | 'POST'
  path: RegExp
  auth: boolean
  handle(ctx: RouteContext): Promise<{ status: number; body: unknown }>
}

export interface RoutesDeps {
  bikes: BikeService
  accounts: Accounts
  tokens: TokenService
  logger: Logger
  maxBodyBytes: number
  /** The MQTT URL for this request (`/api/config`). */
  mqttUrl(req: IncomingMessage): string
  refused(): void
}

export function bikeRoutes(deps: RoutesDeps): Route[] {
  const { bikes, accounts } = deps
  const bike = (ctx: RouteContext): string => {
    try {
      return decodeURIComponent(ctx.params[0])
    } catch {
      throw new ApiError(400, 'BAD_INPUT', 'bad bike id')
    }
  }
  return [
    {
      method: 'POST',
      path: /^\/api\/login$/,
      auth: false,
      handle: async (c) => ({ status: 200, body: await accounts.login(c.body, remoteAddress(c.req)) }),
    },
    { method: 'POST', path: /^\/api\/token$/, auth: false, handle: async (c) => ({ status: 200, body: await accounts.refresh(c.body) }) },
    { method: 'GET', path: /^\/api\/config$/, auth: false, handle: async (c) => ({ status: 200, body: { mqttUrl: deps.mqttUrl(c.req) } }) },
    {
      method: 'GET',
      path: /^\/api\/rides\/active$/,
      auth: true,
      handle: async (c) => ({ status: 200, body: { rides: await bikes.activeRides(c.rider) } }),
    },
    {
      method: 'POST',
      path: /^\/api\/bikes\/([^/]+)\/reserve$/,
      auth: true,
      handle: async (c) => ({ status: 200, body: await bikes.reserve(c.rider, bike(c)) }),
    },
    {
      method: 'POST',
      path: /^\/api\/bikes\/([^/]+)\/unlock$/,
      auth: true,
      handle: async (c) => ({ status: 202, body: await bikes.unlock(c.rider, bike(c)) }),
    },
    {
      method: 'POST',
      path: /^\/api\/bikes\/([^/]+)\/lock$/,
      auth: true,
      handle: async (c) => ({ status: 200, body: await bikes.lock(c.rider, bike(c)) }),
    },
  ]
}

/**
 * Finds and runs the route for a request under `/api/`. Returns undefined for paths outside the table's prefix
 * (`/api/`); throws ApiError (404, 405 with `allow`, 401, and the domain's codes) otherwise.
 */
export function createRouter(routes: Route[], deps: Pick<RoutesDeps, 'tokens' | 'logger' | 'maxBodyBytes' | 'refused'>) {
  const authenticate = (req: IncomingMessage, path: string): string => {
    const m = /^Bearer\s+(\S+)$/i.exec(String(req.headers.authorization ?? ''))
    if (!m) throw new ApiError(401, 'UNAUTHORIZED', 'missing bearer token', { reason: 'missing' })
    const result = deps.tokens.verify(m[1])
    if (!result.ok) {
      deps.refused()
      deps.logger.warn('http.refused', { path, reason: result.reason })
      throw new ApiError(401, 'UNAUTHORIZED', `token ${result.reason}`, { reason: result.reason })
    }
    return result.riderId
  }

  return async (req: IncomingMessage, target: Target): Promise<{ status: number; body: unknown } | undefined> => {
    const path = target.pathname
    if (!path.startsWith('/api/')) return undefined
    const matching = routes.filter((r) => r.path.test(path))
    if (matching.length === 0) throw new ApiError(404, 'NOT_FOUND', `no route ${path}`)
    const route = matching.find((r) => r.method === req.method)
    if (!route) {
      const allow = [...new Set(matching.map((r) => r.method))].join(', ')
      throw new ApiError(405, 'METHOD_NOT_ALLOWED', `use ${allow} for ${path}`, undefined, { allow })
    }
    const params = route.path.exec(path)!.slice(1)
    const rider = route.auth ? authenticate(req, path) : ''
    const body = route.method === 'POST' ? await readJson(req, deps.maxBodyBytes) : {}
    try {
      return await route.handle({ req, target, params, rider, body })
    } catch (err) {
      if (err instanceof BikeError) {
        const retry =
          typeof err.details?.retryAfterMs === 'number' ? { 'retry-after': String(Math.ceil(err.details.retryAfterMs / 1000)) } : undefined
        throw new ApiError(API_ERROR_STATUS[err.code], err.code, err.message, err.details, retry)
      }
      throw err
    }
  }
}
