import type { IncomingMessage, ServerResponse } from 'node:http';
import { debug } from '../diagnostics/debug.js';
import type { Session } from 'express-session';
import type { Server } from 'socket.io';
import { ERR_SESSION_REVOKED, ERR_SESSION_ROTATED, type SessionEndedCode } from '../core/errors.js';
import { type EndedHow, warnOnce } from '../diagnostics/diagnostics.js';
import { endEverywhere, sessionKey, userKey as userEndKey } from '../live/revocation.js';
import { toServer } from '../api/setup.js';
import { sessionUserKey } from '../core/user.js';
import { serverState } from '../core/state.js';
import { afterResponse, reportEndFailed, watchStore } from './store-logouts.js';

type Done = (err?: unknown) => void;
type SessionRequest = IncomingMessage & { user?: unknown };

/**
 * Express middleware, installed once after `passport.session()` and before your routes. With
 * express-session it is not needed for a logout to end sockets: every `req.logout()`,
 * `req.session.destroy()`, `req.session.regenerate()` and `store.destroy(sid)` of the store a
 * socket's session came from ends that session's sockets, in every namespace and on every node,
 * before the app's callback runs (so before its response). What it adds: logouts with
 * cookie-session (no store: a logout ends that user's sockets), and the store of every request it
 * sees watched even before a socket has shown it. Logout and destroy end them with
 * `ERR_SESSION_REVOKED`; a regenerate with a user on the request (Passport's login) ends them with
 * `ERR_SESSION_ROTATED` once the response carrying the new cookie is sent, so the client can
 * reconnect with it.
 *
 * @example
 * ```ts
 * app.use(sessionMiddleware, passport.session(), disconnectOnLogout(io));
 * app.post('/logout', (req, res, next) => req.logout((err) => (err ? next(err) : res.redirect('/'))));
 * ```
 */
export function disconnectOnLogout(
  io: Server,
): (req: IncomingMessage, res: ServerResponse, next: () => void) => void {
  const server = toServer(io, 'disconnectOnLogout');

  return function disconnectOnLogoutMiddleware(req, res, next) {
    try {
      const { session, sessionID, sessionStore } = req as {
        session?: unknown;
        sessionID?: unknown;
        sessionStore?: unknown;
      };
      if (session === undefined) {
        // Mounted before the session middleware (or on a path it skips): it can see no logout.
        warnOnce(
          'SOCKET_IO_SESSION_AUTH_LOGOUT_BEFORE_SESSION',
          'disconnectOnLogout: a request reached it with no session: install it after the ' +
            'session middleware and passport.session(), ' +
            'app.use(sessionMiddleware, passport.session(), disconnectOnLogout(io)), or logouts ' +
            'never end sockets.',
        );
      }
      if (session !== null && typeof session === 'object') {
        serverState(server).logoutWatched = true;
        const { destroy, regenerate } = session as Partial<Session>;
        if (
          typeof sessionID === 'string' &&
          typeof destroy === 'function' &&
          typeof regenerate === 'function'
        ) {
          // Outside Express, the response a login's rotation waits for, where Express keeps it.
          (req as { res?: ServerResponse }).res ??= res;
          // The store's destroys end the sockets (store-logouts.ts), whether or not a socket has
          // shown this store yet; a store that cannot be watched, per request as before.
          if (!watchStore(server, sessionStore)) watchSession(server, req, res, session as Session);
        } else {
          // cookie-session (no session ID, no destroy): a logout ends the user's sockets.
          watchUser(server, req, res);
        }
      }
    } catch (error) {
      // A session this middleware cannot read is not its to break: the request goes on unwatched.
      debug('disconnectOnLogout: session not watched: %O', error);
    }
    next();
  };
}

/** Ends the sockets of the session `sessionID` names, on every node. */
function end(io: Server, sessionID: string, code: SessionEndedCode, how: EndedHow): void {
  endEverywhere(io, sessionKey(sessionID), code, how).catch(reportEndFailed);
}

// Per-request wrappers, as express-session's own save/reload: non-enumerable, so they are never
// stored with the session.
function watchSession(
  io: Server,
  req: SessionRequest,
  res: ServerResponse,
  session: Session,
): void {
  const destroy = session.destroy.bind(session);
  const regenerate = session.regenerate.bind(session);
  Object.defineProperty(session, 'destroy', {
    configurable: true,
    writable: true,
    value: function destroyAndDisconnect(this: Session, done?: Done) {
      const sessionID = this.id;
      return destroy((err?: unknown) => {
        if (!err) end(io, sessionID, ERR_SESSION_REVOKED, 'destroy');
        done?.(err);
      });
    },
  });
  Object.defineProperty(session, 'regenerate', {
    configurable: true,
    writable: true,
    value: function regenerateAndDisconnect(this: Session, done?: Done) {
      const sessionID = this.id;
      // Passport's login sets req.user before it regenerates; its logout clears req.user first.
      const code = req.user ? ERR_SESSION_ROTATED : ERR_SESSION_REVOKED;
      return regenerate((err?: unknown) => {
        if (!err) {
          if (code === ERR_SESSION_ROTATED) {
            // The client must hold the new cookie before it reconnects.
            afterResponse(res, () => {
              end(io, sessionID, code, 'rotation');
            });
          } else {
            end(io, sessionID, code, 'logout');
          }
          // The new session can be logged out or regenerated in turn.
          const { session: renewed } = req as { session?: Session };
          if (renewed) watchSession(io, req, res, renewed);
        }
        done?.(err);
      });
    },
  });
}

type PassportRequest = SessionRequest & {
  session?: unknown;
  logout?: (...args: unknown[]) => unknown;
  logOut?: (...args: unknown[]) => unknown;
};

/**
 * A session kept in its cookie has no ID to end: once the request's user logs out (`req.logout()`,
 * or `req.session = null`, seen when the response is done), every socket of that user ends.
 */
function watchUser(io: Server, req: IncomingMessage, res: ServerResponse): void {
  const passportReq = req as PassportRequest;
  const userKey = sessionUserKey(passportReq.session);
  if (userKey === undefined) return;
  let ended = false;
  const endIfLoggedOut = (): void => {
    let now: string | undefined;
    try {
      now = sessionUserKey(passportReq.session);
    } catch {
      now = undefined;
    }
    if (ended || now === userKey) return;
    ended = true;
    endEverywhere(io, userEndKey(userKey), ERR_SESSION_REVOKED, 'logout').catch(reportEndFailed);
  };
  const { logout } = passportReq;
  if (typeof logout === 'function') {
    const logoutAndDisconnect = function logoutAndDisconnect(this: unknown, ...args: unknown[]) {
      const last = args.length - 1;
      const done = args[last];
      if (typeof done === 'function') {
        args[last] = (err?: unknown) => {
          if (!err) endIfLoggedOut();
          (done as Done)(err);
        };
      }
      return logout.apply(this, args);
    };
    passportReq.logout = logoutAndDisconnect;
    passportReq.logOut = logoutAndDisconnect;
  }
  afterResponse(res, endIfLoggedOut);
}
