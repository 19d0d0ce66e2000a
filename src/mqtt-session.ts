/**
 * MQTT clients logged in as a session's rider (username = rider, password = access token). The broker closes a link
 * when its token expires and refuses an expired token, so the token is never fixed: the plugin's `auth` hook hands
 * out a fresh one before every attempt, and a refusal that still gets through logs in again with the refresh token.
 */
import { LongLinkError, type MqttClient, type MqttClientOptions } from '@/uni_modules/longlink-socket/js_sdk/mqtt'
import { BikeApiError, sessionExpiredError, type Session } from './bike-api'

/** The session in use; a getter, so a page that logs in again hands the client the new one. */
export type CurrentSession = () => Session

/**
 * The `auth` hook: before every attempt (first connect, reconnect after the broker closed an expired token's link) a
 * token that does not expire soon. After a refused login the client asks the hook once more and tries only new
 * credentials, so then the token just refused is replaced whatever the local clock says about it.
 */
export function sessionAuth(current: CurrentSession): NonNullable<MqttClientOptions['auth']> {
  let given: string | undefined
  return async ({ reason }) => {
    const session = current()
    // Reason `error` is the plugin's retry right after a refused CONNACK (other attempts say open, reconnect, …).
    const password = await session.freshToken({ refused: reason === 'error' ? given : undefined })
    given = password
    return { username: session.rider, password }
  }
}

/** The session's end as the error callers see (SESSION_EXPIRED), else `error` as it is. */
function explain(error: unknown, current: CurrentSession): unknown {
  return current().expired ? sessionExpiredError() : error
}

/**
 * `client.connect()` for the session. On NOT_AUTHORIZED (the broker refused even the hook's new token) the session
 * logs in again through its refresh token and the client connects once more. Rejects with SESSION_EXPIRED when the
 * refresh token is gone too (the client is ended at once then, instead of retrying a hook that cannot succeed), or
 * with the client's error.
 */
export async function connectWithSession(client: MqttClient, current: CurrentSession): Promise<void> {
  const stopWhenExpired = client.on('error', () => {
    if (current().expired) client.end(true).catch(() => {})
  })
  try {
    try {
      await client.connect()
    } catch (error) {
      if (!(error instanceof LongLinkError && error.code === 'NOT_AUTHORIZED')) throw error
      await current().freshToken({ force: true })
      await client.connect()
    }
  } catch (error) {
    throw explain(error, current)
  } finally {
    stopWhenExpired()
  }
}

/** What {@link keepConnected} reports. */
export interface KeepConnectedEvents {
  /** The refresh token is gone too: the client was ended; log in again, then call `reconnect()`. */
  expired(): void
  /** The client stopped for another reason (refused twice, socket limit, …). */
  failed(error: unknown): void
}

/**
 * Connects a long-lived client (the ride's) and keeps it logged in. A link the broker closes at token expiry comes
 * back through the auth hook by itself; a later refusal that stops the client (the hook's new token refused too) logs
 * in again through the refresh token and reconnects, once per link that opened, so a broker that refuses everything
 * cannot make it loop. Returns `reconnect()` (after a new login) and `stop()`.
 */
export function keepConnected(client: MqttClient, current: CurrentSession, on: KeepConnectedEvents): { reconnect(): Promise<void>; stop(): void } {
  let active = true
  let connecting = false
  let recovered = false
  let expiredReported = false

  async function reconnect(): Promise<void> {
    if (connecting || !active) return
    connecting = true
    expiredReported = false
    try {
      await connectWithSession(client, current)
    } catch (error) {
      if (!active) return
      if (error instanceof BikeApiError && error.code === 'SESSION_EXPIRED') reportExpired()
      else on.failed(error)
    } finally {
      connecting = false
    }
  }

  function reportExpired(): void {
    if (expiredReported) return
    expiredReported = true
    on.expired()
  }

  const offOpen = client.on('open', () => (recovered = false))
  const offError = client.on('error', (error) => {
    if (!active || connecting) return
    if (current().expired) {
      // The hook cannot produce a token any more: stop retrying and ask for a login.
      client.end(true).catch(() => {})
      reportExpired()
    } else if (error.code === 'NOT_AUTHORIZED' && client.state === 'closed' && !recovered) {
      recovered = true
      void reconnect()
    }
  })
  void reconnect()
  return {
    reconnect,
    stop() {
      active = false
      offOpen()
      offError()
    },
  }
}
