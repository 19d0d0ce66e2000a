/**
 * The bike API's contract: request and response shapes, error codes, topics and id rules. Imported by the server
 * (routes, domain, broker) and by the app (src/bike-api.ts), so both sides speak from one definition.
 * No Node or uni imports here: this file is compiled into the mini-program too.
 */

/** Rider ids: 1–32 letters, digits, `_` or `-` (case-insensitive). */
export const RIDER_ID = /^[a-z0-9_-]{1,32}$/i
/** Bike ids: 1–32 letters, digits, `_` or `-`. */
export const BIKE_ID = /^[A-Za-z0-9_-]{1,32}$/

/**
 * Every error code the API answers with, as `{ error: { code, status, message, ...details } }`.
 * | code | status | when |
 * |---|---|---|
 * | `BAD_INPUT` | 400 | a field is missing or malformed, the body is not a JSON object, the request target cannot be parsed |
 * | `UNAUTHORIZED` | 401 | no token, or a token that is malformed, forged or expired (`reason`), or a wrong password |
 * | `FORBIDDEN` | 403 | an origin that is not allowed, an admin route without the admin credential, a login method not enabled here |
 * | `NOT_FOUND` | 404 | no such route or file |
 * | `RIDE_NOT_FOUND` | 404 | lock of a bike the rider is not riding; an assistant summary when the rider has no finished ride (on that bike) |
 * | `METHOD_NOT_ALLOWED` | 405 | the route exists for another method (`allow` header) |
 * | `REQUEST_TIMEOUT` | 408 | the headers or body did not arrive in time |
 * | `BIKE_BUSY` | 409 | the bike is held by another rider, or still unlocking |
 * | `RIDER_BUSY` | 409 | the rider already rides another bike (`bike`) |
 * | `BODY_TOO_LARGE` | 413 | the body is over the limit |
 * | `UNSUPPORTED_MEDIA_TYPE` | 415 | a body that is not JSON |
 * | `RATE_LIMITED` | 429 | too many failed logins from this address (`retryAfterMs`), or too many open event streams from it |
 * | `HEADERS_TOO_LARGE` | 431 | the request line or headers are over the limit |
 * | `INTERNAL` | 500 | a bug; logged with its stack, never shown |
 * | `UNAVAILABLE` | 503 | the database or the broker is not reachable |
 */
export const API_ERROR_CODES = [
  'BAD_INPUT',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'NOT_FOUND',
  'RIDE_NOT_FOUND',
  'METHOD_NOT_ALLOWED',
  'REQUEST_TIMEOUT',
  'BIKE_BUSY',
  'RIDER_BUSY',
  'BODY_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'RATE_LIMITED',
  'HEADERS_TOO_LARGE',
  'INTERNAL',
  'UNAVAILABLE',
] as const

export type ApiErrorCode = (typeof API_ERROR_CODES)[number]

/** Why a token was refused (`error.reason` of a 401 on a bike route; `expired` also for a used or expired refresh token). */
export type TokenFailure = 'missing' | 'malformed' | 'bad-signature' | 'expired'
/** `error.reason` of a 401 from `POST /api/login`: the same for an unknown rider and a wrong password. */
export type LoginFailure = 'bad-credentials'

export interface ApiErrorBody {
  error: { code: ApiErrorCode; status: number; message: string; reason?: string; bike?: string; retryAfterMs?: number }
}

/** `POST /api/login`: a demo rider's password, or a WeChat `uni.login` code (when a verifier is configured). */
export type LoginRequest = { rider: string; password: string } | { wechatCode: string }

/** `POST /api/login` and `POST /api/token` answer with a fresh access token and a refresh token. */
export interface LoginResponse {
  rider: string
  /** Bearer token for the API, and the MQTT password (username = rider). */
  token: string
  /** When `token` expires (ms since epoch). */
  expiresAt: number
  /** One-use token for `POST /api/token`; rotated on every use. */
  refreshToken: string
  refreshExpiresAt: number
}

/** `POST /api/token`: trades a refresh token for a new pair. */
export interface RefreshRequest {
  refreshToken: string
}

export type HoldStatus = 'reserved' | 'unlocking' | 'riding'

/** `POST /api/bikes/:id/reserve` → 200. */
export interface ReserveResponse {
  bike: string
  status: 'reserved'
  expiresAt: number
}

/** `POST /api/bikes/:id/unlock` → 202; the result arrives on {@link unlockedTopic}. */
export interface UnlockResponse {
  bike: string
  status: 'unlocking'
}

