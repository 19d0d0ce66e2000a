/**
 * The bike API as a table: method + path → handler. Validation of the transport (auth header, body size and type)
 * happens here at the edge; the handlers call the domain (bikes, accounts) and return `{status, body}`, or, for
 * an event stream, `{stream}`: a function the backend hands the response to once the request has passed every check
 * (so a refusal is still a JSON error), which then writes the stream itself.
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
 * | GET | `/api/rides/events` | rider (or `?token=`) | 200 `text/event-stream`: the rider's ride events after `Last-Event-ID`, then live |
 * | POST | `/api/assistant/summary` | rider | 200 `text/event-stream`: `token` events, then `done` |
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { API_ERROR_STATUS, BIKE_ID, RIDE_EVENTS_STREAM_MS, type AssistantEventType } from '../api-contract'
import type { Accounts } from '../accounts'
import { summaryTokens } from '../assistant'
import { BikeError, type BikeService } from '../bikes'
import type { Logger } from '../log'
import { lastEventIdOf, openEventStream, streamEventLog, type EventStream, type StreamRegistry } from '../longlink/sse'
import type { StreamSettings } from '../config'
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

/** A JSON answer. */
export interface JsonAnswer {
  status: number
  body: unknown
}

/**
 * A streaming answer: the backend calls `stream` with the response, and the request stays open until the promise
 * settles. It may still throw an ApiError before it writes anything (then the answer is that JSON error); after the
 * headers are out, a failure can only end the connection.
 */
export interface StreamAnswer {
  stream(res: ServerResponse): Promise<void>
}

export type RouteAnswer = JsonAnswer | StreamAnswer

export interface Route {
  method: 'GET' | 'POST'
  path: RegExp
  auth: boolean
  /**
   * Also accept the token as `?token=` when there is no Authorization header, for clients that cannot set headers
   * on a streaming request. (The access log has no query strings, and the log redaction masks `?token=` anyway.)
   */
  tokenInQuery?: boolean
  handle(ctx: RouteContext): Promise<RouteAnswer>
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
  /** Every open event stream, bounded per address (the backend closes them all on shutdown). */
  streams: StreamRegistry
  sse: StreamSettings
}

/** A `Last-Event-ID` that must be a decimal integer ≥ 0 (undefined when absent). */
function eventIdOf(req: IncomingMessage): number | undefined {
  const raw = lastEventIdOf(req)
  if (raw === undefined) return undefined
  const n = /^\d{1,15}$/.test(raw.trim()) ? Number(raw.trim()) : NaN
  if (!Number.isSafeInteger(n)) throw new ApiError(400, 'BAD_INPUT', 'Last-Event-ID must be an integer ≥ 0')
  return n
}

/** `?maxStreamMs=`, clamped to {@link RIDE_EVENTS_STREAM_MS}; `fallback` when absent. */
function maxStreamMsOf(target: Target, fallback: number): number {
  const raw = target.query.get('maxStreamMs')
  const { min, max } = RIDE_EVENTS_STREAM_MS
  if (raw === null || raw === '') return Math.min(max, Math.max(min, fallback))
  if (!/^\d{1,9}$/.test(raw)) throw new ApiError(400, 'BAD_INPUT', 'maxStreamMs must be a whole number of ms')
  return Math.min(max, Math.max(min, Number(raw)))
}

/** Resolves after `ms`, or as soon as `stream` closes. */
function pause(stream: EventStream, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      forget()
      resolve()
    }, ms)
    const forget = stream.onClose(() => {
      clearTimeout(timer)
      resolve()
    })
  })
}

export function bikeRoutes(deps: RoutesDeps): Route[] {
  const { bikes, accounts, sse } = deps
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
    {
      method: 'GET',
      path: /^\/api\/rides\/events$/,
      auth: true,
      tokenInQuery: true,
      async handle(c) {
        const afterId = eventIdOf(c.req) ?? 0
        const maxStreamMs = maxStreamMsOf(c.target, sse.maxStreamMs)
        return { stream: (res) => streamRideEvents(deps, c, res, afterId, maxStreamMs) }
      },
    },
    {
      method: 'POST',
      path: /^\/api\/assistant\/summary$/,
      auth: true,
      async handle(c) {
        const wanted = c.body.bike
        if (wanted !== undefined && (typeof wanted !== 'string' || !BIKE_ID.test(wanted)))
          throw new ApiError(400, 'BAD_INPUT', 'bike must match /^[A-Za-z0-9_-]{1,32}$/')
        const resumeAfter = eventIdOf(c.req)
        // Looked up before the stream opens, so a rider without a ride gets a JSON 404.
        const tokens = summaryTokens(await bikes.lastRide(c.rider, wanted))
        return { stream: (res) => streamSummary(deps, c, res, tokens, resumeAfter === undefined ? 0 : resumeAfter + 1) }
      },
    },
  ]
}

