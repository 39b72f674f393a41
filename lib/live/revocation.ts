// Ending a session's (or a user's) sockets: on this node from its index, sockets still in their
// handshake included, and on every other node through the adapter, acknowledged and retried.
// disconnectOnLogout, disconnectSession, disconnectUser, revalidation and store events all end
// sockets here.
import { debug } from '../diagnostics/debug.js';
import type { Server, Socket } from 'socket.io';
import {
  ERR_AUTHORIZE_ERROR,
  ERR_FORBIDDEN,
  ERR_MIDDLEWARE_TIMEOUT,
  ERR_RATE_LIMITED,
  ERR_SESSION_EXPIRED,
  ERR_SESSION_REVOKED,
  ERR_SESSION_ROTATED,
  type SessionAuthErrorData,
  type SessionEndedCode,
  type SocketEndedCode,
} from '../core/errors.js';
import { type EndedHow, publish } from '../diagnostics/diagnostics.js';
import { recoveryWindow, spansNodes } from '../socket-io/socket-io-internals.js';
import {
  serverState,
  sessionDigest,
  type ServerState,
  type SessionDigest,
  type SocketState,
} from '../core/state.js';

/** The event a socket receives just before the server ends it because its session ended. */
export const SESSION_ENDED_EVENT = 'session:ended';

/**
 * What the client receives with {@link SESSION_ENDED_EVENT}: why its session ended, or, for a
 * socket that was connected before its namespace was layered, the refusal a fresh connect would
 * have had (`SessionAuthErrorData`, as in `connect_error`).
 */
export interface SessionEndedPayload {
  message: string;
  data: { code: SocketEndedCode; status: 401 | 403 | 429 | 500 | 503 } | SessionAuthErrorData;
}

const ended: Record<SocketEndedCode, [string, 401 | 403 | 429 | 500 | 503]> = {
  [ERR_SESSION_REVOKED]: ['Session revoked', 401],
  [ERR_SESSION_ROTATED]: ['Session rotated', 401],
  [ERR_SESSION_EXPIRED]: ['Session expired', 401],
  [ERR_FORBIDDEN]: ['Forbidden', 403],
  [ERR_AUTHORIZE_ERROR]: ['Internal Server Error', 500],
  [ERR_MIDDLEWARE_TIMEOUT]: ['Service Unavailable', 503],
  [ERR_RATE_LIMITED]: ['Too Many Requests', 429],
};

// Sent between nodes through the adapter, so that a revocation on one node ends the sockets of
// every node. Its arguments are (key, code, before, how): the keys are the room names of
// connectionStateRecovery, and name a session by its digest, never its ID (state.ts).
const END_EVENT = 'socket.io-session-auth:end';
const SESSION_PREFIX = 'session-auth:session:';
const USER_PREFIX = 'session-auth:user:';
const END_ATTEMPTS = 3;
// Sent, without waiting, by a node whose wrapped store is about to destroy a session in a rotation
// (Passport's login): a store event feed hears the store's delete at once, but the END that says
// "rotated" comes only after the login's response. Its argument is the session's key (a digest).
const ROTATING_EVENT = 'socket.io-session-auth:rotating';
/** How long store events of a session announced as rotating wait for its END (store-events.ts). */
const ROTATING_MS = 10_000;

/**
 * The name under which a session's sockets are ended everywhere (and remembered for recovery):
 * from the session ID, digested once here, at the call that ends or refreshes it.
 */
export const sessionKey = (sessionID: string): string => digestKey(sessionDigest(sessionID));
/** The same from a digest already computed (a tracked socket's). */
export const digestKey = (digest: SessionDigest): string => `${SESSION_PREFIX}${digest}`;
/** The digest in a session key or room (another node made it), or undefined for any other name. */
export const digestOfKey = (key: string): SessionDigest | undefined =>
  key.startsWith(SESSION_PREFIX) ? (key.slice(SESSION_PREFIX.length) as SessionDigest) : undefined;
/** The same for a user's sockets. */
export const userKey = (key: string): string => `${USER_PREFIX}${key}`;

/** The sockets of this node under a session or user key. */
export function socketsUnder(server: ServerState, key: string): SocketState[] {
  const digest = digestOfKey(key);
  if (digest !== undefined) return server.bySession.get(digest);
  if (key.startsWith(USER_PREFIX)) return server.byUser.get(key.slice(USER_PREFIX.length));
  return [];
}

/** What a socket ended with `code` is told (and a refused `session:token` ack, as its error). */
export function endedPayload(code: SocketEndedCode): SessionEndedPayload {
  const [message, status] = ended[code];
  return { message, data: { code, status } };
}

/** Tells the client why its socket ends, then disconnects this namespace only. */
export function sendEnded(socket: Socket, code: SocketEndedCode): void {
  socket.emit(SESSION_ENDED_EVENT, endedPayload(code));
  socket.disconnect();
}

/** Ends one socket: a connected one now; one still in its handshake when it connects. */
export function endSocket(state: SocketState, code: SocketEndedCode, how: EndedHow): void {
  if (state.ended) return;
  state.ended = code;
  publish('sessionEnded', () => ({
    namespace: state.socket.nsp.name,
    socketId: state.socket.id,
    code,
    how,
  }));
  // Out of the expiry heap as it leaves: only a connected socket is in it, and sendEnded's
  // disconnect runs leave() (handshake.ts) at once; one that has left was taken out then.
  if (state.connected && state.socket.connected) sendEnded(state.socket, code);
}

/**
 * Ends this node's sockets under `key` (a session's or a user's) whose session was read before
 * `before` (ms since epoch), so that a late or repeated broadcast never ends a socket that came
 * after the revocation (a user kicked, then logged in again).
 */
