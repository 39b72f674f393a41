import type { Session } from 'express-session';
import type { Namespace, Socket } from 'socket.io';
import {
  ERR_MIDDLEWARE_ERROR,
  ERR_SESSION_EXPIRED,
  ERR_SESSION_REVOKED,
  ERR_SESSION_ROTATED,
  ERR_UNAUTHORIZED,
  refusal,
  report,
} from './errors.js';
import { refuseEvent } from './event-refusal.js';
import {
  armExpiry,
  endSocket,
  endedWhilePending,
  cookieExpiry,
  crossNode,
  guardRecovery,
  isSessionRoom,
  liveSession,
  rememberExpiry,
  sendEnded,
  sessionHasEnded,
  setLive,
  track,
  type LiveSession,
  type SessionStoreLike,
} from './live-session.js';
import { revalidate } from './revalidate.js';
import { childrenOf, recoveryIdOf, runMiddleware } from './socket-io-internals.js';
import { autoSave, hashOf } from './session-writes.js';
import type { ErrorHook } from './types.js';

/** What sessionNamespace's lifecycle needs from its options. */
export interface LifecycleOptions {
  touchIntervalMs: number | undefined;
  autoSave: boolean;
  userData: ((user: Express.User) => unknown) | undefined;
  onError: ErrorHook | undefined;
  /** undefined: 30 s on an adapter that spans nodes, off on the in-memory one. */
  revalidateIntervalMs: number | false | undefined;
}

const DEFAULT_REVALIDATE_MS = 30_000;

function revalidation(socket: Socket, options: LifecycleOptions): number | false {
  const { revalidateIntervalMs } = options;
  if (revalidateIntervalMs !== undefined) return revalidateIntervalMs;
  return crossNode(socket.nsp.server) ? DEFAULT_REVALIDATE_MS : false;
}

/** The default `userData`: the user's usual identifying fields, nothing else. */
export function defaultUserData(user: Express.User): Record<string, unknown> {
  const summary: Record<string, unknown> = {};
  for (const key of ['id', 'username', 'name', 'displayName']) {
    const value = (user as unknown as Record<string, unknown>)[key];
    if (typeof value === 'string' || typeof value === 'number') summary[key] = value;
  }
  return summary;
}

const guarded = new WeakSet<Socket>();
const autoSaved = new WeakSet<Socket>();

function guardEvents(socket: Socket, options: LifecycleOptions): void {
  if (guarded.has(socket)) return;
  guarded.add(socket);
  socket.use(sessionGuard(socket, options));
}

let warnedNoStore = false;

/**
 * Namespace middleware that runs once the session is read: rooms for revocation, `socket.data.user`
 * for who's online, the per-event guard, autoSave. A session of a shape it does not know refuses
 * the socket (`ERR_MIDDLEWARE_ERROR`, 500) and goes to `onError`: it never throws.
 */
export function trackSession(options: LifecycleOptions) {
  return function trackSessionMiddleware(socket: Socket, next: (err?: Error) => void): void {
    try {
      startTracking(socket, options);
    } catch (error) {
      report(options.onError, error, socket);
      next(refusal(ERR_MIDDLEWARE_ERROR, 500, error));
      return;
    }
    next();
  };
}

function startTracking(socket: Socket, options: LifecycleOptions): void {
  const state = track(socket);
  const { user } = socket.request;
  if (user && options.userData) {
    try {
      (socket.data as Record<string, unknown>).user = options.userData(user);
    } catch (error) {
      report(options.onError, error, socket);
    }
  }
  if (!state) return;
  state.savedHash = hashOf(socket.request.session);
  if (options.autoSave && !autoSaved.has(socket)) {
    if (state.sessionID === undefined) {
      // cookie-session: the session lives in the cookie, which only an HTTP response can write.
      if (!warnedNoStore) {
        warnedNoStore = true;
        process.emitWarning(
          'sessionNamespace: autoSave needs a session kept in a store (express-session); this ' +
            'session lives in its cookie (cookie-session?), which a socket cannot write. ' +
            'Sessions of such sockets are not saved.',
          { code: 'SOCKET_IO_SESSION_AUTH_NO_STORE' },
        );
      }
    } else {
      autoSaved.add(socket);
      autoSave(socket, options.onError);
    }
  }
  // A per-event step costs every event of the socket: it is added only when there is
  // something to do per event (touching), or once the session's expiry has passed.
  if (options.touchIntervalMs !== undefined) guardEvents(socket, options);
  else
    state.onExpiring = () => {
      guardEvents(socket, options);
    };
}

