/**
 * LongLink SSE entry: Server-Sent Events over `wx.request` / `uni.request` with chunked responses (mini-programs) or
 * `fetch` (H5), parsed exactly as the HTML standard says, resumed from the last event id after every loss, with the
 * core's reconnect policy, lifecycle rules, logger and error codes. Import it from `js_sdk/sse`; `js_sdk/index` never
 * loads it.
 */
export { createEventSource } from './sse/source'
export { SSE_DEFAULTS } from './sse/options'
export { createSseParser, type SseParser, type SseParserHandlers } from './sse/parser'
export type * from './sse/types'
export { ErrorCode, LongLinkError, isLongLinkError } from './errors'
