/**
 * The bike-unlock flow in a native WeChat mini-program, with LongLink from npm (DevTools: Tools → Build npm puts it in
 * miniprogram_npm/): log in, reserve, connect MQTT, subscribe to the bike's "unlocked" topic, ask for the unlock, show
 * the message. Subscribing before asking means the message cannot be missed.
 */
const { isLongLinkError } = require('longlink-socket')
const { createMqttClient } = require('longlink-socket/mqtt')

/** Where the backend is: `wx.setStorageSync('longlink:backend', 'http://<LAN IP>:8090')` for a phone. */
function backend() {
  const custom = wx.getStorageSync('longlink:backend')
  return typeof custom === 'string' && /^https?:\/\//.test(custom) ? custom.replace(/\/$/, '') : 'http://127.0.0.1:8090'
}

/** One call to the backend's API: the JSON body on 2xx, else an error named by the backend's code. */
function call(method, path, body, token) {
  return new Promise((resolve, reject) => {
    wx.request({
      url: backend() + path,
      method,
      data: body,
      header: Object.assign({ 'content-type': 'application/json' }, token ? { Authorization: `Bearer ${token}` } : {}),
      success: (res) => {
        if (res.statusCode >= 200 && res.statusCode < 300) return resolve(res.data)
        const error = (res.data && res.data.error) || {}
        reject(Object.assign(new Error(error.message || `HTTP ${res.statusCode}`), { code: error.code || 'HTTP_ERROR' }))
      },
      fail: (err) => reject(Object.assign(new Error(err.errMsg || 'network error'), { code: 'NETWORK' })),
    })
  })
}

Page({
  data: { rider: 'rider1', password: 'longlink-demo', bike: 'B42', busy: false, step: '', result: '' },

  onInput(event) {
    this.setData({ [event.currentTarget.dataset.field]: event.detail.value })
  },

  /** The client goes with the page: no socket is left behind. */
  onUnload() {
    if (this.client) this.client.end(true).catch(() => {})
  },

  async unlock() {
    const { rider, password, bike } = this.data
    this.setData({ busy: true, result: '', step: '登录 · Logging in' })
    try {
      const { token } = await call('POST', '/api/login', { rider, password })
      await call('POST', `/api/bikes/${bike}/reserve`, {}, token)
      const { mqttUrl } = await call('GET', '/api/config')
      this.setData({ step: '连接中 · Connecting' })
      if (this.client) await this.client.end(true)
      // The broker takes the rider as username and the access token as password.
      this.client = createMqttClient({ url: mqttUrl, username: rider, password: token, keepalive: 30, reconnect: { maxRetries: 3 } })
      await this.client.connect()
      const unlocked = this.client.waitFor(`mobike/unlocked/${bike}`, { timeout: 15000 })
      this.setData({ step: '已订阅 · Subscribed' })
      await call('POST', `/api/bikes/${bike}/unlock`, {}, token)
      this.setData({ step: '已请求开锁 · Unlock requested' })
      const message = await unlocked
      this.setData({ step: '已开锁 · Unlocked', result: message.text() })
    } catch (error) {
      // LongLink's errors and the backend's both carry a code.
      const code = isLongLinkError(error) || (error && error.code) ? error.code : 'ERROR'
      this.setData({ result: `${code}: ${(error && error.message) || error}` })
    } finally {
      this.setData({ busy: false })
    }
  },
})
