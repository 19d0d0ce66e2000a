/**
 * The login form shown at `/admin` without a session, and again with the reason when a form login is refused.
 */
import { escapeHtml, htmlDocument } from './html'

/** The login form; `message`, when given, is shown above it as an error. */
export function loginPage(message?: string): string {
  return htmlDocument(
    'LongLink 管理登录 · Admin sign-in',
    `<h1>LongLink 管理 · Admin</h1>
<p>请输入管理密码 · Enter the admin password</p>
${message ? `<p class="error" role="alert" data-test="login-error">${escapeHtml(message)}</p>` : ''}
<form method="post" action="/admin/login" data-test="login-form">
  <label for="password">密码 · Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required autofocus>
  <button type="submit">登录 · Sign in</button>
</form>`,
  )
}
