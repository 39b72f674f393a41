import type { SessionInfo } from 'socket.io-session-auth';
import { escapeHtml } from './login-page.js';

/** What the account page shows: the user, their devices, and what the last action did. */
export interface AccountView {
  username: string;
  /** The user's sessions, as `listSessions` gives them (the handle only, never a session ID). */
  devices: readonly SessionInfo[];
  /** The handle of the session this page is served to (`sessionHandle(req)`). */
  current: string;
  /** How many devices the last button signed out, if one was just pressed. */
  signedOut?: number | undefined;
}

/** A time as the page shows it: UTC to the minute, the exact one in `datetime`. */
function when(ms: number | undefined): string {
  if (ms === undefined) return '<span class="muted">unknown</span>';
  const date = new Date(ms);
  const shown = `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
  return `<time datetime="${date.toISOString()}">${shown}</time>`;
}

function deviceRow(device: SessionInfo, current: string): string {
  const mine = device.handle === current;
  const handle = escapeHtml(device.handle);
  const label = mine ? 'Sign out this device' : 'Sign out';
  return `<tr data-handle="${handle}"${mine ? ' class="this-device"' : ''}>
<td>${escapeHtml(device.userAgent ?? 'unknown browser')}${mine ? ' <strong>(this device)</strong>' : ''}</td>
<td data-label="address"><code>${escapeHtml(device.ip ?? 'unknown')}</code></td>
<td data-label="signed in">${when(device.createdAt)}</td>
<td data-label="last seen">${when(device.lastSeenAt)}</td>
<td data-label="connections" class="sockets">${device.sockets}</td>
<td><form method="post" action="/account/sign-out">
<input type="hidden" name="handle" value="${handle}">
<button type="submit">${label}</button>
</form></td>
</tr>`;
}

/**
 * The account page: one row per device (session) of the signed-in user, this one first, each
 * with a sign-out button that posts its handle; and "Sign out all others".
 */
export function accountPage(view: AccountView): string {
  const { devices, current } = view;
  // This device first, then the most recently seen.
  const sorted = [...devices].sort(
    (a, b) =>
      Number(b.handle === current) - Number(a.handle === current) ||
      (b.lastSeenAt ?? 0) - (a.lastSeenAt ?? 0),
  );
  const others = devices.filter((d) => d.handle !== current).length;
  const result =
    view.signedOut === undefined
      ? ''
      : `<p id="account-result" role="status">${
          view.signedOut === 1 ? 'Signed out 1 device.' : `Signed out ${view.signedOut} devices.`
        }</p>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Your devices · socket.io-session-auth demo</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/style.css">
</head>
<body class="account">
<main class="card">
<h1>Your devices</h1>
<p id="me">Signed in as ${escapeHtml(view.username)} · <a href="/">back to the app</a></p>
${result}
<p class="hint">Every browser signed in as you, on every copy of the app. Signing a device out
ends its session and closes its open pages' connections at once.</p>
<table id="devices">
<thead><tr><th>browser</th><th>address</th><th>signed in</th><th>last seen</th><th>connections</th><th></th></tr></thead>
<tbody>
${sorted.map((device) => deviceRow(device, current)).join('\n')}
</tbody>
</table>
<form id="sign-out-others" method="post" action="/account/sign-out-others">
<button type="submit"${others === 0 ? ' disabled' : ''}>Sign out all others</button>
</form>
</main>
</body>
</html>
`;
}
