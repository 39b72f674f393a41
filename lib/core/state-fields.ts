// The state module's second half (core/state.ts has the records): what is kept on objects every
// socket has anyway, under symbols, cheaper than WeakMap entries, each set at the same point for
// every socket that gets it, so their shapes stay shared. The only per-socket state outside the
// records, for what a socket needs before it is tracked or when it never is:
//   kWhy          on the socket: why it has no user (diagnostics/explain.ts), for its refusal and
//                 the `handshake` message; only when the reasons are wanted
//   kEventGuards  on the socket: the requireAuth guards whose authorizeEvent guard it has, so a
//                 namespace's middleware run again (recovery) does not guard its events twice
//   `request`     on the socket, an own property: its request view (core/request.ts), which the
//                 app reads as `socket.request`
//   kCookieID     on the request view, only while its session is read with the reasons wanted:
//                 what express-session took from the session cookie (core/request.ts)
//   kRead         on the connection (`socket.conn`), while a connect of it leads a session read:
//                 that read, which the connection's other namespace connects may share
//                 (handshake/shared-read.ts); undefined once it has answered
//   kLate         on a socket that was there before a namespace was layered: the steps it still
//                 has to pass (handshake/late.ts)
import type { Server, Socket } from 'socket.io';
import type { NoUserReason } from '../diagnostics/diagnostics.js';
import type { SessionAuthError } from './errors.js';
import type { Guard, SharedRead } from './state.js';

const kWhy = Symbol('socket.io-session-auth why');
const kEventGuards = Symbol('socket.io-session-auth event guards');
const kCookieID = Symbol('socket.io-session-auth cookie ID');
const kRead = Symbol('socket.io-session-auth session read');
const kLate = Symbol('socket.io-session-auth late check');

/** Why a socket has no user, and whether its client may be told. */
export interface NoUser {
  reason: NoUserReason;
  explain: boolean;
}

type Kept = Socket & {
  [kWhy]?: NoUser;
  [kEventGuards]?: Guard | Guard[];
  [kLate]?: LateCheck;
};

/** Keeps why the socket has no user. */
export function keepWhy(socket: Socket, why: NoUser): void {
  (socket as Kept)[kWhy] = why;
}

/** Why the socket has no user, if the package knows. */
export function whyOf(socket: Socket): NoUser | undefined {
  return (socket as Kept)[kWhy];
}

/**
 * Notes that `guard`'s authorizeEvent guards the socket's events; false if it already did. One
 * guard (most sockets) is kept as itself, several in an array.
 */
export function addEventGuard(socket: Socket, guard: Guard): boolean {
  const kept = socket as Kept;
  const current = kept[kEventGuards];
  if (current === undefined) kept[kEventGuards] = guard;
  else if (current === guard || (Array.isArray(current) && current.includes(guard))) return false;
  else kept[kEventGuards] = Array.isArray(current) ? [...current, guard] : [current, guard];
  return true;
}

/** The socket's own request view, if it has one (an own `request`, not Socket.IO's). */
export function ownRequest(socket: Socket): object | undefined {
  const own = Object.getOwnPropertyDescriptor(socket, 'request');
  return own?.value as object | undefined;
}

/** Gives the socket its own request view, as `socket.request`. */
export function setOwnRequest(socket: Socket, view: object): void {
  Object.defineProperty(socket, 'request', { value: view, configurable: true });
}

type Watched = { [kCookieID]?: CookieWatch | undefined };
/** What express-session's first `sessionID` write on a watched view was. */
export interface CookieWatch {
  written: boolean;
  id: unknown;
}

/** Starts watching the view's first `sessionID` write. */
export function watchCookieID(view: object): void {
  (view as Watched)[kCookieID] = { written: false, id: undefined };
}

/** The watch of the view, if it is watched (request.ts's `sessionID` setter fills it). */
export function cookieWatchOf(view: object): CookieWatch | undefined {
  return (view as Watched)[kCookieID];
}

/** The watch, and stops watching (the field stays, undefined: a delete would slow the view). */
export function endCookieWatch(view: object): CookieWatch | undefined {
  const watched = (view as Watched)[kCookieID];
  if (watched !== undefined) (view as Watched)[kCookieID] = undefined;
  return watched;
}

type Reading = Socket['conn'] & { [kRead]?: SharedRead | undefined };

/** The session read a connect of this connection leads, while it is under way. */
export function readUnderWay(connection: Socket['conn']): SharedRead | undefined {
  return (connection as Reading)[kRead];
}

/**
 * Notes the read a connect of this connection leads; undefined once it has answered (the field
 * stays, so that every connection keeps one shape; a WeakMap entry per connection costs more).
 */
export function setReadUnderWay(connection: Socket['conn'], read: SharedRead | undefined): void {
  (connection as Reading)[kRead] = read;
}

type NamespaceStep = (socket: Socket, next: (err?: Error) => void) => void;

/**
 * A socket that was there (connected, or in its handshake) before a namespace it is on was layered:
 * the steps added since, which it passes as a fresh connect would (handshake/late.ts).
 */
export interface LateCheck {
  /** The middleware added since, in order, not yet run on it. */
  readonly steps: NamespaceStep[];
  /** The `connection` listeners added since, run once it has passed every step. */
  readonly admits: ((socket: Socket) => void)[];
  /** While a check runs: resolved when it is done, and its held events go on or are refused. */
  done: Promise<void> | undefined;
  release: () => void;
  /** The refusal that ended it, once one did. */
  refused: SessionAuthError | undefined;
  /** Its events are held by the check (a `socket.use` guard, added once). */
  holding: boolean;
}

/** The socket's late check, created on first use. */
export function lateCheckOf(socket: Socket): LateCheck {
  const kept = socket as Kept;
  kept[kLate] ??= {
    steps: [],
    admits: [],
    done: undefined,
    release: () => undefined,
    refused: undefined,
    holding: false,
  };
  return kept[kLate];
}

// ---------------------------------------------------------------------------------------------
// What is kept on a session store the package watches (sessions/store-logouts.ts): one record per
// store instance, under a symbol on the store itself, so that its methods are wrapped once however
// many servers hear it.
// ---------------------------------------------------------------------------------------------

const kStoreWatch = Symbol('socket.io-session-auth store');

/** A watched store: who hears its destroys, and what its own methods are doing right now. */
export interface StoreWatch {
  /** The servers that end a destroyed session's sockets (weakly: a closed server goes). */
  readonly servers: Set<WeakRef<Server>>;
  /** Sessions being regenerated, with their request: the destroy inside is a login or logout. */
  readonly regenerating: Map<string, { req: object; seen: boolean }>;
  /** Sessions saved with an expired cookie: a destroy inside (connect-redis) is the expiry's to end. */
  readonly expiring: Set<string>;
}

/** The record of a watched store, if it has one. */
export function storeWatchOf(store: object): StoreWatch | undefined {
  return (store as { [kStoreWatch]?: StoreWatch })[kStoreWatch];
}

/** Gives the store its record (non-enumerable: the store is the app's). */
export function newStoreWatch(store: object): StoreWatch {
  const watch: StoreWatch = { servers: new Set(), regenerating: new Map(), expiring: new Set() };
  Object.defineProperty(store, kStoreWatch, { value: watch, configurable: true });
  return watch;
}
