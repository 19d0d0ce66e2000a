/**
 * The admin page: live over the plugin's own transport (LongLink core, `platform: 'web'`) to `/admin/live`, same
 * origin, so the HttpOnly session cookie goes along. Charts of the last hour with uPlot, big numbers, the riders
 * table and the recent log lines. Every value from the server reaches the DOM as text (never as HTML).
 */
import uPlot from 'uplot'
import 'uplot/dist/uPlot.min.css'
import { createConnection } from '../../../uni_modules/longlink-socket/js_sdk/index'
import type { ConnectedRider, HistoryPoint, LiveMessage, LiveRates, LiveTotals } from '../protocol'
import './style.css'

const $ = <T extends HTMLElement = HTMLElement>(selector: string): T => {
  const el = document.querySelector<T>(selector)
  if (!el) throw new Error(`missing ${selector}`)
  return el
}

// --- formatting ----------------------------------------------------------------------------------------------------

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })
const decimal = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 })
const formatRate = (x: number): string => (x >= 100 ? integer.format(x) : decimal.format(x))
const pad = (n: number): string => String(n).padStart(2, '0')
const clock = (ms: number): string => {
  const d = new Date(ms)
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
}
/** "42s", "3m 05s", "2h 07m", "3d 04h": short enough for a table cell, exact enough to compare rows. */
function duration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000))
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m ${pad(s % 60)}s`
  const h = Math.floor(m / 60)
  if (h < 24) return `${h}h ${pad(m % 60)}m`
  return `${Math.floor(h / 24)}d ${pad(h % 24)}h`
}

// --- state ---------------------------------------------------------------------------------------------------------

/** Column data for the charts: x in seconds (uPlot's time scale), one array per series. */
const columns = {
  x: [] as number[],
  online: [] as (number | null)[],
  inRate: [] as number[],
  outRate: [] as number[],
  rides: [] as number[],
  reconnects: [] as number[],
  refusals: [] as number[],
}
let capacity = 3600
/** Server clock minus local clock, so "online for" does not depend on this machine's clock. */
let clockOffset = 0
let riders: ConnectedRider[] = []
let ridersTotal = 0

function resetColumns(points: HistoryPoint[]): void {
  for (const key of Object.keys(columns) as (keyof typeof columns)[]) columns[key].length = 0
  for (const p of points) pushPoint(p)
}

function pushPoint(p: HistoryPoint): void {
  columns.x.push(p.time / 1000)
  columns.online.push(p.online)
  columns.inRate.push(p.inPerSecond)
  columns.outRate.push(p.outPerSecond)
  columns.rides.push(p.activeRides)
  columns.reconnects.push(p.reconnects)
  columns.refusals.push(p.refusals)
  if (columns.x.length > capacity) for (const key of Object.keys(columns) as (keyof typeof columns)[]) columns[key].shift()
}

/** Sum of the last `n` values of a column (the "last minute" hints). */
const lastSum = (values: number[], n: number): number => {
  let sum = 0
  for (let i = Math.max(0, values.length - n); i < values.length; i++) sum += values[i]
  return sum
}

// --- charts --------------------------------------------------------------------------------------------------------

const COLORS = { blue: '#2f6fed', green: '#12a150', violet: '#7a5af8', amber: '#d97706', red: '#d92d20' }
const CHART_HEIGHT = (): number => (window.innerWidth <= 720 ? 130 : 150)

const axis = (): uPlot.Axis => ({
  stroke: '#6b7685',
  grid: { stroke: '#eef1f5', width: 1 },
  ticks: { stroke: '#e3e8ef', width: 1, size: 4 },
  font: '11px system-ui, sans-serif',
})

/** One line of clock time under the x axis: HH:MM over an hour, HH:MM:SS while the history is only minutes long. */
const timeAxis = (): uPlot.Axis => ({
  ...axis(),
  size: 28,
  space: 64,
  values: (u, splits) => {
    const span = (u.scales.x.max ?? 0) - (u.scales.x.min ?? 0)
    return splits.map((s) => {
      const text = clock(s * 1000)
      return span > 600 ? text.slice(0, 5) : text
    })
  },
})

/** y from 0, with head room; a flat zero line still gets a 0…1 scale instead of a collapsed one. */
const fromZero: uPlot.Range.Function = (_u, _min, max) => [0, max > 0 ? Math.ceil(max * 1.15) : 1]

interface SeriesSpec {
  label: string
  color: string
  stepped?: boolean
  fill?: boolean
}

const stepped = uPlot.paths.stepped ? uPlot.paths.stepped({ align: 1 }) : undefined

interface Chart {
  plot: uPlot
  el: HTMLElement
  data: () => uPlot.AlignedData
}

function makeChart(name: string, series: SeriesSpec[], data: () => uPlot.AlignedData): Chart {
  const el = $(`[data-chart="${name}"]`)
  const opts: uPlot.Options = {
    width: Math.max(200, el.clientWidth),
    height: CHART_HEIGHT(),
    cursor: { drag: { x: false, y: false }, points: { size: 6 } },
    // The legend names the series; values appear only under the cursor (an empty value when it is away).
    legend: { show: true, live: true },
    scales: { x: { time: true }, y: { range: fromZero } },
    axes: [timeAxis(), { ...axis(), size: 44 }],
    series: [
      { label: '时间 · time', value: (_u, v) => (v == null ? '' : clock(v * 1000)) },
      ...series.map((s): uPlot.Series => ({
        label: s.label,
        stroke: s.color,
        width: 2,
        fill: s.fill ? `${s.color}14` : undefined,
        paths: s.stepped ? stepped : undefined,
        points: { show: false },
        value: (_u, v) => (v == null ? '–' : formatRate(v)),
      })),
    ],
  }
  const plot = new uPlot(opts, data(), el)
  return { plot, el, data }
}

const charts: Chart[] = [
  makeChart('online', [{ label: '在线 · online', color: COLORS.blue, fill: true }], () => [columns.x, columns.online]),
  makeChart(
    'messages',
    [
      { label: '入站 · in', color: COLORS.blue },
      { label: '出站 · out', color: COLORS.green },
    ],
    () => [columns.x, columns.inRate, columns.outRate],
  ),
  makeChart('rides', [{ label: '骑行 · rides', color: COLORS.violet, fill: true, stepped: true }], () => [columns.x, columns.rides]),
  makeChart(
    'problems',
    [
      { label: '重连 · reconnects', color: COLORS.amber, stepped: true },
      { label: '拒绝 · refusals', color: COLORS.red, stepped: true },
    ],
    () => [columns.x, columns.reconnects, columns.refusals],
  ),
]

function redrawCharts(): void {
  for (const c of charts) {
    c.plot.setData(c.data())
    c.el.dataset.points = String(columns.x.length)
  }
}

// Charts follow their card's width (a window resize, a rotated phone).
const resizer = new ResizeObserver(() => {
  for (const c of charts) {
    const width = Math.max(200, c.el.clientWidth)
    if (width !== c.plot.width || CHART_HEIGHT() !== c.plot.height) c.plot.setSize({ width, height: CHART_HEIGHT() })
  }
})
for (const c of charts) resizer.observe(c.el)

// --- big numbers ---------------------------------------------------------------------------------------------------

function setText(id: string, text: string): void {
  const el = document.getElementById(id)
  if (el && el.textContent !== text) el.textContent = text
}

function setTitle(id: string, title: string): void {
  const el = document.getElementById(id)?.closest<HTMLElement>('.num')
  if (el) el.title = title
}

function renderNumbers(point: HistoryPoint | undefined, totals: LiveTotals, rates: LiveRates): void {
  setText('v-online', point ? (point.online === null ? 'n/a' : integer.format(point.online)) : '–')
  if (point?.online === null) setText('h-online', '外部代理 · external broker')
  setText('v-rides', point ? integer.format(point.activeRides) : '–')
  setText('v-in', point ? formatRate(point.inPerSecond) : '–')
  setText('h-in', `60 s 均值 · avg ${formatRate(rates.inPerSecond)}`)
  setTitle('v-in', `共 · total ${integer.format(totals.messagesIn)}`)
  setText('v-out', point ? formatRate(point.outPerSecond) : '–')
  setText('h-out', `60 s 均值 · avg ${formatRate(rates.outPerSecond)}`)
  setTitle('v-out', `共 · total ${integer.format(totals.messagesOut)}`)
  // Per second these are mostly 0: the last minute says more at a glance, the total is in the tooltip.
  const reconnectsMinute = lastSum(columns.reconnects, 60)
  const refusalsMinute = lastSum(columns.refusals, 60)
  setText('v-reconnects', integer.format(reconnectsMinute))
  setTitle('v-reconnects', `共 · total ${integer.format(totals.reconnects)}`)
  setText('v-refusals', integer.format(refusalsMinute))
  setTitle('v-refusals', `共 · total ${integer.format(totals.refusals)}`)
  document.getElementById('v-reconnects')?.classList.toggle('hot', reconnectsMinute > 0)
  document.getElementById('v-refusals')?.classList.toggle('hot', refusalsMinute > 0)
}

// --- riders table --------------------------------------------------------------------------------------------------

function cell(text: string, className?: string): HTMLTableCellElement {
  const td = document.createElement('td')
  td.textContent = text
  if (className) td.className = className
  return td
}

function renderRiders(): void {
  const body = $('#riders-body')
  const now = Date.now() + clockOffset
  const rows: HTMLTableRowElement[] = []
  for (const r of riders) {
    const tr = document.createElement('tr')
    tr.dataset.rider = r.rider
    tr.append(cell(r.rider), cell(r.clientId, 'mono'))
    const transport = cell('')
    const tag = document.createElement('span')
    tag.className = 'tag'
    tag.textContent = r.transport
    transport.append(tag)
    const since = cell(duration(now - r.since))
    since.title = new Date(r.since).toLocaleString()
    const rtt = cell(r.lastRttMs === null ? '–' : integer.format(r.lastRttMs), 'num-col')
    if (r.lastRttMs !== null && r.lastRttMs >= 500) rtt.classList.add('rtt-slow')
    tr.append(transport, since, rtt)
    rows.push(tr)
  }
  if (rows.length === 0) {
    const tr = document.createElement('tr')
    tr.className = 'empty'
    const td = cell('暂无骑手在线 · No rider connected')
    td.colSpan = 5
    tr.append(td)
    rows.push(tr)
  }
  body.replaceChildren(...rows)
  setText('riders-count', ridersTotal > riders.length ? `${riders.length} / ${ridersTotal}` : integer.format(ridersTotal))
}

// --- logs ----------------------------------------------------------------------------------------------------------

const MAX_LOG_LINES = 200
const BASE_KEYS = new Set(['time', 'level', 'event'])

/** `key=value` pairs, strings bare, the rest as compact JSON, the whole clipped to one readable line. */
function compactFields(entry: Record<string, unknown>): string {
  const parts: string[] = []
  for (const [key, value] of Object.entries(entry)) {
    if (BASE_KEYS.has(key) || value === undefined) continue
    let text: string
    if (typeof value === 'string') text = /[\s"=]/.test(value) ? JSON.stringify(value) : value
    else {
      try {
        text = JSON.stringify(value) ?? String(value)
      } catch {
        text = String(value)
      }
    }
    parts.push(`${key}=${text.length > 120 ? text.slice(0, 117) + '…' : text}`)
  }
  const line = parts.join('  ')
  return line.length > 400 ? line.slice(0, 399) + '…' : line
}

function logLine(entry: Record<string, unknown>): HTMLLIElement {
  const li = document.createElement('li')
  const level = typeof entry.level === 'string' ? entry.level : 'info'
  li.dataset.level = level
  const time = typeof entry.time === 'string' || typeof entry.time === 'number' ? new Date(entry.time) : undefined
  const span = (className: string, text: string): HTMLSpanElement => {
    const s = document.createElement('span')
    s.className = className
    s.textContent = text
    return s
  }
  const fields = compactFields(entry)
  const f = span('f', fields)
  f.title = fields
  li.append(
    span('t', time && !Number.isNaN(time.getTime()) ? clock(time.getTime()) : '--:--:--'),
    span('lvl', level),
    span('ev', typeof entry.event === 'string' ? entry.event : '?'),
    f,
  )
  return li
}

let logCount = 0
function addLogs(items: HTMLLIElement[], replace = false): void {
  const list = $('#logs')
  if (replace) {
    list.replaceChildren()
    logCount = 0
  }
  // Newest first: what just happened is what one reads first.
  for (const li of items) list.prepend(li)
  logCount += items.length
  while (list.childElementCount > MAX_LOG_LINES) list.lastElementChild?.remove()
  if (list.childElementCount === 0) {
    const li = document.createElement('li')
    li.className = 'empty'
    li.textContent = '暂无日志 · No log lines yet'
    list.append(li)
  } else list.querySelector('li.empty')?.remove()
  setText('logs-count', `${integer.format(Math.min(logCount, MAX_LOG_LINES))} 条 · lines`)
}

function droppedNote(count: number): HTMLLIElement {
  const li = document.createElement('li')
  li.className = 'note'
  li.textContent = `… 跳过 ${count} 条 · ${count} lines skipped (more than 20/s)`
  return li
}

// --- live link -----------------------------------------------------------------------------------------------------

let lastTotals: LiveTotals = { messagesIn: 0, messagesOut: 0, reconnects: 0, refusals: 0 }
let lastRates: LiveRates = { inPerSecond: 0, outPerSecond: 0 }
let lastPoint: HistoryPoint | undefined

function onMessage(msg: LiveMessage): void {
  switch (msg.type) {
    case 'hello':
      capacity = msg.capacity
      clockOffset = msg.now - Date.now()
      resetColumns(msg.history)
      lastPoint = msg.history[msg.history.length - 1]
      lastTotals = msg.totals
      lastRates = msg.rates
      riders = msg.riders
      ridersTotal = msg.ridersTotal
      redrawCharts()
      renderNumbers(lastPoint, lastTotals, lastRates)
      renderRiders()
      addLogs(msg.logs.map(logLine), true)
      if (lastPoint) setText('live-extra', `更新 · updated ${clock(lastPoint.time)}`)
      break
    case 'tick':
      pushPoint(msg.point)
      lastPoint = msg.point
      lastTotals = msg.totals
      lastRates = msg.rates
      redrawCharts()
      renderNumbers(lastPoint, lastTotals, lastRates)
      setText('live-extra', `更新 · updated ${clock(msg.point.time)}`)
      break
    case 'riders':
      clockOffset = msg.now - Date.now()
      riders = msg.riders
      ridersTotal = msg.total
      renderRiders()
      break
    case 'log':
      addLogs([logLine(msg.entry)])
      break
    case 'log-dropped':
      addLogs([droppedNote(msg.count)])
      break
  }
}

const stateEl = $('[data-test="live-state"]')
const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://'
const connection = createConnection({
  url: `${scheme}${location.host}/admin/live`,
  platform: 'web',
  // The server answers `ping` with `pong`; 10 s keeps a dead link (a sleeping laptop) from looking alive for long.
  heartbeat: { interval: 10_000, timeout: 5_000 },
  reconnect: { min: 500, max: 10_000 },
})

connection.on('state', ({ to, reason }) => {
  stateEl.dataset.state = to
  setText('live-state', to)
  // The reason says why a link is not open; an open one shows the time of the last update instead.
  setText('live-extra', to !== 'open' && reason ? `(${reason})` : '')
})

connection.on('message', (data) => {
  if (typeof data !== 'string') return
  let msg: LiveMessage
  try {
    msg = JSON.parse(data) as LiveMessage
  } catch {
    return
  }
  onMessage(msg)
})

connection.on('close', ({ code }) => {
  // 4001: this session signed out (in another tab, say).
  if (code === 4001) location.assign('/admin')
})

// A link that keeps failing may mean the session expired (the upgrade answers 401, which a browser cannot see):
// ask the JSON endpoint, and go back to the sign-in form if it says so.
connection.on('reconnecting', ({ attempt }) => {
  if (attempt < 2) return
  fetch('/admin/stats', { credentials: 'same-origin', cache: 'no-store' })
    .then((res) => {
      if (res.status === 401) location.assign('/admin')
    })
    .catch(() => {})
})

// "Online for" moves on between two riders messages.
window.setInterval(() => {
  if (riders.length > 0) renderRiders()
}, 1000)

addLogs([], true)
connection.open().catch((err: { code?: string }) => {
  stateEl.dataset.state = 'closed'
  setText('live-state', 'closed')
  setText('live-extra', err?.code ?? '')
})
