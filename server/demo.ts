/**
 * `npm run demo` (after the H5 and mp-weixin builds): starts the backend, prints the URL to open, the admin URL
 * and how to import the mini-program into WeChat DevTools. Ctrl+C (SIGINT) or SIGTERM stops it cleanly.
 */
import fs from 'node:fs'
import path from 'node:path'
import { startBackend } from './app'
import { ROOT_DIR } from './config'
import { createLogger } from './log'

async function main(): Promise<void> {
  // Structured log lines go to stderr so that stdout carries the human-readable lines below.
  const logger = createLogger((line) => process.stderr.write(line + '\n'))
  const backend = await startBackend({ logger })
  const mpDir = path.join(ROOT_DIR, 'dist', 'build', 'mp-weixin')
  const h5 = fs.existsSync(path.join(backend.config.h5Dir, 'index.html'))

  process.stdout.write(`LongLink demo: ${backend.url}/  (admin: ${backend.url}/admin)\n`)
  process.stdout.write(
    [
      '',
      h5 ? '' : `注意 / Note: ${backend.config.h5Dir} 不存在 (missing): run \`npm run build:h5\`.`,
      '微信小程序（中文）:',
      `  1. 打开微信开发者工具 → 导入项目，目录选择 ${mpDir}（AppID 可用测试号 touristappid）。`,
      '  2. 右上角「详情」→「本地设置」→ 勾选「不校验合法域名、web-view（业务域名）、TLS 版本以及 HTTPS 证书」。',
      `  3. 小程序连接本机后端 ${backend.url}（MQTT: ${backend.mqttUrl}）；真机调试需把 HOST 设为 0.0.0.0 并使用电脑的局域网 IP。`,
      'WeChat mini-program (English):',
      `  1. Open WeChat DevTools → Import project, choose ${mpDir} (the test AppID touristappid works).`,
      '  2. Details → Local settings → tick "Does not verify valid domain names, web-view (business domain names), TLS versions and HTTPS certificates".',
      `  3. The mini-program talks to ${backend.url} (MQTT: ${backend.mqttUrl}); for a phone, start with HOST=0.0.0.0 and use this computer's LAN IP.`,
      'Ctrl+C to stop.',
      '',
    ]
      .filter((l, i, all) => l !== '' || i === 0 || i === all.length - 1)
      .join('\n'),
  )

  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) return
    stopping = true
    logger.info('backend.stopping', { signal })
    const force = setTimeout(() => process.exit(1), 5000)
    force.unref()
    backend.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error('backend.stop_failed', { error: err })
        process.exit(1)
      },
    )
  }
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGTERM', () => stop('SIGTERM'))
}

main().catch((err: unknown) => {
  process.stderr.write(`LongLink demo failed to start: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
