// One namespace connect on a session namespace, in the order it runs (sessionNamespace puts these
// steps on the namespace; requireAuth's guard comes after them):
//   1. origin   a browser page of another origin is refused before anything is read
//   2. session  the session middleware reads the session (one store read), then passport.session()
//               the user (one deserializeUser); connects of one connection that overlap share them
//   3. track    the socket's record: its session and user, socket.data.user, autoSave
//   4. admit    on 'connection': ended while in its handshake? else its expiry and revalidation
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Session } from 'express-session';
import type { Socket } from 'socket.io';
import { type Chain, type Middleware, endedRefusal, runChain } from '../core/chain.js';
import { initialCookieEnd } from '../live/cookie-refresh.js';
import {
  ERR_MIDDLEWARE_ERROR,
  ERR_MIDDLEWARE_TIMEOUT,
  ERR_ORIGIN_FORBIDDEN,
  ERR_SESSION_UNAVAILABLE,
  SessionAuthError,
  refusal,
  report,
  toError,
} from '../core/errors.js';
import { REASONS, publish, warnOnce } from '../core/diagnostics.js';
import { guardEvents, installAutoSave } from '../live/events.js';
import {
  knowStore,
  reasonsWanted,
  rememberWhy,
  sessionCookieName,
  storeIsDown,
  whyNoUser,
} from './explain.js';
import { armExpiry, cookieExpiry, disarmExpiry } from '../live/expiry.js';
import { recheckRecovered, rememberExpiry, rememberIdentity } from '../live/recovery.js';
import { connectionRequestOf, cookieIDOf, requestOf, watchCookieID } from '../core/request.js';
import type { SocketLifecycle } from '../socket-io/namespace-layers.js';
import { sendDisconnectPacket } from '../socket-io/socket-io-internals.js';
import { ReadResponse, endedMessage } from '../core/response.js';
import { sendEnded } from '../live/revocation.js';
import { revalidate, stopRevalidating } from '../live/revalidation.js';
import { sessionWarnings } from './setup-warnings.js';
import {
  type HandshakeOptions,
  type SharedRead,
  serverState,
  socketState,
  trackSocket,
  unindex,
  whyOf,
} from '../core/state.js';
import { giveUserData, sessionUserKey, sessionUserOf } from '../core/user.js';
import { debug } from '../core/debug.js';
import type { ExpressApp, SessionRequest } from '../core/types.js';
import { hashOf } from '../live/writes.js';

type NamespaceMiddleware = (socket: Socket, next: (err?: Error) => void) => void;

// ---------------------------------------------------------------------------------------------
// 1. Origin: cross-site WebSocket hijacking. Browsers send the victim's cookies with a WebSocket
// opened by any site, and Socket.IO's `cors` option covers long-polling only.
// ---------------------------------------------------------------------------------------------

/** The canonical form of an origin (`https://app.example`), or undefined if it is not one. */
export function canonicalOrigin(value: string): string | undefined {
  try {
    const { origin } = new URL(value);
    return origin === 'null' ? undefined : origin;
  } catch {
    return undefined;
  }
}

function firstValue(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  return value?.split(',')[0]?.trim() || undefined;
}

// The origin a same-origin page would have: the request's own scheme and Host, or what a trusted
// proxy says they were (the app's `trust proxy` setting, as Express's req.protocol and req.host).
function ownOrigin(req: IncomingMessage, app: ExpressApp): string | undefined {
  const trust = app.get('trust proxy fn');
  const trusted =
    typeof trust === 'function' &&
    (trust as (address: string, hop: number) => boolean)(req.socket.remoteAddress ?? '', 0);
  const proto =
    (trusted && firstValue(req.headers['x-forwarded-proto'])) ||
    ((req.socket as Partial<TLSSocket>).encrypted ? 'https' : 'http');
  const host = (trusted && firstValue(req.headers['x-forwarded-host'])) || req.headers.host;
  return host === undefined ? undefined : canonicalOrigin(`${proto}://${host}`);
}

