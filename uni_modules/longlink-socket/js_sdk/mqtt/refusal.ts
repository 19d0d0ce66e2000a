import { fail, type LongLinkError } from '../errors'
import type { TransportRequest } from '../transport'

/** CONNACK codes that mean "who you are was refused": MQTT 3.1.1 return codes 4, 5; MQTT 5 reason codes 0x86, 0x87, 0x8C. */
const AUTH_REFUSALS = [4, 5, 0x86, 0x87, 0x8c]

/**
 * A refused login, and the credentials it refused. The same credentials would be refused again, forever: after a
 * refusal the client asks the auth hook once more and tries only fresh credentials; the same ones, or no hook at all,
 * stop the client with the refusal.
 */
export interface Refusal {
  error: LongLinkError
  credentials: string
}

/** A refused CONNACK as an error: NOT_AUTHORIZED for a refused identity, else CONNACK_REFUSED; `reasonCode` set. */
export function refusalError(code: number, cause: unknown): LongLinkError {
  const refused = fail(AUTH_REFUSALS.includes(code) ? 'NOT_AUTHORIZED' : 'CONNACK_REFUSED', `the broker refused the connection (code ${code})`, cause)
  refused.reasonCode = code
  return refused
}

/** What identifies the credentials of one attempt: username, password, URL and headers (as one string). */
export function credentialsOf(request: TransportRequest, username: string | undefined, password: string | undefined): string {
  return JSON.stringify([username, password, request.url, request.header])
}
