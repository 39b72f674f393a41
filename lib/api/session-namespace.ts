import type { Namespace } from 'socket.io';
import { guardEvents } from '../live/events.js';
import {
  admitStep,
  originStep,
  sessionStep,
  socketLifecycle,
  trackStep,
} from '../handshake/handshake.js';
import {
  forEachChild,
  onConnectionEverywhere,
  pruneEmptyChildren,
  useEverywhere,
} from '../socket-io/namespace-layers.js';
import { guardRecovery } from '../live/recovery.js';
import { listenForRefreshes } from '../live/refresh.js';
import { listenForEnds } from '../live/revocation.js';
import { listenForSessions } from '../sessions/sessions-across-nodes.js';
import {
  checkAllowedOrigins,
  checkApp,
  checkBoolean,
  checkFunction,
  checkMiddleware,
  checkOptions,
  checkStoreEvents,
  checkTimeout,
  isAuthenticator,
  isGuarded,
  markTracking,
  toNamespace,
} from './setup.js';
import { defaultUserData } from '../core/user.js';
import { explainAllowed, knownStore, probeSession } from '../diagnostics/explain.js';
import { watchStore } from '../sessions/store-logouts.js';
import { setupWarnings } from '../diagnostics/setup-warnings.js';
import { childrenOf } from '../socket-io/socket-io-internals.js';
import { type HandshakeOptions, serverState } from '../core/state.js';
import type {
  AllowedOrigins,
  ErrorHook,
  ExpressApp,
  ExpressMiddleware,
  NamespaceTarget,
  PassportAuthenticator,
} from '../core/types.js';
import { expressApp } from './wrap-express-middleware.js';
import { startStoreEvents, type StoreEventFeed } from '../live/store-events.js';

export type { AllowedOrigins };

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
   * Puts why a socket has no user, or was refused, in the client's `err.data.reason` (a code such
   * as `'bad-signature'`: see docs/diagnostics.md, "Why is there no user?"), for the developer. Off in
   * production (NODE_ENV=production) whatever this says. The reason always goes to the debug log
   * and the `socket.io-session-auth:handshake` diagnostics channel.
   * @default false
   */
  explain?: boolean;
  /**
   * Every this many milliseconds, each session with sockets on this node is read from the store
   * (one read per session), and sockets whose session is gone or whose user changed are ended with
   * `session:ended`. It bounds how long a socket can outlive a revocation whose broadcast a node
   * missed. `false` turns it off.
   * @default 30000 on an adapter that spans nodes (Redis, …), `false` on the in-memory adapter
   */
  revalidateIntervalMs?: number | false;
  /**
   * A store's change feed (`redisStoreEvents(…)`, or your own {@link StoreEventFeed}): a session
   * deleted, expired or evicted in the store ends its sockets on this node at once
   * (`session:ended`), whoever deleted it; revalidation becomes rare (`revalidateWithEventsMs`).
   * A feed runs once per server, and covers every session namespace of the server; a server given
   * several feeds waits for all of them to be up before revalidation becomes rare. See
   * docs/store-events.md.
   * @default undefined (no feed: revalidation alone, `revalidateIntervalMs`)
   */
  storeEvents?: StoreEventFeed;
  /**
   * While the server's store event feed is up, the full revalidation round runs only this often
   * (the safety net), instead of every `revalidateIntervalMs`. `false`: never while it is up. A
   * feed that is down or unavailable leaves `revalidateIntervalMs` in force.
   * @default 600000 (10 minutes)
   */
  revalidateWithEventsMs?: number | false;
}