export function originStep(options: HandshakeOptions): NamespaceMiddleware {
  const { allowedOrigins, requireOrigin, app } = options;
  const listed =
    typeof allowedOrigins === 'function' || allowedOrigins === undefined
      ? undefined
      : new Set(allowedOrigins.map((o) => canonicalOrigin(o)));
  return function checkOriginMiddleware(socket, next) {
    const req = socket.request;
    const header = req.headers.origin;
    if (header === undefined) {
      // Browsers always send Origin with a WebSocket and with cross-origin requests.
      next(requireOrigin ? refusal(ERR_ORIGIN_FORBIDDEN, 403) : undefined);
      return;
    }
    const origin = canonicalOrigin(header);
    let allowed = false;
    if (origin !== undefined) {
      if (typeof allowedOrigins === 'function') {
        try {
          // Only a literal true allows, as with requireAuth's authorize.
          allowed = (allowedOrigins(origin, req) as unknown) === true;
        } catch {
          allowed = false;
        }
      } else if (listed) {
        allowed = listed.has(origin);
      } else {
        allowed = origin === ownOrigin(req, app);
      }
    }
    if (allowed) {
      next();
      return;
    }
    const refused = refusal(ERR_ORIGIN_FORBIDDEN, 403);
    if (reasonsWanted(options.explain)) {
      rememberWhy(socket, 'origin-not-allowed', options.explain);
      debug(
        'nsp %s socket %s: Origin %s refused; allowed: %s',
        socket.nsp.name,
        socket.id,
        header,
        listed
          ? [...listed].join(', ')
          : typeof allowedOrigins === 'function'
            ? 'allowedOrigins()'
            : ownOrigin(req, app),
      );
      if (options.explain) refused.data.reason = 'origin-not-allowed';
    }
    next(refused);
  };
}

// ---------------------------------------------------------------------------------------------
// 2. Session and user: the app's session middleware, then passport.session(), on the socket's
// own request, with a small response. Store failures are named where they happen.
// ---------------------------------------------------------------------------------------------

