// The socket's record, indexed by session and user, so that a revocation finds it even before it
// has connected; with its user's summary in socket.data, autoSave and the per-event guard.
import type { Session } from 'express-session';
import type { Socket } from 'socket.io';
import { warnOnce } from '../diagnostics/diagnostics.js';
import { type HandshakeOptions, trackSocket } from '../core/state.js';
import type { SessionRequest } from '../core/types.js';
import { giveUserData, sessionUserKey } from '../core/user.js';
import { guardEvents, installAutoSave } from '../live/events.js';
import { endIfHeard } from '../live/held-ends.js';
import { rememberIdentity } from '../live/recovery.js';
import { hashOf } from '../live/writes.js';
import { storedSessionID } from './session-read.js';
import { sessionWarnings } from '../diagnostics/setup-warnings.js';
import { watchStore } from '../sessions/store-logouts.js';

/**
 * A session is tracked when the store has seen it (express-session), or when it holds a Passport
 * user (any session middleware: cookie-session has no session ID, only its user).
 */
export function track(socket: Socket, options: HandshakeOptions): void {
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
  // The store's destroys end this session's sockets, whoever calls them (store-logouts.ts).
  if (sessionID !== undefined) watchStore(socket.nsp.server, req.sessionStore);
  const state = trackSocket(socket, options, sessionID, userKey);
  // storeEvents: its session deleted in the store since the read (admit tells it, once connected).
  endIfHeard(state);
  // sessionRegistry: a session seen by a socket (its device, its activity).
  if (sessionID !== undefined) state.server.registry?.seen(sessionID, session, req);
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
