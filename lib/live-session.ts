import createDebug from 'debug';
import type { Session } from 'express-session';
import type { Namespace, Server, Socket } from 'socket.io';
import {
  ERR_SESSION_EXPIRED,
  ERR_SESSION_REVOKED,
  ERR_SESSION_ROTATED,
  type SessionEndedCode,
} from './errors.js';

/** The event a socket receives just before the server ends it because its session ended. */
export const SESSION_ENDED_EVENT = 'session:ended';

/** What the client receives with {@link SESSION_ENDED_EVENT}. */
export interface SessionEndedPayload {
  message: string;
  data: { code: SessionEndedCode; status: 401 };
}

const endedMessages: Record<SessionEndedCode, string> = {
  [ERR_SESSION_REVOKED]: 'Session revoked',
  [ERR_SESSION_ROTATED]: 'Session rotated',
  [ERR_SESSION_EXPIRED]: 'Session expired',
};

// Sent between nodes through the adapter, so that a revocation on one node ends the sockets of
// every node, in every namespace that node has (dynamic children included).
const END_EVENT = 'socket.io-session-auth:end';
const MAX_TIMER_MS = 2 ** 31 - 1;
const END_ATTEMPTS = 3;
const debug = createDebug('socket.io-session-auth');

/** What this package keeps for each socket of a session namespace: a few fields and a timer. */
export interface LiveSession {
  sessionID: string;
  userKey: string | undefined;
  /** When the session's cookie expires (ms since epoch), if it does. */
  expires: number | undefined;
  timer: NodeJS.Timeout | undefined;
  ended: SessionEndedCode | undefined;
  lastTouch: number;
  /** Set while a recovered socket is being checked again; its events wait for it. */
  pending: Promise<void> | undefined;
  /** What the session looked like when last read or saved, for autoSave. */
  savedHash: string | undefined;
  /** What autoSave has queued a write of, not yet done. */
  queuedHash?: string | undefined;
  /** Called when the expiry passes, before the store is asked whether it really has. */
  onExpiring?: (() => void) | undefined;
}

const live = new WeakMap<Socket, LiveSession>();

export function liveSession(socket: Socket): LiveSession | undefined {
  return live.get(socket);
}

export function setLive(socket: Socket, state: LiveSession): void {
  live.set(socket, state);
}

export const sessionRoom = (sessionID: string): string => `session-auth:session:${sessionID}`;
export const userRoom = (userKey: string): string => `session-auth:user:${userKey}`;

