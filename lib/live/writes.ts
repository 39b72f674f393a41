// Reading and writing a socket's session from event handlers (reloadSession, saveSession,
// autoSave): the store operations of one session, from this node, run one after another, and none
// runs once the session has ended, so a handler still running at logout cannot bring it back.
import type { Session } from 'express-session';
import type { Socket } from 'socket.io';
import { ERR_UNAUTHORIZED, SessionAuthError, report, toError } from '../core/errors.js';
import { serverState, socketState, type SocketState } from '../core/state.js';

/** What express-session compares to decide a session changed: everything but the cookie. */
export function hashOf(session: object): string {
  const { cookie: _cookie, ...data } = session as Record<string, unknown>;
  return JSON.stringify(data);
}

/** Runs `write` after the writes of this session already queued on this server. */
function serialise(socket: Socket, sessionID: string, write: () => Promise<void>): Promise<void> {
  const queues = serverState(socket.nsp.server).writeQueues;
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

/** The socket's session, if it is one a socket can read and write (kept in a store). */
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

/**
 * Rejects operations from a socket whose session has ended: they would bring a logout back. The
 * code is ERR_UNAUTHORIZED (401), the one an event of such a socket is refused with.
 */
function checkNotEnded(state: SocketState | undefined, helper: string): void {
  const ended = state?.ended;
  if (ended) {
    throw new SessionAuthError(
      `${helper}: the socket's session has ended (${ended}); nothing was written`,
      { code: ERR_UNAUTHORIZED, status: 401 },
    );
  }
}

/** Saves the socket's session, after the writes of it already queued. */
export function save(socket: Socket, session: Session, helper = 'saveSession'): Promise<void> {
  const state = socketState(socket);
  return serialise(
    socket,
    session.id,
    () =>
      new Promise<void>((resolve, reject) => {
        // Checked when the write's turn comes, not when it was asked for.
        checkNotEnded(state, helper);
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

/** Reads the socket's session from the store again, after the writes of it already queued. */
export function reload(socket: Socket, session: Session): Promise<void> {
  return serialise(
    socket,
    session.id,
    () =>
      new Promise<void>((resolve, reject) => {
        const state = socketState(socket);
        checkNotEnded(state, 'reloadSession');
        session.reload((err?: unknown) => {
          if (err) {
            reject(toError(err));
            return;
          }
          // session.reload() puts a new Session object on the request.
          if (state) state.savedHash = hashOf(socket.request.session);
          resolve();
        });
      }),
  );
}

/** autoSave: saves the socket's session if a handler changed it; errors go to `onError`. */
export function saveIfChanged(state: SocketState): Promise<void> {
  const { socket } = state;
  const { onError } = state.options;
  const session = (socket.request as { session?: Session }).session;
  if (!session || state.ended) return Promise.resolve();
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