export function sessionStep(options: HandshakeOptions): NamespaceMiddleware {
  const { session, passport, app, timeoutMs, onError } = options;
  // The store's part: an error or a disconnected store is ERR_SESSION_UNAVAILABLE, at the source.
  const readStore: Middleware = function readSessionStore(req, res, next) {
    const read = res as ReadResponse;
    // Whether express-session's signature check took an ID from the cookie: for the reason.
    const watch = reasonsWanted(options.explain);
    if (watch) watchCookieID(req as IncomingMessage);
    return session(req, res, (err?: unknown) => {
      read.storeAnswered = true;
      if (watch) read.cookieID = cookieIDOf(req as IncomingMessage);
      const { session: value, sessionStore: store } = req as SessionRequest;
      if (err) {
        storeFailed(read, 'error', err);
        next(refusal(ERR_SESSION_UNAVAILABLE, 503, toError(err)));
        return;
      }
      if (store !== undefined) knowStore(session, store);
      if (value === undefined) {
        // express-session gives no session when its store has disconnected, and when the
        // cookie's path does not cover the request's: only the first is the store's failure.
        if (storeIsDown(session)) {
          const error = new Error('the session store is disconnected');
          storeFailed(read, 'disconnected', error);
          next(refusal(ERR_SESSION_UNAVAILABLE, 503, error));
          return;
        }
        read.skipped = true;
        warnOnce(
          'SOCKET_IO_SESSION_AUTH_SESSION_SKIPPED',
          `sessionNamespace: the session middleware set no session on a handshake of ${
            (req as IncomingMessage).url?.split('?')[0] ?? 'the Socket.IO path'
          }: ${REASONS['session-skipped']}. Sockets then have no session and no user.`,
        );
        // No session: nothing more to read (passport.session() would fail without one).
        next('router');
        return;
      }
      next();
    });
  };
  // passport.initialize() is left out: since Passport 0.6, passport.session() sets up req.login,
  // req.logout and isAuthenticated itself.
  const passportSession = passport?.session() as Middleware | undefined;
  const middleware: Middleware[] = [readStore];
  if (passportSession) {
    middleware.push(function markPassport(req, res, next) {
      const read = res as ReadResponse;
      read.keysBeforePassport = Reflect.ownKeys(req as object);
      read.hadUser = sessionUserOf((req as SessionRequest).session) !== undefined;
      next();
    }, passportSession);
  }
  const chain: Chain<ReadResponse> = {
    middleware,
    timeoutMs,
    onError,
    express: false,
    // A store read that never answers is the store's failure; a deserializeUser that hangs is not.
    timeout: (index, read) => {
      if (index !== 0 || read.storeAnswered) return refusal(ERR_MIDDLEWARE_TIMEOUT, 503);
      storeFailed(read, 'timeout', undefined);
      return refusal(ERR_SESSION_UNAVAILABLE, 503);
    },
  };
  const { explain } = options;

  // Why a socket that read its session has no user: for the log, the diagnostics and `explain`.
  const explained = (
    socket: Socket,
    req: SessionRequest,
    res: ReadResponse,
    next: (err?: Error) => void,
  ): void => {
    if ((req as { user?: unknown }).user !== undefined || !reasonsWanted(explain)) {
      next();
      return;
    }
    if (res.skipped) {
      rememberWhy(socket, 'session-skipped', explain);
      next();
      return;
    }
    whyNoUser(
      req as Parameters<typeof whyNoUser>[0],
      {
        stored: storedSessionID(req) !== undefined,
        hadUser: res.hadUser,
        passport: !!passport,
        cookie: { taken: res.cookieID, name: sessionCookieName(session) },
      },
      (reason) => {
        rememberWhy(socket, reason, explain);
        next();
      },
    );
  };

  const read = (
    socket: Socket,
    req: SessionRequest,
    done: (err: SessionAuthError | undefined, res: ReadResponse) => void,
  ): void => {
    runChain(
      chain,
      socket,
      req,
      (ended) => {
        const res = new ReadResponse((response) => {
          ended(
            endedRefusal(
              response.statusCode,
              endedMessage(response, ''),
              response.getHeader('location'),
            ),
          );
        });
        res.socket = socket;
        return res;
      },
      done,
    );
  };

  return function readSessionMiddleware(socket, next) {
    const req = requestOf(socket, app) as SessionRequest;
    // Engine-level middleware (io.engine.use(session)) read the session already: a second read.
    const connectionRequest = connectionRequestOf(req as unknown as IncomingMessage);
    if ((connectionRequest as { session?: unknown }).session !== undefined) {
      warnOnce(
        'SOCKET_IO_SESSION_AUTH_DOUBLE_READ',
        'sessionNamespace: the session is also read by engine-level middleware ' +
          '(io.engine.use(session)): each connection reads the store twice. sessionNamespace ' +
          'reads it for its namespaces: the engine-level one can go.',
      );
    }
    const { reads } = serverState(socket.nsp.server);
    const connection = socket.conn;
    const shared = reads.get(connection);
    if (
      shared &&
      shared.session === session &&
      shared.passport === passport &&
      shared.app === app
    ) {
      // Another namespace of this connection is reading the same session right now.
      shared.waiting.push((leader) => {
        if (leader && copySession(leader.req, req, leader.res.keysBeforePassport)) {
          explained(socket, req, leader.res, next);
        } else {
          read(socket, req, (err, res) => {
            if (err) next(err);
            else explained(socket, req, res, next);
          });
        }
      });
      return;
    }
    const own: SharedRead = { session, passport, app, waiting: [] };
    reads.set(connection, own);
    read(socket, req, (err, res) => {
      if (reads.get(connection) === own) reads.delete(connection);
      for (const follow of own.waiting) follow(err || res.skipped ? undefined : { req, res });
      if (err) next(err);
      else explained(socket, req, res, next);
    });
  };
}

/** A store failure during a read, for the diagnostics (the refusal itself is made by the caller). */
function storeFailed(
  res: ReadResponse,
  kind: 'error' | 'timeout' | 'disconnected',
  error: unknown,
): void {
  const { socket } = res;
  if (!socket) return;
  publish('storeError', () => ({ namespace: socket.nsp.name, socketId: socket.id, kind, error }));
}