/** The room key of what Passport's serializeUser stored: strings as they are, the rest as JSON. */
export function userKeyOf(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

type PassportSession = Session & { passport?: { user?: unknown } };

/** A session worth tracking: one that holds data, not the empty one made for a stranger. */
function hasData(session: Session | undefined): session is Session {
  return session !== undefined && Object.keys(session).some((key) => key !== 'cookie');
}

/** Starts tracking a socket's session: its rooms, its expiry, what autoSave compares against. */
export function track(socket: Socket): LiveSession | undefined {
  const req = socket.request;
  const session = req.session as PassportSession | undefined;
  if (!hasData(session)) return undefined;
  // express-session's per-request save/reload wrappers hold the response stand-in and its header
  // hooks for as long as the session object lives: the prototype's methods do the same work.
  // (Replaced, not deleted: a delete would make the session a slower, larger object.)
  const { save, reload } = Object.getPrototypeOf(session) as Pick<Session, 'save' | 'reload'>;
  Object.assign(session, { save, reload });
  const userKey = userKeyOf(session.passport?.user);
  const state: LiveSession = {
    sessionID: req.sessionID,
    userKey,
    expires: undefined,
    timer: undefined,
    ended: undefined,
    lastTouch: 0,
    pending: undefined,
    savedHash: undefined,
  };
  live.set(socket, state);
  void socket.join(
    userKey === undefined
      ? sessionRoom(state.sessionID)
      : [sessionRoom(state.sessionID), userRoom(userKey)],
  );
  return state;
}

/** Whether the socket's session has ended, or passed its expiry while the store is asked. */
export function sessionHasEnded(socket: Socket): boolean {
  const state = live.get(socket);
  if (!state) return false;
  return state.ended !== undefined || (state.expires !== undefined && state.expires <= Date.now());
}

/** Ends one socket: tells the client why, then disconnects this namespace only. */
export function endSocket(socket: Socket, code: SessionEndedCode): void {
  const state = live.get(socket);
  if (state) {
    if (state.ended) return;
    state.ended = code;
    clearTimeout(state.timer);
    state.timer = undefined;
  }
  // A socket still in its handshake is ended when it connects (see sendEnded).
  if (socket.connected) sendEnded(socket, code);
}

/** Tells the client why its socket ends, then disconnects this namespace only. */
export function sendEnded(socket: Socket, code: SessionEndedCode): void {
  const payload: SessionEndedPayload = {
    message: endedMessages[code],
    data: { code, status: 401 },
  };
  socket.emit(SESSION_ENDED_EVENT, payload);
  socket.disconnect();
}

/**
 * Ends this node's sockets in `room`, in every namespace: those whose handshake came before
 * `before` (ms since epoch), so that a late or repeated broadcast never ends a socket that
 * connected after the revocation (a user kicked, then logged in again).
 */
function endLocal(io: Server, room: string, code: SessionEndedCode, before = Date.now()): number {
  let ended = 0;
  for (const nsp of io._nsps.values()) {
    const ids = nsp.adapter.rooms.get(room);
    if (!ids) continue;
    // Sockets still in their handshake (past sessionNamespace, before 'connection') are in the
    // room too: Socket.IO 4.8 keeps them in _preConnectSockets.
    const pending = (nsp as unknown as { _preConnectSockets?: Map<string, Socket> })
      ._preConnectSockets;
    for (const id of [...ids]) {
      const socket = nsp.sockets.get(id) ?? pending?.get(id);
      if (socket && socket.handshake.issued <= before) {
        endSocket(socket, code);
        ended++;
      }
    }
  }
  remember(io, room);
  return ended;
}

// Rooms ended recently, so that a socket recovered by connectionStateRecovery after its session
// was ended while it was away is not let back in. Kept as long as a recovery can happen.
const tombstones = new WeakMap<Server, Map<string, number>>();

function recoveryWindow(io: Server): number | undefined {
  const recovery = io._opts.connectionStateRecovery;
  if (!recovery) return undefined;
  return recovery.maxDisconnectionDuration ?? 2 * 60 * 1000;
}

function remember(io: Server, room: string): void {
  const window = recoveryWindow(io);
  if (window === undefined) return;
  let rooms = tombstones.get(io);
  if (!rooms) {
    rooms = new Map();
    tombstones.set(io, rooms);
  }
  const now = Date.now();
  // Every entry lives as long as the others, so the oldest come first: drop them from the front.
  for (const [key, until] of rooms) {
    if (until > now) break;
    rooms.delete(key);
  }
  rooms.delete(room);
  rooms.set(room, now + window);
}

function wasEnded(io: Server, rooms: Iterable<string>): boolean {
  const ended = tombstones.get(io);
  if (!ended) return false;
  const now = Date.now();
  for (const room of rooms) {
    const until = ended.get(room);
    if (until !== undefined && until > now) return true;
  }
  return false;
}

export function crossNode(io: Server): boolean {
  const adapter = io.of('/').adapter as object;
  // The in-memory adapter only warns on serverSideEmit: find the base class and compare.
  let base = Object.getPrototypeOf(adapter) as object;
  for (;;) {
    const parent = Object.getPrototypeOf(base) as object | null;
    if (!parent || !('serverSideEmit' in parent)) break;
    base = parent;
  }
  return (
    (adapter as { serverSideEmit: unknown }).serverSideEmit !==
    (base as { serverSideEmit: unknown }).serverSideEmit
  );
}

const listening = new WeakSet<Server>();

/** Makes this node end its sockets when another node revokes a session or a user. */
export function listenForEnds(io: Server): void {
  if (listening.has(io)) return;
  listening.add(io);
  io.on(
    END_EVENT as never,
    ((room: unknown, code: unknown, before: unknown, ack: unknown) => {
      if (typeof room === 'string' && isEndedCode(code) && typeof before === 'number') {
        endLocal(io, room, code, before);
      }
      if (typeof ack === 'function') (ack as (ok: boolean) => void)(true);
    }) as never,
  );
}

function isEndedCode(code: unknown): code is SessionEndedCode {
  return (
    code === ERR_SESSION_REVOKED || code === ERR_SESSION_ROTATED || code === ERR_SESSION_EXPIRED
  );
}

/** Ends the sockets in `room` on this node and, through the adapter, on every other node. */
export async function endEverywhere(
  io: Server,
  room: string,
  code: SessionEndedCode,
): Promise<void> {
  listenForEnds(io);
  const before = Date.now();
  endLocal(io, room, code, before);
  if (!crossNode(io)) return;
  // Not one fire-and-forget publish: every node acknowledges, and a missing answer is retried.
  // A node that still misses it ends those sockets at its next revalidation (revalidateIntervalMs).
  for (let attempt = 1; attempt <= END_ATTEMPTS; attempt++) {
    try {
      // The adapter's requestsTimeout (5 s by default) bounds each attempt.
      await io.serverSideEmitWithAck(END_EVENT as never, room, code, before);
      return;
    } catch (error) {
      debug(
        'ending %s: attempt %d of %d not acknowledged by every node: %O',
        room,
        attempt,
        END_ATTEMPTS,
        error,
      );
    }
  }
}

/** Arms (or re-arms) the timer that ends a socket when its session's cookie expires. */
export function armExpiry(socket: Socket, state: LiveSession, expires: number | undefined): void {
  clearTimeout(state.timer);
  state.timer = undefined;
  state.expires = expires;
  if (expires === undefined || state.ended) return;
  const delay = Math.min(Math.max(expires - Date.now(), 0), MAX_TIMER_MS);
  state.timer = setTimeout(() => {
    state.timer = undefined;
    if (Date.now() < expires) {
      armExpiry(socket, state, expires);
      return;
    }
    state.onExpiring?.();
    recheckExpiry(socket, state);
  }, delay);
}

// At the local expiry, the store decides: HTTP requests may have moved the expiry forward since
// the socket connected. One store read per expiry, none per event.
function recheckExpiry(socket: Socket, state: LiveSession): void {
  const { sessionStore: store } = socket.request as { sessionStore?: SessionStoreLike };
  if (!store) {
    endSocket(socket, ERR_SESSION_EXPIRED);
    return;
  }
  store.get(state.sessionID, (err, stored) => {
    if (!socket.connected || state.ended) return;
    const expires = expiryOf(stored?.cookie?.expires);
    if (err || expires === undefined || expires <= Date.now()) {
      endSocket(socket, ERR_SESSION_EXPIRED);
      return;
    }
    armExpiry(socket, state, expires);
  });
}

/** What this package uses of an express-session store. */
export interface SessionStoreLike {
  get(
    sid: string,
    cb: (err: unknown, sess?: { cookie?: { expires?: unknown } } | null) => void,
  ): void;
  touch?(sid: string, sess: Session, cb?: (err?: unknown) => void): void;
}

/** When a session's cookie expires (ms since epoch), or undefined for a browser-session cookie. */
export function cookieExpiry(session: Session): number | undefined {
  const { maxAge } = session.cookie;
  return typeof maxAge === 'number' ? Date.now() + maxAge : undefined;
}

function expiryOf(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  const time = value instanceof Date ? value.getTime() : new Date(value as string).getTime();
  return Number.isNaN(time) ? undefined : time;
}

export type { Namespace };

// Recovery: connectionStateRecovery restores a socket (its rooms, its data, the broadcasts it
// missed) without running namespace middleware. A socket whose session was ended, or expired,
// while it was away must not be restored at all: the adapter is asked first, then this package.
const expiryByPid = new WeakMap<Server, Map<string, { expires: number; until: number }>>();

/** Remembers when a disconnected socket's session expires, for as long as it may recover. */
export function rememberExpiry(
  io: Server,
  pid: string | undefined,
  expires: number | undefined,
): void {
  const window = recoveryWindow(io);
  if (window === undefined || pid === undefined || expires === undefined) return;
  let pids = expiryByPid.get(io);
  if (!pids) {
    pids = new Map();
    expiryByPid.set(io, pids);
  }
  const now = Date.now();
  for (const [key, { until }] of pids) {
    if (until > now) break;
    pids.delete(key);
  }
  pids.set(pid, { expires, until: now + window });
}

function expiredWhileAway(io: Server, pid: string): boolean {
  const entry = expiryByPid.get(io)?.get(pid);
  return entry !== undefined && entry.expires <= Date.now();
}

interface RestoredSession {
  rooms: string[];
}
type Restore = (pid: string, offset: string) => Promise<RestoredSession | null>;
const guardedAdapters = new WeakSet();

/** Makes the namespace's adapter refuse to restore sockets of ended or expired sessions. */
export function guardRecovery(nsp: Namespace): void {
  const adapter = nsp.adapter as unknown as { restoreSession: Restore };
  if (guardedAdapters.has(adapter)) return;
  guardedAdapters.add(adapter);
  const restore = adapter.restoreSession.bind(adapter);
  adapter.restoreSession = async function restoreLiveSession(pid, offset) {
    const restored = await restore(pid, offset);
    if (restored && (wasEnded(nsp.server, restored.rooms) || expiredWhileAway(nsp.server, pid))) {
      return null;
    }
    return restored;
  };
}

export function isSessionRoom(room: string): boolean {
  return room.startsWith('session-auth:session:');
}
