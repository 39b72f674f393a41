// connectionStateRecovery restores a socket (its rooms, its data, the broadcasts it missed) on a new
// connection, without running namespace middleware by default. A socket whose session ended, or
// expired, while it was away must not come back; any other is checked again before its events.
// All of it only with connectionStateRecovery on: without it, nothing here costs anything.
import type { Namespace, Socket } from 'socket.io';
import { ERR_SESSION_EXPIRED, ERR_SESSION_REVOKED, ERR_SESSION_ROTATED } from '../core/errors.js';
import { guardEvents, installAutoSave } from './events.js';
import { armExpiry, cookieExpiry } from './expiry.js';
import { digestKey, digestOfKey, endSocket, userKey } from './revocation.js';
import { presenceArrived } from '../presence/lifecycle.js';
import {
  interceptRestore,
  recoveryIdOf,
  recoveryWindow,
  runMiddleware,
} from '../socket-io/socket-io-internals.js';
import {
  type HandshakeOptions,
  type SessionDigest,
  type ServerState,
  type SocketState,
  socketState,
  trackSocket,
  unindex,
} from '../core/state.js';

/** Drops the entries of `map` (oldest first) whose time has passed. */
function prune<V>(map: Map<string, V>, until: (value: V) => number, now: number): void {
  for (const [key, value] of map) {
    if (until(value) > now) break;
    map.delete(key);
  }
}

/**
 * The socket joins one room that names its session (or, for cookie-session, its user): Socket.IO
 * restores a recovered socket's rooms, so the room tells who it was. The room names the session by
 * its digest: `fetchSockets()` shows every socket's rooms, on every node, to whoever calls it.
 */
export function rememberIdentity(state: SocketState): void {
  if (recoveryWindow(state.server.io) === undefined) return;
  const key =
    state.sessionDigest !== undefined
      ? digestKey(state.sessionDigest)
      : state.userKey !== undefined
        ? userKey(state.userKey)
        : undefined;
  if (key !== undefined) void state.socket.join(key);
}

/** A tracked socket left: when its session expires, remembered while it may recover. */
export function rememberExpiry(state: SocketState): void {
  const window = recoveryWindow(state.server.io);
  const pid = recoveryIdOf(state.socket);
  if (window === undefined || pid === undefined || state.expires === undefined) return;
  const now = Date.now();
  const pids = state.server.expiryByPid;
  prune(pids, ({ until }) => until, now);
  pids.set(pid, { expires: state.expires, until: now + window });
}

/** Makes the namespace's adapter refuse to restore sockets of ended or expired sessions. */
export function guardRecovery(nsp: Namespace, server: ServerState): void {
  interceptRestore(nsp, (pid, rooms) => {
    // The windows follow Socket.IO's recovery (real time); the expiry, the package's clock.
    const now = Date.now();
    const ended = rooms.some((room) => (server.endedKeys.get(room) ?? 0) > now);
    const expires = server.expiryByPid.get(pid)?.expires;
    return ended || (expires !== undefined && expires <= server.clock.now());
  });
}

/**
 * A recovered socket sits on a new connection whose request carries nothing: the namespace's
 * middleware (session, user, requireAuth) runs on it again, its events held meanwhile; it ends if
 * its session is gone (revoked), rotated, or expired.
 */
export function recheckRecovered(socket: Socket, options: HandshakeOptions): void {
  let previousDigest: SessionDigest | undefined;
  for (const room of socket.rooms) previousDigest ??= digestOfKey(room);
  const userRoom = [...socket.rooms].find((room) => room.startsWith(userKey('')));
  if (previousDigest === undefined && userRoom === undefined) return;
  const previousUser = userRoom?.slice(userKey('').length);
  let release = (): void => undefined;
  // A placeholder, indexed under the previous session's digest (all its room holds): a revocation
  // meanwhile finds it.
  const placeholder = trackSocket(socket, options, undefined, previousUser, previousDigest);
  placeholder.connected = true;
  placeholder.recheck = new Promise<void>((resolve) => {
    release = resolve;
  });
  guardEvents(placeholder);
  if (options.autoSave && previousDigest !== undefined) installAutoSave(placeholder);
  runMiddleware(socket.nsp, socket, (err) => {
    const state = socketState(socket) ?? placeholder;
    if (state !== placeholder) unindex(placeholder);
    state.connected = true;
    state.eventGuard ||= placeholder.eventGuard;
    // Who it is now: the same session (express-session), or the same user (cookie-session).
    const same =
      previousDigest !== undefined
        ? state.sessionDigest === previousDigest
        : state.userKey === previousUser;
    if (err || state === placeholder || placeholder.ended) {
      endSocket(state, placeholder.ended ?? ERR_SESSION_REVOKED, 'recovery');
    } else if (!same) {
      endSocket(state, ERR_SESSION_ROTATED, 'recovery');
    } else {
      const now = state.server.clock.now();
      const expires = cookieExpiry(socket.request, now);
      if (expires !== undefined && expires <= now)
        endSocket(state, ERR_SESSION_EXPIRED, 'recovery');
      else armExpiry(state, expires);
    }
    placeholder.recheck = undefined;
    if (state.ended === undefined) presenceArrived(socket);
    release();
  });
}
