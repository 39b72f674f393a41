// Warnings about a setup that cannot keep the package's promises, each once per process
// (`process.emitWarning`, with a code of ours): what the server's own options say, at
// sessionNamespace time, and what the first sockets show.
import type { TLSSocket } from 'node:tls';
import type { Server, Socket } from 'socket.io';
import { warnOnce } from './diagnostics.js';
import { crossNode } from '../live/revocation.js';
import { corsOptions, recoveryOptions } from '../socket-io/socket-io-internals.js';
import type { ExpressApp } from '../core/types.js';
import { sessionUserOf } from '../core/user.js';
import { serverState } from '../core/state.js';

/** The server's own options: connectionStateRecovery, and CORS that lets any page in. */
export function setupWarnings(io: Server): void {
  const recovery = recoveryOptions(io);
  if (recovery && recovery.skipMiddlewares !== false) {
    warnOnce(
      'SOCKET_IO_SESSION_AUTH_RECOVERY',
      'connectionStateRecovery with skipMiddlewares (its default) restores sockets without ' +
        'running namespace middleware: socket.io-session-auth refuses to restore a socket whose ' +
        "session ended or expired while it was away, and reads any other restored socket's " +
        'session again, holding its events meanwhile. What other middleware of yours set on the ' +
        'socket is not set again.',
    );
  }
  const cors = corsOptions(io);
  if (cors && cors.credentials === true && (cors.origin === '*' || cors.origin === true)) {
    warnOnce(
      'SOCKET_IO_SESSION_AUTH_CORS',
      "Socket.IO's cors option lets any origin send credentials (origin: '*' or true with " +
        "credentials: true): any site can open a long-polling session with the user's cookie. " +
        "List your own origins in cors.origin (and in sessionNamespace's allowedOrigins).",
    );
  }
}

/** What a socket's session shows about the setup: a store every node cannot share, a cookie the browser keeps to itself. */
export function sessionWarnings(
  socket: Socket,
  session: object,
  store: unknown,
  app: ExpressApp,
  passportGiven: boolean,
): void {
  if (!passportGiven && sessionUserOf(session) !== undefined) {
    warnOnce(
      'SOCKET_IO_SESSION_AUTH_NO_PASSPORT',
      'sessionNamespace: sessions hold a Passport user, but sessionNamespace was not given ' +
        '{ passport }: sockets see the session and no user, so requireAuth refuses them. ' +
        'Pass it: sessionNamespace(nsp, sessionMiddleware, { passport }).',
    );
  }
  const cookie = (session as { cookie?: { secure?: unknown } }).cookie;
  const req = socket.request;
  if (
    cookie?.secure === true &&
    !(req.socket as Partial<TLSSocket>).encrypted &&
    !app.get('trust proxy')
  ) {
    warnOnce(
      'SOCKET_IO_SESSION_AUTH_SECURE_COOKIE',
      'The session cookie is Secure, but this request came over plain HTTP and the app does ' +
        'not trust a proxy: express-session never sets the cookie there. Behind a TLS proxy, set ' +
        "app.set('trust proxy', …) and pass { app } to sessionNamespace.",
    );
  }
  if (store === undefined && sessionUserOf(session) !== undefined) logoutUnseen(socket.nsp.server);
  const name = (store as { constructor?: { name?: unknown } } | undefined)?.constructor?.name;
  if (name === 'MemoryStore' && crossNode(socket.nsp.server)) {
    warnOnce(
      'SOCKET_IO_SESSION_AUTH_MEMORY_STORE',
      'Socket.IO runs on several nodes (its adapter spans them), but sessions live in a ' +
        'MemoryStore of this process: other nodes cannot see them, and logouts there do not end ' +
        'sockets here. Use a shared store (connect-redis, …).',
    );
  }
}

/**
 * A session kept in its cookie (cookie-session) has no store whose destroys the package can see:
 * only disconnectOnLogout, in the path of the logout route, sees a logout. It has seen no request
 * with a session on this server yet: mounted after the routes, or not at all.
 */
function logoutUnseen(io: Server): void {
  if (serverState(io).logoutWatched) return;
  warnOnce(
    'SOCKET_IO_SESSION_AUTH_LOGOUT_UNSEEN',
    'Sessions kept in their cookie (cookie-session?) have no store whose destroys ' +
      'socket.io-session-auth can see, and disconnectOnLogout has seen no request yet: a logout ' +
      "would leave that user's sockets open. Mount it after the session middleware and before " +
      'your routes, app.use(sessionMiddleware, passport.session(), disconnectOnLogout(io)), or ' +
      'call disconnectUser(io, userKey) when a user logs out.',
  );
}
