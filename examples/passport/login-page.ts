import { demoAccounts } from './users.js';

/** Text made safe to put in HTML, in an element or a quoted attribute. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The login form, with the demo accounts and, after a failed attempt, an error. */
export function loginPage(failed: boolean): string {
  const accounts = demoAccounts
    .map(
      (a) =>
        `<tr><td><code>${escapeHtml(a.username)}</code></td>` +
        `<td><code>${escapeHtml(a.password)}</code></td>` +
        `<td>${escapeHtml(a.role)}</td><td>${escapeHtml(a.tenants.join(', '))}</td></tr>`,
    )
    .join('\n');
  const error = failed
    ? '<p id="login-error" class="error" role="alert">Wrong username or password.</p>'
    : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · socket.io-session-auth demo</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/style.css">
</head>
<body class="login">
<main class="card">
<h1>Sign in</h1>
${error}
<form method="post" action="/login">
<label>Username <input name="username" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form>
<h2>Demo accounts</h2>
<table id="demo-accounts">
<thead><tr><th>username</th><th>password</th><th>role</th><th>tenants</th></tr></thead>
<tbody>
${accounts}
</tbody>
</table>
</main>
</body>
</html>
`;
}
