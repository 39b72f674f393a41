import type { Session } from 'express-session';
import type { Socket } from 'socket.io';
import { report, toError } from './errors.js';
import { liveSession } from './live-session.js';
import type { ErrorHook } from './types.js';

// Writes of one session, from any of its sockets, run one after another: the tail of each
// session's queue, dropped once it has drained.
const queues = new Map<string, Promise<void>>();

export function serialise(sessionID: string, write: () => Promise<void>): Promise<void> {
  const previous = queues.get(sessionID) ?? Promise.resolve();
  const next = previous.then(write, write);
  const tail = next.then(
    () => undefined,
    () => undefined,
  );
  queues.set(sessionID, tail);
  void tail.then(() => {
    if (queues.get(sessionID) === tail) queues.delete(sessionID);
  });
  return next;
}

/** What express-session compares to decide a session changed: everything but the cookie. */
export function hashOf(session: Session): string {
  const { cookie: _cookie, ...data } = session as Session & Record<string, unknown>;
  return JSON.stringify(data);
}

export function sessionOf(socket: Socket, helper: string): Session {
  const { session, sessionStore } = socket.request as { session?: unknown; sessionStore?: unknown };
  if (session === null || typeof session !== 'object') {
    throw new TypeError(
      `${helper}: the socket has no session; set its namespace up with sessionNamespace`,
    );
  }
  const { save, reload } = session as Partial<Session>;
  if (sessionStore === undefined || typeof save !== 'function' || typeof reload !== 'function') {
    throw new TypeError(
      `${helper}: the socket's session is not kept in a store (cookie-session keeps it in the ` +
        'cookie, which only an HTTP response can write); use express-session to read and write ' +
        'sessions from sockets',
    );
  }
  return session as Session;
}

/** Rejects writes from a socket whose session has ended: they would bring a logout back. */
export function checkNotEnded(socket: Socket, helper: string): void {
  const ended = liveSession(socket)?.ended;
  if (ended) {
    throw new Error(`${helper}: the socket's session has ended (${ended}); nothing was written`);
  }
}

export function save(socket: Socket, session: Session, helper = 'saveSession'): Promise<void> {
  const state = liveSession(socket);
  return serialise(
    session.id,
    () =>
      new Promise<void>((resolve, reject) => {
        // Checked when the write's turn comes, not when it was asked for.
        checkNotEnded(socket, helper);
        const hash = hashOf(session);
        session.save((err?: unknown) => {
          if (err) {
            reject(toError(err));
            return;
          }
          if (state) state.savedHash = hash;
          resolve();
        });
      }),
  );
}

/** Saves the socket's session if an event handler changed it; errors go to `onError`. */
function saveIfChanged(socket: Socket, onError: ErrorHook | undefined): Promise<void> {
  const state = liveSession(socket);
  const session = (socket.request as { session?: Session }).session;
  if (!state || !session || state.ended) return Promise.resolve();
  const hash = hashOf(session);
  // Compared with what was last saved or is already queued to be: one change, one write.
  if (hash === (state.queuedHash ?? state.savedHash)) return Promise.resolve();
  state.queuedHash = hash;
  return save(socket, session, 'autoSave')
    .catch((error: unknown) => {
      // Failed: the next handler's change is written again.
      state.savedHash = undefined;
      if (!state.ended) report(onError, error, socket);
    })
    .finally(() => {
      if (state.queuedHash === hash) state.queuedHash = undefined;
    });
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

/**
 * autoSave: wraps the event listeners the app adds to this socket, catch-all ones (`onAny`,
 * `prependAny`) included, so that a session changed by a handler is saved after it is done: when
 * it returns, when its promise settles, and before its ack reaches the client.
 */
export function autoSave(socket: Socket, onError: ErrorHook | undefined): void {
  const done = (): Promise<void> => saveIfChanged(socket, onError);
  const target = socket as unknown as Record<string, (...args: never[]) => Socket>;
  const replace = (method: string, make: (original: (...args: never[]) => Socket) => unknown) => {
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
  // Catch-all listeners get (event, ...args, ack?); offAny(listener) must still find them.
  const anyWrappers = new WeakMap<Listener, Listener>();
  for (const method of ['onAny', 'prependAny']) {
    replace(
      method,
      (original) =>
        function addAutoSavedAnyListener(this: Socket, listener: Listener) {
          let wrapped = anyWrappers.get(listener);
          if (!wrapped) {
            wrapped = savingAfter(listener, done);
            anyWrappers.set(listener, wrapped);
          }
          return (original as (l: Listener) => Socket).call(this, wrapped);
        },
    );
  }
  replace(
    'offAny',
    (original) =>
      function removeAutoSavedAnyListener(this: Socket, listener?: Listener) {
        const off = original as (l?: Listener) => Socket;
        return listener === undefined
          ? off.call(this)
          : off.call(this, anyWrappers.get(listener) ?? listener);
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