// Events wait for a recovered socket's check, and are refused once its session has ended. With
// touchIntervalMs, an active socket touches its session at most once per interval.
function sessionGuard(socket: Socket, options: LifecycleOptions) {
  return function sessionEventGuard(
    event: Parameters<Parameters<Socket['use']>[0]>[0],
    next: (err?: Error) => void,
  ): void {
    const state = liveSession(socket);
    if (!state) {
      next();
      return;
    }
    if (state.pending) {
      void state.pending.then(() => {
        sessionEventGuard(event, next);
      });
      return;
    }
    if (sessionHasEnded(socket)) {
      refuseEvent(event, ERR_UNAUTHORIZED, 401);
      return;
    }
    if (options.touchIntervalMs !== undefined) touch(socket, state, options);
    next();
  };
}

function touch(socket: Socket, state: LiveSession, options: LifecycleOptions): void {
  const now = Date.now();
  if (now - state.lastTouch < (options.touchIntervalMs ?? 0)) return;
  const { sessionStore: store } = socket.request as { sessionStore?: SessionStoreLike };
  const session = socket.request.session as Session | undefined;
  if (!store?.touch || !session || state.sessionID === undefined) return;
  state.lastTouch = now;
  session.touch();
  armExpiry(socket, state, cookieExpiry(socket.request));
  store.touch(state.sessionID, session, (err?: unknown) => {
    if (err) report(options.onError, err, socket);
  });
}

/**
 * The namespace's `connection` listener: arms the expiry timer of a tracked socket, and checks a
 * socket that connectionStateRecovery restored without running the namespace middleware.
 */
export function watchSessions(nsp: Namespace, options: LifecycleOptions) {
  guardRecoveryOf(nsp);
  return function watchSession(socket: Socket): void {
    try {
      watch(socket, options);
    } catch (error) {
      // A socket whose session cannot be kept true is not left connected.
      report(options.onError, error, socket);
      socket.disconnect();
    }
  };
}

function watch(socket: Socket, options: LifecycleOptions): void {
  const state = liveSession(socket);
  if (!state) {
    if (socket.recovered) recheck(socket, options);
    return;
  }
  // Revoked while its handshake was under way.
  const ended = state.ended ?? endedWhilePending(socket, state);
  if (ended) {
    state.ended = ended;
    sendEnded(socket, ended);
    return;
  }
  armExpiry(socket, state, cookieExpiry(socket.request));
  const interval = revalidation(socket, options);
  const { sessionID } = state;
  if (interval !== false && sessionID !== undefined) {
    revalidate(socket, sessionID, interval);
  }
  socket.once('disconnect', () => {
    clearTimeout(state.timer);
    state.timer = undefined;
    rememberExpiry(socket.nsp.server, recoveryIdOf(socket), state.expires);
  });
}

function guardRecoveryOf(nsp: Namespace): void {
  const children = childrenOf(nsp);
  if (!children) {
    guardRecovery(nsp);
    return;
  }
  // A parent (dynamic) namespace: its children are created on demand, each with its own adapter.
  for (const child of children) guardRecovery(child);
  nsp.server.sockets.on('new_namespace', (child: Namespace) => {
    if (children.has(child)) guardRecovery(child);
  });
}

// A recovered socket sits on a new connection whose request carries nothing: run the namespace's
// middleware on it again (session, user, requireAuth), holding its events meanwhile.
function recheck(socket: Socket, options: LifecycleOptions): void {
  const previous = [...socket.rooms].find(isSessionRoom);
  if (previous === undefined) return;
  let release = (): void => undefined;
  const pending = new Promise<void>((resolve) => {
    release = resolve;
  });
  const placeholder: LiveSession = {
    sessionID: previous.slice('session-auth:session:'.length),
    userKey: undefined,
    expires: undefined,
    timer: undefined,
    ended: undefined,
    lastTouch: 0,
    pending,
    savedHash: undefined,
    since: Date.now(),
  };
  setLive(socket, placeholder);
  guardEvents(socket, options);
  if (options.autoSave && !autoSaved.has(socket)) {
    autoSaved.add(socket);
    autoSave(socket, options.onError);
  }
  runMiddleware(socket.nsp, socket, (err) => {
    const state = liveSession(socket);
    if (err || !state || state === placeholder) {
      endSocket(socket, ERR_SESSION_REVOKED);
    } else if (state.sessionID !== placeholder.sessionID) {
      endSocket(socket, ERR_SESSION_ROTATED);
    } else {
      const expires = cookieExpiry(socket.request);
      if (expires !== undefined && expires <= Date.now()) {
        endSocket(socket, ERR_SESSION_EXPIRED);
      } else {
        armExpiry(socket, state, expires);
        socket.once('disconnect', () => {
          clearTimeout(state.timer);
          rememberExpiry(socket.nsp.server, recoveryIdOf(socket), state.expires);
        });
      }
    }
    placeholder.pending = undefined;
    release();
  });
}
