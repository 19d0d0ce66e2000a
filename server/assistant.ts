/**
 * The simulated ride assistant: a short bilingual summary of a finished ride (Chinese, then English), cut into the
 * tokens `POST /api/assistant/summary` streams one by one.
 *
 * The text is a pure function of the ride: no clock, no locale, no time zone of the host (times are written in
 * Beijing time, UTC+8, by arithmetic). A client that resumes after token k, from this process or from one started
 * since, gets the continuation of the very same text.
 */
import type { RideSummary } from './api-contract'

const BEIJING_OFFSET_MS = 8 * 60 * 60 * 1000

/** `2024-05-01 16:30` in Beijing time. */
function beijingTime(ms: number): string {
  const iso = new Date(ms + BEIJING_OFFSET_MS).toISOString()
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)}`
}

/** Whole hours, minutes and seconds of a duration. */
function parts(durationMs: number): { h: number; m: number; s: number } {
  const total = Math.floor(Math.max(0, durationMs) / 1000)
  return { h: Math.floor(total / 3600), m: Math.floor((total % 3600) / 60), s: total % 60 }
}

function durationZh(durationMs: number): string {
  const { h, m, s } = parts(durationMs)
  return [h && `${h} 小时`, (h || m) && `${m} 分`, `${s} 秒`].filter(Boolean).join(' ')
}

function durationEn(durationMs: number): string {
  const { h, m, s } = parts(durationMs)
  return [h && `${h} h`, (h || m) && `${m} min`, `${s} s`].filter(Boolean).join(' ')
}

/** The summary of `ride`: one Chinese line, then one English line. */
export function rideSummaryText(ride: RideSummary): string {
  const when = beijingTime(ride.startedAt)
  const fare = ride.fare.toFixed(2)
  const zh = `您于 ${when}（北京时间）骑行了单车 ${ride.bike}，用时 ${durationZh(ride.durationMs)}，车费 ${fare} 元。祝您一路顺风！`
  const [date, time] = when.split(' ')
  const en = `You rode bike ${ride.bike} on ${date} at ${time} (Beijing time) for ${durationEn(ride.durationMs)}. The fare is ${fare} yuan. Have a good day!`
  return `${zh}\n${en}`
}

/**
 * Chinese characters and full-width punctuation one token each; other runs of non-space characters one token
 * together with the spaces after them; any other run of white space (the line break) a token of its own. The tokens
 * joined give the text back exactly.
 */
const TOKEN = /\p{Script=Han}|[\u3000-\u303f\uff00-\uffef]|[^\s\p{Script=Han}\u3000-\u303f\uff00-\uffef]+[^\S\n]*|\s+/gu

/** Cuts `text` into tokens (see {@link TOKEN}). */
export function tokenize(text: string): string[] {
  return text.match(TOKEN) ?? []
}

/** The tokens of `ride`'s summary, in order; `join('')` is {@link rideSummaryText}. */
export function summaryTokens(ride: RideSummary): string[] {
  return tokenize(rideSummaryText(ride))
}
