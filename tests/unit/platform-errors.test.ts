/**
 * Platform failures as a developer reads them: error objects of every shape the hosts use, and the causes a developer
 * can fix sorted into their own codes (by the words WeChat, Alipay, browsers and Node use for them).
 */
import { describe, expect, it } from 'vitest'
import { messageOf, platformError, type ErrorCode } from '../../uni_modules/longlink-socket/js_sdk/errors'

describe('messageOf reads every shape of platform error', () => {
  it.each([
    ['WeChat, uni, Douyin { errMsg }', { errMsg: 'connectSocket:fail exceed max task count' }, 'connectSocket:fail exceed max task count'],
    ['Alipay { error, errorMessage }', { error: 4, errorMessage: '无法识别的URL格式' }, '无法识别的URL格式'],
    ['{ error: message }', { error: 'socket closed by peer' }, 'socket closed by peer'],
    ['an Error', new TypeError('fetch failed'), 'fetch failed'],
    ['a string', 'interrupted', 'interrupted'],
    ['{ error } with a number only', { error: 12 }, '12'],
    ['Alipay nested in data', { data: { error: 50, errorMessage: '网络连接失败' } }, '网络连接失败'],
    ['an object that says nothing (uni-h5 socket onError)', {}, 'no details'],
  ])('%s', (_, value, expected) => {
    expect(messageOf(value)).toBe(expected)
  })

  it('never reads [object Object] from a shape it knows', () => {
    for (const value of [{ errMsg: 'a' }, { errorMessage: 'b', error: 1 }, { error: 'c' }, { message: 'd' }]) {
      expect(messageOf(value)).not.toContain('[object')
    }
  })
})

describe('platformError sorts the causes a developer can fix', () => {
  const cases: [string, unknown, string, ErrorCode][] = [
    ['WeChat: domain not in the list', { errMsg: 'connectSocket:fail url not in domain list' }, 'wss://api.example.com/ws', 'DOMAIN_NOT_ALLOWED'],
    [
      'WeChat request: domain not in the list',
      { errMsg: 'request:fail url not in domain list' },
      'https://api.example.com/sse',
      'DOMAIN_NOT_ALLOWED',
    ],
    ['DevTools in Chinese', { errMsg: 'ws://10.0.0.2 不在以下 socket 合法域名列表中' }, 'ws://10.0.0.2/ws', 'DOMAIN_NOT_ALLOWED'],
    ['HarmonyOS wording', { error: 2302998, errorMessage: 'It is not allowed to access this domain.' }, 'wss://a.example/ws', 'DOMAIN_NOT_ALLOWED'],
    ['WeChat: ws:// on a device', { errMsg: 'connectSocket:fail invalid url "ws://api.example.com/ws"' }, 'ws://api.example.com/ws', 'INSECURE_URL'],
    [
      'a browser page on HTTPS',
      new DOMException(
        "Failed to construct 'WebSocket': An insecure WebSocket connection may not be initiated from a page loaded over HTTPS.",
        'SecurityError',
      ),
      'ws://api.example.com/ws',
      'INSECURE_URL',
    ],
    ['WeChat: TLS', { errMsg: 'request:fail ssl hand shake error' }, 'https://api.example.com/sse', 'TLS_FAILED'],
    ['Node: self-signed', new Error('self-signed certificate'), 'wss://127.0.0.1/ws', 'TLS_FAILED'],
    ['Alipay in Chinese: certificate', { error: 7, errorMessage: '服务器返回的https证书无效' }, 'wss://a.example/ws', 'TLS_FAILED'],
    ['WeChat: the socket limit', { errMsg: 'connectSocket:fail exceed max task count' }, 'wss://a.example/ws', 'SOCKET_LIMIT'],
    ['an invalid URL that is encrypted is no insecure URL', { errMsg: 'connectSocket:fail invalid url "wss://a b"' }, 'wss://a b', 'CONNECT_FAILED'],
    ['refused', { errMsg: 'connectSocket:fail -102:net::ERR_CONNECTION_REFUSED' }, 'wss://a.example/ws', 'CONNECT_FAILED'],
    ['Chromium: a certificate error', { errMsg: 'connectSocket:fail net::ERR_CERT_DATE_INVALID' }, 'wss://a.example/ws', 'TLS_FAILED'],
    ['Chromium: an SSL protocol error', new Error('net::ERR_SSL_PROTOCOL_ERROR'), 'wss://a.example/ws', 'TLS_FAILED'],
    ["Android's older socket limit", { errMsg: 'connectSocket:fail:max connected' }, 'wss://a.example/ws', 'SOCKET_LIMIT'],
    // Words in a URL or host name never decide: least of all for a cause that stops the connection.
    [
      'a host named ssl, not in the domain list',
      { errMsg: 'ws://ssl.x.com 不在以下 socket 合法域名列表中' },
      'ws://ssl.x.com/ws',
      'DOMAIN_NOT_ALLOWED',
    ],
    [
      'a URL with "limit" in it',
      { errMsg: 'connectSocket:fail wss://rate-limit.x.com/limit refused' },
      'wss://rate-limit.x.com/limit',
      'CONNECT_FAILED',
    ],
    ['DNS failure for a host named tls', new Error('getaddrinfo ENOTFOUND tls.x.com'), 'wss://tls.x.com/ws', 'CONNECT_FAILED'],
    // Failures that merely sound alike are ordinary failures, retried.
    ['a timeout that "exceeded" a time', { errMsg: 'request:fail timeout, exceeded 60000ms' }, 'https://a.example/sse', 'CONNECT_FAILED'],
    ['a server throttling a reconnect storm', new Error('Unexpected server response: 429 Too Many Requests'), 'wss://a.example/ws', 'CONNECT_FAILED'],
    ['a payload too large', new Error('Max payload size exceeded'), 'wss://a.example/ws', 'CONNECT_FAILED'],
    ['an invalid domain name', new Error('Invalid domain name'), 'wss://a..example/ws', 'CONNECT_FAILED'],
  ]

  it.each(cases)('%s', (_, res, url, code) => {
    const error = platformError(res, 'CONNECT_FAILED', 'connectSocket failed', url)
    expect(error.code).toBe(code)
    expect(error.message).toContain(`connectSocket failed: ${messageOf(res)}`)
    expect(error.cause).toBe(res)
  })

  it('says the fix in development builds', () => {
    expect(platformError({ errMsg: 'connectSocket:fail url not in domain list' }, 'CONNECT_FAILED', 'x', 'wss://a.example').message).toMatch(
      /server domains.*admin console/,
    )
    expect(platformError(new Error('self-signed certificate'), 'SOCKET_ERROR', 'x', 'wss://a.example').message).toMatch(/self-signed.*chain/)
    expect(platformError({ errMsg: 'invalid url' }, 'CONNECT_FAILED', 'x', 'ws://a.example').message).toContain('use wss://')
  })
})
