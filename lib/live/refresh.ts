// Authorization kept true on live sockets: refreshUser and refreshSession read a user's (or a
// session's) session again, run deserializeUser again, and decide again what requireAuth decided
// at connect, on every node. Revalidation runs the same check on what it reads.
import type { Server } from 'socket.io';
import { authorizeLive } from './authorization.js';
import {
  ERR_MIDDLEWARE_ERROR,
  ERR_MIDDLEWARE_TIMEOUT,
  ERR_SESSION_REVOKED,
  ERR_SESSION_UNAVAILABLE,
  type OrRefusal,
  SessionAuthError,
  refusal,
  report,
  toError,
} from '../core/errors.js';
import { endSocket, socketsUnder, toOtherNodes } from './revocation.js';
import { serverState, type ServerState, type SocketState, userKeyOf } from '../core/state.js';
import type { SessionRequest, StoredSession } from '../core/types.js';
import { withTimeout } from '../core/with-timeout.js';
import { giveUserData, sessionUserOf } from '../core/user.js';
import { hashOf } from './writes.js';

// Sent between nodes through the adapter, with the key (`session-auth:user:<key>` or
// `session-auth:session:<digest>`, never the session ID) whose sockets each node checks again
// before it acknowledges.
const REFRESH_EVENT = 'socket.io-session-auth:refresh';

type Deserialize = (
  serialized: unknown,
  req: unknown,
  done: (err: unknown, user?: unknown) => void,
) => void;

/** Checks the sockets under `key` again on this node, then on every other node. */
export async function refreshEverywhere(io: Server, key: string): Promise<void> {
  listenForRefreshes(io);
  await refreshLocal(serverState(io), key);
  await toOtherNodes(io, REFRESH_EVENT, key);
}

/** Makes this node check its sockets again when another node asks. */
export function listenForRefreshes(io: Server): void {
  const server = serverState(io);
  if (server.refreshListening) return;
  server.refreshListening = true;
  io.on(
    REFRESH_EVENT as never,
    ((key: unknown, ack: unknown) => {
      const done = (): void => {
        if (typeof ack === 'function') (ack as (ok: boolean) => void)(true);
      };
      if (typeof key === 'string') void refreshLocal(server, key).then(done, done);
      else done();
    }) as never,
  );
}

/**
 * One pass over the sockets under `key`; asked again while a pass is under way, one more pass
 * follows it (however many times it was asked), and every caller waits for that one.
 */
function refreshLocal(server: ServerState, key: string): Promise<void> {
  const running = server.refreshes.get(key);
  if (running) {
    running.again = true;
    return running.done;
  }
  const entry: { again: boolean; done: Promise<void> } = { again: false, done: Promise.resolve() };
  // Set by a call that comes during the pass (`running.again` above), read after it.
  const askedAgain = (): boolean => entry.again;
  entry.done = (async () => {
    try {
      do {
        entry.again = false;
        await pass(server, key);
      } while (askedAgain());
    } finally {
      server.refreshes.delete(key);
    }
  })();
  server.refreshes.set(key, entry);
  return entry.done;
}

async function pass(server: ServerState, key: string): Promise<void> {
  // Sockets still in their handshake are decided with what they read: their requireAuth runs
  // after their session read, and revalidation checks them again within its interval.
  const states = socketsUnder(server, key).filter((s) => s.connected && !s.ended);
  const bySession = new Map<string | SocketState, SocketState[]>();
  for (const state of states) {
    const group = state.sessionDigest ?? state;
    const list = bySession.get(group);
    if (list) list.push(state);
    else bySession.set(group, [state]);
  }
  await Promise.all([...bySession.values()].map((group) => refreshSockets(group)));
}

/**
 * Reads the session of `states` (all of one session) from its store, within the timeout: the
 * session (null: gone), or ERR_SESSION_UNAVAILABLE with the store's failure as its cause.
 */
