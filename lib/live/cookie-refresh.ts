// A rolling session kept alive by a socket alone: the socket's touches move the store's expiry, but
// the browser's cookie keeps the Expires of the last HTTP response, and no socket frame can set a
// cookie. So the server tracks when the browser's cookie ends (SocketState.cookieEnds), and when a
// touch finds it near, tells the client (COOKIE_EXPIRING_EVENT), which asks refreshCookieRoute
// over HTTP: with `rolling`, express-session re-sends the cookie on that response, and the route
// tells this node's sockets of the session the cookie's new end (learnCookieEnd).
import { sessionDigest, type ServerState, type SocketState } from '../core/state.js';

/**
 * The event a socket receives when its activity has kept its (rolling) session alive in the store
 * but the browser's session cookie nears its end: the client should refresh the cookie over HTTP,
 * with a request to {@link refreshCookieRoute}. Sent at a touch (see `touchIntervalMs`) once less
 * than half of the cookie's `maxAge` remains, and again at later touches until a refresh arrives.
 */
export const COOKIE_EXPIRING_EVENT = 'session:cookie-expiring';

/** What the client receives with {@link COOKIE_EXPIRING_EVENT}. */
export interface CookieExpiringPayload {
  /** How long the browser's cookie has left, in milliseconds (0 when it may have ended). */
  expiresInMs: number;
}

/** When the browser's cookie ends, from an express-session expiry: HTTP dates are whole seconds. */
export function browserCookieEnd(expires: number | undefined): number | undefined {
  return expires === undefined ? undefined : Math.floor(expires / 1000) * 1000;
}

/**
 * At a touch of a socket whose browser cookie's end is known: tells the client when less than
 * half of the cookie's lifetime (`originalMaxAge`) remains. Checked at touches only, so there is
 * no timer; a touch comes at most once per touchIntervalMs, so neither does this event.
 */
export function warnIfCookieEnding(state: SocketState, maxAge: unknown, now: number): void {
  const { cookieEnds } = state;
  if (cookieEnds === undefined || typeof maxAge !== 'number' || !(maxAge > 0)) return;
  const left = cookieEnds - now;
  if (left >= maxAge / 2) return;
  const payload: CookieExpiringPayload = { expiresInMs: Math.max(left, 0) };
  state.socket.emit(COOKIE_EXPIRING_EVENT, payload);
}

/**
 * The browser cookie's end a new socket starts with: the stored expiry, unless a
 * socket of the same session on this node knows an earlier one (its touches moved the store's
 * expiry past the browser's cookie, and a new socket reads the moved one).
 */
export function initialCookieEnd(
  stored: number | undefined,
  self: SocketState,
): number | undefined {
  let ends = browserCookieEnd(stored);
  if (ends === undefined || self.sessionDigest === undefined) return ends;
  for (const sibling of self.server.bySession.get(self.sessionDigest)) {
    if (sibling !== self && sibling.cookieEnds !== undefined && sibling.cookieEnds < ends) {
      ends = sibling.cookieEnds;
    }
  }
  return ends;
}

/**
 * This node's sockets of `sessionID` learn what the browser now holds: the Expires (or Max-Age)
 * of the Set-Cookie that carries this session's ID; none sent (no `rolling`) means the cookie
 * cannot be moved this way, so they stop asking.
 */
export function learnCookieEnd(server: ServerState, sessionID: string, header: unknown): void {
  const sockets = server.bySession.get(sessionDigest(sessionID));
  if (sockets.length === 0) return;
  const headers = Array.isArray(header) ? (header as unknown[]) : [header];
  // express-session's signed value, as cookie.serialize encodes it: `s%3A<id>.<signature>`.
  const value = `=${encodeURIComponent(`s:${sessionID}.`)}`;
  const sent = headers.find((h): h is string => typeof h === 'string' && h.includes(value));
  const ends = sent === undefined ? undefined : endOf(sent, server.clock.now());
  for (const state of sockets) state.cookieEnds = ends;
}

/** When a Set-Cookie header's cookie ends (Max-Age wins over Expires), or undefined. */
export function endOf(header: string, now: number): number | undefined {
  let expires: number | undefined;
  for (const attribute of header.split(';').slice(1)) {
    const eq = attribute.indexOf('=');
    if (eq < 0) continue;
    const key = attribute.slice(0, eq).trim().toLowerCase();
    const value = attribute.slice(eq + 1).trim();
    if (key === 'max-age' && /^-?\d+$/.test(value)) return now + Number(value) * 1000;
    if (key === 'expires') {
      const time = Date.parse(value);
      if (!Number.isNaN(time)) expires = time;
    }
  }
  return expires;
}