/**
 * Gives a follower the leader's session, as express-session would have loaded it (its own
 * Session, from the same stored data), and the leader's user and Passport helpers. Only for a
 * session the store returned: a stranger's made-up session is not shared.
 */
function copySession(
  leader: SessionRequest,
  follower: SessionRequest,
  passportKeys: readonly PropertyKey[],
): boolean {
  const { sessionStore: store, sessionID, session } = leader;
  if (
    typeof sessionID !== 'string' ||
    typeof store?.createSession !== 'function' ||
    session === null ||
    typeof session !== 'object' ||
    storedSessionID(leader) === undefined
  ) {
    return false;
  }
  follower.sessionStore = store;
  follower.sessionID = sessionID;
  store.createSession(follower, JSON.parse(JSON.stringify(session)) as object);
  const from = leader as unknown as Record<PropertyKey, unknown>;
  const to = follower as unknown as Record<PropertyKey, unknown>;
  const before = new Set(passportKeys);
  for (const key of Reflect.ownKeys(leader)) {
    if (!before.has(key) && key !== 'session') to[key] = from[key];
  }
  return true;
}

/**
 * The session ID, when it names a session the store has seen: express-session keeps the ID of the
 * cookie only when the store returned its session, and makes up a new one otherwise (a stranger, a
 * session gone from the store). A made-up ID is in no cookie the client sent.
 */
export function storedSessionID(req: SessionRequest): string | undefined {
  const { sessionID, sessionStore } = req;
  if (typeof sessionID !== 'string' || sessionID === '' || sessionStore === undefined) {
    return undefined;
  }
  const cookie = req.headers.cookie ?? '';
  return cookie.includes(sessionID) || cookie.includes(encodeURIComponent(sessionID))
    ? sessionID
    : undefined;
}

// ---------------------------------------------------------------------------------------------
// 3. Track: the socket's record, indexed by session and user, so that a revocation finds it even
// before it has connected.
// ---------------------------------------------------------------------------------------------

export function trackStep(options: HandshakeOptions): NamespaceMiddleware {
  return function trackSessionMiddleware(socket, next) {
    try {
      track(socket, options);
    } catch (error) {
      // A session of a shape this package does not know: refused, never a crash.
      report(options.onError, error, socket);
      next(refusal(ERR_MIDDLEWARE_ERROR, 500, error));
      return;
    }
    next();
  };
}

/**
 * A session is tracked when the store has seen it (express-session), or when it holds a Passport
 * user (any session middleware: cookie-session has no session ID, only its user).
 */
function track(socket: Socket, options: HandshakeOptions): void {
  const req = socket.request as SessionRequest;
  giveUserData(socket, options, socket.request.user);
  const session = req.session;
  if (session === null || typeof session !== 'object') return;
  const sessionID = storedSessionID(req);
  const userKey = sessionUserKey(session);
  if (sessionID === undefined && userKey === undefined) return;
  // express-session's per-request save/reload wrappers hold the response and its header hooks for
  // as long as the session lives: the prototype's methods do the same work. (Replaced, not
  // deleted: a delete would make the session a slower, larger object.)
  const { save, reload } = Object.getPrototypeOf(session) as Partial<Session>;
  if (typeof save === 'function' && typeof reload === 'function') {
    Object.assign(session, { save, reload });
  }
  sessionWarnings(socket, session, req.sessionStore, options.app, !!options.passport);
  const state = trackSocket(socket, options, sessionID, userKey);
  rememberIdentity(state);
  if (options.autoSave) {
    if (sessionID === undefined) {
      // cookie-session: the session lives in the cookie, which only an HTTP response can write.
      warnOnce(
        'SOCKET_IO_SESSION_AUTH_NO_STORE',
        'sessionNamespace: autoSave needs a session kept in a store (express-session); this ' +
          'session lives in its cookie (cookie-session?), which a socket cannot write. ' +
          'Sessions of such sockets are not saved.',
      );
    } else {
      state.savedHash = hashOf(session);
      installAutoSave(state);
    }
  }
  // A per-event step costs every event of the socket: only when there is something to do per
  // event (touching); else it comes once the session's expiry has passed.
  if (options.touchIntervalMs !== undefined) guardEvents(state);
}

