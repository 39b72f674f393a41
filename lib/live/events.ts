// What happens to each event of a tracked socket, and only when there is something to do: a
// per-event guard (wait for a recovered socket's check, refuse once the session has ended, touch
// the session), and autoSave around the app's handlers. requireAuth's authorizeEvent is its own.
import type { Session } from 'express-session';
import type { Event, Socket } from 'socket.io';
import { warnIfCookieEnding } from './cookie-refresh.js';
import { publish } from '../diagnostics/diagnostics.js';
import { ERR_UNAUTHORIZED, type SessionAuthError, refusal, report } from '../core/errors.js';
import { armExpiry, cookieExpiry } from './expiry.js';
import { socketState, type SocketState } from '../core/state.js';
import { saveIfChanged } from './writes.js';
import type { SessionStoreLike } from '../core/types.js';

/** What an event's ack receives when the event is refused. */
export interface EventRefusal {
  error: {
    message: string;
    code: string;
    status: number;
    /** `ERR_RATE_LIMITED` (rateLimit): in how many milliseconds the event can go through. */
    retryAfterMs?: number;
  };
}

/**
 * What an ack receives for a refusal (a {@link SessionAuthError}, or the `session:ended` payload of
 * a socket that ends): the one shape of every error the package answers an ack with.
 */
export function ackError(refused: {
  message: string;
  data: { code: string; status: number; retryAfterMs?: number };
}): EventRefusal {
  const { code, status, retryAfterMs } = refused.data;
  const error = { message: refused.message, code, status };
  return { error: retryAfterMs === undefined ? error : { ...error, retryAfterMs } };
}

/**
 * Refuses an event: it never reaches its handlers, and when the client asked for an ack (the last
 * argument is a function), the ack is called with one argument, `{ error: { message, code,
 * status } }`.
 */
export function refuseEvent(
  socket: Socket,
  event: Event,
  // Its message and data only: a refusal made per event (a rate limit's) need not be an Error.
  refused: Pick<SessionAuthError, 'message' | 'data'>,
): void {
  const { code, status } = refused.data;
  publish('eventRefused', () => ({
    namespace: socket.nsp.name,
    socketId: socket.id,
    event: event[0],
    code,
    status,
  }));
  const ack = event[event.length - 1] as unknown;
  if (typeof ack === 'function') (ack as (reply: EventRefusal) => void)(ackError(refused));
}

/** Whether the socket's session has ended, or passed its expiry while the store is asked. */
export function sessionHasEnded(state: SocketState | undefined): boolean {
  if (!state) return false;
  return (
    state.ended !== undefined ||
    (state.expires !== undefined && state.expires <= state.server.clock.now())
  );
}

/** Adds the socket's per-event guard, once. */
export function guardEvents(state: SocketState): void {
  if (state.eventGuard) return;
  state.eventGuard = true;
  const { socket } = state;
  socket.use(function sessionEventGuard(event, next) {
    // A recovered socket's record is replaced once it has been checked again.
    const current = socketState(socket) ?? state;
    if (current.recheck) {
      void current.recheck.then(() => {
        sessionEventGuard(event, next);
      });
      return;
    }
    if (sessionHasEnded(current)) {
      refuseEvent(socket, event, refusal(ERR_UNAUTHORIZED, 401));
      return;
    }
    if (current.options.touchIntervalMs !== undefined) touch(current);
    next();
  });
}

// With touchIntervalMs, an active socket touches its session at most once per interval, so a
// rolling session stays alive while the user is active on the socket alone.
function touch(state: SocketState): void {
  const { options } = state;
  const now = state.server.clock.now();
  if (now - state.lastTouch < (options.touchIntervalMs ?? 0)) return;
  const { socket, sessionID } = state;
  const { sessionStore: store } = socket.request as { sessionStore?: SessionStoreLike };
  const session = socket.request.session as Session | undefined;
  if (!store?.touch || !session || sessionID === undefined) return;
  state.lastTouch = now;
  session.touch();
  armExpiry(state, cookieExpiry(socket.request, now));
  store.touch(sessionID, session, (err?: unknown) => {
    if (err) report(options.onError, err, socket);
  });
  // The store's expiry moved; the browser's cookie did not: near its end, the client is told.
  warnIfCookieEnding(state, session.cookie.originalMaxAge, now);
}

const reserved = new Set([
  'connect',
  'connect_error',
  'disconnect',
  'disconnecting',
  'error',
  'newListener',
  'removeListener',
]);
type Listener = (...args: unknown[]) => unknown;
type Method = (...args: never[]) => Socket;

/**
 * autoSave: wraps the event listeners the app adds to this socket, catch-all ones (`onAny`,
 * `prependAny`) included, so that a session changed by a handler is saved after it is done: when
 * it returns, when its promise settles, and before its ack reaches the client.
 */
export function installAutoSave(state: SocketState): void {
  if (state.autoSave) return;
  state.autoSave = true;
  const { socket } = state;
  const done = (): Promise<void> => saveIfChanged(state);
  const target = socket as unknown as Record<string, Method>;
  const replace = (method: string, make: (original: Method) => unknown): void => {
    const original = target[method];
    if (!original) return;
    Object.defineProperty(socket, method, {
      configurable: true,
      writable: true,
      value: make(original),
    });
  };
  for (const method of ['on', 'addListener', 'once', 'prependListener', 'prependOnceListener']) {
    replace(
      method,
      (original) =>
        function addAutoSavedListener(this: Socket, event: string | symbol, listener: Listener) {
          const wrapped =
            typeof event !== 'string' || reserved.has(event)
              ? listener
              : // EventEmitter's removeListener matches `.listener`: socket.off(event, listener) works.
                Object.assign(savingAfter(listener, done), { listener });
          return (original as (e: string | symbol, l: Listener) => Socket).call(
            this,
            event,
            wrapped,
          );
        },
    );
  }
  // Catch-all listeners get (event, ...args, ack?). Each wrapper keeps its listener as
  // `.listener`, as EventEmitter's own wrappers do: offAny(listener) finds it among the socket's
  // catch-all listeners, with nothing kept beside them.
  for (const method of ['onAny', 'prependAny']) {
    replace(
      method,
      (original) =>
        function addAutoSavedAnyListener(this: Socket, listener: Listener) {
          const wrapped = Object.assign(savingAfter(listener, done), { listener });
          return (original as (l: Listener) => Socket).call(this, wrapped);
        },
    );
  }
  replace(
    'offAny',
    (original) =>
      function removeAutoSavedAnyListener(this: Socket, listener?: Listener) {
        const off = original as (l?: Listener) => Socket;
        if (listener === undefined) return off.call(this);
        const wrapped = this.listenersAny().find(
          (any) => any === listener || (any as { listener?: unknown }).listener === listener,
        );
        return off.call(this, (wrapped as Listener | undefined) ?? listener);
      },
  );
}

/** `listener`, then `done()` once it has returned or settled, and before its ack is answered. */
function savingAfter(listener: Listener, done: () => Promise<void>): Listener {
  return function autoSavedListener(this: unknown, ...args: unknown[]): unknown {
    const ack = args[args.length - 1];
    if (typeof ack === 'function') {
      args[args.length - 1] = (...reply: unknown[]) => {
        void done().then(() => (ack as Listener)(...reply));
      };
    }
    const result = listener.apply(this, args);
    if (typeof (result as PromiseLike<unknown> | null)?.then === 'function') {
      (result as PromiseLike<unknown>).then(done, done);
    } else {
      void done();
    }
    return result;
  };
}
