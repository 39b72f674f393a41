import createDebug from 'debug';
import type { Session } from 'express-session';
import type { Namespace, Server, Socket } from 'socket.io';
import { interceptRestore, namespacesOf, recoveryOptions } from './socket-io-internals.js';
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
  /** The express-session ID, when the store knows the session; undefined for cookie-session. */
  sessionID: string | undefined;
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
  /** When the session was read for this socket (ms since epoch). */
  since: number;
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

interface SessionRequest {
  session?: unknown;
  sessionID?: unknown;
  sessionStore?: unknown;
  headers: { cookie?: string | undefined };
}

/**
 * The session ID, when it names a session the store has seen: express-session keeps the ID of the
 * cookie only when the store returned its session, and makes up a new one otherwise (a stranger, a
 * session gone from the store). A made-up ID is in no cookie the client sent.
 */
function storedSessionID(req: SessionRequest): string | undefined {
  const { sessionID, sessionStore, headers } = req;
  if (typeof sessionID !== 'string' || sessionID === '' || sessionStore === undefined) {
    return undefined;
  }
  const cookie = headers.cookie ?? '';
  return cookie.includes(sessionID) || cookie.includes(encodeURIComponent(sessionID))
    ? sessionID
    : undefined;
}

/**
 * Starts tracking a socket's session: its rooms, its expiry, what autoSave compares against. A
 * session is tracked when the store has seen it (express-session), or when it holds a Passport
 * user (any session middleware: cookie-session has no session ID, only its user).
 */
export function track(socket: Socket): LiveSession | undefined {
  const req = socket.request as unknown as SessionRequest;
  const session = req.session as PassportSession | undefined | null;
  if (session === null || typeof session !== 'object') return undefined;
  const sessionID = storedSessionID(req);
  const passport = (session as { passport?: unknown }).passport;
  const userKey = userKeyOf(
    passport !== null && typeof passport === 'object'
      ? (passport as { user?: unknown }).user
      : undefined,
  );
  if (sessionID === undefined && userKey === undefined) return undefined;
  // express-session's per-request save/reload wrappers hold the response stand-in and its header
  // hooks for as long as the session object lives: the prototype's methods do the same work.
  // (Replaced, not deleted: a delete would make the session a slower, larger object.)
  const { save, reload } = Object.getPrototypeOf(session) as Partial<Session>;
  if (typeof save === 'function' && typeof reload === 'function') {
    Object.assign(session, { save, reload });
  }
  const state: LiveSession = {
    sessionID,
    userKey,
    expires: undefined,
    timer: undefined,
    ended: undefined,
    lastTouch: 0,
    pending: undefined,
    savedHash: undefined,
    since: Date.now(),
  };
  live.set(socket, state);
  const rooms: string[] = [];
  if (sessionID !== undefined) rooms.push(sessionRoom(sessionID));
  if (userKey !== undefined) rooms.push(userRoom(userKey));
  void socket.join(rooms);
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
 * Ends this node's sockets in `room`, in every namespace: those whose session was read before
 * `before` (ms since epoch), so that a late or repeated broadcast never ends a socket that
 * connected after the revocation (a user kicked, then logged in again).
 */
function endLocal(io: Server, room: string, code: SessionEndedCode, before = Date.now()): number {
  let ended = 0;
  for (const nsp of namespacesOf(io)) {
    const ids = nsp.adapter.rooms.get(room);
    if (!ids) continue;
    for (const id of [...ids]) {
      const socket = nsp.sockets.get(id);
      if (socket) {
        if (socket.handshake.issued <= before) {
          endSocket(socket, code);
          ended++;
        }
      } else {
        // In the room but not connected: still in its handshake (past sessionNamespace, before
        // 'connection'). Ended when it connects (see endedWhilePending).
        endPending(nsp, id, code, before);
        ended++;
      }
    }
  }
  remember(io, room);
  return ended;
}

interface PendingEnd {
  code: SessionEndedCode;
  before: number;
}

// Sockets ended while still in their handshake, by namespace and socket ID: Socket.IO gives no
// access to them before they connect (4.8 has a private list, earlier versions none).
const pendingEnds = new WeakMap<Namespace, Map<string, PendingEnd>>();

function endPending(nsp: Namespace, id: string, code: SessionEndedCode, before: number): void {
  let ends = pendingEnds.get(nsp);
  if (!ends) {
    ends = new Map();
    pendingEnds.set(nsp, ends);
  }
  // Entries of handshakes that were refused or abandoned since: Socket.IO took them out of every
  // room when it discarded them.
  for (const key of ends.keys()) {
    if (!nsp.adapter.sids.has(key)) ends.delete(key);
  }
  ends.set(id, { code, before });
}

/** The code a socket was ended with while in its handshake, if its session was read before. */
export function endedWhilePending(
  socket: Socket,
  state: LiveSession,
): SessionEndedCode | undefined {
  const ends = pendingEnds.get(socket.nsp);
  const end = ends?.get(socket.id);
  if (!ends || !end) return undefined;
  ends.delete(socket.id);
  return state.since <= end.before ? end.code : undefined;
}

// Rooms ended recently, so that a socket recovered by connectionStateRecovery after its session
// was ended while it was away is not let back in. Kept as long as a recovery can happen.
const tombstones = new WeakMap<Server, Map<string, number>>();

function recoveryWindow(io: Server): number | undefined {
  const recovery = recoveryOptions(io);
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
  // No store to ask (cookie-session): the cookie's own lifetime is all there is.
  if (!store || state.sessionID === undefined) {
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

/**
 * When the socket's session expires (ms since epoch), or undefined for a browser-session cookie:
 * express-session's `session.cookie.maxAge`, or cookie-session's `req.sessionOptions.maxAge` (the
 * cookie was written at most that long ago: counted from now, the socket's upper bound).
 */
export function cookieExpiry(req: object): number | undefined {
  const { session, sessionOptions } = req as { session?: unknown; sessionOptions?: unknown };
  const cookie =
    session !== null && typeof session === 'object'
      ? (session as { cookie?: unknown }).cookie
      : undefined;
  const source = cookie !== null && typeof cookie === 'object' ? cookie : sessionOptions;
  const maxAge =
    source !== null && typeof source === 'object'
      ? (source as { maxAge?: unknown }).maxAge
      : undefined;
  return typeof maxAge === 'number' && Number.isFinite(maxAge) ? Date.now() + maxAge : undefined;
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

/** Makes the namespace's adapter refuse to restore sockets of ended or expired sessions. */
export function guardRecovery(nsp: Namespace): void {
  interceptRestore(
    nsp,
    (pid, rooms) => wasEnded(nsp.server, rooms) || expiredWhileAway(nsp.server, pid),
  );
}

export function isSessionRoom(room: string): boolean {
  return room.startsWith('session-auth:session:');
}
