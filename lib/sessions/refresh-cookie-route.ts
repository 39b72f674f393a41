// refreshCookieRoute: the HTTP request a page makes when its socket says the session cookie nears
// its end (COOKIE_EXPIRING_EVENT); the response carries the fresh cookie.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server } from 'socket.io';
import { learnCookieEnd } from '../live/cookie-refresh.js';
import { checkOptions, toServer } from '../api/setup.js';
import { serverState } from '../core/state.js';

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
 * An Express route that refreshes the session cookie when the client is told to (the
 * `session:cookie-expiring` event, COOKIE_EXPIRING_EVENT). Mount it after the session middleware.
 * It answers `204 No Content`; with express-session's `rolling: true`, that response carries a
 * fresh `Set-Cookie` (`maxAge` from now), and this node's sockets of that session learn the
 * cookie's new end.
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