/** One of the rider's holds, in `GET /api/rides/active`. */
export interface RideView {
  bike: string
  rider: string
  status: HoldStatus
  reservedUntil?: number
  startedAt?: number
}

export interface ActiveRidesResponse {
  rides: RideView[]
}

/** `POST /api/bikes/:id/lock` → 200, and the payload of {@link lockedTopic}. */
export interface RideSummary {
  bike: string
  rider: string
  startedAt: number
  endedAt: number
  durationMs: number
  fare: number
}

/** Payload of {@link unlockedTopic}. */
export interface UnlockedMessage {
  bike: string
  rider: string
  time: number
}

/** `GET /healthz` → 200 when the database and the broker answer, else 503 with `status: 'degraded'`. */
export interface HealthResponse {
  status: 'ok' | 'degraded'
  process: { pid: number; uptimeMs: number; rssBytes: number }
  database: { kind: 'sqlite' | 'postgres'; ok: boolean; latencyMs: number; error?: string }
  broker: { kind: 'embedded' | 'external'; ok: boolean; online?: number }
}

/** `GET /api/config` → 200: where the app's MQTT client connects (never with credentials in it). */
export interface ConfigResponse {
  mqttUrl: string
}

/**
 * What each ride event carries: `GET /api/rides/events` sends one SSE frame per event, with `event:` the type, `id:`
 * the event's id (ids grow with every event and survive restarts; send the last one back as `Last-Event-ID` to
 * resume) and `data:` the JSON of the payload below.
 */
export interface RideEventData {
  /** A reservation was made or renewed. */
  reserved: ReserveResponse & { rider: string }
  /** The unlock was asked for; the lock is opening. */
  unlocking: UnlockResponse & { rider: string }
  /** The lock opened: the ride started (the same message as on {@link unlockedTopic}). */
  riding: UnlockedMessage
  /** The bike was locked: the ride's summary with its fare (the same as the lock's answer and {@link lockedTopic}). */
  locked: RideSummary
}

export type RideEventType = keyof RideEventData

/** Every ride event type, in the order a ride goes through them. */
export const RIDE_EVENT_TYPES: readonly RideEventType[] = ['reserved', 'unlocking', 'riding', 'locked']

/** One ride event as a client sees it once the frame is parsed. */
export type RideEvent = { [K in RideEventType]: { id: number; type: K; data: RideEventData[K] } }[RideEventType]

/**
 * `GET /api/rides/events?maxStreamMs=`: how long one stream lasts before the server ends it (ms) and the client
 * resumes, kept under the 60 s a mini-program allows one request.
 */
export const RIDE_EVENTS_STREAM_MS = { default: 50_000, min: 1_000, max: 55_000 } as const

/** `POST /api/assistant/summary`: the ride to summarise: the latest finished one, on `bike` when given. */
export interface AssistantSummaryRequest {
  bike?: string
}

/**
 * The SSE events of `POST /api/assistant/summary`: `token` (id = the token's index from 0, data = its text), then
 * `done` (no id; data = the whole text). With `Last-Event-ID: k` the stream goes on from token k + 1.
 */
export type AssistantEventType = 'token' | 'done'

/** The topic the app subscribes to before it asks for the unlock. */
export const unlockedTopic = (bike: string): string => `mobike/unlocked/${bike}`
/** The topic the ride's summary is published on when the bike is locked. */
export const lockedTopic = (bike: string): string => `mobike/locked/${bike}`
/** Parses a bike topic: `{kind, bike}` or undefined. */
export function parseBikeTopic(topic: string): { kind: 'unlocked' | 'locked'; bike: string } | undefined {
  const m = /^mobike\/(unlocked|locked)\/([^/]+)$/.exec(topic)
  if (!m || !BIKE_ID.test(m[2])) return undefined
  return { kind: m[1] as 'unlocked' | 'locked', bike: m[2] }
}

/** The HTTP status of each error code (one place, so the routes and the docs cannot disagree). */
export const API_ERROR_STATUS: Record<ApiErrorCode, number> = {
  BAD_INPUT: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  RIDE_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  REQUEST_TIMEOUT: 408,
  BIKE_BUSY: 409,
  RIDER_BUSY: 409,
  BODY_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  HEADERS_TOO_LARGE: 431,
  INTERNAL: 500,
  UNAVAILABLE: 503,
}
