/**
 * The ride page's live status over Server-Sent Events: `GET /api/rides/events` streams the rider's ride events
 * (`reserved`, `unlocking`, `riding`, `locked`) with durable ids, so a dropped stream, a backend restart or the
 * mini-program's 60 s request cap resumes from the last event, none lost or repeated. And the assistant's ride summary:
 * `POST /api/assistant/summary` streams it token by token, resumed the same way.
 */
import { createEventSource, type EventSource } from '@/uni_modules/longlink-socket/js_sdk/sse'
import type { RideEventData, RideSummary } from '@/server/api-contract'
import type { CurrentSession } from './mqtt-session'
import { backendOrigin } from './config'

/** The ride's latest event, as the page shows it. */
export interface LiveStatus {
  type: 'riding' | 'locked'
  /** The event's id in the rider's event log. */
  id: string
}

/** The token travels in a header (never in a URL), fresh for every attempt. */
function bearer(current: CurrentSession) {
  return async () => ({ header: { Authorization: `Bearer ${await current().freshToken()}` } })
}

/**
 * Streams the events of the ride that started at `startedAt` on `bike` (the rider's older rides are in the log too and
 * are skipped). `status` gets each event of this ride; `ended` the summary once the bike is locked.
 */
export function watchRide(
  current: CurrentSession,
  ride: { bike: string; startedAt: number },
  on: { status(status: LiveStatus): void; ended(summary: RideSummary): void },
): EventSource {
  const source = createEventSource(`${backendOrigin()}/api/rides/events`, { auth: bearer(current), reconnect: { min: 500, max: 5000 } })
  source.on('riding', (event) => {
    const message = JSON.parse(event.data) as RideEventData['riding']
    if (message.bike === ride.bike && message.time === ride.startedAt) on.status({ type: 'riding', id: event.lastEventId })
  })
  source.on('locked', (event) => {
    const summary = JSON.parse(event.data) as RideEventData['locked']
    if (summary.bike !== ride.bike || summary.startedAt !== ride.startedAt) return
    on.status({ type: 'locked', id: event.lastEventId })
    on.ended(summary)
  })
  return source
}

/**
 * Asks the assistant for the summary of the ride on `bike` and hands over its text as it grows; `done` gets the whole
 * text. A dropped stream resumes after the last token it delivered.
 */
export function streamSummary(current: CurrentSession, bike: string, on: { text(text: string): void; done(text: string): void }): EventSource {
  let text = ''
  const source = createEventSource(`${backendOrigin()}/api/assistant/summary`, {
    method: 'POST',
    body: { bike },
    auth: bearer(current),
    reconnect: { min: 500, max: 5000, maxRetries: 10 },
  })
  source.on('token', (event) => on.text((text += event.data)))
  // `done` ends the answer: closed here, before the server's end of the response would start a new request.
  source.on('done', (event) => {
    void source.close()
    on.done(event.data)
  })
  return source
}
