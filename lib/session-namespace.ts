import type { Namespace } from 'socket.io';
import {
  ERR_MIDDLEWARE_ERROR,
  ERR_MIDDLEWARE_TIMEOUT,
  ERR_SESSION_UNAVAILABLE,
  SessionAuthError,
  refusal,
  toError,
} from './errors.js';
import { listenForEnds } from './live-session.js';
import { childrenOf } from './socket-io-internals.js';
import { onConnectionEverywhere, pruneEmptyChildren, useEverywhere } from './namespace-layers.js';
import { type AllowedOrigins, checkAllowedOrigins, originCheck } from './origin-check.js';
import { defaultUserData, trackSession, watchSessions } from './session-lifecycle.js';
import {
  checkBoolean,
  checkFunction,
  checkOptions,
  checkTimeout,
  isGuarded,
  toNamespace,
} from './setup.js';
import type {
  ErrorHook,
  ExpressApp,
  ExpressMiddleware,
  NamespaceTarget,
  PassportAuthenticator,
} from './types.js';
import { type SocketMiddleware, wrapExpressMiddleware } from './wrap-express-middleware.js';

/** Options for {@link sessionNamespace}. */
export interface SessionNamespaceOptions {
  /**
   * Your Passport authenticator (`import passport from 'passport'`). With it, each socket also
   * gets `socket.request.user` and `socket.request.isAuthenticated()`, through
   * `passport.initialize()` and `passport.session()`.
   * @default undefined (sessions only, no user)
   */
  passport?: PassportAuthenticator;
  /**
   * How long, in milliseconds, reading the session may take before the socket is refused with
   * `ERR_SESSION_UNAVAILABLE` (status 503); and, separately, reading the user (`deserializeUser`)
   * before `ERR_MIDDLEWARE_TIMEOUT` (503).
   * @default 10000
   */
  timeoutMs?: number;
  /**
   * Your Express application, whose settings (`trust proxy`, …) the session middleware then sees.
   * @default a new `express()` application with Express's default settings
   */
  app?: ExpressApp;
  /**
   * Receives errors the client was shown only as `Internal Server Error` (a failing store,
   * a throwing `deserializeUser`).
   * @default logs them with `console.error`
   */
  onError?: ErrorHook;
  /**
   * With it, an active socket (one that sends events) touches its session in the store at most
   * once per this many milliseconds, so a rolling session stays alive while the user is active on
   * the socket alone. Needs a store with `touch`. Choose it well below the cookie's `maxAge`.
   * @default undefined (sockets never touch their session)
   */
  touchIntervalMs?: number;
  /**
   * With it, a session an event handler changed is saved after the handler is done: when it
   * returns, when its promise settles, and before its ack reaches the client. Saves of one session
   * run one after another.
   * @default false (save with `saveSession(socket)`)
   */
  autoSave?: boolean;
  /**
   * Builds the small, serialisable summary of the user put in `socket.data.user`, which
   * `fetchSockets()` returns on every node (it never returns `socket.request`). `false` leaves
   * `socket.data` alone.
   * @default the user's `id`, `username`, `name` and `displayName`, those that are strings or numbers
   */
  userData?: ((user: Express.User) => unknown) | false;
  /**
   * The browser origins allowed to open a socket this session cookie authenticates: exact origins
   * (`['https://app.example']`), or a function of the origin. A handshake whose `Origin` is not
   * allowed is refused with `ERR_ORIGIN_FORBIDDEN` (403) before any store read: this stops
   * cross-site WebSocket hijacking, which Socket.IO's `cors` option does not (it covers
   * long-polling only).
   * @default the request's own origin: its scheme and `Host` (or, behind a proxy the `app`'s
   * `trust proxy` trusts, `X-Forwarded-Proto` and `X-Forwarded-Host`)
   */
  allowedOrigins?: AllowedOrigins;
  /**
   * Refuses handshakes that send no `Origin` header. Browsers send one with every WebSocket and
   * every cross-origin request; other clients (Node, mobile apps) usually do not.
   * @default false (clients without an Origin are let through)
   */
  requireOrigin?: boolean;
  /**
   * Every this many milliseconds, each session with sockets on this node is read from the store
   * (one read per session), and sockets whose session is gone or whose user changed are ended with
   * `session:ended`. It bounds how long a socket can outlive a revocation whose broadcast a node
   * missed. `false` turns it off.
   * @default 30000 on an adapter that spans nodes (Redis, …), `false` on the in-memory adapter
   */
  revalidateIntervalMs?: number | false;
}

function isAuthenticator(value: unknown): value is PassportAuthenticator {
  const { initialize, session } = (value ?? {}) as Partial<PassportAuthenticator>;
  return typeof initialize === 'function' && typeof session === 'function';
}

// Each namespace connect reads the session afresh: what an earlier namespace, or engine-level
// middleware, left on the request must not stand in for it.
function forgetSession(req: Record<string, unknown>, _res: unknown, next: () => void): void {
  req.session = undefined;
  req.sessionID = undefined;
  req.user = undefined;
  next();
}