/**
 * Opens an event stream on `res` when `address` has room for one, counted in {@link RoutesDeps.streams}; throws 429
 * (as JSON: nothing is written yet) when it has not.
 */
function admitStream(
  deps: Pick<RoutesDeps, 'streams' | 'logger' | 'refused'>,
  req: IncomingMessage,
  res: ServerResponse,
  owner: { key: string; max: number },
  options: Parameters<typeof openEventStream>[2],
): EventStream {
  const address = remoteAddress(req)
  if (deps.streams.full(address)) {
    deps.refused()
    deps.logger.warn('sse.refused', { address, reason: 'too-many-streams' })
    throw new ApiError(429, 'RATE_LIMITED', 'too many open event streams from this address', undefined, { 'retry-after': '5' })
  }
  const stream = openEventStream(req, res, options)
  deps.streams.track(stream, address, owner)
  return stream
}

/**
 * `GET /api/rides/events`: the rider's events after `afterId` from the store, then each new one as the bike service
 * announces it, until `maxStreamMs` is over or the client leaves.
 */
async function streamRideEvents(deps: RoutesDeps, c: RouteContext, res: ServerResponse, afterId: number, maxStreamMs: number): Promise<void> {
  const { bikes, sse, logger } = deps
  const rider = c.rider
  const stream = admitStream(
    deps,
    c.req,
    res,
    { key: `rides:${rider}`, max: sse.streamsPerRider },
    { retryMs: sse.retryMs, heartbeatMs: sse.heartbeatMs, maxDurationMs: maxStreamMs },
  )
  try {
    await streamEventLog(
      stream,
      {
        read: async (after, limit) =>
          (await bikes.rideEventsAfter(rider, after, limit)).map((e) => ({ id: e.id, event: e.type, data: JSON.stringify(e.data) })),
        watch: (wake) =>
          bikes.onRideEvent((e) => {
            if (e.rider === rider) wake()
          }),
      },
      { afterId, pollMs: sse.pollMs },
    )
  } catch (err) {
    // The store failed mid-stream: the client resumes from the last event it got, here or elsewhere.
    if (!stream.isClosed) logger.warn('sse.failed', { path: c.target.pathname, rider, error: err })
  } finally {
    stream.close()
  }
}

/** `POST /api/assistant/summary`: `tokens` from index `from` at the assistant's pace, then `done` with the whole text. */
async function streamSummary(deps: RoutesDeps, c: RouteContext, res: ServerResponse, tokens: string[], from: number): Promise<void> {
  const { sse } = deps
  const stream = admitStream(deps, c.req, res, { key: `assistant:${c.rider}`, max: sse.streamsPerRider }, { heartbeatMs: sse.heartbeatMs })
  const send = async (event: AssistantEventType, data: string, id?: number): Promise<void> => {
    if (!stream.send({ event, id, data })) await stream.drained()
  }
  try {
    for (let i = from; i < tokens.length && !stream.isClosed; i++) {
      await send('token', tokens[i], i)
      await pause(stream, sse.assistantTokenMs)
    }
    // `done` carries no id: a client that resumes keeps the last token's id, and gets `done` again.
    if (!stream.isClosed) await send('done', tokens.join(''))
  } finally {
    stream.close()
  }
}

/**
 * Finds and runs the route for a request under `/api/`. Returns undefined for paths outside the table's prefix
 * (`/api/`); throws ApiError (404, 405 with `allow`, 401, and the domain's codes) otherwise.
 */
export function createRouter(routes: Route[], deps: Pick<RoutesDeps, 'tokens' | 'logger' | 'maxBodyBytes' | 'refused'>) {
  const authenticate = (req: IncomingMessage, path: string, queryToken: string | null): string => {
    const m = /^Bearer\s+(\S+)$/i.exec(String(req.headers.authorization ?? ''))
    const token = m ? m[1] : req.headers.authorization === undefined && queryToken ? queryToken : undefined
    if (!token) throw new ApiError(401, 'UNAUTHORIZED', 'missing bearer token', { reason: 'missing' })
    const result = deps.tokens.verify(token)
    if (!result.ok) {
      deps.refused()
      deps.logger.warn('http.refused', { path, reason: result.reason })
      throw new ApiError(401, 'UNAUTHORIZED', `token ${result.reason}`, { reason: result.reason })
    }
    return result.riderId
  }

  return async (req: IncomingMessage, target: Target): Promise<RouteAnswer | undefined> => {
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
    const rider = route.auth ? authenticate(req, path, route.tokenInQuery ? target.query.get('token') : null) : ''
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
