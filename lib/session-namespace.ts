import type { Namespace } from 'socket.io';
import { listenForEnds } from './live-session.js';
import { defaultUserData, trackSession, watchSessions } from './session-lifecycle.js';
import { checkFunction, checkOptions, checkTimeout, isGuarded, toNamespace } from './setup.js';
import type {
  ErrorHook,
  ExpressApp,
  ExpressMiddleware,
  NamespaceTarget,
  PassportAuthenticator,
} from './types.js';
import { wrapExpressMiddleware } from './wrap-express-middleware.js';

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
   * How long, in milliseconds, reading the session and the user may take before the socket is
   * refused with `ERR_MIDDLEWARE_TIMEOUT` (status 503).
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
  } = checkOptions('sessionNamespace', options);
  checkTimeout('sessionNamespace', touchIntervalMs, 'options.touchIntervalMs');
  if (typeof autoSave !== 'boolean') {
    throw new TypeError('sessionNamespace: options.autoSave must be a boolean');
  }
  if (userData !== false) checkFunction('sessionNamespace', 'options.userData', userData);
  if (passport !== undefined && !isAuthenticator(passport)) {
    throw new TypeError('sessionNamespace: options.passport must be a Passport authenticator');
  }
  if (isGuarded(nsp)) {
    throw new TypeError(
      `sessionNamespace: call it before requireAuth on namespace ${nsp.name}: ` +
        'requireAuth would otherwise run before the session is read',
    );
  }
  const chain: ExpressMiddleware[] = [forgetSession, session];
  if (passport) chain.push(passport.initialize(), passport.session());
  try {
    nsp.use(
      wrapExpressMiddleware(chain, {
        ...(timeoutMs !== undefined && { timeoutMs }),
        ...(app !== undefined && { app }),
        ...(onError !== undefined && { onError }),
      }),
    );
  } catch (error) {
    // Name this helper, not the one it builds on, in setup errors.
    if (error instanceof TypeError) {
      throw new TypeError(error.message.replace(/^wrapExpressMiddleware:/, 'sessionNamespace:'), {
        cause: error,
      });
    }
    throw error;
  }
  const lifecycle = {
    touchIntervalMs,
    autoSave,
    userData: userData === false ? undefined : userData,
    onError,
  };
  nsp.use(trackSession(lifecycle));
  nsp.on('connection', watchSessions(nsp, lifecycle));
  listenForEnds(nsp.server);
  return nsp;
}
