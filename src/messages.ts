/** What went wrong, in the rider's terms, in Chinese and English (the demo's two languages). */

/** A message for the rider: a short title and what to do. */
export interface RiderMessage {
  title: string
  detail: string
}

/**
 * Plain words for an error of the unlock flow, the ride page or a login (BikeApiError or LongLinkError codes);
 * `fallback` titles anything else, with the error's own message as the detail.
 */
export function describeError(error: unknown, fallback = '操作失败 · Failed'): RiderMessage {
  const { code, details, message } = (error ?? {}) as {
    code?: string
    details?: { retryAfterMs?: number; bike?: string; status?: string }
    message?: string
  }
  switch (code) {
    case 'NETWORK':
      return { title: '网络不可用 · No network', detail: '请检查网络后重试。Check the connection and retry.' }
    case 'LOGIN_REFUSED':
      return { title: '登录失败 · Login failed', detail: '骑行者或密码不正确。Wrong rider or password.' }
    case 'RATE_LIMITED': {
      const seconds = Math.max(1, Math.ceil((details?.retryAfterMs ?? 60_000) / 1000))
      return { title: '尝试次数过多 · Too many attempts', detail: `请 ${seconds} 秒后再试。Wait ${seconds} s and retry.` }
    }
    case 'SESSION_EXPIRED':
      return { title: '登录已过期 · Session expired', detail: '请输入密码重新登录。Enter the password and log in again.' }
    case 'FORBIDDEN':
      return { title: '登录方式未开启 · Login not enabled', detail: '此服务器不接受这种登录。This server does not accept this login.' }
    case 'NOT_AUTHORIZED':
    case 'UNAUTHORIZED':
      return { title: '登录被拒绝 · Login refused', detail: '请重新登录后重试。Log in again and retry.' }
    case 'TIMEOUT':
      return { title: '开锁超时 · Unlock timed out', detail: '车辆没有回应，请重试。The bike did not answer; retry.' }
    case 'BIKE_BUSY':
    case 'RIDER_BUSY':
      return {
        title: '车辆不可用 · Bike busy',
        detail: '这辆车正在被使用，或你已有进行中的骑行。The bike is in use, or you already have a ride.',
      }
    case 'RIDING_ELSEWHERE': {
      const bike = details?.bike ?? '?'
      if (details?.status === 'unlocking')
        return {
          title: `车辆 ${bike} 正在为你开锁 · Bike ${bike} is unlocking for you`,
          detail: '一次只能骑一辆车：打开那次骑行。One bike at a time: open that ride.',
        }
      return {
        title: `你正在骑行车辆 ${bike} · You already ride bike ${bike}`,
        detail: '一次只能骑一辆车：打开那次骑行，关锁后再开这辆。One bike at a time: open that ride, lock it, then unlock this one.',
      }
    }
    case 'RIDE_NOT_FOUND':
      return { title: '骑行已结束 · Ride over', detail: '这次骑行已不存在。That ride no longer exists.' }
    case 'UNAVAILABLE':
      return { title: '服务暂不可用 · Service unavailable', detail: '请稍后重试。Retry in a moment.' }
    default:
      return { title: fallback, detail: String(message ?? error) }
  }
}