function endLocal(
  server: ServerState,
  key: string,
  code: SessionEndedCode,
  before: number,
  how: EndedHow,
): void {
  for (const state of socketsUnder(server, key)) {
    if (state.readAt <= before) endSocket(state, code, how);
  }
  const digest = digestOfKey(key);
  if (digest !== undefined) server.rotating.delete(digest);
  rememberEnded(server, key);
}

/**
 * A rotation of `sessionID` starts on this node (store-logouts.ts, before the store's destroy):
 * with store event feeds, every node's events of that session wait for the END that follows the
 * login's response, so its sockets are told `ERR_SESSION_ROTATED` (reconnect) rather than
 * `ERR_SESSION_REVOKED`.
 */
export function announceRotation(io: Server, sessionID: string): void {
  const server = serverState(io);
  // Only for store event feeds: an app without one sends nothing more at a login.
  if (server.feeds.size === 0) return;
  const key = sessionKey(sessionID);
  listenForEnds(io);
  noteRotating(server, key);
  if (!crossNode(io)) return;
  try {
    // Before the store's delete is sent: on one Redis connection, it is published first.
    io.serverSideEmit(ROTATING_EVENT as never, key);
  } catch (error) {
    // Never a failed login: without it, other nodes' feeds may say REVOKED for ROTATED.
    debug('announcing a rotation to the other nodes failed: %O', error);
  }
}

function noteRotating(server: ServerState, key: string): void {
  const digest = digestOfKey(key);
  if (digest === undefined) return;
  const now = Date.now();
  // Oldest first: drop the ones whose END never came (a failed destroy).
  for (const [rotating, until] of server.rotating) {
    if (until > now) break;
    server.rotating.delete(rotating);
  }
  server.rotating.delete(digest);
  server.rotating.set(digest, now + ROTATING_MS);
}

/**
 * A session or user just ended: remembered as long as a socket of it may recover, so that
 * connectionStateRecovery does not bring it back (recovery.ts refuses the restore).
 */
export function rememberEnded(server: ServerState, key: string): void {
  const window = recoveryWindow(server.io);
  if (window === undefined) return;
  const now = Date.now();
  // Oldest first: drop the ones whose time has passed.
  for (const [ended, until] of server.endedKeys) {
    if (until > now) break;
    server.endedKeys.delete(ended);
  }
  server.endedKeys.delete(key);
  server.endedKeys.set(key, now + window);
}

/**
 * Whether the adapter spans nodes (see `spansNodes`): known once the server has its adapter, then
 * kept.
 */
export function crossNode(io: Server): boolean {
  const server = serverState(io);
  server.crossNode ??= spansNodes(io.of('/').adapter);
  return server.crossNode;
}

const HOWS: readonly EndedHow[] = ['logout', 'destroy', 'rotation', 'revocation'];
function isHow(value: unknown): value is EndedHow {
  return HOWS.includes(value as EndedHow);
}

function isEndedCode(code: unknown): code is SessionEndedCode {
  return (
    code === ERR_SESSION_REVOKED || code === ERR_SESSION_ROTATED || code === ERR_SESSION_EXPIRED
  );
}

/** Makes this node end its sockets when another node revokes a session or a user. */
export function listenForEnds(io: Server): void {
  const server = serverState(io);
  if (server.listening) return;
  server.listening = true;
  io.on(
    END_EVENT as never,
    ((key: unknown, code: unknown, before: unknown, ...rest: unknown[]) => {
      // (key, code, before, how, ack); nodes of an older version send no `how`.
      const ack = rest.pop();
      const how = isHow(rest[0]) ? rest[0] : 'revocation';
      if (typeof key === 'string' && isEndedCode(code) && typeof before === 'number') {
        endLocal(server, key, code, before, how);
      }
      if (typeof ack === 'function') (ack as (ok: boolean) => void)(true);
    }) as never,
  );
  io.on(
    ROTATING_EVENT as never,
    ((key: unknown) => {
      if (typeof key === 'string') noteRotating(server, key);
    }) as never,
  );
}

/**
 * Sends `event` with `args` to every other node through the adapter and waits until each has
 * acknowledged: not one fire-and-forget publish. A missing answer is retried, each attempt bounded
 * by the adapter's requestsTimeout (5 s by default); a node that still misses it catches up at its
 * next revalidation (revalidateIntervalMs).
 */
export async function toOtherNodes(io: Server, event: string, ...args: unknown[]): Promise<void> {
  if (!crossNode(io)) return;
  const key = String(args[0]);
  const message = (attempts: number, acknowledged: boolean, nodes: number) => () => ({
    kind: event === END_EVENT ? ('end' as const) : ('refresh' as const),
    target: key.startsWith(USER_PREFIX) ? ('user' as const) : ('session' as const),
    attempts,
    acknowledged,
    nodes,
  });
  for (let attempt = 1; attempt <= END_ATTEMPTS; attempt++) {
    try {
      const answers: unknown = await io.serverSideEmitWithAck(event as never, ...(args as never[]));
      publish('broadcast', message(attempt, true, Array.isArray(answers) ? answers.length : 0));
      return;
    } catch (error) {
      if (attempt === END_ATTEMPTS) publish('broadcast', message(attempt, false, 0));
      debug(
        '%s %o: attempt %d of %d not acknowledged by every node: %O',
        event,
        args,
        attempt,
        END_ATTEMPTS,
        error,
      );
    }
  }
}

/** Ends the sockets under `key` on this node and, through the adapter, on every other node. */
export async function endEverywhere(
  io: Server,
  key: string,
  code: SessionEndedCode,
  how: EndedHow,
): Promise<void> {
  listenForEnds(io);
  const before = Date.now();
  endLocal(serverState(io), key, code, before, how);
  await toOtherNodes(io, END_EVENT, key, code, before, how);
}