/**
 * Makes a namespace session-aware: each socket sees `socket.request.session` and
 * `socket.request.sessionID`, and with `passport`, `socket.request.user`. The session is read from
 * the store at every namespace connect (one store read, one `deserializeUser`); a session that is
 * gone (logged out, regenerated, expired) is a fresh, empty one, not an error.
 *
 * @example
 * ```ts
 * const sessionMiddleware = session({ secret, resave: false, saveUninitialized: false });
 * app.use(sessionMiddleware);
 * sessionNamespace(io.of('/chat'), sessionMiddleware, { passport }).on('connection', (socket) => {
 *   console.log(socket.request.user);
 * });
 * ```
 */
export function sessionNamespace(
  target: NamespaceTarget,
  session: ExpressMiddleware,
  options?: SessionNamespaceOptions,
): Namespace {
  const nsp = toNamespace(target, 'sessionNamespace');
  if (typeof (session as unknown) !== 'function') {
    throw new TypeError('sessionNamespace: session must be the express-session middleware');
  }
  const {
    passport,
    timeoutMs,
    app,
    onError,
    touchIntervalMs,
    autoSave = false,
    userData = defaultUserData,
    allowedOrigins,
    requireOrigin = false,
    revalidateIntervalMs,
  } = checkOptions('sessionNamespace', options);
  if (revalidateIntervalMs !== false) {
    checkTimeout('sessionNamespace', revalidateIntervalMs, 'options.revalidateIntervalMs');
  }
  checkTimeout('sessionNamespace', touchIntervalMs, 'options.touchIntervalMs');
  checkBoolean('sessionNamespace', 'options.autoSave', autoSave);
  checkBoolean('sessionNamespace', 'options.requireOrigin', requireOrigin);
  checkAllowedOrigins('sessionNamespace', allowedOrigins);
  if (userData !== false) checkFunction('sessionNamespace', 'options.userData', userData);
  if (passport !== undefined && !isAuthenticator(passport)) {
    throw new TypeError('sessionNamespace: options.passport must be a Passport authenticator');
  }
  for (const guarded of [nsp, ...(childrenOf(nsp) ?? [])]) {
    if (isGuarded(guarded)) {
      throw new TypeError(
        `sessionNamespace: call it before requireAuth on namespace ${guarded.name}: ` +
          'requireAuth would otherwise run before the session is read',
      );
    }
  }
  const wrapOptions = {
    ...(timeoutMs !== undefined && { timeoutMs }),
    ...(app !== undefined && { app }),
    ...(onError !== undefined && { onError }),
  };
  let readSession: SocketMiddleware;
  try {
    // One chain, one response stand-in per connect. passport.initialize() is left out: since
    // Passport 0.6, passport.session() sets up req.login, req.logout and isAuthenticated itself.
    const chain: ExpressMiddleware[] = [forgetSession, readStore(session)];
    if (passport) chain.push(passport.session());
    readSession = wrapExpressMiddleware(chain, wrapOptions);
  } catch (error) {
    // Name this helper, not the one it builds on, in setup errors.
    if (error instanceof TypeError) {
      throw new TypeError(error.message.replace(/^wrapExpressMiddleware:/, 'sessionNamespace:'), {
        cause: error,
      });
    }
    throw error;
  }

  // Before any store read: a page of another origin must not ride on the user's cookie.
  useEverywhere(nsp, originCheck({ allowedOrigins, requireOrigin, app }));
  useEverywhere(nsp, function readSessionMiddleware(socket, next) {
    readSession(socket, (err) => {
      next(err && storeRefusal(err, socket.request));
    });
  });
  const lifecycle = {
    touchIntervalMs,
    autoSave,
    userData: userData === false ? undefined : userData,
    onError,
    revalidateIntervalMs,
  };
  useEverywhere(nsp, trackSession(lifecycle));
  onConnectionEverywhere(nsp, watchSessions(nsp, lifecycle));
  pruneEmptyChildren(nsp);
  listenForEnds(nsp.server);
  return nsp;
}

// Requests whose session the store has answered for, and the errors that came from the store:
// a failure or a timeout before the store answered is the store's, told as ERR_SESSION_UNAVAILABLE.
const storeAnswered = new WeakSet();
const storeErrors = new WeakSet();

function readStore(session: ExpressMiddleware): ExpressMiddleware {
  const run = session as unknown as (
    req: object,
    res: unknown,
    next: (err?: unknown) => void,
  ) => void;
  return function readSessionStore(
    req: { session?: unknown },
    res: unknown,
    next: (err?: unknown) => void,
  ) {
    run(req, res, (err?: unknown) => {
      if (err) {
        const error = toError(err);
        storeErrors.add(error);
        next(error);
        return;
      }
      // express-session calls next() with no session when its store has disconnected.
      if (req.session === undefined) {
        const error = new Error('the session store is disconnected');
        storeErrors.add(error);
        next(error);
        return;
      }
      storeAnswered.add(req);
      next();
    });
  };
}

function storeRefusal(error: Error, req: object): Error {
  const { data, cause } = error as Partial<SessionAuthError>;
  const fromStore =
    (data?.code === ERR_MIDDLEWARE_ERROR &&
      typeof cause === 'object' &&
      cause !== null &&
      storeErrors.has(cause)) ||
    (data?.code === ERR_MIDDLEWARE_TIMEOUT && !storeAnswered.has(req));
  return fromStore ? refusal(ERR_SESSION_UNAVAILABLE, 503, error) : error;
}
