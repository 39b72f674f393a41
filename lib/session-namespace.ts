import type { Namespace } from 'socket.io';
import { checkOptions, isGuarded, toNamespace } from './setup.js';
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
  const { passport, timeoutMs, app, onError } = checkOptions('sessionNamespace', options);
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
  return nsp;
}