/**
 * Makes a namespace session-aware: each socket sees `socket.request.session` and
 * `socket.request.sessionID`, and with `passport`, `socket.request.user`. The session is read from
 * the store at every namespace connect (one store read, one `deserializeUser`, shared by the
 * connects of one connection that overlap); a session that is gone (logged out, regenerated,
 * expired) is a fresh, empty one, not an error.
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
  const helper = 'sessionNamespace';
  const nsp = toNamespace(target, helper);
  const handshake = handshakeOptions(helper, nsp, session, options);
  // The handshake, in the order it runs (lib/handshake/handshake.ts): origin, session and user, tracking;
  // requireAuth's guard comes after; 'connection' admits the socket.
  useEverywhere(nsp, socketLifecycle, originStep(handshake));
  useEverywhere(nsp, socketLifecycle, sessionStep(handshake));
  useEverywhere(nsp, socketLifecycle, trackStep(handshake));
  layerLifecycle(nsp, handshake);
  probeSession(handshake.session, handshake.app, nsp.server.path());
  // This node hears its store's destroys before any socket comes (store-logouts.ts).
  watchStore(nsp.server, knownStore(handshake.session));
  return nsp;
}

/** sessionNamespace's options checked (a TypeError naming `helper`), with their defaults. */
export function handshakeOptions(
  helper: string,
  nsp: Namespace,
  session: unknown,
  options: SessionNamespaceOptions | undefined,
): HandshakeOptions {
  const sessionMiddleware = checkSession(helper, session);
  const {
    passport,
    timeoutMs = 10_000,
    app,
    onError,
    touchIntervalMs,
    autoSave = false,
    userData = defaultUserData,
    allowedOrigins,
    requireOrigin = false,
    revalidateIntervalMs,
    storeEvents,
    revalidateWithEventsMs = 600_000,
    explain = false,
  } = checkOptions(helper, options);
  checkTimeout(helper, timeoutMs);
  checkApp(helper, app);
  checkFunction(helper, 'options.onError', onError);
  if (revalidateIntervalMs !== false) {
    checkTimeout(helper, revalidateIntervalMs, 'options.revalidateIntervalMs');
  }
  if (revalidateWithEventsMs !== false) {
    checkTimeout(helper, revalidateWithEventsMs, 'options.revalidateWithEventsMs');
  }
  checkStoreEvents(helper, storeEvents);
  checkTimeout(helper, touchIntervalMs, 'options.touchIntervalMs');
  checkBoolean(helper, 'options.autoSave', autoSave);
  checkBoolean(helper, 'options.requireOrigin', requireOrigin);
  checkBoolean(helper, 'options.explain', explain);
  checkAllowedOrigins(helper, allowedOrigins);
  if (userData !== false) checkFunction(helper, 'options.userData', userData);
  if (passport !== undefined && !isAuthenticator(passport)) {
    throw new TypeError(`${helper}: options.passport must be a Passport authenticator`);
  }
  checkNotGuarded(helper, nsp);
  return {
    session: sessionMiddleware as HandshakeOptions['session'],
    passport,
    app: app ?? expressApp(helper, nsp.server),
    timeoutMs,
    onError,
    touchIntervalMs,
    autoSave,
    userData: userData === false ? undefined : userData,
    allowedOrigins,
    requireOrigin,
    revalidateIntervalMs,
    storeEvents,
    revalidateWithEventsMs,
    explain: explainAllowed(explain, helper),
  };
}

/** The session middleware, checked: a function, and not passport.session(). */
function checkSession(helper: string, session: unknown): unknown {
  if (typeof session !== 'function') {
    throw new TypeError(`${helper}: session must be the express-session middleware`);
  }
  const [sessionMiddleware] = checkMiddleware(helper, session);
  // passport.session() is a function named `authenticate`: a common slip in the first hour.
  if ((session as { name?: unknown }).name === 'authenticate') {
    throw new TypeError(
      `${helper}: session must be the session middleware (express-session or ` +
        'cookie-session), not passport.session(): pass passport as an option, ' +
        'sessionNamespace(nsp, sessionMiddleware, { passport })',
    );
  }
  return sessionMiddleware;
}

/** requireAuth must come after the session steps, on the namespace and its children. */
function checkNotGuarded(helper: string, nsp: Namespace): void {
  for (const guarded of [nsp, ...(childrenOf(nsp) ?? [])]) {
    if (isGuarded(guarded)) {
      throw new TypeError(
        `${helper}: call it before requireAuth on namespace ${guarded.name}: ` +
          'requireAuth would otherwise run before the session is read',
      );
    }
  }
}

/**
 * What every layered namespace gets around its handshake steps: admission, and the lifecycle. The
 * server's expiry heap is given what it calls at an expiry here, before any socket is tracked.
 */
export function layerLifecycle(nsp: Namespace, handshake: HandshakeOptions): void {
  const server = serverState(nsp.server);
  server.expiring = guardEvents;
  onConnectionEverywhere(nsp, socketLifecycle, admitStep(handshake));
  pruneEmptyChildren(nsp, socketLifecycle);
  markTracking(nsp);
  if (childrenOf(nsp)) {
    forEachChild(nsp, (child) => {
      markTracking(child);
      guardRecovery(child, server);
    });
  } else guardRecovery(nsp, server);
  listenForEnds(nsp.server);
  listenForRefreshes(nsp.server);
  listenForSessions(nsp.server);
  if (handshake.storeEvents) startStoreEvents(nsp.server, handshake.storeEvents);
  setupWarnings(nsp.server);
}