function readSession(state: SocketState): Promise<OrRefusal<StoredSession | null>> {
  const { socket, sessionID, options } = state;
  const { sessionStore: store, session } = socket.request as SessionRequest;
  if (sessionID === undefined || typeof store?.get !== 'function') {
    // cookie-session: the session is the one the socket holds.
    return Promise.resolve(session as StoredSession);
  }
  return withTimeout(
    new Promise((resolve) => {
      store.get(sessionID, (err, data) => {
        resolve(err ? refusal(ERR_SESSION_UNAVAILABLE, 503, toError(err)) : (data ?? null));
      });
    }),
    options.timeoutMs,
    () =>
      refusal(ERR_SESSION_UNAVAILABLE, 503, new Error('the session store did not answer in time')),
  );
}

/**
 * The user deserializeUser gives now (falsy: gone), or ERR_MIDDLEWARE_ERROR /
 * ERR_MIDDLEWARE_TIMEOUT with its failure as the cause, as at the handshake.
 */
function deserialize(state: SocketState, serialized: unknown): Promise<OrRefusal<unknown>> {
  const { socket, options } = state;
  const run = (options.passport as { deserializeUser?: unknown } | undefined)?.deserializeUser;
  if (typeof run !== 'function') return Promise.resolve(socket.request.user);
  return withTimeout(
    new Promise((resolve) => {
      (run as Deserialize).call(options.passport, serialized, socket.request, (err, user) => {
        resolve(err ? refusal(ERR_MIDDLEWARE_ERROR, 500, err) : user);
      });
      // A deserializeUser that throws rejects this promise: a refusal too.
    }).catch((error: unknown) => refusal(ERR_MIDDLEWARE_ERROR, 500, error)),
    options.timeoutMs,
    () => refusal(ERR_MIDDLEWARE_TIMEOUT, 503, new Error('deserializeUser did not answer in time')),
  );
}

/**
 * Reads the session of `states` again (unless `read` already did), runs deserializeUser again,
 * gives each socket the fresh session and user, and decides again what requireAuth decided. A
 * session gone, or whose user is gone or another, ends its sockets (ERR_SESSION_REVOKED); a store
 * or deserializeUser that fails changes nothing (reported to `onError`).
 */
export async function refreshSockets(
  states: readonly SocketState[],
  read?: StoredSession,
  how: 'refresh' | 'revalidation' = 'refresh',
): Promise<void> {
  const first = states[0];
  if (!first) return;
  const { socket, options } = first;
  // A token's socket has no session to read: its user is what serializeUser gave for the token.
  const stored =
    read ??
    (first.token ? { passport: { user: first.token.serialized } } : await readSession(first));
  if (stored instanceof SessionAuthError) {
    report(options.onError, stored.cause, socket);
    return;
  }
  const serialized = sessionUserOf(stored);
  if (!stored || userKeyOf(serialized) !== first.userKey) {
    for (const state of states) endSocket(state, ERR_SESSION_REVOKED, how);
    return;
  }
  let user: unknown;
  if (first.userKey !== undefined) {
    const deserialized = await deserialize(first, serialized);
    if (deserialized instanceof SessionAuthError) {
      report(options.onError, deserialized.cause, socket);
      return;
    }
    if (!deserialized) {
      for (const state of states) endSocket(state, ERR_SESSION_REVOKED, how);
      return;
    }
    user = deserialized;
  }
  await Promise.all(states.map((state) => renew(state, stored, user, how)));
}

async function renew(
  state: SocketState,
  stored: StoredSession,
  user: unknown,
  how: 'refresh' | 'revalidation',
): Promise<void> {
  const { socket, options, sessionID } = state;
  if (state.ended || !socket.connected) return;
  const req = socket.request as SessionRequest;
  const store = req.sessionStore;
  if (sessionID !== undefined && typeof store?.createSession === 'function') {
    // The session as it is in the store now, as express-session would load it.
    store.createSession(req, JSON.parse(JSON.stringify(stored)) as object);
    if (state.autoSave) state.savedHash = hashOf(req.session as object);
  }
  if (user !== undefined) {
    (req as { user?: unknown }).user = user;
    giveUserData(socket, options, user);
  }
  await authorizeLive(state, how);
}