// ---------------------------------------------------------------------------------------------
// 4. Admit: on 'connection'. A socket whose session ended during its handshake is told and
// disconnected; the others get their expiry and, on several nodes, revalidation.
// ---------------------------------------------------------------------------------------------

export function admitStep(options: HandshakeOptions): (socket: Socket) => void {
  return function admitSession(socket) {
    try {
      const state = socketState(socket);
      if (!state) {
        if (socket.recovered) recheckRecovered(socket, options);
        return;
      }
      state.connected = true;
      if (state.ended) {
        sendEnded(socket, state.ended);
        return;
      }
      const expires = state.token
        ? state.token.expires
        : cookieExpiry(socket.request, state.server.clock.now());
      armExpiry(state, expires);
      // Touching sockets keep a stored session alive: they track the browser cookie's end too.
      if (options.touchIntervalMs !== undefined && state.sessionID !== undefined && !state.token) {
        state.cookieEnds = initialCookieEnd(expires, state);
      }
      if (state.sessionID !== undefined) revalidate(state);
    } catch (error) {
      // A socket whose session cannot be kept true is not left connected.
      report(options.onError, error, socket);
      socket.disconnect();
    }
  };
}

// ---------------------------------------------------------------------------------------------
// 5. Leave: the socket disconnected, or its handshake ended without connecting (refused, or its
// client left). Nothing of it stays: not in the indexes, the expiry heap or revalidation.
// ---------------------------------------------------------------------------------------------

export function leave(socket: Socket): void {
  const state = socketState(socket);
  if (!state) return;
  unindex(state);
  disarmExpiry(state);
  stopRevalidating(state);
  if (state.connected) rememberExpiry(state);
}

/**
 * Every handshake of a layered namespace, once it has ended: the `handshake` channel; and a
 * Socket.IO 2 client refused by the package is told to stop.
 */
export function handshakeSettled(socket: Socket, err: Error | undefined, startedAt: number): void {
  // Socket.IO discards, unanswered, a socket whose connection is no longer open when its
  // middleware finishes: the client left (closed its manager or transport, or called
  // socket.disconnect() on the connection's only socket). The error a waiting step gave up with
  // is nobody's refusal.
  const left = !socket.connected && socket.conn.readyState !== 'open';
  if (left) debug('nsp %s socket %s: the client left mid-handshake', socket.nsp.name, socket.id);
  else if (err instanceof SessionAuthError && !socket.connected) stopOldClient(socket);
  publish('handshake', () => {
    const data = (err as Partial<SessionAuthError> | undefined)?.data;
    const refused = !socket.connected && !left && err !== undefined;
    return {
      namespace: socket.nsp.name,
      socketId: socket.id,
      outcome: socket.connected ? 'accepted' : refused ? 'refused' : 'left',
      code: refused ? (data?.code ?? err.message) : undefined,
      status: refused ? data?.status : undefined,
      reason: left ? undefined : whyOf(socket)?.reason,
      durationMs: performance.now() - startedAt,
      transport: socket.conn.transport.name,
    };
  });
}

/**
 * What every namespace the package layers (its session steps, requireAuth's guard) is given to call
 * about its sockets: leave and settle above.
 */
export const socketLifecycle: SocketLifecycle = Object.freeze({
  left: leave,
  settled: handshakeSettled,
});

/**
 * A Socket.IO 2 client (protocol 3, `allowEIO3`) keeps a refused socket and asks again each time
 * its connection drops: every `connectTimeout` (45 s) when no namespace of it joined. A DISCONNECT
 * packet for the refused namespace, after the refusal Socket.IO has sent, makes it drop that socket
 * as a v4 client does (one refusal, no retry). Closing the connection instead only makes it return
 * sooner (its reconnection delay, about 1 s). Later clients (protocol 4, v3 and v4) are left alone:
 * v4 already stops, and a v3 client cannot be told from a v4 one.
 */
function stopOldClient(socket: Socket): void {
  if ((socket.conn as { protocol?: number }).protocol === 3) sendDisconnectPacket(socket);
}
