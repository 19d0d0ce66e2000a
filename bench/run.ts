/**
 * `npm run bench [-- core|mqtt|transports ...]`: runs the benchmarks, prints their figures (ratios against baselines measured
 * in the same run) and writes them to bench/results/latest.json.
 */
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { benchCore } from './core'
import { benchBackend } from './backend'
import { benchMqtt } from './mqtt'
import { benchScale } from './scale'
import { benchSse } from './sse'
import { benchTransports } from './transports'

const suites: Record<string, () => Promise<unknown>> = {
  core: benchCore,
  mqtt: benchMqtt,
  backend: benchBackend,
  sse: benchSse,
  transports: benchTransports,
  scale: benchScale,
}

async function main() {
  const wanted = process.argv.slice(2).filter((a) => a in suites)
  const names = wanted.length ? wanted : Object.keys(suites)
  const file = join(__dirname, 'results', 'latest.json')
  const results: Record<string, unknown> = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {}
  for (const name of names) {
    const started = Date.now()
    console.log(`\n== ${name} ==`)
    const figures = await suites[name]()
    console.log(JSON.stringify(figures, null, 2))
    results[name] = { ...(figures as object), seconds: Math.round((Date.now() - started) / 1000) }
  }
  results.machine = { node: process.version, cpus: (await import('node:os')).cpus().length, at: new Date().toISOString() }
  mkdirSync(join(__dirname, 'results'), { recursive: true })
  writeFileSync(file, JSON.stringify(results, null, 2) + '\n')
  console.log(`\nwritten to ${file}`)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
