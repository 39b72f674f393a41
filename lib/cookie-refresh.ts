// A rolling session kept alive by a socket alone: the socket's touches move the store's expiry, but
// the browser's cookie keeps the Expires of the last HTTP response, and no socket frame can set a
// cookie. So the server tracks when the browser's cookie ends (SocketState.cookieEnds), and when a
// touch finds it near, tells the client (COOKIE_EXPIRING_EVENT), which asks refreshCookieRoute
// over HTTP: with `rolling`, express-session re-sends the cookie on that response.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server } from 'socket.io';
import { checkOptions, toServer } from './setup.js';
import { serverState, sessionDigest, type ServerState, type SocketState } from './state.js';

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

/** Options for {@link refreshCookieRoute}. */
export interface RefreshCookieRouteOptions {
  /**
   * The HTTP methods the route answers; any other gets `405 Method Not Allowed` (a refresh
   * changes state: keep it off GET, which caches and prefetchers may send on their own).
   * @default ['POST']
   */
  methods?: readonly string[];
}

type Next = (err?: unknown) => void;

/**
 * An Express route that refreshes the session cookie when the client is told to
 * ({@link COOKIE_EXPIRING_EVENT}). Mount it after the session middleware. It answers `204 No
 * Content`; with express-session's `rolling: true`, that response carries a fresh `Set-Cookie`
 * (`maxAge` from now), and this node's sockets of that session learn the cookie's new end.
 *
 * Without `rolling`, express-session re-sends the cookie only when the session was changed: the
 * route changes nothing, so the cookie keeps its end (`maxAge` after the session was last
 * changed, whatever the activity, which is what `rolling: false` means), and that session's
 * sockets on this node are not told again. cookie-session's sockets are never told: a socket
 * cannot move a session kept in the cookie.
 *
 * @example
 * ```ts
 * app.use(sessionMiddleware, passport.session());
 * app.post('/session/refresh', refreshCookieRoute(io));
 * // in the page: socket.on('session:cookie-expiring', () =>
 * //   fetch('/session/refresh', { method: 'POST', credentials: 'include' }));
 * ```
 */
export function refreshCookieRoute(
  io: Server,
  options?: RefreshCookieRouteOptions,
): (req: IncomingMessage, res: ServerResponse, next: Next) => void {
  const helper = 'refreshCookieRoute';
  const server = serverState(toServer(io, helper));
  const { methods = ['POST'] } = checkOptions(helper, options);
  const listed: unknown = methods;
  if (
    !Array.isArray(listed) ||
    listed.length === 0 ||
    !listed.every((method) => typeof method === 'string' && method !== '')
  ) {
    throw new TypeError(`${helper}: options.methods must be a non-empty array of HTTP methods`);
  }
  const allowed = new Set((listed as string[]).map((method) => method.toUpperCase()));
  const allow = [...allowed].join(', ');

  return function refreshCookieHandler(req, res, next) {
    if (!allowed.has(req.method ?? '')) {
      res.statusCode = 405;
      res.setHeader('Allow', allow);
      res.end();
      return;
    }
    const { session, sessionID } = req as { session?: unknown; sessionID?: unknown };
    if (session === null || typeof session !== 'object') {
      next(
        new TypeError(
          `${helper}: req.session is not set: mount the route after the session middleware`,
        ),
      );
      return;
    }
    res.statusCode = 204;
    res.end();
    if (typeof sessionID !== 'string') return;
    // express-session writes Set-Cookie as the headers go out, which end() does at once (or,
    // after a store write, later).
    const learn = (): void => {
      learnCookieEnd(server, sessionID, res.getHeader('set-cookie'));
    };
    if (res.headersSent) learn();
    else res.once('finish', learn);
  };
}

/**
 * This node's sockets of `sessionID` learn what the browser now holds: the Expires (or Max-Age)
 * of the Set-Cookie that carries this session's ID; none sent (no `rolling`) means the cookie
 * cannot be moved this way, so they stop asking.
 */
function learnCookieEnd(server: ServerState, sessionID: string, header: unknown): void {
  const sockets = server.bySession.get(sessionDigest(sessionID));
  if (sockets.length === 0) return;
  const headers = Array.isArray(header) ? (header as unknown[]) : [header];
  // express-session's signed value, as cookie.serialize encodes it: `s%3A<id>.<signature>`.
  const value = `=${encodeURIComponent(`s:${sessionID}.`)}`;
  const sent = headers.find((h): h is string => typeof h === 'string' && h.includes(value));
  const ends = sent === undefined ? undefined : endOf(sent, Date.now());
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
