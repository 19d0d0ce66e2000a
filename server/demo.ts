/**
 * The server process of `npm run demo` (started and restarted by scripts/demo.mjs): starts the backend, prints the URL
 * to open, the admin URL and where its password is, the demo riders, and how to import the mini-program into WeChat
 * DevTools. Prints no token and no password, only where they come from.
 *
 * Ends cleanly (backend closed, at most 5 s) on SIGINT, SIGTERM and SIGHUP, and when the IPC channel to the runner
 * disconnects: a runner killed with SIGKILL cannot forward a signal, and the server must not stay behind on its port.
 * A crash (uncaught exception, unhandled rejection) writes one JSON line to stderr and exits 1, for the runner to
 * start it again.
 */
import fs from 'node:fs'
import path from 'node:path'
import { startBackend, type Backend } from './app'
import { ROOT_DIR } from './config'
import { createLogger, formatLine, redact } from './log'

/** How long a clean stop may take before the process exits anyway. */
const STOP_TIMEOUT_MS = 5000

/** One structured line on stderr, written synchronously (the process exits right after it), then exit 1. */
function crash(error: unknown): never {
  const err = error instanceof Error ? error : new Error(String(error))
  try {
    // formatLine redacts: a token or password quoted in a message or a stack does not reach the output.
    fs.writeSync(2, formatLine('error', 'process.crash', { error: { name: err.name, message: err.message, stack: err.stack } }) + '\n')
  } finally {
    process.exit(1)
  }
}

process.on('uncaughtException', crash)
process.on('unhandledRejection', crash)

function banner(backend: Backend): string {
  const config = backend.config
  const mpDir = path.join(ROOT_DIR, 'dist', 'build', 'mp-weixin')
  const adminPassword = config.adminPasswordFile
    ? `管理密码在文件 ${config.adminPasswordFile} 中 / the admin password is in ${config.adminPasswordFile}`
    : '管理密码为环境变量 ADMIN_PASSWORD / the admin password is ADMIN_PASSWORD from the environment'
  const lines = [`LongLink demo: ${backend.url}/`, `管理 / Admin: ${backend.url}/admin  (${adminPassword})`]
  lines.push(`数据 / Data: ${config.databaseUrl ? 'PostgreSQL (DATABASE_URL)' : config.dataDir}`)
  const riders = config.demoRiders.join(', ')
  lines.push(`演示骑行者 / Demo riders: ${riders}；密码为 DEMO_PASSWORD（默认值见 README）/ password: DEMO_PASSWORD (default in README).`)
  if (!fs.existsSync(path.join(config.h5Dir, 'index.html'))) lines.push(`注意 / Note: ${config.h5Dir} 不存在 (missing): run \`npm run build:h5\`.`)
  lines.push(
    '',
    '微信小程序（中文）:',
    `  1. 打开微信开发者工具 → 导入项目，目录选择 ${mpDir}（AppID 可用测试号 touristappid）。`,
    '  2. 右上角「详情」→「本地设置」→ 勾选「不校验合法域名、web-view（业务域名）、TLS 版本以及 HTTPS 证书」。',
    `  3. 小程序连接本机后端 ${backend.url}（MQTT: ${backend.mqttUrl}）；真机调试需把 HOST 设为 0.0.0.0（此时必须设置 DEMO_PASSWORD）并使用电脑的局域网 IP。`,
    'WeChat mini-program (English):',
    `  1. Open WeChat DevTools → Import project, choose ${mpDir} (the test AppID touristappid works).`,
    '  2. Details → Local settings → tick "Does not verify valid domain names, web-view (business domain names), TLS versions and HTTPS certificates".',
    `  3. The mini-program talks to ${backend.url} (MQTT: ${backend.mqttUrl}); for a phone, start with HOST=0.0.0.0 (DEMO_PASSWORD is then required) and use this computer's LAN IP.`,
    'Ctrl+C 停止 / to stop.',
  )
  return lines.join('\n')
}

async function main(): Promise<void> {
  // Structured log lines go to stderr so that stdout carries the human-readable lines below.
  const logger = createLogger((line) => process.stderr.write(line + '\n'))

  let backend: Backend | undefined
  let stopping = false
  const stop = (why: string): void => {
    if (stopping) return
    stopping = true
    logger.info('backend.stopping', { why })
    // Still starting: nothing is serving yet, and exiting releases whatever the start had opened.
    if (!backend) process.exit(0)
    setTimeout(() => {
      logger.error('backend.stop_timeout', { ms: STOP_TIMEOUT_MS })
      process.exit(1)
    }, STOP_TIMEOUT_MS).unref()
    backend.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error('backend.stop_failed', { error: err })
        process.exit(1)
      },
    )
  }
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => stop(signal))
  // Only under the runner (an IPC channel): its end, however it ended, ends this process too.
  if (process.connected) process.on('disconnect', () => stop('runner-gone'))

  backend = await startBackend({ logger })
  process.stdout.write(banner(backend) + '\n')
}

main().catch((err: unknown) => {
  process.stderr.write(`LongLink demo failed to start: ${redact(err instanceof Error ? err.message : String(err))}\n`)
  process.exit(1)
})
